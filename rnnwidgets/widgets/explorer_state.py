"""What an Explorer shows, apart from how it is laid out: the trace and its colour scales, how it
travels to the browser (whole, or by windows of steps plus an overview), the live model that
re-traces it, and the rules every selection follows — values set from the browser or from
Python are clamped into range or refused with a sentence saying what was expected, so an
unknown layer or quantity never reaches the display path.
"""
from __future__ import annotations

import math
from typing import Optional

from ..tracedata import Trace, last_forward_layer
from .payload import (
    FULL_BUDGET,
    Labels,
    build_payload,
    first_step,
    floats_per_step,
    is_output_head,
    label_of,
    trace_scales,
    window_at,
    window_message,
    window_payload,
    window_steps,
)


class ExplorerState:
    """The trace shown, its colour scales and windows, the live model and the labels.

    ``held``: steps per window when one batch element holds more than ``budget`` float32 values
    (the browser then gets a window around t plus an overview), else None (sent whole).
    ``live``: ``rnnwidgets.capture.live.LiveModel`` or None (a saved Trace: nothing to re-run).
    """

    def __init__(self, trace: Trace, *, live=None, labels: Labels = None, budget: int = FULL_BUDGET):
        self.live, self.labels, self.budget = live, labels, budget
        self.dataset = None  # a DatasetTrace (rw.trace_dataset) that Explorer.matches searches
        self.explained = None  # the inputs whose attributions the view draws (Explorer.show_attribution)
        self.attributions: dict = {}  # step -> (batch, time) attributions of self.explained
        self.set_trace(trace)

    def set_trace(self, trace: Trace) -> None:
        if not isinstance(trace, Trace):
            raise TypeError(f"Explorer expects an rnnwidgets.Trace, got {type(trace).__name__}; "
                            "use rw.explore(model, inputs) to trace a model")
        if trace is getattr(self, "trace", None):  # a Trace is not changed once built: its scales hold
            return
        self.trace = trace
        self.scales = trace_scales(trace)
        too_long = floats_per_step(trace) * trace.steps > self.budget
        self.held: Optional[int] = window_steps(trace) if too_long else None

    # ---- the rules a selection follows ---------------------------------------------------
    def layer_or_default(self, name: Optional[str]) -> str:
        """``name`` when the trace has that layer, else the one a model hands on (shown first)."""
        return name if name is not None and name in self.trace.layers else last_forward_layer(self.trace.layers)

    def quantities(self, layer: str) -> list:
        return list(self.trace.layers[self.layer_or_default(layer)].quantities())

    def shown_quantity(self, layer: str, quantity: Optional[str]) -> str:
        """``quantity`` when the layer has it, else the layer's first (as the browser shows it)."""
        names = self.quantities(layer)
        return quantity if quantity is not None and quantity in names else names[0]

    def units(self, layer: str, quantity: Optional[str]) -> int:
        """Units of the quantity shown: with proj_size an LSTM has more c units than h ones."""
        arrays = self.trace.layers[self.layer_or_default(layer)].quantities()
        return arrays[self.shown_quantity(layer, quantity)].shape[2]

    def check_layer(self, name: str) -> str:
        if name not in self.trace.layers:
            raise ValueError(f"layer: expected one of {list(self.trace.layers)}, got {name!r}")
        return name

    def check_quantity(self, layer: str, name: str) -> str:
        names = self.quantities(layer)
        if name not in names:
            shown = self.layer_or_default(layer)
            raise ValueError(f"quantity: expected one of {names} (layer {shown!r}), got {name!r}")
        return name

    def steps(self, layer: Optional[str]) -> int:
        """The steps of the layer's own time axis (an encoder's source, a decoder's target)."""
        return self.trace.layers[self.layer_or_default(layer)].steps

    def check_t(self, t: int, layer: Optional[str] = None) -> int:
        steps = self.steps(layer)
        if not 0 <= t < steps:
            shown = self.layer_or_default(layer)
            raise ValueError(f"t: expected 0 <= t < {steps}, got {t} (layer {shown!r} has {steps} steps)")
        return t

    def check_unit(self, layer: str, quantity: Optional[str], unit: int) -> int:
        units = self.units(layer, quantity)
        if not 0 <= unit < units:
            raise ValueError(f"unit: expected 0 <= unit < {units}, got {unit}")
        return unit

    def clamp_t(self, t: int, layer: Optional[str] = None) -> int:
        return max(0, min(int(t), self.steps(layer) - 1))

    def clamp_unit(self, layer: str, quantity: Optional[str], unit: int) -> int:
        return max(0, min(int(unit), self.units(layer, quantity) - 1))

    def check_brush(self, brush, layer: Optional[str] = None) -> list:
        """``[]`` (none) or ``[start, end)`` steps, clamped into the layer's steps; refused when empty."""
        brush = list(brush)
        if not brush:
            return brush
        if len(brush) != 2:
            raise ValueError(f"brush: expected [] or [start, end] steps, got {brush}")
        steps = self.steps(layer)
        start, end = (max(0, min(int(b), steps)) for b in brush)
        if not start < end:
            raise ValueError(f"brush: expected start < end within 0..{steps} steps, got {brush}")
        return [start, end]

    def fit_brush(self, brush, layer: Optional[str] = None) -> list:
        """A brush kept for a new trace or layer: clamped into its steps, or none when nothing is left."""
        try:
            return self.check_brush(brush, layer)
        except ValueError:
            return []

    @staticmethod
    def check_threshold(value: float) -> float:
        if not math.isfinite(value):
            raise ValueError(f"threshold: expected a finite number, got {value}")
        return value

    def units_within(self, layer: str, quantity: Optional[str], units) -> list:
        """Of ``units``, those the shown quantity has."""
        width = self.units(layer, quantity)
        return [int(u) for u in units if 0 <= int(u) < width]

    # ---- why a prediction ---------------------------------------------------------------------
    def explain(self, inputs) -> None:
        """Attribute the live model's predictions on ``inputs`` (the trace's run) from now on."""
        if self.live is None:
            raise ValueError("attribution needs the live model: build the Explorer with "
                             "rw.explore(model, inputs, attribution=True)")
        self.explained, self.attributions = inputs, {}

    def attribution_at(self, batch: int, t: int) -> dict:
        """What the view draws under the token strip for the prediction at step ``t`` of element
        ``batch``: every input step's integrated-gradients attribution (``rw.attribution``) and
        the title saying what it is."""
        # a window of steps (rw.trace(steps=...)): its step t is the model's step first + t, and
        # the bars are its own steps' (the inputs run whole)
        first = first_step(self.trace)
        if t not in self.attributions:
            self.attributions[t] = self.live.attribution(self.explained, first + t)
        values = self.attributions[t][batch][first:first + self.trace.steps]
        out = self.trace.outputs
        predicted = "its top class"
        if out is not None and is_output_head(self.trace) and t < out.shape[1]:
            predicted = repr(label_of(self.labels, int(out[batch, t].argmax())))
        summed = "the embedding" if self.trace.tokens is not None else "the features"
        return {"t": int(t), "batch": int(batch), "values": [float(v) for v in values],
                "title": f"why the prediction at step {first + t} ({predicted}): integrated gradients of each input, "
                         f"summed over {summed}"}

    # ---- what travels -----------------------------------------------------------------------
    def payload(self, batch: int, t: int, layer: str, quantity: str):
        """(index, buffer, tokens) of batch element ``batch``: whole, or the window around t with
        the overview of the shown quantity. ``tokens``: the trace's, shared by the layers they
        fit; a layer with its own carries them in its index entry."""
        window = overview = None
        if self.held is not None:
            window = window_at(self.trace, t - self.held // 2, self.held)
            overview = (self.layer_or_default(layer), self.shown_quantity(layer, quantity))
        index, buffer = build_payload(self.trace, batch, self.labels, self.scales, window, overview)
        tokens = self.trace.tokens[batch] if self.trace.tokens is not None else None
        return index, buffer, tokens

    def window_reply(self, batch: int, start) -> tuple[dict, bytes]:
        """The message and buffer answering the browser's request for the window from ``start``."""
        if isinstance(start, bool) or not isinstance(start, int):
            raise ValueError(f"window request: expected an integer start step, got {start!r}")
        if self.held is None:
            raise ValueError("window request: this trace travels whole, not by windows")
        window = window_at(self.trace, start, self.held)
        return window_message(*window), window_payload(self.trace, batch, window, self.scales)
