"""``rw.TrainingMonitor``: the monitor view (rnnwidgets/widgets/monitor.py) on a live model.

The view reaches torch only through the live object made here, at the entry point.
"""
from __future__ import annotations

import time

from .entrypoints import live
from .widgets import monitor


class TrainingMonitor(monitor.TrainingMonitor):
    __doc__ = monitor.TrainingMonitor.__doc__

    def __init__(self, model, probe=None, clip: float | None = None, every: int = 100, max_points: int = 2000,
                 interval: float = 0.1, clock=time.monotonic, *, hidden=None, args=(), kwargs=None):
        # hidden, args, kwargs: what the forward needs besides the probe's inputs, as for rw.trace
        model_ = live(model, "TrainingMonitor", hidden=hidden, args=args, kwargs=kwargs)
        super().__init__(model_, probe=probe, clip=clip, every=every, max_points=max_points, interval=interval,
                         clock=clock)
