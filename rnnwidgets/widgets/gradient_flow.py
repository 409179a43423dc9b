"""``rw.gradient_flow``: where the gradient goes through time, through the gates and across layers.

The numbers come from ``rnnwidgets.gradients_analysis`` (formulas and verdict thresholds are
documented there); this module only lays them out as bqplot charts (lines, bars) and ipywidgets
text. The layers x time grid is our canvas ``HeatmapGrid``, one column per step (time bucketed by
maximum only beyond ``MAX_COLUMNS`` steps); its cursor follows the slider in the browser.
"""
from __future__ import annotations

import html
import math

import bqplot as bq
import ipywidgets as widgets
import numpy as np

from ..gradients_analysis import gate_flow, layer_verdict, trace_norms
from ..kinds import GRU_GATES, LSTM_GATES
from ..ranges import axis_range
from ..timeaxis import max_columns, on_axis
from ..tracedata import Trace
from .grid import HeatmapGrid

MAX_COLUMNS = 10_000   # a canvas row of pixels; longer sequences take the maximum of each run of steps
FLAG_COLOUR = "#d62728"
# Every axis gets an explicit tick format: bqplot's guessed one throws on an empty or one-point
# domain ("invalid format") and leaves that axis blank from then on.
STEP_FORMAT = "d"
CHART_HEIGHT = "260px"


def positive(values) -> np.ndarray:
    """float32 copy with zero, negative and non-finite values as NaN: what a log scale can draw."""
    a = np.asarray(values, dtype=np.float64).astype(np.float32)   # cast first: 1e-50 becomes 0 here
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(np.isfinite(a) & (a > 0), a, np.float32(np.nan))


def fit_scale(scale, values, log: bool = False):
    """Set the scale's min and max to the finite (for a log scale, positive) range of ``values``.

    A chart whose data start empty, all NaN or as one point gets a NaN or empty domain from
    bqplot, and its scale then stays blank after the data arrive; an explicit range never does.
    """
    span = axis_range(values, log)
    if span is None:
        return
    lo, hi = span
    with scale.hold_sync():
        scale.min, scale.max = lo, hi


def log_scale_for_bars(values) -> bq.LogScale:
    """A log scale spanning ``values`` with room below: bars rise from its minimum (``base``),
    since bqplot's default base of 0 has no place on a log axis."""
    scale = bq.LogScale(min=1e-3, max=1)
    fit_scale(scale, values, log=True)
    scale.min = scale.min / 10
    return scale


def log_lines_figure(title: str, x_label: str, y_label: str, legend: str = "top-left"):
    """(figure, lines mark, x scale): an empty line chart with a log y axis and a legend (top left
    by default: a gradient through time is smallest at the first steps)."""
    xs, ys = bq.LinearScale(min=0, max=1), bq.LogScale(min=1e-3, max=1)   # until fit to data
    lines = bq.Lines(x=np.zeros(0, np.float32), y=np.zeros(0, np.float32), scales={"x": xs, "y": ys},
                     display_legend=True)
    fig = bq.Figure(marks=[lines], title=title, legend_location=legend, fig_margin=_MARGIN,
                    axes=[bq.Axis(scale=xs, label=x_label, tick_format=STEP_FORMAT),
                          bq.Axis(scale=ys, side="left", label=y_label, tick_format=".0e")],
                    layout=widgets.Layout(width="100%", height=CHART_HEIGHT))
    return fig, lines, xs


_MARGIN = {"top": 40, "bottom": 40, "left": 70, "right": 20}


def add_cursor(fig: bq.Figure, x_scale) -> bq.Lines:
    """A vertical line at a step, drawn on its own 0..1 y scale so it spans any chart."""
    cursor = bq.Lines(x=np.zeros(2, np.float32), y=np.array([0, 1], np.float32), colors=["#444"],
                      line_style="dashed", scales={"x": x_scale, "y": bq.LinearScale(min=0, max=1)})
    fig.marks = [*fig.marks, cursor]
    return cursor


def _escaped_lines(lines) -> str:
    return "<br>".join(html.escape(line) for line in lines)


class GradientFlow(widgets.VBox):
    """Gradient through time, per gate path and per parameter, for a Trace made with a loss.

    ``weight_norms``: parameter name -> ‖W‖ and ``lr``: a learning rate (or parameter name ->
    learning rate) together add the update/weight chart, lr·‖∇W‖/‖W‖: the relative size of a
    plain gradient step. ``slider`` moves a cursor over the time charts; ``link_t(explorer)``
    keeps it in step with another widget's ``t``.
    """

    def __init__(self, trace: Trace, weight_norms: dict | None = None, lr=None):
        if not isinstance(trace, Trace):
            raise TypeError(f"GradientFlow: expected an rw.Trace, got {type(trace).__name__}")
        self.trace = trace
        # each layer over its own steps, on the longest layer's time axis (NaN past a layer's end)
        self.norms = trace_norms(trace, "h")
        if not self.norms:
            raise ValueError("GradientFlow: the trace has no gradients; trace it with a loss, "
                             "e.g. rw.gradient_flow(model, inputs, loss='last')")
        self.cell_norms = trace_norms(trace, "c")
        self.verdicts = {name: layer_verdict(trace.layers[name], trace.layer_lengths(name))
                         for name in self.norms}
        self.flows = {name: flow for name, lt in trace.layers.items() if "h" in lt.grads
                      for flow in [self._gate_flow(lt)] if flow}

        steps = trace.steps
        self.slider = widgets.IntSlider(value=0, min=0, max=steps - 1, description="step",
                                        continuous_update=True, layout=widgets.Layout(width="100%"))
        self.readout = widgets.HTML()
        self.verdict_text = widgets.HTML(self._verdict_html())
        self.time_figure, self.time_lines, time_x = log_lines_figure(
            "‖∂L/∂h_t‖ through time (‖∂L/∂c_t‖ dashed)", "step t", "norm")
        self._fill_time_lines()
        row_names = [*(f"{name} h" for name in self.norms), *(f"{name} c" for name in self.cell_norms)]
        width, rows = max_columns(np.stack([*self.norms.values(), *self.cell_norms.values()]), MAX_COLUMNS)
        self.heat = HeatmapGrid(rows, row_names, scale="log", column_step=width, column_label="step t",
                                title="‖∂L/∂h_t‖ (and ‖∂L/∂c_t‖), layers × time, log scale")
        self.heat_link = widgets.jslink((self.slider, "value"), (self.heat, "t"))   # the grid's cursor
        self.cursors = [add_cursor(self.time_figure, time_x)]
        charts = [self.time_figure, self.heat]
        if self.flows:
            self.gate_layer = widgets.Dropdown(options=list(self.flows), description="layer")
            self.gate_figure, self.gate_lines, gate_x = log_lines_figure(
                "gradient leaving each step, by gate path", "step t", "norm")
            self.cursors.append(add_cursor(self.gate_figure, gate_x))
            self.gate_layer.observe(lambda _: self._fill_gate_lines(), "value")
            self._fill_gate_lines()
            charts += [widgets.Label("per-gate flow (formulas: rnnwidgets.gradients_analysis)"),
                       self.gate_layer, self.gate_figure]
        if trace.param_grads:
            self.param_figure, self.param_bars, self.flag_bars = self._param_chart()
            charts.append(self.param_figure)
            if lr is not None and weight_norms:
                self.update_figure, self.update_bars = self._update_chart(weight_norms, lr)
                charts.append(self.update_figure)
        self.slider.observe(lambda change: self._move_cursor(change["new"]), "value")
        self._move_cursor(0)
        super().__init__([self.verdict_text, self.slider, self.readout, *charts])
        self.add_class("rw-gradient-flow")  # for page tests and user styles

    # ---- analysis -----------------------------------------------------------------------
    def _gate_flow(self, lt) -> dict:
        # the gates each kind's paths read (a GRU's reset gate acts inside its candidate path)
        read = {"lstm": LSTM_GATES, "gru": GRU_GATES[1:], "rnn": ()}
        if lt.kind not in read or not all(g in lt.gates for g in read[lt.kind]):
            return {}
        if lt.kind == "lstm" and not ("c" in lt.grads and "c" in lt.states):
            return {}
        # the forget-/update-gate paths at the first step need the state before it: the recorded
        # initial state; a trace saved without one gets NaN there (not drawn) rather than a guess
        initial = lt.initial.get("c" if lt.kind == "lstm" else "h", np.nan)
        flow = gate_flow(lt.kind, lt.gates, lt.states, lt.grads, self.trace.layer_lengths(lt.name),
                         initial=initial, reverse=lt.reverse)
        return {path: on_axis(norms, self.trace.steps) for path, norms in flow.items()}

    # ---- views --------------------------------------------------------------------------
    def _verdict_html(self) -> str:
        lines = [f"{name}: {v.text()}" for name, v in self.verdicts.items()]
        if self.trace.meta.get("training"):
            lines.append("traced in training mode (dropout on)")
        return _escaped_lines(lines)

    def _fill_time_lines(self):
        """h norms on the chart's own mark; LSTM c norms dashed on a second (one style per mark)."""
        steps = np.arange(self.trace.steps, dtype=np.float32)
        with self.time_lines.hold_sync():
            self.time_lines.x = steps
            self.time_lines.y = np.stack([positive(s) for s in self.norms.values()])
            self.time_lines.labels = [f"{n} h" for n in self.norms]
        series = [*self.norms.values(), *self.cell_norms.values()]
        fit_scale(self.time_lines.scales["x"], steps)
        fit_scale(self.time_lines.scales["y"], np.concatenate(series), log=True)
        if self.cell_norms:
            self.cell_lines = bq.Lines(x=steps, y=np.stack([positive(s) for s in self.cell_norms.values()]),
                                       labels=[f"{n} c" for n in self.cell_norms], line_style="dashed",
                                       display_legend=True, scales=self.time_lines.scales)
            self.time_figure.marks = [*self.time_figure.marks, self.cell_lines]

    def _fill_gate_lines(self):
        flow = self.flows[self.gate_layer.value]
        with self.gate_lines.hold_sync():
            self.gate_lines.x = np.arange(self.trace.steps, dtype=np.float32)
            self.gate_lines.y = np.stack([positive(v) for v in flow.values()])
            self.gate_lines.labels = list(flow)
        fit_scale(self.gate_lines.scales["x"], self.gate_lines.x)
        fit_scale(self.gate_lines.scales["y"], np.concatenate(list(flow.values())), log=True)

    def _param_chart(self):
        names = list(self.trace.param_grads)
        stats = self.trace.param_grads
        mean = [stats[n]["mean_abs"] for n in names]
        peak = [stats[n]["max_abs"] for n in names]
        self.flagged = [n for n in names
                        if not (math.isfinite(stats[n]["max_abs"]) and math.isfinite(stats[n]["mean_abs"]))
                        or stats[n]["max_abs"] == 0]
        xs, ys = bq.OrdinalScale(), log_scale_for_bars(np.r_[mean, peak])
        flags = bq.Bars(x=names, y=np.array([1.0 if n in self.flagged else 0.0 for n in names], np.float32),
                        colors=[FLAG_COLOUR], opacities=[0.3], labels=["zero or non-finite"],
                        display_legend=bool(self.flagged),
                        scales={"x": xs, "y": bq.LinearScale(min=0, max=1)})
        bars = bq.Bars(x=names, y=np.stack([positive(mean), positive(peak)]), type="grouped",
                       labels=["mean |grad|", "max |grad|"], colors=["#1f77b4", "#ff7f0e"],
                       display_legend=True, base=ys.min, scales={"x": xs, "y": ys})
        fig = bq.Figure(marks=[flags, bars], title="|grad| per parameter tensor", fig_margin={**_MARGIN, "bottom": 110},
                        axes=[bq.Axis(scale=xs, tick_rotate=-30),
                              bq.Axis(scale=ys, side="left", tick_format=".0e", label="|grad|")],
                        legend_location="top-right", layout=widgets.Layout(width="100%", height="320px"))
        return fig, bars, flags

    def _update_chart(self, weight_norms: dict, lr):
        names = [n for n in self.trace.param_grads if n in weight_norms]
        rates = lr if isinstance(lr, dict) else {n: lr for n in names}
        ratio = [rates[n] * self.trace.param_grads[n]["norm"] / weight_norms[n] if weight_norms[n] else math.inf
                 for n in names]
        self.update_ratio = dict(zip(names, ratio))
        xs, ys = bq.OrdinalScale(), log_scale_for_bars(ratio)
        bars = bq.Bars(x=names, y=positive(ratio), colors=["#2ca02c"], base=ys.min, scales={"x": xs, "y": ys})
        fig = bq.Figure(marks=[bars], title="update / weight: lr·‖∇W‖ / ‖W‖", fig_margin={**_MARGIN, "bottom": 110},
                        axes=[bq.Axis(scale=xs, tick_rotate=-30),
                              bq.Axis(scale=ys, side="left", tick_format=".0e", label="ratio")],
                        layout=widgets.Layout(width="100%", height="300px"))
        return fig, bars

    def _move_cursor(self, t: int):
        for cursor in self.cursors:
            cursor.x = np.array([t, t], np.float32)
        parts = [f"{name} ‖∂L/∂h_{t}‖ = {n[t]:.3g}" if t < self.trace.layers[name].steps
                 else f"{name} has steps 0–{self.trace.layers[name].steps - 1} only"
                 for name, n in self.norms.items()]
        self.readout.value = _escaped_lines([f"step {t}: " + "; ".join(parts)])

    def save_html(self, path, title: str = "rnnwidgets"):
        """One self-contained offline HTML file of the charts."""
        from .export import save_html  # nbconvert: imported only when a page is written

        return save_html(self, path, title)

    # ---- linking ------------------------------------------------------------------------
    def link_t(self, other, name: str = "t"):
        """Keep the slider and ``other.<name>`` (e.g. an Explorer's ``t``) equal, in the browser."""
        return widgets.jslink((self.slider, "value"), (other, name))
