"""Edits inside the recurrence: ``rw.clamp`` and ``rw.patch``.

    tr = rw.trace(model, x, edits=[rw.clamp("lstm.l0", "c", units=[3], steps=range(10, 20), value=0.0)])
    tr = rw.trace(model, y, edits=[rw.patch(tr_x, "lstm.l0", "h", units=[3, 7], steps=range(30))])

An edit names a layer as a Trace names it ("<module path>.l<k>", ".reverse" for a backward
direction; "<name>@<k>" for call k alone of a module called several times in one forward, "@0"
its first, its steps counted from that call's first, where the plain name counts steps over all
the calls in the order they ran, as a Trace joins them), a quantity of it (a state "h", "c",
or a gate: kinds.py's names), units and steps
(the Trace's time axis, natural order for a reverse direction too; ``None``: every step), and
optionally batch elements. It sets those values where the recurrence computes them, before
anything uses them (capture/edited.py): the state update of that step (a gate), the next step,
the next layer and the model's output. Edits are checked here for their own shape and, once
the model runs, against the layer they name (``LayerEdits``); several edits apply in the order
given, a later one winning where they overlap.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ..kinds import GATES, STATES, gates_of, states_of
from ..tracedata import Trace

# every quantity an edit may name: the states and the gates of every kind (kinds.py)
QUANTITIES = tuple(dict.fromkeys([*(s for states in STATES.values() for s in states),
                                  *(g for gates in GATES.values() for g in gates)]))


@dataclass(frozen=True, eq=False)   # a patch holds a Trace, whose arrays compare elementwise
class Edit:
    """One clamp or patch (``clamp``, ``patch``); ``value`` for a clamp, ``source`` for a patch."""

    op: str                          # "clamp" | "patch"
    layer: str
    quantity: str
    units: tuple
    steps: Optional[tuple]           # None: every step
    batch: Optional[tuple]           # None: every batch element
    value: Optional[tuple] = None    # a clamp's value, one per unit (or one for all)
    source: Optional[Trace] = None   # a patch's Trace

    def describe(self) -> dict:
        """The edit as plain data, as a Trace's ``meta["edits"]`` keeps it (a patch's source by its
        layers and shape, not its arrays)."""
        found = {"op": self.op, "layer": self.layer, "quantity": self.quantity, "units": list(self.units),
                 "steps": None if self.steps is None else list(self.steps),
                 "batch": None if self.batch is None else list(self.batch)}
        if self.value is not None:
            found["value"] = list(self.value)
        if self.source is not None:
            found["source"] = repr(self.source)
        return found

    def __repr__(self):
        what = f"value={list(self.value)}" if self.value is not None else f"source={self.source!r}"
        steps = "every step" if self.steps is None else f"steps={_short(self.steps)}"
        return f"rw.{self.op}({self.layer!r}, {self.quantity!r}, units={_short(self.units)}, {steps}, {what})"


def _short(values: tuple) -> str:
    if len(values) > 2 and list(values) == list(range(values[0], values[-1] + 1)):
        return f"range({values[0]}, {values[-1] + 1})"
    return str(list(values))


def _indices(who: str, what: str, given, allow_none: bool = False) -> Optional[tuple]:
    """Whole numbers >= 0 (one, or a list/range/array of them, or a slice with its stop, as
    ``steps=`` takes a window elsewhere) as a tuple in the order given, repeats dropped, or a
    clear error."""
    if given is None and allow_none:
        return None
    if isinstance(given, slice):
        given = _slice_range(who, what, given)
    try:
        found = np.asarray([given] if isinstance(given, numbers.Integral) else list(given))
    except TypeError:
        found = None
    if (isinstance(given, bool) or found is None or found.ndim != 1 or not found.size
            or not np.issubdtype(found.dtype, np.integer) or (found < 0).any()):
        none = " or None (all)" if allow_none else ""
        raise ValueError(f"{who}: {what}: expected whole numbers >= 0 (an int, a list, a range or a slice){none}, "
                         f"got {given!r}")
    return tuple(dict.fromkeys(int(v) for v in found))


def _slice_range(who: str, what: str, given: slice) -> range:
    """``slice(start, stop[, step])`` as the range it stands for: its stop is needed (an edit is
    made before the sequence it applies to is known), and no bound may count from the end."""
    parts = (given.start, given.stop, given.step)
    whole = all(v is None or (isinstance(v, numbers.Integral) and not isinstance(v, bool)) for v in parts)
    if not whole or given.stop is None or min(v for v in parts if v is not None) < 0 or given.step == 0:
        raise ValueError(f"{who}: {what}: expected a slice of whole numbers >= 0 with its stop "
                         f"(slice(5, 20) for steps 5 to 19; None for every step), got {given!r}")
    return range(given.start or 0, given.stop, given.step or 1)


def _check_common(who: str, layer, quantity) -> None:
    if not isinstance(layer, str) or not layer:
        raise TypeError(f"{who}: layer: expected a layer name as a Trace names it (\"lstm.l0\"), got {layer!r}")
    if quantity not in QUANTITIES:
        raise ValueError(f"{who}: quantity: expected one of {list(QUANTITIES)}, got {quantity!r}")


def clamp(layer: str, quantity: str, units, steps, value, batch=None) -> Edit:
    """Set ``quantity`` (a state "h"/"c" or a gate) of ``units`` of ``layer`` to ``value`` (a number,
    or one per unit) at ``steps`` (None: every step), for every batch element or those in ``batch``."""
    who = "rw.clamp"
    _check_common(who, layer, quantity)
    units_ = _indices(who, "units", units)
    assert units_ is not None
    values = np.asarray(value, dtype=np.float64).reshape(-1) if not isinstance(value, bool) else np.array([])
    if values.size not in (1, len(units_)) or not np.isfinite(values).all():
        raise ValueError(f"{who}: value: expected a finite number or one per unit ({len(units_)}), got {value!r}")
    return Edit("clamp", layer, quantity, units_, _indices(who, "steps", steps, allow_none=True),
                _indices(who, "batch", batch, allow_none=True), value=tuple(float(v) for v in values))


def patch(source: Trace, layer: str, quantity: str, units, steps, batch=None) -> Edit:
    """Set ``quantity`` of ``units`` of ``layer`` at ``steps`` to the values ``source`` (a Trace of a
    model of the same shape) holds there, step t from its step t."""
    who = "rw.patch"
    if not isinstance(source, Trace):
        raise TypeError(f"{who}: source: expected an rw.Trace to take the values from, got {type(source).__name__}")
    _check_common(who, layer, quantity)
    if source_layer(layer) not in source.layers:
        raise ValueError(f"{who}: layer: expected a layer of the source trace, one of {list(source.layers)}, "
                         f"got {layer!r}")
    lt = source.layers[source_layer(layer)]
    if quantity not in lt.quantities():
        raise ValueError(f"{who}: quantity: the source's {layer!r} holds {list(lt.quantities())}, got {quantity!r}")
    units_ = _indices(who, "units", units)
    assert units_ is not None
    width = lt.quantities()[quantity].shape[2]
    if max(units_) >= width:
        raise ValueError(f"{who}: units: expected units in [0, {width}) of the source's {layer!r} {quantity!r}, "
                         f"got {max(units_)}")
    steps_ = _indices(who, "steps", steps, allow_none=True)
    if steps_ is not None and max(steps_) >= lt.steps:
        raise ValueError(f"{who}: steps: expected steps in [0, {lt.steps}) of the source's {layer!r}, got "
                         f"{max(steps_)}")
    return Edit("patch", layer, quantity, units_, steps_, _indices(who, "batch", batch, allow_none=True),
                source=source)


def source_layer(layer: str) -> str:
    """The layer a patch of ``layer`` reads in its source: a module's first call, "<name>@0", is
    the one a Trace names "<name>"."""
    return layer[:-2] if layer.endswith("@0") else layer


def check_edits(who: str, edits) -> list:
    """``edits`` as a list of Edits (None: none), or a clear error."""
    if edits is None:
        return []
    if isinstance(edits, Edit):
        edits = [edits]
    if not isinstance(edits, (list, tuple)) or not all(isinstance(e, Edit) for e in edits):
        raise TypeError(f"{who}: edits: expected a list of rw.clamp(...) / rw.patch(...), got {edits!r}")
    return list(edits)


class NoStepEdited(ValueError):
    """An edit naming only steps past its layer's end: ``edit``, and ``steps``, how many the layer ran."""

    def __init__(self, message: str, edit: Edit, steps: int):
        super().__init__(message)
        self.edit, self.steps = edit, steps


def check_all_found(who: str, edits: list, steps: dict) -> None:
    """A clear error for an edit naming a layer that never ran, or only steps past its end;
    ``steps``: layer name -> how many steps it ran."""
    for edit in edits:
        if edit.layer not in steps:
            if not steps:      # the run's layers are rw.record tracks (or none): nothing an edit acts inside
                raise ValueError(f"{who}: {edit!r} names no layer of this run; expected a layer of an nn.LSTM / "
                                 "GRU / RNN, a cell or a step module, and this run has none (a state recorded "
                                 "with rw.record is read, not edited)")
            raise ValueError(f"{who}: {edit!r} names no layer of this run; expected one of {list(steps)}")
        count = steps[edit.layer]
        if edit.steps is not None and min(edit.steps) >= count:
            raise NoStepEdited(f"{who}: {edit!r} names no step of {edit.layer!r}, which ran {count} steps; "
                               f"expected steps in [0, {count})", edit, count)


def describe(edits: list) -> list:
    """Every edit as plain data, for a Trace's ``meta["edits"]``."""
    return [edit.describe() for edit in edits]


class LayerEdits:
    """The edits of one layer, checked against it: ``kind`` (as kinds.py names it, "lstm", "gru",
    "rnn", or "custom" for states only), the width of each quantity, its batch, and where its
    tensors live. ``at(quantity, t)`` gives the (mask, values) of one step for all batch elements,
    (batch, units) each, or None when no edit touches it; ``t`` an int (every element at that
    step) or a (batch,) array of each element's step (a reverse direction over sequences of
    several lengths).

    ``call``, ``offset`` and ``count``: this is call ``call`` of the layer's module, its steps
    ``offset`` to ``offset + count`` of the layer's steps over all its calls (what ``t`` counts;
    ``count`` needed for a later call). Edits naming ``name`` count steps that way; edits naming
    ``"<name>@<call>"`` act on this call alone, counting its steps from 0 (a patch reading the
    source's layer of that name, "<name>" for call 0)."""

    def __init__(self, who: str, name: str, edits: list, kind: str, widths: dict, batch: int, like: torch.Tensor,
                 call: int = 0, offset: int = 0, count: Optional[int] = None):
        self.name, self.kind, self.widths, self.batch = name, kind, widths, batch
        self.dtype, self.device = like.dtype, like.device
        alone = f"{name}@{call}"
        self.edits = [e for e in edits if e.layer in (name, alone)]
        # where each edit's step 0 is on ``t``'s axis: 0, or ``offset`` for an edit of this call alone
        self._shift = {id(e): 0 if e.layer == name else offset for e in self.edits}
        for edit in self.edits:
            if edit.quantity not in widths:
                raise ValueError(f"{who}: {edit!r}: layer {name!r} ({kind}) has {list(widths)}, got {edit.quantity!r}")
            width = widths[edit.quantity]
            if max(edit.units) >= width:
                raise ValueError(f"{who}: {edit!r}: expected units in [0, {width}) of {name!r} {edit.quantity!r}, "
                                 f"got {max(edit.units)}")
            if edit.batch is not None and max(edit.batch) >= batch:
                raise ValueError(f"{who}: {edit!r}: expected batch elements in [0, {batch}), got {max(edit.batch)}")
            if edit.source is not None:
                lt = edit.source.layers[source_layer(edit.layer)]
                if lt.batch not in (1, batch):
                    raise ValueError(f"{who}: {edit!r}: the source has batch {lt.batch}; expected {batch} like this "
                                     "run, or 1 (used for every element)")
        self.quantities = {e.quantity for e in self.edits}
        self._steps: dict = {e.quantity: None for e in self.edits if e.steps is None and not self._shift[id(e)]}
        self._every = set(self._steps)
        for e in self.edits:
            if e.quantity in self._every:
                continue
            shift = self._shift[id(e)]
            if e.steps is None:   # every step of this call alone
                assert count is not None, "a later call's LayerEdits needs its count of steps"
                self._steps.setdefault(e.quantity, set()).update(range(offset, offset + count))
            else:
                self._steps.setdefault(e.quantity, set()).update(s + shift for s in e.steps)

    def __bool__(self):
        return bool(self.edits)

    def touches(self, quantity: str, t) -> bool:
        """Whether an edit of ``quantity`` may act at step ``t`` (an int) or any of the steps ``t``."""
        if quantity not in self._steps:
            return False
        steps = self._steps[quantity]
        if steps is None:
            return True
        if isinstance(t, numbers.Integral):
            return int(t) in steps
        return any(int(s) in steps for s in np.asarray(t).reshape(-1))

    def local_steps(self, offset: int, steps: int) -> list:
        """The steps in [0, ``steps``) of a call starting at step ``offset`` that an edit may act on, sorted."""
        if any(touched is None for touched in self._steps.values()):
            return list(range(steps))
        return sorted({t - offset for touched in self._steps.values() for t in touched if 0 <= t - offset < steps})

    def at(self, quantity: str, t, valid=None):
        """(mask, values), (batch, units) tensors for step ``t`` of every element, or None.
        ``valid`` (batch,) bool: elements that have a step ``t`` at all (others are left alone)."""
        if not self.touches(quantity, t):
            return None
        width = self.widths[quantity]
        steps = np.broadcast_to(np.asarray(t, dtype=np.int64), (self.batch,))
        mask = np.zeros((self.batch, width), dtype=bool)
        values = np.zeros((self.batch, width), dtype=np.float64)
        for e in self.edits:
            if e.quantity != quantity:
                continue
            shift = self._shift[id(e)]
            own = steps - shift      # the steps as this edit counts them
            rows = np.ones(self.batch, dtype=bool) if e.steps is None else np.isin(own, e.steps)
            if e.batch is not None:
                rows &= np.isin(np.arange(self.batch), e.batch)
            if valid is not None:
                rows &= np.asarray(valid, dtype=bool)
            if not rows.any():
                continue
            b = np.flatnonzero(rows)
            units = np.asarray(e.units)
            if e.value is not None:
                values[np.ix_(b, units)] = np.asarray(e.value)
            else:
                assert e.source is not None
                source = e.source.layers[source_layer(e.layer)].quantities()[quantity]   # (batch, time, units)
                if (own[b] >= source.shape[1]).any():
                    raise ValueError(f"{e!r}: the source has {source.shape[1]} steps; this run reached step "
                                     f"{int(own[b].max())}")
                rows_in = b if source.shape[0] > 1 else np.zeros_like(b)
                values[np.ix_(b, units)] = source[rows_in[:, None], own[b][:, None], units[None, :]]
            mask[np.ix_(b, units)] = True
        if not mask.any():
            return None
        return (torch.from_numpy(mask).to(self.device),
                torch.from_numpy(values).to(device=self.device, dtype=self.dtype))

    def apply(self, quantity: str, tensor: torch.Tensor, t, valid=None) -> torch.Tensor:
        """``tensor`` (batch, units) with the edits of ``quantity`` at step ``t`` (a new tensor where
        any applies; the same one otherwise)."""
        found = self.at(quantity, t, valid)
        if found is None:
            return tensor
        mask, values = found
        return torch.where(mask, values, tensor)

    def apply_steps(self, quantity: str, tensor: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """``tensor`` (time, batch, units), step s being step ``offset + s``, with the edits of
        ``quantity`` applied at every step they touch (a new tensor where any applies)."""
        if quantity not in self._steps:
            return tensor
        touched = self._steps[quantity]
        steps = range(len(tensor)) if touched is None else \
            sorted(s - offset for s in touched if 0 <= s - offset < len(tensor))
        out = tensor
        for s in steps:
            found = self.at(quantity, offset + s)
            if found is not None:
                if out is tensor:
                    out = tensor.clone()
                out[s] = torch.where(found[0], found[1], out[s])
        return out


def widths_of(kind: str, hidden: int, state: Optional[int] = None) -> dict:
    """The width of every quantity of a layer of ``kind`` ("lstm", "gru", "rnn"): gates and c as
    wide as ``hidden``, h as ``state`` (a projected LSTM's h) or ``hidden``."""
    widths = {q: hidden for q in (*states_of(kind), *gates_of(kind))}
    widths["h"] = state or hidden
    return widths
