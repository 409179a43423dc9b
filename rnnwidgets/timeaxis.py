"""The time axis at every level of detail: runs of steps reduced to columns, and bounded histories.

numpy only. A sequence longer than a view is wide is cut into columns of ``width`` consecutive
steps (the last column may be shorter), each reduced to what the view draws: its min and max
(the Explorer's overview, where a one-step spike must survive), its maximum skipping NaN (the
gradient grids) or its mean (the still image). ``MinMaxSeries`` does the same for a series that
grows one point at a time (the training monitor). The front end's counterpart is js/src/timeaxis.ts.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np


def on_axis(series: np.ndarray, steps: int) -> np.ndarray:
    """A per-step series of one layer (its own steps first) on a time axis of ``steps`` steps:
    NaN (not drawn) past the layer's own steps, so layers of different lengths share a chart.
    A series longer than the axis is refused, never cut."""
    series = np.asarray(series, dtype=np.float64)
    if series.shape[0] > steps:
        raise ValueError(f"expected at most {steps} steps on this time axis, got {series.shape[0]}")
    out = np.full((steps, *series.shape[1:]), np.nan)
    out[: series.shape[0]] = series
    return out


def window_in_layer(t0: int, held: int, steps: int) -> tuple[int, int]:
    """The window of a long sequence, ``held`` steps from ``t0`` on the longest layer's axis, as
    one layer of ``steps`` steps holds it: (its first step, its steps held), kept inside the
    layer's own steps, so every window of that layer holds as many steps (js/src/timeaxis.ts
    ``windowInLayer`` reads windows by the same rule)."""
    count = min(held, steps)
    return max(0, min(int(t0), steps - count)), count


STEP_WINDOW = ("a slice or range of consecutive steps from 0 on (start >= 0, stop > start, step 1), "
               "such as slice(100, 200)")


def _whole(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def step_window(caller: str, steps) -> tuple[int, Optional[int]]:
    """The window of steps a user asked for (``rw.trace(steps=...)``, ``DynamicsView(steps=...)``):
    (start, stop or None: to each layer's end). A slice or range only: a 2-tuple could mean two
    steps or a window, and a negative index counts from an end that differs per layer, so each is
    refused with the exact call that would do what was meant."""
    if _whole(steps):
        n = int(steps)
        fix = f"for that step alone pass steps=slice({n}, {n + 1})" if n >= 0 else \
            "a negative index (counting from the end) is not taken: pass the step's own number k as slice(k, k + 1)"
        raise TypeError(f"{caller}: steps: expected a slice or range, got the single step {n}; {fix}")
    if isinstance(steps, (tuple, list)):
        fix = "steps=slice(start, stop)"
        if len(steps) == 2 and all(_whole(v) and v >= 0 for v in steps) and steps[0] < steps[1]:
            a, b = (int(v) for v in steps)
            fix = f"steps=slice({a}, {b}) or steps=range({a}, {b}) for " + \
                (f"steps {a} to {b - 1}" if b - a > 1 else f"step {a} alone")
        raise TypeError(f"{caller}: steps: expected a slice or range, got the {type(steps).__name__} {steps!r}, "
                        f"which could mean single steps or a window; pass {fix}")
    if not isinstance(steps, (slice, range)):
        raise TypeError(f"{caller}: steps: expected {STEP_WINDOW}, got {steps!r}")
    start, stop, step = steps.start, steps.stop, steps.step
    if all(v is None or _whole(v) for v in (start, stop)) and any(v is not None and v < 0 for v in (start, stop)):
        raise ValueError(f"{caller}: steps: expected step numbers counted from 0 on, got {steps!r}; a negative "
                         "index (counting from the end) is not taken, since layers may end at different steps: "
                         "pass slice(n - k, n) for the last k of n steps")
    start = 0 if start is None else start
    if not all(v is None or _whole(v) for v in (start, stop, step)) or step not in (None, 1) \
            or (stop is not None and stop <= start):
        raise ValueError(f"{caller}: steps: expected {STEP_WINDOW}, got {steps!r}")
    return int(start), None if stop is None else int(stop)


def column_width(steps: int, columns: int) -> int:
    """Steps per column so that at most ``columns`` columns cover ``steps`` steps (1 when they fit)."""
    if columns < 1:
        raise ValueError(f"columns: expected at least 1, got {columns}")
    return max(1, -(-steps // columns))


def reduce_columns(values: np.ndarray, width: int, reduce: Callable, axis: int = 0) -> np.ndarray:
    """``values`` with its time ``axis`` cut into runs of ``width`` steps, each run reduced by
    ``reduce(array, axis=...)`` (np.min, np.max, np.fmax.reduce, np.mean...). The full runs are
    reduced over a reshaped view (no copy of a large array); a shorter last run on its own."""
    v = np.moveaxis(values, axis, 0)
    steps = v.shape[0]
    whole = steps // width * width
    parts = [reduce(v[:whole].reshape(-1, width, *v.shape[1:]), axis=1)]
    if whole < steps:
        parts.append(reduce(v[whole:], axis=0)[None])
    return np.moveaxis(np.concatenate(parts), 0, axis)


def min_max_columns(values: np.ndarray, columns: int):
    """(time, units) -> (min, max, width): per column of ``width`` steps, each unit's min and max
    (NaN wins: a column holding a NaN step shows it)."""
    width = column_width(values.shape[0], columns)
    return reduce_columns(values, width, np.min), reduce_columns(values, width, np.max), width


def max_columns(rows: np.ndarray, columns: int):
    """(width, (rows, columns) array): ``rows`` (rows x steps) itself when it fits, else the
    maximum of each run of ``width`` steps, NaN skipped, so a one-step spike stays visible."""
    width = column_width(rows.shape[1], columns)
    if width == 1:
        return 1, rows
    return width, reduce_columns(rows, width, np.fmax.reduce, axis=1)


def mean_columns(values: np.ndarray, columns: int) -> np.ndarray:
    """(time, units), time averaged over runs of steps when longer than ``columns``. Sums run
    on the array as it is (float32: no full-size copy); a run holding a non-finite step stays
    non-finite, as the live view would colour it."""
    width = column_width(values.shape[0], columns)
    if width == 1:
        return values
    return reduce_columns(values, width, lambda a, axis: a.sum(axis=axis) / a.shape[axis])


class MinMaxSeries:
    """A series that grows one point at a time in bounded memory, keeping spikes.

    Points land in buckets of ``width`` consecutive appends; each bucket keeps its minimum and
    maximum and their steps. When ``max_points // 2`` buckets are full, pairs of neighbours merge
    and the width doubles, so memory stays O(max_points) over any number of appends, every bucket
    covers the same number of appends, and the global min and max (the spikes) are always among
    the points.
    """

    def __init__(self, max_points: int = 2000):
        if max_points < 4 or max_points % 4:
            raise ValueError(f"max_points: expected a multiple of 4, got {max_points}")
        self.max_buckets = max_points // 2
        self.width = 1
        self.count = 0                              # points appended so far
        self._lo = np.empty((0, 2))                 # closed buckets: rows of (step, value)
        self._hi = np.empty((0, 2))
        self._open: Optional[list] = None           # (lo_step, lo, hi_step, hi, n) of the open bucket

    def append(self, step: float, value: float):
        value = float(value)
        o = self._open
        if o is None:
            o = [step, value, step, value, 0]
        else:  # a comparison with NaN is False: NaN never displaces a number, any number displaces NaN
            if value < o[1] or np.isnan(o[1]):
                o[0], o[1] = step, value
            if value > o[3] or np.isnan(o[3]):
                o[2], o[3] = step, value
        o[4] += 1
        self._open = o
        self.count += 1
        if o[4] == self.width:
            self._close()

    def _close(self):
        lo_step, lo, hi_step, hi, _ = self._open
        self._lo = np.vstack([self._lo, [lo_step, lo]])
        self._hi = np.vstack([self._hi, [hi_step, hi]])
        self._open = None
        if len(self._lo) == self.max_buckets:   # full: halve now, so the next open bucket fits
            self._merge_pairs()

    def _merge_pairs(self):
        lo_pairs, hi_pairs = self._lo.reshape(-1, 2, 2), self._hi.reshape(-1, 2, 2)
        lo_pick = np.argmin(np.where(np.isnan(lo_pairs[:, :, 1]), np.inf, lo_pairs[:, :, 1]), axis=1)
        hi_pick = np.argmax(np.where(np.isnan(hi_pairs[:, :, 1]), -np.inf, hi_pairs[:, :, 1]), axis=1)
        rows = np.arange(len(lo_pairs))
        self._lo, self._hi = lo_pairs[rows, lo_pick], hi_pairs[rows, hi_pick]
        self.width *= 2

    def points(self):
        """(steps, values) in step order: each bucket's min and max (one point when they coincide)."""
        lo, hi = self._lo, self._hi
        if self._open is not None:
            o = self._open
            lo, hi = np.vstack([lo, [o[0], o[1]]]), np.vstack([hi, [o[2], o[3]]])
        if len(lo) == 0:
            return np.empty(0), np.empty(0)
        first_lo = lo[:, 0] <= hi[:, 0]
        a = np.where(first_lo[:, None], lo, hi)
        b = np.where(first_lo[:, None], hi, lo)
        same = a[:, 0] == b[:, 0]
        pairs = np.stack([a, b], axis=1)                     # (buckets, 2, 2)
        keep = np.ones((len(lo), 2), dtype=bool)
        keep[same, 1] = False
        flat = pairs[keep]
        return flat[:, 0].copy(), flat[:, 1].copy()

    def maxima(self):
        """(steps, values): each bucket's maximum, one per bucket; the heatmap's columns."""
        hi = self._hi
        if self._open is not None:
            hi = np.vstack([hi, [self._open[2], self._open[3]]])
        return hi[:, 0].copy(), hi[:, 1].copy()
