"""The golden wire fixture: what ``rnnwidgets.widgets.payload`` sends the browser, written to
``js/tests/fixtures/`` for the front end's tests (js/tests/decode.test.ts decodes it).

``python tests/wire_fixture.py`` rewrites the files; tests/test_widgets_payload.py fails while the committed
ones differ from what the payload module writes now, so a change to the format on either side
fails the other side's tests until both agree.

The trace is built from exact arithmetic (no libm), so its bytes are the same on every machine.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rnnwidgets import kinds  # noqa: E402
from rnnwidgets.timeaxis import window_in_layer  # noqa: E402
from rnnwidgets.tracedata import LayerTrace, Trace  # noqa: E402
from rnnwidgets.widgets import payload  # noqa: E402

FIXTURES = ROOT / "js" / "tests" / "fixtures"
BATCH, STEPS = 2, 6
SHORT = 4                # the steps of a layer with its own time axis
WINDOW = (2, 3)          # the windowed payload holds steps [2, 5)
REPLY_START = 3          # and the kernel's reply to a request for the window from step 3
LABELS = ["a", "b", "c", "d"]  # names of the head's output classes


def _values(seed: int, units: int, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """(batch, time, units) float32 with distinct exact values in [lo, hi]: (b, t, u) -> a rational."""
    b, t, u = np.meshgrid(np.arange(BATCH), np.arange(STEPS), np.arange(units), indexing="ij")
    step = (b * 37 + t * 11 + u * 5 + seed * 3) % 32
    return (lo + (hi - lo) * step / 31).astype(np.float32)


def _layer(name: str, kind: str, units: int, seed: int, steps: int = STEPS, **extra) -> LayerTrace:
    states = {s: _values(seed + k, units)[:, :steps] for k, s in enumerate(kinds.states_of(kind))}
    gates = {g: _values(seed + 10 + k, units, 0.0 if g in kinds.SIGMOID_GATES else -1.0)[:, :steps]
             for k, g in enumerate(kinds.gates_of(kind))}
    initial = {s: states[s][:, 0] * np.float32(0.5) for s in states}
    return LayerTrace(name, kind, states=states, gates=gates, initial=initial, **extra)


def fixture_trace() -> Trace:
    """Two layers of an LSTM (one reversed), a GRU, a recorded track; numeric inputs; a head; and
    a shorter RNN on its own time axis (SHORT steps, its own lengths and tokens: a decoder's)."""
    layers = [
        _layer(kinds.layer_name("lstm", 0), "lstm", 3, 0),
        _layer(kinds.layer_name("lstm", 0, reverse=True), "lstm", 3, 1),
        _layer(kinds.layer_name("gru", 0), "gru", 2, 2, tracks={"relu": _values(9, 2, 0.0, 2.0)}),
        _layer(kinds.layer_name("decoder.rnn", 0), "rnn", 2, 4, steps=SHORT, lengths=np.array([SHORT, SHORT - 1]),
               tokens=[["<s>", "x", "y", "</s>"], ["<s>", "z", "</s>"]]),
    ]
    return Trace(layers={lt.name: lt for lt in layers}, lengths=np.array([STEPS, STEPS - 2]),
                 inputs=_values(20, 2, -3.0, 3.0), outputs=_values(21, 4, -2.0, 2.0))


def _samples(trace: Trace, batch: int, window=None) -> list:
    """[layer, quantity, t, unit, value] read straight from the trace at the first, a middle and
    the last step each layer holds (all, or the ``window`` (t0, held) kept inside its own steps),
    first and last unit: for the front end to find in what it decodes."""
    out = []
    for lt in trace.layers.values():
        t0, held = window_in_layer(*window, lt.steps) if window is not None else (0, lt.steps)
        steps = range(t0, t0 + held)
        for name, array in lt.quantities().items():
            units = array.shape[2]
            for t in sorted({steps[0], steps[len(steps) // 2], steps[-1]}):
                for u in sorted({0, units - 1}):
                    out.append([lt.name, name, t, u, float(array[batch, t, u])])
    return out


def _dumps(doc: dict) -> str:
    """JSON with one sample per line (the index indented), so a change reads as a short diff."""
    rows = {}
    for part in ("full", "window", "reply"):
        rows[part] = doc[part]["samples"]
        doc[part]["samples"] = f"@samples {part}"
    text = json.dumps(doc, indent=1)
    for part, samples in rows.items():
        lines = ",\n  ".join(json.dumps(sample) for sample in samples)
        text = text.replace(f'"@samples {part}"', f"[\n  {lines}\n  ]")
    return text


def build() -> dict:
    """File name -> bytes of every fixture file."""
    trace = fixture_trace()
    batch = 1
    full_index, full = payload.build_payload(trace, batch, LABELS)
    overview = (kinds.layer_name("lstm", 0), "h")
    scales = payload.trace_scales(trace)
    lod_index, lod = payload.build_payload(trace, batch, LABELS, scales, window=WINDOW, overview=overview)
    reply_window = payload.window_at(trace, REPLY_START, WINDOW[1])
    reply = payload.window_payload(trace, batch, reply_window, scales)
    initial = {lt.name: {s: [float(v) for v in state[batch]] for s, state in lt.initial.items()}
               for lt in trace.layers.values()}
    doc = {
        "about": "written by tests/wire_fixture.py from rnnwidgets/widgets/payload.py; do not edit",
        "messages": payload.MESSAGES,
        "kinds": {kind: kinds.describe(kind) for kind in kinds.KINDS},
        "batch": batch,
        "full": {"index": full_index, "buffer": "wire-full.bin",
                 "samples": _samples(trace, batch), "initial": initial},
        "window": {"index": lod_index, "buffer": "wire-window.bin",
                   "samples": _samples(trace, batch, WINDOW)},
        "reply": {"message": payload.window_message(*reply_window), "buffer": "wire-reply.bin",
                  "samples": _samples(trace, batch, reply_window)},
    }
    return {"wire.json": (_dumps(doc) + "\n").encode("utf-8"),
            "wire-full.bin": full, "wire-window.bin": lod, "wire-reply.bin": reply}


def write(folder: Path = FIXTURES) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in build().items():
        (folder / name).write_bytes(data)


if __name__ == "__main__":
    write()
    print(f"wrote {', '.join(build())} to {FIXTURES}")
