"""``rw.TrainingMonitor``: the monitor view (rnnwidgets/widgets/monitor.py) on a live model.

The view reaches torch only through the live object made here, at the entry point. With
``dynamics=True`` this entry point also runs ``rw.dynamics`` on the probe batch at each probe
snapshot and charts each layer's largest finite-time Lyapunov exponent against the training step.
"""
from __future__ import annotations

import time

import bqplot as bq
import ipywidgets as widgets
import numpy as np

from .entrypoints import live
from .timeaxis import MinMaxSeries
from .widgets import monitor
from .widgets.gradient_flow import CHART_HEIGHT, STEP_FORMAT, fit_scale


class TrainingMonitor(monitor.TrainingMonitor):
    __doc__ = (monitor.TrainingMonitor.__doc__ or "") + """
    ``dynamics=True`` (needs ``probe``): at each probe snapshot (every ``every`` steps) the largest
    finite-time Lyapunov exponent of the probe batch, per recurrent layer (``rw.dynamics``: the
    mean over the batch's elements of each one's largest exponent, nats per sequence step), kept in
    ``mon.lyapunov`` (layer -> bounded series) and charted against the training step.
    """
    children: tuple  # the VBox trait (ipywidgets has no types): declared so the type checker reads it

    def __init__(self, model, probe=None, clip: float | None = None, every: int = 100, max_points: int = 2000,
                 interval: float = 0.1, clock=time.monotonic, dynamics: bool = False, *, hidden=None, args=(),
                 kwargs=None):
        if dynamics and probe is None:
            raise ValueError("TrainingMonitor: dynamics=True needs probe= (the batch whose largest Lyapunov "
                             "exponent is tracked)")
        self.dynamics = bool(dynamics)
        self.lyapunov: dict = {}                 # layer -> MinMaxSeries of (training step, largest exponent)
        self._max_points = max_points
        # hidden, args, kwargs: what the forward needs besides the probe's inputs, as for rw.trace
        model_ = live(model, "TrainingMonitor", hidden=hidden, args=args, kwargs=kwargs)
        super().__init__(model_, probe=probe, clip=clip, every=every, max_points=max_points, interval=interval,
                         clock=clock)
        if self.dynamics:
            xs, ys = bq.LinearScale(min=0, max=1), bq.LinearScale(min=-1, max=1)   # until fit to data
            self.lyapunov_lines = bq.Lines(x=np.zeros(0, np.float32), y=np.zeros(0, np.float32),
                                           scales={"x": xs, "y": ys}, display_legend=True)
            zero = bq.Lines(x=np.array([0, 1], np.float32), y=np.zeros(2, np.float32), colors=["#888"],
                            line_style="dashed", scales={"x": bq.LinearScale(min=0, max=1), "y": ys})
            self.lyapunov_figure = bq.Figure(
                marks=[self.lyapunov_lines, zero], title="largest Lyapunov exponent on the probe batch",
                legend_location="top-right", fig_margin={"top": 40, "bottom": 40, "left": 70, "right": 20},
                axes=[bq.Axis(scale=xs, label=monitor.TRAINING_STEP, tick_format=STEP_FORMAT),
                      bq.Axis(scale=ys, side="left", label="λ₁ (nats per step; dashed: 0)", tick_format=".3g")],
                layout=widgets.Layout(width="100%", height=CHART_HEIGHT))
            self.children = (*self.children, self.lyapunov_figure)

    def _take_snapshot(self):
        super()._take_snapshot()
        if not self.dynamics:
            return
        from .capture.spectra import dynamics  # torch: this is the torch-facing entry point

        inputs, _ = self.probe
        dyn = dynamics(self.model, inputs, hidden=self.live.trace_kwargs.get("hidden"), k=1)
        for name, d in dyn.layers.items():
            series = self.lyapunov.setdefault(name, MinMaxSeries(self._max_points))
            series.append(self.steps, float(np.nanmean(d.lyapunov[:, 0])))

    def _push_snapshot(self):
        super()._push_snapshot()
        if not self.dynamics or not self.lyapunov:
            return
        points = [series.points() for series in self.lyapunov.values()]
        xs = np.concatenate([x for x, _ in points])
        # one x per line: the series hold the same snapshot steps (bounded alike), so they agree
        with self.lyapunov_lines.hold_sync():
            self.lyapunov_lines.x = points[0][0].astype(np.float32)
            self.lyapunov_lines.y = np.stack([y for _, y in points]).astype(np.float32)
            self.lyapunov_lines.labels = list(self.lyapunov)
        fit_scale(self.lyapunov_lines.scales["x"], np.r_[0.0, xs])
        fit_scale(self.lyapunov_lines.scales["y"], np.r_[0.0, np.concatenate([y for _, y in points])])
