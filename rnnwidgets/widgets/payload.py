"""The wire contract between the kernel and the browser: the Explorer's payload and the messages.

This module is its one owner. js/src/decode.ts reads what it writes, and tests/wire_fixture.py
writes a golden fixture from it (js/tests/fixtures/) that the front end's tests decode, so a
change on one side fails the other side's tests.

The payload of one batch element: one float32 buffer (little-endian bytes) holds every
(time, units) array of that element, each C-order so the browser reads unit u at step t at
``t * units + u``; a small JSON index says where each array starts (in float32 values) and how
to colour it. The browser makes zero-copy views.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import numpy as np

from ..kinds import GATES, describe
from ..ranges import colour_scale, max_abs
from ..timeaxis import min_max_columns, on_axis, window_in_layer
from ..tracedata import Trace

TOP_K = 5

# Custom messages (``type`` of their content); js/src/decode.ts ``MESSAGE`` mirrors this table.
STEP = "step"      # kernel -> Explorer view {type, t}: show step t
WINDOW = "window"  # view -> kernel {type, start}: send the window from start; kernel -> view {type, t0, held} + buffer
OPEN = "open"      # match list -> kernel {type, row}: open that match in the Explorer
MESSAGES = {"step": STEP, "window": WINDOW, "open": OPEN}

Labels = Union[Sequence[str], Callable[[int], str], None]


INPUTS = ("", "inputs")  # the key of the numeric inputs' scale


def trace_scales(trace: Trace) -> dict:
    """(layer name, quantity name) -> colour scale, computed once per trace (INPUTS: the inputs')."""
    scales = {(lt.name, name): colour_scale(name, array)
              for lt in trace.layers.values() for name, array in lt.quantities().items()}
    if trace.inputs is not None:
        top = max_abs(trace.inputs) or 1.0
        scales[INPUTS] = {"scale": "diverging", "vmin": -top, "vmax": top}
    return scales


def is_output_head(trace: Trace) -> bool:
    """Whether ``trace.outputs`` are a head's scores (worth a softmax) and not just a layer's h."""
    out = trace.outputs
    if out is None or out.shape[2] < 2:
        return False
    return not any("h" in lt.states and lt.states["h"].shape == out.shape and np.array_equal(lt.states["h"], out)
                   for lt in trace.layers.values())   # a layer without h (rw.trace(quantities=...)) tells nothing


def label_of(labels: Labels, i: int) -> str:
    if labels is None:
        return str(i)
    if callable(labels):
        return str(labels(i))
    return str(labels[i]) if 0 <= i < len(labels) else str(i)


def top_classes(scores: np.ndarray, k: int) -> np.ndarray:
    """(time, k) indices of each row's k largest scores, largest first, ties in class order (what
    a stable sort of -scores gives). A partial selection, not a sort: a 33,278-word vocabulary
    over 1,000 steps costs one pass instead of a full sort of every row."""
    classes = scores.shape[1]
    if k >= classes:
        return np.argsort(-scores, axis=1, kind="stable")[:, :k]
    top = np.argpartition(scores, classes - k, axis=1)[:, classes - k:]
    values = np.take_along_axis(scores, top, axis=1)
    top = np.take_along_axis(top, np.lexsort((top, -values), axis=1), axis=1)
    # a tie at the k-th place: the partition may have kept a later class of the tie; sort those rows
    kth = np.take_along_axis(scores, top[:, -1:], axis=1)
    for t in np.flatnonzero(np.count_nonzero(scores >= kth, axis=1) > k):
        top[t] = np.argsort(-scores[t], kind="stable")[:k]
    return top


def top_predictions(scores: np.ndarray, labels: Labels, k: int = TOP_K):
    """Softmax top-k of (time, classes) scores: ids into a compact label list, probabilities, labels."""
    k = min(k, scores.shape[1])
    scores = np.asarray(scores, dtype=np.float32)
    top = top_classes(scores, k)
    # the softmax in float64, in place: one copy of the scores
    exps = scores.astype(np.float64)
    exps -= exps.max(axis=1, keepdims=True)
    np.exp(exps, out=exps)
    top_probs = np.take_along_axis(exps, top, axis=1) / exps.sum(axis=1, keepdims=True)
    used, compact = np.unique(top, return_inverse=True)
    return (compact.reshape(top.shape).astype(np.float32), top_probs.astype(np.float32),
            [label_of(labels, int(i)) for i in used])


class _Packer:
    """Lays arrays end to end in one float32 buffer, noting each one's offset in the index."""

    def __init__(self):
        self.chunks, self.offset = [], 0

    def put(self, array: np.ndarray, name: str, scale: dict, t0: Optional[int] = None) -> dict:
        array = np.ascontiguousarray(array, dtype="<f4")
        entry = {"name": name, "offset": self.offset, "steps": int(array.shape[0]),
                 "units": int(array.shape[1]), **scale}
        if t0 is not None:
            entry["t0"] = t0
        self.chunks.append(array)
        self.offset += array.size
        return entry

    def bytes(self) -> bytes:
        """The chunks end to end: one copy (each chunk is C-contiguous "<f4", so ``bytes.join``
        reads its memory as is; ``np.concatenate(...).tobytes()`` would copy everything twice)."""
        return b"".join(self.chunks)


def recurrence(lt) -> dict:
    """``kinds.describe`` of the equations a layer runs: its kind's, or for a cell driven by a
    user's loop (kind "cell") the cell's own (``meta["cell"]``: "lstm" for an ``nn.LSTMCell``)."""
    cell = lt.meta.get("cell") if lt.kind == "cell" else None
    return describe(cell if cell in GATES else lt.kind)


def _layer_axis(trace: Trace, lt, batch: int) -> dict:
    """A layer's own time axis in the payload: its steps, this element's valid steps, and its
    tokens when they are not the trace's (``tokens``: its own, or None when the trace's do not
    label its steps); without the key the view's ``tokens`` label it."""
    axis = {"steps": lt.steps, "length": int(trace.layer_lengths(lt.name)[batch])}
    tokens = trace.layer_tokens(lt.name)
    if tokens is not trace.tokens:
        axis["tokens"] = None if tokens is None else tokens[batch]
    return axis


def _step_arrays(trace: Trace, batch: int, scales: dict, packer: _Packer, window) -> tuple[list, Optional[dict]]:
    """Every layer's quantities (and numeric inputs) of one element, whole or within a window of
    steps (each layer's window kept inside its own steps: ``window_in_layer``)."""
    layers = []
    for lt in trace.layers.values():
        t0, held = window_in_layer(window[0], window[1], lt.steps) if window is not None else (0, lt.steps)
        mark = t0 if window is not None else None
        layers.append({"name": lt.name, "kind": lt.kind, "reverse": lt.reverse, "recurrence": recurrence(lt),
                       **_layer_axis(trace, lt, batch),
                       "quantities": [packer.put(array[batch, t0:t0 + held], name, scales[(lt.name, name)], mark)
                                      for name, array in lt.quantities().items()]})
    inputs = None
    if trace.tokens is None and trace.inputs is not None:
        values = trace.inputs[batch]
        if window is not None:   # on the longest axis, so that every window holds as many steps
            t0, held = window
            values = on_axis(values, trace.steps)[t0:t0 + held]
        inputs = packer.put(values, "inputs", scales[INPUTS], None if window is None else window[0])
    return layers, inputs


def validate_batch(trace: Trace, batch: int) -> None:
    assert trace.batch is not None  # a validated Trace sets it
    if not 0 <= batch < trace.batch:
        raise IndexError(f"batch element {batch} is out of range: the trace holds {trace.batch}")


def build_payload(trace: Trace, batch: int = 0, labels: Labels = None, scales: Optional[dict] = None,
                  window: Optional[tuple] = None, overview: Optional[tuple] = None) -> tuple[dict, bytes]:
    """The JSON index and the float32 bytes of batch element ``batch``.

    A layer's entry carries its own time axis (``steps``, this element's ``length``, and
    ``tokens`` when the layer's are not the view's: ``_layer_axis``), its direction
    (``reverse``: it runs backward in time), the names and rules of its equations
    (``recurrence``: gate and state names, which gates are sigmoids) and ``initial`` (state
    name -> offset of its (1, units) initial state) when the trace recorded one. For a sequence
    too long to send whole: ``window=(t0, held)`` sends every per-step array only for steps
    [t0, t0 + held) (``window_payload`` sends the next ones), and ``overview=(layer, quantity)``
    adds that quantity over the whole sequence at a level of detail that fits a view: per column
    of ``bucket`` steps, each unit's min and max, so a one-step spike still shows.
    """
    validate_batch(trace, batch)
    scales = scales if scales is not None else trace_scales(trace)
    packer = _Packer()
    layers, inputs = _step_arrays(trace, batch, scales, packer, window)
    held_floats = packer.offset
    # Outside the window: what the cell view shows as the state before a layer's first step.
    for entry, lt in zip(layers, trace.layers.values()):
        if lt.initial:
            entry["initial"] = {name: packer.put(state[batch][None], f"initial {name}", {})["offset"]
                                for name, state in lt.initial.items()}
    predictions = None
    if trace.outputs is not None and is_output_head(trace):
        ids, probs, names = top_predictions(trace.outputs[batch], labels)
        # steps: the outputs' own (a decoder's), shown only beside a layer of as many steps
        predictions = {"k": int(ids.shape[1]), "steps": int(ids.shape[0]), "ids": packer.put(ids, "ids", {})["offset"],
                       "probs": packer.put(probs, "probs", {})["offset"], "labels": names}
    lod = None
    if window is not None:
        assert overview is not None, "a window needs an overview (layer, quantity)"
        layer, name = overview
        lo, hi, bucket = min_max_columns(trace.layers[layer].quantities()[name][batch], OVERVIEW_COLUMNS)
        lod = {"t0": window[0], "held": window[1], "floats": held_floats,
               "overview": {"layer": layer, "quantity": name, "bucket": bucket,
                            "min": packer.put(lo, "min", {})["offset"],
                            "max": packer.put(hi, "max", {})["offset"],
                            "columns": int(lo.shape[0]), "units": int(lo.shape[1])}}
    # the mode the model ran in, and whether that mode dropped values (capture's meta["dropout"]);
    # None for a trace that did not record it
    training, dropout = trace.meta.get("training"), trace.meta.get("dropout")
    index = {"steps": trace.steps, "length": int(trace.lengths[batch]), "layers": layers,
             "inputs": inputs, "predictions": predictions, "lod": lod,
             "training": None if training is None else bool(training),
             "dropout": None if dropout is None else bool(dropout), "first_step": first_step(trace)}
    return index, packer.bytes()


def first_step(trace: Trace) -> int:
    """The model's step number of the trace's step 0: where a window of steps starts
    (``rw.trace(steps=...)``, recorded in ``meta["selection"]["steps"]``), so the time axis is
    labelled with the model's own steps; else 0."""
    window = (trace.meta.get("selection") or {}).get("steps")
    return int(window[0]) if window else 0


def shared_first_step(traces) -> int:
    """The model's number of step 0 for traces drawn on one time axis (compared, overlaid): their
    window's first step when they all hold a window starting there; else 0 (counted from 0)."""
    starts = {first_step(trace) for trace in traces}
    return starts.pop() if len(starts) == 1 else 0


def window_payload(trace: Trace, batch: int, window: tuple, scales: dict) -> bytes:
    """The per-step arrays of steps [t0, t0 + held): laid out as the start of ``build_payload``'s buffer."""
    validate_batch(trace, batch)
    packer = _Packer()
    _step_arrays(trace, batch, scales, packer, window)
    return packer.bytes()


def step_message(t: int) -> dict:
    return {"type": STEP, "t": int(t)}


def window_message(t0: int, held: int) -> dict:
    """The content of a window reply; its one buffer is ``window_payload``'s."""
    return {"type": WINDOW, "t0": int(t0), "held": int(held)}


# ---- level of detail for long sequences ---------------------------------------------------
FULL_BUDGET = 8_000_000  # float32 values of one element sent whole (32 MB); above: windows + overview
WINDOW_BUDGET = 2_000_000  # float32 values of one window of every layer's arrays (8 MB)
OVERVIEW_COLUMNS = 1024  # columns of the overview: about a heatmap's width in pixels


def floats_per_step(trace: Trace) -> int:
    """Float32 values per step of one element: every layer's quantities, plus numeric inputs."""
    n = sum(array.shape[2] for lt in trace.layers.values() for array in lt.quantities().values())
    if trace.tokens is None and trace.inputs is not None:
        n += trace.inputs.shape[2]
    return n


def window_steps(trace: Trace, budget: Optional[int] = None) -> int:
    """How many steps one window holds within the budget (WINDOW_BUDGET unless given)."""
    budget = WINDOW_BUDGET if budget is None else budget
    return max(1, min(trace.steps, budget // max(1, floats_per_step(trace))))


def window_at(trace: Trace, start: int, held: int) -> tuple[int, int]:
    """The window of ``held`` steps starting near ``start``, kept inside the sequence."""
    return max(0, min(int(start), trace.steps - held)), held


# ---- rw.compare: two runs of one batch element ---------------------------------------------
def _predictions(trace: Trace, batch: int, labels: Labels, packer: _Packer) -> Optional[dict]:
    """A run's top predictions over its valid steps, or None when its outputs are not a head's."""
    if trace.outputs is None or not is_output_head(trace):
        return None
    scores = trace.outputs[batch, :max(1, min(int(trace.lengths[batch]), trace.outputs.shape[1]))]
    ids, probs, names = top_predictions(scores, labels)
    return {"k": int(ids.shape[1]), "steps": int(ids.shape[0]), "ids": packer.put(ids, "ids", {})["offset"],
            "probs": packer.put(probs, "probs", {})["offset"], "labels": names}


def compare_floats(comparison, layer: str) -> int:
    """Float32 values one layer of a comparison sends: A, B and A - B of each quantity."""
    steps = max(comparison.lengths(layer))
    return sum(3 * steps * comparison.runs(layer, q)[0].shape[1] for q in comparison.quantities(layer))


def compare_payload(comparison, labels: Labels = None, layers: Optional[Sequence[str]] = None) -> tuple[dict, bytes]:
    """The JSON index and float32 bytes of a ``rnnwidgets.comparison.Comparison`` (js/src/compare.ts).

    Per common layer: its aligned time axis (``steps``: the longer run's valid steps; ``lengths``:
    A's and B's), each run's tokens (None: none), and per quantity the offsets of A, B and A - B,
    each (steps, units) C-order, A and B zero past their run's end and A - B zero past the shorter
    (the browser greys and hatches those steps). A and B share one colour scale (over both runs),
    so equal values look equal; A - B is diverging over ±its largest magnitude (``dmax``).
    ``predictions``: A's and B's top predictions (None without an output head). ``layers``: the
    layers sent (all by default); ``all_layers`` names every layer the comparison has.
    """
    packer = _Packer()
    sent = []
    for name in comparison.layers if layers is None else layers:
        la, lb = comparison.lengths(name)
        steps, matched = max(la, lb), min(la, lb)
        quantities = []
        for q in comparison.quantities(name):
            a, b = comparison.runs(name, q)
            diff = comparison.difference(name, q)[:matched]  # (matched, units); NaN where a run blew up
            scale = colour_scale(q, np.concatenate([a, b]))
            entry = {"name": q, "units": int(a.shape[1]), **scale}
            for key, run in (("a", a), ("b", b), ("diff", diff)):
                padded = np.zeros((steps, a.shape[1]), dtype=np.float32)
                padded[:len(run)] = run
                entry[key] = packer.put(padded, f"{q} {key}", {})["offset"]
            entry["dmax"] = max_abs(diff) or 1.0
            quantities.append(entry)
        tokens = []
        for trace, length in ((comparison.a, la), (comparison.b, lb)):
            own = trace.layer_tokens(name)
            tokens.append(None if own is None else [str(s) for s in own[comparison.batch][:length]])
        lt = comparison.a.layers[name]
        sent.append({"name": name, "kind": lt.kind, "reverse": lt.reverse, "recurrence": recurrence(lt),
                       "steps": steps, "lengths": [la, lb], "tokens": tokens, "quantities": quantities})
    predictions = [_predictions(trace, comparison.batch, labels, packer) for trace in (comparison.a, comparison.b)]
    # both runs a window of the same steps (rw.trace(steps=...)): numbered from its start; else from 0
    index = {"names": list(comparison.names), "layers": sent, "all_layers": list(comparison.layers),
             "predictions": predictions, "first_step": shared_first_step((comparison.a, comparison.b))}
    return index, packer.bytes()
