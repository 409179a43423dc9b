"""``rw.TrainingMonitor``: the monitor view (rnnwidgets/widgets/monitor.py) on a live model.

The view reaches torch only through the live object made here, at the entry point. With
``dynamics=True`` this entry point also runs ``rw.dynamics`` on the probe batch at each probe
snapshot and charts each layer's largest finite-time Lyapunov exponent against the training step.
"""
from __future__ import annotations

import time

import numpy as np

from .entrypoints import live
from .timeaxis import MinMaxSeries
from .widgets import monitor
from .widgets.chart import Chart


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
            self.lyapunov_chart = Chart(
                title="largest Lyapunov exponent on the probe batch (0: neither growing nor shrinking)",
                x_label=monitor.TRAINING_STEP, y_label="λ₁ (nats per step)", y_scale="linear",
                empty=f"the first snapshot comes after {every} training steps")
            self.lyapunov_chart.rules = [{"name": "0", "value": 0.0}]
            self.children = (*self.children, self.lyapunov_chart)

    def _take_snapshot(self):
        super()._take_snapshot()
        if not self.dynamics:
            return
        from .capture.spectra import dynamics  # torch: this is the torch-facing entry point

        inputs, _ = self.probe
        calling = {key: v for key, v in self.live.trace_kwargs.items() if key in ("hidden", "args", "kwargs")}
        dyn = dynamics(self.model, inputs, k=1, **calling)      # called as the probe's trace calls it
        for name, d in dyn.layers.items():
            series = self.lyapunov.setdefault(name, MinMaxSeries(self._max_points))
            series.append(self.steps, float(np.nanmean(d.lyapunov[:, 0])))

    def _push_snapshot(self):
        super()._push_snapshot()
        if not self.dynamics or not self.lyapunov:
            return
        points = [series.points() for series in self.lyapunov.values()]
        # one x for all lines: the series hold the same snapshot steps (bounded alike), so they agree
        self.lyapunov_chart.show_lines(points[0][0], np.stack([y for _, y in points]),
                                       [{"name": name, "colour": i} for i, name in enumerate(self.lyapunov)])
