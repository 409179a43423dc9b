"""``rw.TrainingMonitor``: live charts of a training loop that blocks the kernel.

Each ``step`` reads the gradients (never writes them) and appends to bounded min/max histories
(``MinMaxSeries``: at most ``max_points`` points a series however long training runs, spikes
kept). The charts are sent at most every ``interval`` seconds of wall-clock time (each send is a
handful of comm messages, one per changed mark, batched by ``hold_sync``), far below the
server's iopub limit of 1,000 messages a second. The last state is sent when the cell that ran
the loop finishes, or by ``finish()``, so the saved notebook keeps the final charts.
"""
from __future__ import annotations

import html
import math
import re
import secrets
import time

import ipywidgets as widgets
import numpy as np

from ..gradients_analysis import layer_verdict, trace_norms
from ..kinds import layer_name
from ..timeaxis import MinMaxSeries
from .chart import Chart
from .grid import HeatmapGrid
from .marimo_display import MarimoDisplay
from .still import Still
from .still_views import chart_png

HEAT_POINTS = 400          # the layers x steps grid: 200 columns of bucket maxima
_FUSED_PARAM = re.compile(r"(?:weight|bias)_(?:ih|hh|hr)_l(\d+)(_reverse)?$")


def layer_of(param_name: str, root: str) -> str:
    """The layer a parameter belongs to, named as in a Trace: "lstm.l0", "lstm.l1.reverse", "head".

    ``root``: the name of the model itself (a Trace calls it by its lower-cased class name).
    """
    module, _, leaf = param_name.rpartition(".")
    module = module or root
    fused = _FUSED_PARAM.match(leaf)
    if fused:
        return layer_name(module, int(fused[1]), bool(fused[2]))
    return module


# What one step of the charts' step axes counts: a call of ``step`` (one per optimizer step, as
# the docstring asks), or, attached, a backward pass.
TRAINING_STEP = "training step (mon.step calls)"
BACKWARD_PASS = "backward pass"


class TrainingMonitor(MarimoDisplay, Still, widgets.VBox):
    """Live loss, gradient norm, per-layer gradient norms and gradient-through-time snapshots.

    ``mon = rw.TrainingMonitor(model)``; ``display(mon)``; in the loop, after ``loss.backward()``
    and before ``optimizer.step()``: ``mon.step(loss)``. Or ``mon.attach()`` once: hooks on the
    parameters record the gradients at the end of every backward pass (``mon.step(loss)`` then
    only adds the loss); ``mon.detach()`` removes them.

    ``clip``: the gradient-clipping threshold (global L2 norm) drawn on the norm chart, with a
    marker at each step whose norm exceeded it. ``probe``: ``(inputs, loss)`` (or inputs alone,
    loss "last") on which every ``every`` steps a fresh ‖∂L/∂h_t‖ snapshot is traced with
    ``rw.trace`` (the model's ``.grad`` is left alone). ``interval``: seconds between sends.
    ``clock``: the wall clock (tests pass a fake one).

    This view reaches the model only through ``live`` (``rnnwidgets.capture.live.LiveModel``):
    ``rw.TrainingMonitor(model)`` makes one.
    """

    def __init__(self, live, probe=None, clip: float | None = None, every: int = 100,
                 max_points: int = 2000, interval: float = 0.1, clock=time.monotonic):
        if every < 1:
            raise ValueError(f"TrainingMonitor: every must be a positive number of steps, got {every}")
        if clip is not None and not clip > 0:
            raise ValueError(f"TrainingMonitor: clip must be a positive norm, got {clip}")
        self.live, self.model = live, live.model
        self.clip, self.every, self.interval, self._clock = clip, every, interval, clock
        self.probe = None if probe is None else (probe if isinstance(probe, tuple) else (probe, "last"))
        self.gradients = live.gradients()      # the trainable parameters' gradients, read-only
        if not self.gradients.names:
            raise ValueError("TrainingMonitor: expected a model with trainable parameters (requires_grad=True); "
                             "this one has none, so there is no gradient to follow")
        # named as the trace names them: a step module's parameters by its own layer
        owners = [live.step_layer_of(name) or layer_of(name, live.name) for name in self.gradients.names]
        self.layers = list(dict.fromkeys(owners))
        self._layer_index = np.array([self.layers.index(owner) for owner in owners], dtype=np.int64)

        self.steps = 0
        self.clipped = 0
        self.pushes = 0
        self.loss = MinMaxSeries(max_points)
        self.grad_norm = MinMaxSeries(max_points)
        self.layer_norms = [MinMaxSeries(HEAT_POINTS) for _ in self.layers]
        self.snapshot = None                   # (step, {layer: norms through time})
        self._last_loss = math.nan
        self.last_norm = math.nan
        self._last_push = -math.inf
        self._dirty = False
        self._snapshot_dirty = False
        self._pending: dict = {}                  # attached: param index -> norm, for this backward
        self._flush_registered = False
        self._build()

    def _still_png(self):
        """The still a static renderer shows: the loss so far (none before the first step)."""
        return chart_png(self.loss_chart)

    def _ipython_display_(self):
        """Displayed under a display id, so ``finish`` can give the cell the final still: a monitor
        is shown before training, when its still would be empty."""
        from IPython.display import display

        self._display_id = getattr(self, "_display_id", None) or secrets.token_hex(8)
        display(self._repr_mimebundle_(), raw=True, display_id=self._display_id)

    def _update_display(self):
        display_id = getattr(self, "_display_id", None)
        if display_id is not None:
            from IPython.display import update_display

            update_display(self._repr_mimebundle_(), raw=True, display_id=display_id)

    # ---- recording ----------------------------------------------------------------------
    def step(self, loss=None):
        """Record one training step: ``loss`` and, unless attached, the current gradients."""
        if loss is not None:
            self._last_loss = float(loss.detach()) if hasattr(loss, "detach") else float(loss)
        if self.gradients.attached:           # attached: the hooks recorded the gradients
            self._finish_backward()
            if loss is not None and self.steps:
                self.loss.append(self.steps - 1, self._last_loss)
        else:
            self._record(*self.gradients.norms())
        self._maybe_push()

    def _record(self, norms: np.ndarray, has: np.ndarray, loss_known: bool = True):
        """One step: global and per-layer L2 norms (NaN/inf when a gradient is non-finite)."""
        step = self.steps
        self.steps += 1
        squares = norms ** 2
        total = math.sqrt(squares.sum()) if has.any() else math.nan
        layer_sq = np.bincount(self._layer_index, weights=squares, minlength=len(self.layers))
        layer_has = np.bincount(self._layer_index, weights=has, minlength=len(self.layers)) > 0
        if loss_known:
            self.loss.append(step, self._last_loss)
        self.grad_norm.append(step, total)
        self.last_norm = total
        if self.clip is not None and total > self.clip:
            self.clipped += 1
        for series, sq, known in zip(self.layer_norms, layer_sq, layer_has):
            series.append(step, math.sqrt(sq) if known else math.nan)
        self._dirty = True
        if self.probe is not None and self.steps % self.every == 0:
            self._take_snapshot()

    def _take_snapshot(self):
        inputs, loss = self.probe
        tr = self.live.trace(inputs, loss=loss)
        layers = {name: lt for name, lt in tr.layers.items() if "h" in lt.grads}
        self.snapshot = (self.steps, trace_norms(tr, "h"))   # layers of different lengths on one axis
        self.snapshot_verdicts = {name: layer_verdict(lt, tr.layer_lengths(name))
                                  for name, lt in layers.items()}
        self._snapshot_dirty = True

    # ---- hooks --------------------------------------------------------------------------
    def attach(self):
        """Record the gradients at the end of every backward pass, from hooks on the parameters.

        Attached, a step is a backward pass (several per optimizer step when gradients are
        accumulated), and the charts' step axes say so."""
        self.gradients.attach(self._on_gradient)
        self._label_steps(BACKWARD_PASS)
        return self

    def detach(self):
        """Remove the hooks ``attach`` added (recording what the last backward pass left)."""
        self.gradients.detach()               # first, so no hook is left behind if recording fails
        self._finish_backward()
        self._label_steps(TRAINING_STEP)
        return self

    def _label_steps(self, label: str):
        """Name what one step of the charts' step axes is: a ``step`` call or a backward pass."""
        for chart in (self.loss_chart, self.norm_chart):
            chart.x_label = label
        self.heat.column_label = label

    def _on_gradient(self, index: int, norm: float):
        """A hook's report: parameter ``index``'s gradient, of L2 norm ``norm``, is accumulated."""
        if index in self._pending:            # a new backward pass began: the last one is complete
            self._finish_backward()
        self._pending[index] = norm
        if len(self._pending) == len(self.gradients.names):
            self._finish_backward()
            self._maybe_push()

    def _finish_backward(self):
        if not self._pending:
            return
        count = len(self.gradients.names)
        has = np.array([i in self._pending for i in range(count)])
        norms = np.array([self._pending.get(i, 0.0) for i in range(count)])
        self._pending = {}
        self._record(norms, has, loss_known=False)

    # ---- sending ------------------------------------------------------------------------
    def _maybe_push(self):
        now = self._clock()
        if now - self._last_push >= self.interval:
            self._last_push = now
            self._push()
        elif not self._flush_registered:
            self._register_flush()

    def flush(self):
        """Send the current state now (the throttle may have held the last steps back)."""
        self._finish_backward()
        self._last_push = self._clock()
        self._push()

    def finish(self):
        """The end of training: detach any hooks and send the final state (and, where the monitor
        was displayed, the final still for static renderers)."""
        self.detach()
        self.flush()
        self._update_display()

    def save_html(self, path, title: str = "rnnwidgets"):
        """The charts as they stand, as one self-contained offline HTML file."""
        from .export import save_html  # nbconvert: imported only when a page is written

        return save_html(self, path, title)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.finish()

    def _register_flush(self):
        """Send what the throttle held back once the running cell finishes."""
        try:
            from IPython import get_ipython
        except ImportError:
            return
        shell = get_ipython()
        if shell is None:
            return

        def flush_after_cell(*_):
            shell.events.unregister("post_run_cell", flush_after_cell)
            self._flush_registered = False
            if self._dirty or self._snapshot_dirty:
                self.flush()

        shell.events.register("post_run_cell", flush_after_cell)
        self._flush_registered = True

    def _push(self):
        if self._dirty:
            self._push_history()
        if self._snapshot_dirty:
            self._push_snapshot()
        self._dirty = self._snapshot_dirty = False
        self.pushes += 1

    def _push_history(self):
        x, y = self.loss.points()
        self.loss_chart.show_lines(x, [y], [{"name": "loss", "colour": 0}])
        x, y = self.grad_norm.points()
        series = [{"name": "‖∇‖ (L2 over all parameters)", "colour": 0}]
        values = [y]
        if self.clip is not None:   # a marker at each step whose norm went over the threshold
            series.append({"name": "clipped", "colour": 1, "points": True})
            values.append(np.where(y > self.clip, y, np.nan))
        self.norm_chart.show_lines(x, values, series)
        # every layer's series has as many buckets of the same width: column c is steps [c*width, (c+1)*width)
        maxima = np.stack([series.maxima()[1] for series in self.layer_norms])
        self.heat.show(maxima, self.layers, column_step=self.layer_norms[0].width)
        self.status.value = self._status_text()

    def _push_snapshot(self):
        step, norms = self.snapshot
        steps = max(len(n) for n in norms.values())
        values = np.full((len(norms), steps), np.nan)
        for i, n in enumerate(norms.values()):
            values[i, : len(n)] = n
        with self.probe_chart.hold_sync():
            self.probe_chart.title = f"‖∂L/∂h_t‖ through the probe batch's steps, after training step {step}"
            self.probe_chart.show_lines(np.arange(steps), values, [{"name": name} for name in norms])
        self.probe_text.value = "<br>".join(html.escape(f"{name}: {v.text()}")
                                            for name, v in self.snapshot_verdicts.items())

    def _status_text(self) -> str:
        parts = [f"step {self.steps}", f"loss {self._last_loss:.4g}", f"grad norm {self.last_norm:.3g}"]
        if self.clip is not None:
            parts.append(f"clipped at {self.clip:g} on {self.clipped} steps")
        return " · ".join(parts)

    # ---- layout -------------------------------------------------------------------------
    def _build(self):
        self.status = widgets.Label("no step recorded yet")
        waiting = "no training step recorded yet: call mon.step(loss) in the loop"
        self.loss_chart = Chart(title="loss", x_label=TRAINING_STEP, y_label="loss", y_scale="linear", empty=waiting)
        self.norm_chart = Chart(title="global gradient norm", x_label=TRAINING_STEP, y_label="‖∇‖ (log)",
                                empty=waiting)
        if self.clip is not None:
            self.norm_chart.rules = [{"name": f"clip {self.clip:g}", "value": float(self.clip)}]
        charts = [self.loss_chart, self.norm_chart]
        self.heat = HeatmapGrid(np.zeros((len(self.layers), 0), np.float32), self.layers, scale="log",
                                title="gradient norm per layer (log scale)", column_label=TRAINING_STEP)
        charts.append(self.heat)
        if self.probe is not None:
            self.probe_chart = Chart(title="‖∂L/∂h_t‖ through the probe batch's steps", x_label="sequence step t",
                                     y_label="‖∂L/∂h_t‖ (log)",
                                     empty=f"the first snapshot comes after {self.every} training steps")
            self.probe_text = widgets.HTML()
            charts += [self.probe_chart, self.probe_text]
        super().__init__([self.status, *charts])
        self.add_class("rw-monitor")  # for page tests and user styles
