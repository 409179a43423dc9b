"""What if, from the Explorer: clamp a unit over a range of steps (to 0 or a value) or patch it from
another batch element, re-run the live model with that edit, and open the comparison of before
and after (``Compare``) under the Explorer's view.

    ex = rw.explore(model, inputs)          # the browser's what-if box asks through ExplorerView.what_if
    ex.what_if.run(unit=3, steps=range(10, 20), value=0.0)

The model runs through ``capture/live.py`` (``LiveModel.edited``); this module imports no torch.
"""
from __future__ import annotations

from typing import Optional

from ..tracedata import LayerTrace, Trace
from .compare import Compare
from .explorer import Explorer


def element_trace(trace: Trace, layer: str, quantity: str, batch: int) -> Trace:
    """The values of one batch element's ``layer`` ``quantity``, as a one-element Trace: a patch
    source that every element of another run takes its values from."""
    lt = trace.layers[layer]
    values = lt.quantities()[quantity][batch:batch + 1]
    state = quantity in lt.states
    one = LayerTrace(name=lt.name, kind=lt.kind, states={quantity: values} if state else {},
                     gates={} if state else {quantity: values})
    return Trace(layers={layer: one}, lengths=trace.layer_lengths(layer)[batch:batch + 1])


class WhatIf:
    """The Explorer's what-if: ``run`` re-runs its live model on ``inputs`` with one edit and shows
    the comparison under the view; the browser's box calls it through the view's ``what_if`` trait."""

    def __init__(self, explorer: Explorer, inputs):
        if explorer.live is None:
            raise ValueError("what if needs the live model: build the Explorer with rw.explore(model, inputs)")
        self.explorer, self.inputs = explorer, inputs
        self.comparison: Optional[Compare] = None
        explorer.view.what_if_status = {"live": True, "n": 0, "text": ""}
        explorer.view.observe(self._on_request, names="what_if")

    def run(self, unit: int, steps, *, value: Optional[float] = None, source: Optional[int] = None,
            layer: Optional[str] = None, quantity: Optional[str] = None) -> Compare:
        """Clamp ``unit`` of the shown layer and quantity (or those given) at ``steps`` to ``value``
        (0 when neither it nor ``source`` is given), or patch it from batch element ``source``; show
        and return the comparison of the Explorer's run (A) and the edited one (B)."""
        ex = self.explorer
        layer, quantity = layer or ex.view.layer, quantity or ex.view.quantity
        batch = ex.trace.layers[layer].batch or 1
        if source is not None and not 0 <= source < batch:
            raise ValueError(f"patch from element: expected an element of this batch, 0 to {batch - 1}, got {source}")
        patch_from = None if source is None else element_trace(ex.trace, layer, quantity, source)
        if patch_from is None and value is None:
            value = 0.0
        after = ex.live.edited(self.inputs, layer, quantity, [unit], steps, value=value, source=patch_from,
                               tokens=ex.trace.tokens)
        edit = f"clamped to {value:g}" if patch_from is None else f"patched from element {source}"
        comparison = Compare(ex.trace, after, names=("before", f"unit {unit} {edit}"), decode=ex.labels,
                             batch=ex.batch.value or 0, layer=layer, quantity=quantity)
        old, self.comparison = self.comparison, comparison
        kept = [c for c in ex.children if c is not old]
        at = kept.index(ex.view) + 1
        ex.children = (*kept[:at], comparison, *kept[at:])
        return comparison

    def _on_request(self, change) -> None:
        request = change["new"] or {}
        if "n" not in request:
            return
        try:
            start, end, unit = int(request["start"]), int(request["end"]), int(request["unit"])
            op = request.get("op", "zero")
            self.run(unit, range(start, end), value=float(request["value"]) if op == "value" else None,
                     source=int(request["source"]) if op == "patch" else None)
            layer, quantity = self.explorer.view.layer, self.explorer.view.quantity
            text = f"unit {unit} of {layer} {quantity}, steps [{start}, {end}): before and after compared below"
        except Exception as error:  # noqa: BLE001 - said in the box, one sentence
            text = f"could not re-run: {type(error).__name__}: {error}"
        self.explorer.view.what_if_status = {"live": True, "n": request["n"], "text": text}
