"""What if, from the Explorer: clamp a unit over a range of steps (to 0 or a value) or patch it from
another batch element or from another run (a Trace given as ``patch_from``), re-run the live model
with that edit, and open the comparison of before and after (``Compare``) beside the Explorer's
view (under it where the cell is narrow: js/src/what_if.ts's layout), headed by the edit.

    ex = rw.explore(model, inputs, patch_from={"deep": rw.trace(model, deep_inputs)})
    ex.what_if.run(unit=3, steps=range(10, 20), value=0.0)      # clamp; the browser's box asks the same
    ex.what_if.run(unit=3, steps=range(0, 30), source="deep")   # patch from a Trace, step t from its step t
    ex.what_if.run(unit=3, steps=range(0, 30), source=1)        # patch from batch element 1
    ex.what_if.close()                                          # or the comparison's × in the browser

A comparison describes the Explorer's trace when it ran: a new one (``ex.update(...)``,
``ex.set_trace(...)``) closes it.

The model runs through ``capture/live.py`` (``LiveModel.edited``); this module imports no torch.
"""
from __future__ import annotations

from typing import Optional, Union

import numpy as np

from ..tracedata import LayerTrace, Trace
from .compare import Compare
from .explorer import Explorer
from .payload import first_step, is_output_head

# classes the layout rules of js/src/what_if.ts (WHAT_IF_CSS) read: the Explorer's view, and the
# comparison beside it
MAIN, PANEL = "rw-whatif-main", "rw-whatif-panel"


def element_trace(trace: Trace, layer: str, quantity: str, batch: int) -> Trace:
    """The values of one batch element's ``layer`` ``quantity``, as a one-element Trace: a patch
    source that every element of another run takes its values from."""
    lt = trace.layers[layer]
    values = lt.quantities()[quantity][batch:batch + 1]
    # A window of steps (rw.trace(steps=...)) holds the model's steps from its first: a patch reads
    # step t (the model's number) at index t, so the steps before the window are put back, as NaN
    # (never read: the box edits only steps it shows).
    first = first_step(trace)
    if first:
        values = np.concatenate([np.full((1, first, values.shape[2]), np.nan, values.dtype), values], axis=1)
    state = quantity in lt.states
    one = LayerTrace(name=lt.name, kind=lt.kind, states={quantity: values} if state else {},
                     gates={} if state else {quantity: values})
    return Trace(layers={layer: one}, lengths=trace.layer_lengths(layer)[batch:batch + 1] + first)


def check_sources(trace: Trace, patch_from) -> dict:
    """``patch_from`` (None, or a dict name -> Trace of the same model) as a dict, each Trace checked
    against the Explorer's ``trace``: every layer with the same quantities, as many units each, and
    batch 1 (used for every element) or the Explorer's. Steps may differ: they align by index."""
    if patch_from is None:
        return {}
    if not isinstance(patch_from, dict):
        raise TypeError("explore: patch_from: expected a dict of name -> rw.Trace (runs of this model to patch "
                        f"from), got {type(patch_from).__name__}")
    sources = {}
    for name, source in patch_from.items():
        where = f"explore: patch_from[{name!r}]"
        if not isinstance(name, str) or not name:
            raise TypeError(f"explore: patch_from: expected names that are non-empty strings, got {name!r}")
        if not isinstance(source, Trace):
            raise TypeError(f"{where}: expected an rw.Trace of this model, got {type(source).__name__}")
        for layer, lt in trace.layers.items():
            if layer not in source.layers:
                raise ValueError(f"{where}: expected a Trace of this model with layer {layer!r}; it has "
                                 f"{list(source.layers)}")
            theirs = source.layers[layer].quantities()
            for quantity, values in lt.quantities().items():
                units = values.shape[2]
                if quantity not in theirs or theirs[quantity].shape[2] != units:
                    got = "none" if quantity not in theirs else theirs[quantity].shape[2]
                    raise ValueError(f"{where}: expected {units} units of {layer!r} {quantity!r} like this "
                                     f"model's, got {got}")
        if source.batch not in (1, trace.batch):
            raise ValueError(f"{where}: expected batch 1 (used for every element) or {trace.batch} like the "
                             f"Explorer's inputs, got batch {source.batch}")
        sources[name] = source
    return sources


def changed_predictions(before: Trace, after: Trace, batch: int) -> Optional[tuple[int, int, Optional[int]]]:
    """(steps whose best prediction differs, steps compared, the first of them or None) for batch
    element ``batch``; None when the outputs are not a head's scores."""
    if not (is_output_head(before) and is_output_head(after)):
        return None
    assert before.outputs is not None and after.outputs is not None   # a head's scores
    steps = min(int(before.lengths[batch]), int(after.lengths[batch]), before.outputs.shape[1],
                after.outputs.shape[1])
    differs = before.outputs[batch, :steps].argmax(-1) != after.outputs[batch, :steps].argmax(-1)
    where = np.flatnonzero(differs)
    return int(differs.sum()), steps, int(where[0]) if where.size else None


class WhatIf:
    """The Explorer's what-if: ``run`` re-runs its live model on ``inputs`` with one edit and shows
    the comparison beside the view; the browser's box calls it through the view's ``what_if``
    trait and lists the patch sources (this batch's elements, then ``sources`` by name)."""

    def __init__(self, explorer: Explorer, inputs, patch_from: Optional[dict] = None):
        if explorer.live is None:
            raise ValueError("what if needs the live model: build the Explorer with rw.explore(model, inputs)")
        self.explorer, self.inputs = explorer, inputs
        self.sources = check_sources(explorer.trace, patch_from)
        self.comparison: Optional[Compare] = None
        explorer.view.add_class(MAIN)
        self._say(0, "")
        explorer.view.observe(self._on_request, names="what_if")
        explorer.batch.observe(lambda _change: self._say(None, None), names="options")   # new inputs

    def _say(self, n: Optional[int], text: Optional[str]) -> None:
        """The box's status: the request answered, what happened, and the sources it lists."""
        old = self.explorer.view.what_if_status
        self.explorer.view.what_if_status = {
            "live": True, "n": old.get("n", 0) if n is None else n,
            "text": old.get("text", "") if text is None else text,
            "elements": int(self.explorer.trace.batch or 1), "traces": list(self.sources)}

    def run(self, unit: int, steps, *, value: Optional[float] = None, source: Union[int, str, Trace, None] = None,
            layer: Optional[str] = None, quantity: Optional[str] = None) -> Compare:
        """Clamp ``unit`` of the shown layer and quantity (or those given) at ``steps`` to ``value``
        (0 when neither it nor ``source`` is given), or patch it from ``source``: a batch element
        (int), a Trace named in ``sources`` (str), or a Trace; show beside the view and return the
        comparison of the Explorer's run (A) and the edited one (B). ``steps``: as the model numbers
        them (``rw.clamp``'s), so in a window of steps (``rw.explore(..., steps=slice(120, 180))``)
        they run from 120, as the view shows them and the browser's box asks for them."""
        ex = self.explorer
        layer, quantity = layer or ex.view.layer, quantity or ex.view.quantity
        steps = [steps] if isinstance(steps, (int, np.integer)) else list(steps)
        patch_from, said = self._source(source, layer, quantity)
        if patch_from is None and value is None:
            value = 0.0
        after = ex.live.edited(self.inputs, layer, quantity, [unit], steps, value=value, source=patch_from,
                               tokens=ex.trace.tokens)
        edit = f"clamped to {value:g}" if patch_from is None else f"patched from {said}"
        batch = ex.batch.value or 0
        heading = f"What if unit {unit} of {layer} {quantity} were {edit} at steps {_steps(steps)}"
        changed = changed_predictions(ex.trace, after, batch)
        t = ex.view.t
        if changed is not None:
            count, compared, first = changed
            heading += f": the best prediction changes at {count} of {compared} steps"
            # (steps as the model numbers them: a window of steps starts at its first)
            heading += f", first at step {first + first_step(ex.trace)}" if first is not None else ""
            t = first if first is not None else t
        comparison = Compare(ex.trace, after, names=("before", f"unit {unit} {edit}"), decode=ex.labels,
                             batch=batch, layer=layer, quantity=quantity, t=t, heading=heading, closable=True)
        comparison.add_class(PANEL)
        comparison.observe(lambda change: self.close(comparison) if change["new"] else None, names="closed")
        old, self.comparison = self.comparison, comparison
        kept = [c for c in ex.children if c is not old]
        at = kept.index(ex.view) + 1
        ex.children = (*kept[:at], comparison, *kept[at:])
        return comparison

    def close(self, comparison: Optional[Compare] = None) -> None:
        """Take the comparison (the one shown, or ``comparison`` if it is that one) away from beside the view."""
        shown = self.comparison
        if shown is None or (comparison is not None and comparison is not shown):
            return
        self.comparison = None
        self.explorer.children = tuple(c for c in self.explorer.children if c is not shown)

    def new_trace(self) -> None:
        """The Explorer shows another trace (new inputs, ``update``): a comparison shown described
        the one before, so it closes, and the box says why."""
        if self.comparison is not None:
            self.close()
            self._say(None, "the comparison closed: the Explorer shows new data")

    def _source(self, source, layer: str, quantity: str) -> tuple[Optional[Trace], str]:
        """The Trace to patch from and how the heading names it (None: a clamp)."""
        if source is None:
            return None, ""
        if isinstance(source, Trace):
            return source, "another run"
        if isinstance(source, str):
            if source not in self.sources:
                raise ValueError(f"patch from: expected a batch element or one of the traces given as patch_from "
                                 f"({list(self.sources)}), got {source!r}")
            return self.sources[source], repr(source)
        batch = self.explorer.trace.layers[layer].batch or 1
        if isinstance(source, bool) or not isinstance(source, (int, np.integer)) or not 0 <= source < batch:
            raise ValueError(f"patch from element: expected an element of this batch, 0 to {batch - 1}, got {source}")
        return element_trace(self.explorer.trace, layer, quantity, int(source)), f"element {source}"

    def _on_request(self, change) -> None:
        request = change["new"] or {}
        if "n" not in request:
            return
        try:
            start, end, unit = int(request["start"]), int(request["end"]), int(request["unit"])
            op = request.get("op", "zero")
            source = request.get("source", 0)
            self.run(unit, range(start, end), value=float(request["value"]) if op == "value" else None,
                     source=(source if isinstance(source, str) else int(source)) if op == "patch" else None)
            layer, quantity = self.explorer.view.layer, self.explorer.view.quantity
            text = f"unit {unit} of {layer} {quantity}, steps [{start}, {end}): before and after compared"
        except Exception as error:  # noqa: BLE001 - said in the box, one sentence
            text = f"could not re-run: {type(error).__name__}: {error}"
        self._say(request["n"], text)


def _steps(steps) -> str:
    """Steps as the box writes them: a half-open range [start, end) where they run on, else listed."""
    listed = [int(s) for s in steps]
    if listed and listed == list(range(listed[0], listed[-1] + 1)):
        return f"[{listed[0]}, {listed[-1] + 1})"
    return str(listed)
