"""``rw.gradient_flow``: where the gradient goes through time, through the gates and across layers.

The numbers come from ``rnnwidgets.gradients_analysis`` (formulas and verdict thresholds are
documented there); this module lays them out as our charts (``chart.Chart``: lines through
steps, bars per parameter tensor), the layers x time grid (``grid.HeatmapGrid``, one column per
step, bucketed by maximum only beyond ``MAX_COLUMNS`` steps) and plain text. A ``StepControl``
moves every chart's cursor in the page, as the Explorer's transport does: a scrub never waits on
the kernel, and works in a saved notebook or an exported file.

Several models (a list, or a dict name -> Trace) are overlaid on the same axes, one colour per
model and layer, so their gradients are compared on one scale.

A trace of a window of steps (``rw.trace(steps=...)``) is numbered as the model numbers it, as in
the Explorer: ``first_step`` (``payload.shared_first_step`` of the traces) goes to every chart, the
grid and the step control, which add it to the step numbers they write, and to the verdicts.
"""
from __future__ import annotations

import html
import math

import ipywidgets as widgets
import numpy as np

from ..gradients_analysis import EXPLODING_ABOVE, VANISHING_BELOW, gate_flow, layer_verdicts, step_norms
from ..kinds import GRU_GATES, LSTM_GATES
from ..timeaxis import max_columns, on_axis
from ..tracedata import Trace
from .chart import Chart, StepControl
from .grid import HeatmapGrid
from .marimo_display import MarimoDisplay
from .payload import shared_first_step
from .still import Still
from .still_views import chart_png

MAX_COLUMNS = 10_000   # a canvas row of pixels; longer sequences take the maximum of each run of steps
STEP_LABEL = "step t"

# What each kind's gate paths mean, in a sentence under the gate chart.
GATE_CAPTIONS = {
    "lstm": "The gradient leaving step t, split by the path it takes. “forget carry” (∂L/∂c_t ⊙ f_t) reaches "
            "c_(t−1) with no weight in between; the four gate paths reach h_(t−1) only through the recurrent weights.",
    "gru": "The gradient leaving step t, split by the path it takes. “update carry” (∂L/∂h_t ⊙ z_t) reaches "
           "h_(t−1) with no weight in between; the update-gate and candidate paths go through the recurrent weights.",
    "rnn": "A tanh RNN has one path back: ∂L/∂h_t ⊙ (1 − h_t²), through the recurrent weights W_hh.",
}
QUANTITY_LINE = {"h": "solid", "c": "dashed"}
# The gate chart's title per kind: a tanh RNN has no gates, only its recurrent weights.
GATE_TITLES = {
    "lstm": "gradient leaving each step, by the path it takes through the LSTM's gates",
    "gru": "gradient leaving each step, by the path it takes through the GRU's gates",
    "rnn": "gradient leaving each step, through the recurrent weights (a tanh RNN has no gates)",
}


def _escaped_lines(lines) -> str:
    return "<br>".join(html.escape(line) for line in lines)


def _named_traces(source) -> dict:
    """name -> Trace from one Trace, a list of them or a dict; anything else gets a sentence."""
    if isinstance(source, Trace):
        return {"": source}
    if isinstance(source, dict):
        traces = {str(k): v for k, v in source.items()}
    elif isinstance(source, (list, tuple)):
        traces = {f"model {i}": v for i, v in enumerate(source)}
    else:
        raise TypeError(f"GradientFlow: expected an rw.Trace (or a list or dict of them), got {type(source).__name__}")
    if not traces:
        raise ValueError("GradientFlow: expected at least one rw.Trace, got an empty collection")
    for name, tr in traces.items():
        if not isinstance(tr, Trace):
            raise TypeError(f"GradientFlow: expected an rw.Trace for {name!r}, got {type(tr).__name__}")
    return traces


def _padded(series: list, steps: int) -> np.ndarray:
    """(len(series), steps): each series NaN past its own length (layers may run different steps)."""
    out = np.full((len(series), steps), np.nan)
    for i, s in enumerate(series):
        out[i, : len(s)] = s
    return out


class GradientFlow(MarimoDisplay, Still, widgets.VBox):
    """Gradient through time, per gate path and per parameter, for a Trace made with a loss —
    or for several (a list, or a dict name -> Trace), overlaid on the same axes.

    ``weight_norms``: parameter name -> ‖W‖ and ``lr``: a learning rate (or parameter name ->
    learning rate) together add the update/weight chart, lr·‖∇W‖/‖W‖: the relative size of a
    plain gradient step (with several traces: dicts of those per trace name). ``steps`` (Play, the
    step slider) moves a cursor over the time charts in the page; ``link_t(explorer)`` keeps it in
    step with another widget's ``t``.
    """

    def __init__(self, trace, weight_norms: dict | None = None, lr=None):
        self.traces = _named_traces(trace)
        self.trace = trace if isinstance(trace, Trace) else None
        self.kinds: dict[str, str] = {}
        self.norms: dict[str, np.ndarray] = {}
        self.cell_norms: dict[str, np.ndarray] = {}
        self.all_verdicts: dict[str, dict] = {}
        self.flows: dict[str, dict] = {}
        # the model's number of step 0: a window of steps' first (rw.trace(steps=...)); every step said adds it
        self.first_step = shared_first_step(self.traces.values())
        for model, tr in self.traces.items():
            for name, lt in tr.layers.items():
                if "h" not in lt.grads:
                    continue
                key = f"{model} · {name}" if model else name
                self.kinds[key] = lt.kind
                # each layer over its own steps, on the trace's longest axis (NaN past a layer's end)
                lengths = tr.layer_lengths(name)
                self.norms[key] = on_axis(step_norms(lt.grads["h"], lengths), tr.steps)
                if "c" in lt.grads:
                    self.cell_norms[key] = on_axis(step_norms(lt.grads["c"], lengths), tr.steps)
                self.all_verdicts[key] = layer_verdicts(lt, lengths, self.first_step)
                flow = self._gate_flow(lt, tr)
                if flow:
                    self.flows[key] = flow
        if not self.norms:
            raise ValueError("GradientFlow: the trace has no gradients; trace it with a loss, "
                             "e.g. rw.gradient_flow(model, inputs, loss='last')")
        # the verdict each layer is judged by (an LSTM's on c): label, ratio, quantity
        self.verdicts = {key: next(iter(v.values())) for key, v in self.all_verdicts.items()}
        self.colours = {key: i for i, key in enumerate(self.norms)}
        self.steps_count = max(n.size for n in [*self.norms.values(), *self.cell_norms.values()])

        self.verdict_text = widgets.HTML(self._verdict_html())
        self.time_chart = Chart(title=self._time_title(), x_label=STEP_LABEL, y_label="gradient norm (log)",
                                first_step=self.first_step)
        self._fill_time_chart()
        row_names = [*(f"{key} h" for key in self.norms), *(f"{key} c" for key in self.cell_norms)]
        width, rows = max_columns(_padded([*self.norms.values(), *self.cell_norms.values()], self.steps_count),
                                  MAX_COLUMNS)
        self.heat = HeatmapGrid(rows, row_names, scale="log", column_step=width, column_label=STEP_LABEL,
                                title=self._grid_title(), first_step=self.first_step)
        self.cursor_views: list = [self.time_chart, self.heat]
        charts: list = [self.time_chart, self.heat]
        if self.flows:
            self.gate_layer = widgets.Dropdown(options=list(self.flows), description="layer")
            self.gate_caption = widgets.HTML()
            self.gate_chart = Chart(x_label=STEP_LABEL, y_label="gradient norm (log)", first_step=self.first_step)
            self.gate_layer.observe(lambda _: self._fill_gate_chart(), "value")
            self._fill_gate_chart()
            self.cursor_views.append(self.gate_chart)
            charts += [self.gate_layer, self.gate_caption, self.gate_chart]
        if any(tr.param_grads for tr in self.traces.values()):
            self.param_chart = self._param_chart()
            charts.append(self.param_chart)
            if lr is not None and weight_norms:
                self.update_chart = self._update_chart(weight_norms, lr)
                charts.append(self.update_chart)
        self.steps = StepControl(steps=self.steps_count, first_step=self.first_step, followers=self.cursor_views)
        super().__init__([self.verdict_text, self.steps, *charts])
        self.add_class("rw-gradient-flow")  # for page tests and user styles

    def _still_png(self):
        """The still a static renderer shows: the lines of ‖∂L/∂h_t‖ (and c) through time."""
        return chart_png(self.time_chart)

    # ---- analysis -----------------------------------------------------------------------
    @staticmethod
    def _gate_flow(lt, tr: Trace) -> dict:
        # the gates each kind's paths read (a GRU's reset gate acts inside its candidate path)
        read = {"lstm": LSTM_GATES, "gru": GRU_GATES[1:], "rnn": ()}
        if lt.kind not in read or not all(g in lt.gates for g in read[lt.kind]):
            return {}
        if lt.kind == "lstm" and not ("c" in lt.grads and "c" in lt.states):
            return {}
        # the forget-/update-gate paths at the first step need the state before it: the recorded
        # initial state; a trace saved without one gets NaN there (not drawn) rather than a guess
        initial = lt.initial.get("c" if lt.kind == "lstm" else "h", np.nan)
        flow = gate_flow(lt.kind, lt.gates, lt.states, lt.grads, tr.layer_lengths(lt.name), initial=initial,
                         reverse=lt.reverse)
        return {path: on_axis(norms, tr.steps) for path, norms in flow.items()}

    # ---- words --------------------------------------------------------------------------
    def _time_title(self) -> str:
        many = len(self.traces) > 1
        title = "‖∂L/∂h_t‖ through time"
        if self.cell_norms:   # only an LSTM has a cell state c
            title = "‖∂L/∂h_t‖ (solid) and the LSTM cell state's ‖∂L/∂c_t‖ (dashed) through time"
        return title + (f", {len(self.traces)} models on one axis" if many else "")

    def _grid_title(self) -> str:
        what = "‖∂L/∂h_t‖ and ‖∂L/∂c_t‖" if self.cell_norms else "‖∂L/∂h_t‖"
        return f"{what} per layer (rows) and step (columns), colour on a log scale"

    def _verdict_html(self) -> str:
        lines = []
        for key, verdicts in self.all_verdicts.items():
            parts = []
            for i, (quantity, v) in enumerate(verdicts.items()):
                lead = ""
                if len(verdicts) > 1:   # say which line each verdict is about
                    lead = f"{'judged on' if i == 0 else 'also drawn:'} {quantity} ({QUANTITY_LINE[quantity]} line) — "
                parts.append(lead + v.text(thresholds=False))
            if len(verdicts) > 1:
                parts.append("An LSTM is judged on its cell state: c carries the gradient back through the forget "
                             "gate; ∂L/∂h_t at the last steps is mostly the loss's direct term, which reaches "
                             "earlier steps only through the gates and c.")
            lines.append(f"<b>{html.escape(key)}</b>: " + "<br>&nbsp;&nbsp;".join(html.escape(p) for p in parts))
        lines.append(html.escape(f"Verdict thresholds on the first/last ratio: vanishing below {VANISHING_BELOW:g}, "
                                 f"exploding above {EXPLODING_ABOVE:g} or non-finite, healthy in between."))
        # "dropout on" only where the trace found dropout at work (capture's meta["dropout"])
        training = [tr for tr in self.traces.values() if tr.meta.get("training")]
        if training:
            dropout = any(tr.meta.get("dropout") for tr in training)
            lines.append(html.escape("traced in training mode" + (" (dropout on)" if dropout else "")))
        return "<br>".join(lines)

    # ---- charts -------------------------------------------------------------------------
    def _fill_time_chart(self):
        """h norms solid, LSTM c norms dashed in the same colour as their layer's h."""
        keys = list(self.norms)
        series = [{"name": f"{key} h", "colour": self.colours[key]} for key in keys]
        series += [{"name": f"{key} c", "colour": self.colours[key], "dash": True} for key in self.cell_norms]
        values = _padded([*self.norms.values(), *self.cell_norms.values()], self.steps_count)
        self.time_chart.show_lines(np.arange(self.steps_count), values, series)

    def _fill_gate_chart(self):
        key = self.gate_layer.value
        flow = self.flows[key]
        steps = max(v.size for v in flow.values())
        self.gate_chart.show_lines(np.arange(steps), _padded(list(flow.values()), steps),
                                   [{"name": name} for name in flow])
        self.gate_caption.value = html.escape(GATE_CAPTIONS.get(self.kinds[key], ""))
        self.gate_chart.title = GATE_TITLES[self.kinds[key]]

    def _param_names(self):
        """(label, trace name, parameter name) for every parameter tensor of every trace."""
        return [(f"{model} · {p}" if model else p, model, p)
                for model, tr in self.traces.items() for p in tr.param_grads]

    def _param_chart(self) -> Chart:
        names = self._param_names()
        stats = [self.traces[m].param_grads[p] for _, m, p in names]
        mean = [s["mean_abs"] for s in stats]
        peak = [s["max_abs"] for s in stats]
        flags = {}
        for (label, _, _), s in zip(names, stats):
            if not (math.isfinite(s["max_abs"]) and math.isfinite(s["mean_abs"])):
                flags[label] = "non-finite gradient (inf or NaN)"
            elif s["max_abs"] == 0:
                flags[label] = "zero gradient: the loss does not depend on it"
        self.flagged = list(flags)
        chart = Chart(title="|gradient| per parameter tensor (mean and max over its entries)",
                      x_label="|gradient| (log scale)")
        chart.show_bars([n for n, _, _ in names], [mean, peak],
                        [{"name": "mean |grad|", "colour": 0}, {"name": "max |grad|", "colour": 1}], flags=flags)
        return chart

    def _update_chart(self, weight_norms: dict, lr) -> Chart:
        many = len(self.traces) > 1
        ratio = {}
        for label, model, p in self._param_names():
            norms = weight_norms.get(model, {}) if many else weight_norms
            rates = (lr.get(model) if many and isinstance(lr, dict) else lr)
            if p not in norms or rates is None:
                continue
            rate = rates.get(p) if isinstance(rates, dict) else rates
            if rate is None:
                continue
            grad = self.traces[model].param_grads[p]["norm"]
            ratio[label] = rate * grad / norms[p] if norms[p] else math.inf
        self.update_ratio = ratio
        # what a log axis cannot place, said on its row (an empty row read as a chart not drawn)
        flags = {label: "zero update: its gradient is 0" if r == 0 else
                 "non-finite: a non-finite gradient or a weight of norm 0"
                 for label, r in ratio.items() if r == 0 or not math.isfinite(r)}
        chart = Chart(title="update / weight: lr·‖∇W‖ / ‖W‖, the relative size of one plain gradient step",
                      x_label="ratio (log scale)")
        chart.show_bars(list(ratio), [list(ratio.values())], [{"name": "lr·‖∇W‖ / ‖W‖", "colour": 2}], flags=flags)
        return chart

    def save_html(self, path, title: str = "rnnwidgets"):
        """One self-contained offline HTML file of the charts."""
        from .export import save_html  # nbconvert: imported only when a page is written

        return save_html(self, path, title)

    # ---- linking ------------------------------------------------------------------------
    def link_t(self, other, name: str = "t"):
        """Keep the step control's ``t`` and ``other.<name>`` (e.g. an Explorer's ``t``) equal, in the browser."""
        return widgets.jslink((self.steps, "t"), (other, name))
