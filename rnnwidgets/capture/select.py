"""What a trace keeps: ``rw.trace(..., quantities=, layers=, steps=)`` asks for a subset of the
quantities, the layers or the steps, so that less is computed and less comes back to host memory.

``parse`` checks the user's values once, before the model runs; ``Selection`` answers what a
capture path needs to know (is this layer wanted, does it need its gates), and ``apply`` cuts
a whole Trace down to the selection (the paths that capture everything first). The fused path
(fused_trace.py) asks the Selection as it goes so that unselected layers, gates and steps are
neither computed where that can be avoided nor copied. Each cut layer records the window of
steps it holds in ``meta["steps"]``; the Trace records the selection in ``meta["selection"]``.

Rules: ``quantities`` names states ("h", "c") and gates (kinds.GATES); a layer keeps the
states and gates named, the gradients of the states it keeps (``grads["m"]``, a projected
LSTM's gradient before its projection, goes with "h") and the initial states of those states;
tracks (``rw.record``, submodule outputs) are kept as they are. ``layers`` names layers as
``Trace.layers`` does ("lstm.l0", "lstm.l0.reverse", "dec.l0@1"), or a module holding them
("lstm", "encoder"): a layer name selects that layer and its later calls ("lstm.l0" is the
forward direction only), a module path every layer of the modules under it. ``steps``: a slice
or range of consecutive steps from 0 on, cut from each layer's own time axis; the Trace's
``lengths``, tokens, outputs and inputs are cut alike (outputs or inputs that end
before the window are left out), and each layer's ``initial`` becomes the
state fed into the window's first step in the order the layer runs (its state at step start - 1
forward; at step stop reversed, for an element longer than the window).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..kinds import GATES, STATES
from ..timeaxis import step_window
from ..tracedata import LayerTrace, Trace

KNOWN = tuple(dict.fromkeys([*(s for states in STATES.values() for s in states),
                             *(g for gates in GATES.values() for g in gates)]))
_LAYER_SUFFIX = re.compile(r"\.l\d+(\.reverse)?$")


@dataclass(frozen=True)
class Selection:
    """``quantities``: names kept (None: all); ``layers``: the user's keys (None: all);
    ``start``/``stop``: the window of steps (stop None: to each layer's end)."""

    caller: str
    quantities: Optional[frozenset] = None
    layers: Optional[tuple] = None
    start: int = 0
    stop: Optional[int] = None

    @property
    def cuts_steps(self) -> bool:
        return self.start != 0 or self.stop is not None

    def keeps(self, quantity: str) -> bool:
        """Whether a state, gate or gradient of that name is kept ("m" goes with "h")."""
        if self.quantities is None:
            return True
        return quantity in self.quantities or (quantity == "m" and "h" in self.quantities)

    def needs_gates(self, kind: str) -> bool:
        """Whether a layer of ``kind`` ("lstm", "gru", "rnn") needs its gates computed: one of them is
        asked for, or an LSTM's c (which the scan over its gates gives)."""
        return self.keeps_gates(kind) or (kind == "lstm" and "c" in (self.quantities or ()))

    def keeps_gates(self, kind: str) -> bool:
        """Whether a layer of ``kind`` keeps one of its gates (where its kernel gives c without them)."""
        return self.quantities is None or bool(self.quantities & set(GATES.get(kind, ())))

    def may_keep(self, name: str) -> bool:
        """Whether a layer of that base name (no "@<call>") or one of its later calls can be kept:
        a capture path may skip the layers this says no to before computing them."""
        if self.layers is None:
            return True
        return any(selects(key.partition("@")[0], name) for key in self.layers)

    def layer_names(self, names) -> list:
        """Of ``names`` (a Trace's layers, in order), the selected ones; a key that selects none is
        refused, listing the layer names."""
        names = list(names)
        if self.layers is None:
            return names
        for key in self.layers:
            if not any(selects(key, name) for name in names):
                raise ValueError(f"{self.caller}: layers: expected names of layers or of modules holding them, "
                                 f"among {names}, got {key!r}")
        return [name for name in names if any(selects(key, name) for key in self.layers)]

    def window(self, steps: int) -> tuple:
        """(start, stop) of a layer of ``steps`` steps."""
        return self.start, steps if self.stop is None else min(self.stop, steps)

    def check_window(self, name: str, steps: int) -> tuple:
        """``window``, refused when it leaves the layer no step."""
        start, stop = self.window(steps)
        if start >= stop:
            raise ValueError(f"{self.caller}: steps: the window starts at step {start}, past the end of {name!r}, "
                             f"which runs {steps} steps (0–{steps - 1}); expected a start below {steps}, or "
                             f"layers= leaving {name!r} out")
        return start, stop

    def describe(self) -> dict:
        """What ``meta["selection"]`` records (JSON)."""
        return {"quantities": sorted(self.quantities) if self.quantities is not None else None,
                "layers": list(self.layers) if self.layers is not None else None,
                "steps": [self.start, self.stop]}


def selects(key: str, name: str) -> bool:
    """Whether the user's key selects layer ``name``: the layer itself (and its later calls
    "<name>@<k>", unless the key names a call), or a module path holding it."""
    if key == name:
        return True
    base = name.partition("@")[0]
    if "@" not in key and key == base:
        return True
    module = _LAYER_SUFFIX.sub("", base)
    return module == key or module.startswith(key + ".")


def parse(caller: str, quantities=None, layers=None, steps=None) -> Optional[Selection]:
    """The user's selection checked, or None when it keeps everything."""
    if quantities is None and layers is None and steps is None:
        return None
    names = None
    if quantities is not None:
        names = _names(caller, "quantities", quantities, "state or gate names")
        unknown = [q for q in names if q not in KNOWN]
        if unknown:
            raise ValueError(f"{caller}: quantities: expected names among {list(KNOWN)}, got {unknown[0]!r}")
    keys = _names(caller, "layers", layers, "layer or module names") if layers is not None else None
    start, stop = step_window(caller, steps) if steps is not None else (0, None)
    return Selection(caller, frozenset(names) if names is not None else None,
                     tuple(keys) if keys is not None else None, start, stop)


def _names(caller: str, what: str, value, expected: str) -> list:
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)) or not value \
            or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{caller}: {what}: expected a non-empty list or tuple of {expected} (or None for all), "
                        f"got {value!r}")
    return list(dict.fromkeys(value))


# ---- cutting numpy arrays ---------------------------------------------------------------------
def window_lengths(lengths, start: int, stop: int) -> np.ndarray:
    """Valid steps of each element inside [start, stop)."""
    return np.clip(np.asarray(lengths, dtype=np.int64) - start, 0, stop - start)


def window_initial(state, first, reverse: bool, lengths, start: int, stop: int):
    """The state fed into a window's first step, in the order the layer runs, from ``state``
    (batch, time, units) over the whole sequence and ``first`` (batch, units), the state fed into
    the whole sequence; numpy arrays or torch tensors alike (``lengths`` of the same kind)."""
    if not reverse:
        return first if start == 0 else state[:, start - 1]
    if stop >= state.shape[1]:
        return first
    later = lengths > stop     # elements whose reverse run enters the window from step stop
    out = first.clone() if hasattr(first, "clone") else first.copy()
    out[later] = state[:, stop][later]
    return out


def cut(array: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Steps [start, stop) of a (batch, time, ·) array, in memory of their own (never a view that
    would keep the whole array alive)."""
    return np.array(array[:, start:stop], copy=True)


def cut_parts(groups: dict, reverse: bool, lengths, start: int, stop: int) -> tuple:
    """(groups, lengths) of a layer cut to steps [start, stop): ``groups`` its "states", "gates",
    "grads", "tracks" (those present; numpy (batch, time, ·)) and "initial", ``lengths`` its valid
    steps over the whole sequence (None: all)."""
    steps = next(a.shape[1] for g in ("states", "gates", "grads", "tracks") for a in groups.get(g, {}).values())
    batch = next(a.shape[0] for g in ("states", "gates", "grads", "tracks") for a in groups.get(g, {}).values())
    full = np.full(batch, steps) if lengths is None else np.asarray(lengths)
    out = {group: {k: cut(v, start, stop) for k, v in arrays.items()} for group, arrays in groups.items()
           if group != "initial"}
    out["initial"] = {k: window_initial(groups["states"][k], v, reverse, full, start, stop)
                      for k, v in groups.get("initial", {}).items()}
    return out, window_lengths(lengths, start, stop) if lengths is not None else None


def apply(trace: Trace, selection: Optional[Selection]) -> Trace:
    """``trace`` cut down to ``selection`` (None: as it is): a new Trace of its own arrays (for
    the capture paths that capture every layer first)."""
    if selection is None:
        return trace
    names = selection.layer_names(trace.layers)
    layers = {}
    for name in names:
        lt = trace.layers[name]
        keep = {group: {k: v for k, v in getattr(lt, group).items() if selection.keeps(k) or
                        (group == "grads" and k in lt.tracks)}    # a track's gradient stays with it
                for group in ("states", "gates", "grads", "initial")}
        keep["tracks"] = dict(lt.tracks)
        check_not_empty(selection, lt.name, lt.kind, keep, lt.tracks)
        meta, lengths, tokens = dict(lt.meta), lt.lengths, lt.tokens
        if selection.cuts_steps:
            start, stop = selection.check_window(name, lt.steps)
            keep, _ = cut_parts(keep, lt.reverse, trace.layer_lengths(name), start, stop)
            lengths = window_lengths(lt.lengths, start, stop) if lt.lengths is not None else None
            tokens = [seq[start:stop] for seq in lt.tokens] if lt.tokens is not None else None
            meta["steps"] = [start, stop]
        layers[name] = LayerTrace(name, lt.kind, meta=meta, lengths=lengths, tokens=tokens, **keep)
    lengths, outputs, inputs, tokens = trace.lengths, trace.outputs, trace.inputs, trace.tokens
    if selection.cuts_steps:
        window = selection.window(max(trace.layers[name].steps for name in names))
        lengths = window_lengths(lengths, *window)
        outputs, inputs = (cut(a, *window) if a is not None and a.shape[1] > window[0] else None
                           for a in (outputs, inputs))
        tokens = [seq[window[0]:window[1]] for seq in tokens] if tokens is not None else None
    meta = dict(trace.meta, selection=selection.describe())
    return Trace(layers=layers, lengths=lengths, outputs=outputs, inputs=inputs, tokens=tokens,
                 param_grads=trace.param_grads, meta=meta, batch=trace.batch)


def check_not_empty(selection: Selection, name: str, kind: str, kept: dict, tracks) -> None:
    """A layer the quantities leave without any array is refused, naming what it has."""
    if tracks or any(kept[group] for group in ("states", "gates")):
        return
    asked = sorted(selection.quantities or ())
    raise ValueError(f"{selection.caller}: quantities {asked} leave layer {name!r} ({kind}) with nothing; expected "
                     "at least one of its states or gates, or layers= leaving it out")
