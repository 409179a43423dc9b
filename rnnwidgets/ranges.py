"""Value ranges: finite min/max, robust colour limits and chart axis ranges, in one place.

numpy only. Non-finite values (NaN, ±inf) never set a range: views draw them in a colour of
their own. How a quantity is coloured follows its kind's rules (``rnnwidgets.kinds``): sigmoid
gates 0..1, states and tanh gates diverging around 0, tracks by the sign of their values.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .kinds import GATES, SIGMOID_GATES, STATES

SCALES = ("diverging", "sequential", "log")
# States and tanh gates: signed by construction, so diverging however their values fall.
SIGNED = frozenset({*(s for states in STATES.values() for s in states),
                    *(g for gates in GATES.values() for g in gates if g not in SIGMOID_GATES)})


def finite_range(array, positive: bool = False) -> Optional[tuple]:
    """(min, max) of the finite (with ``positive``: finite and > 0) values as floats, or None when
    there are none. Two plain passes when all values are finite (the usual case: no masked copy
    of a large array)."""
    a = np.asarray(array)
    if positive:
        a = a[np.isfinite(a) & (a > 0)]
        return (float(a.min()), float(a.max())) if a.size else None
    lo, hi = a.min(initial=np.inf), a.max(initial=-np.inf)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        a = a[np.isfinite(a)]
        if not a.size:
            return None
        lo, hi = a.min(), a.max()
    return float(lo), float(hi)


def max_abs(array) -> float:
    """The largest finite magnitude, 0 when nothing is finite."""
    span = finite_range(array)
    return max(-span[0], span[1]) if span else 0.0


# Robust colour limits: each unit's 99th percentile of |value| (one spike in a unit does not set
# its peak), then the upper quartile of those unit peaks. A quarter of the units may saturate at
# their extremes, but one or a few saturated units (a cell state at ±10 beside a counter at 0..4)
# no longer turn every other row pale. Percentiles come from at most SAMPLE values, evenly
# strided over the steps, so a 100M-value trace costs a sample, not a sort.
UNIT_PERCENTILE = 99.0
UNITS_QUANTILE = 75.0
SAMPLE = 1 << 20
TRANSPOSE_CELLS = 1 << 14  # values per block of transposed_abs (at least 32 steps)


def robust_max_abs(array) -> float:
    """The robust magnitude of ``array`` (..., units): the upper quartile of the units' 99th
    percentiles of |finite values|, from an evenly strided sample of the steps. Falls back to the
    largest finite magnitude when that is 0 (sparse units), and is 0 when nothing is finite."""
    a = np.asarray(array)
    rows = a.reshape(-1, a.shape[-1]) if a.ndim >= 2 and a.shape[-1] else a.reshape(-1, 1)
    if not rows.size:
        return 0.0
    stride = -(-rows.shape[0] * rows.shape[1] // SAMPLE)
    kind = rows.dtype if rows.dtype.kind == "f" else np.dtype(np.float64)
    sample = transposed_abs(rows[::stride], kind)  # (units, steps): a unit per row
    peaks = unit_peaks(sample)
    if not peaks.size:
        return max_abs(a)
    top = percentile(peaks.astype(np.float64), UNITS_QUANTILE)
    return top if top > 0 else max_abs(a)


def transposed_abs(rows: np.ndarray, dtype) -> np.ndarray:
    """|rows| transposed into a new C-order (units, steps) array of ``dtype``, a block of steps at
    a time: a plain transposing copy reads one value per cache line (6x as long for 1,000 x 256 float32)."""
    out = np.empty(rows.shape[::-1], dtype=dtype)
    steps = max(32, TRANSPOSE_CELLS // max(1, rows.shape[1]))
    for start in range(0, rows.shape[0], steps):
        block = rows[start:start + steps]
        np.abs(block.T, out=out[:, start:start + block.shape[0]], dtype=dtype)
    return out


def unit_peaks(sample: np.ndarray) -> np.ndarray:
    """Each row's UNIT_PERCENTILE of its finite values, "higher" (a value the unit reached: its
    max under 100 steps); rows with nothing finite are left out. A partial selection per row, the
    same as ``np.nanpercentile(..., method="higher")`` at a fraction of its cost."""
    finite = np.isfinite(sample)
    if finite.all():
        k = ceil_index(sample.shape[1])
        return np.partition(sample, k, axis=1)[:, k]
    counts = finite.sum(axis=1)
    keep = counts > 0
    ordered = np.sort(np.where(finite, sample, -np.inf)[keep], axis=1)  # the non-finite sort first
    n, counts = sample.shape[1], counts[keep]
    at = n - counts + np.array([ceil_index(c) for c in counts], dtype=np.intp)
    return np.take_along_axis(ordered, at[:, None], axis=1)[:, 0]


def percentile(values: np.ndarray, q: float) -> float:
    """``np.percentile(values, q)`` (its default "linear" method) of a 1-D array of finite values:
    the same float, from a partial selection of the two values it lies between. np.percentile
    itself calls np.unique, which imports numpy.ma on first use (tens of ms in a fresh kernel,
    on the path of the first ``rw.explore``)."""
    n = values.size
    at = (n - 1) * (q / 100)
    if at >= n - 1:
        return float(values.max())
    below = int(np.floor(at))
    part = np.partition(values, (below, below + 1))
    lo, hi, gamma = part[below], part[below + 1], at - below
    step = hi - lo
    # numpy's _lerp: from the nearer end, so that the result stays between lo and hi
    return float(hi - step * (1 - gamma) if gamma >= 0.5 else lo + step * gamma)


def ceil_index(n: int) -> int:
    """The index of the "higher" UNIT_PERCENTILE among ``n`` sorted values."""
    return int(np.ceil(UNIT_PERCENTILE / 100 * (n - 1)))


def colour_scale(name: str, array) -> dict:
    """How to colour quantity ``name`` over all of ``array`` (..., units), so batch elements compare.

    Sigmoid gates: 0..1. Everything else has robust limits (``robust_max_abs``); values beyond
    them saturate. Anything that can go negative (h, c, tanh candidates, most tracks): diverging,
    symmetric around 0. Non-negative tracks (e.g. a ReLU): sequential from 0.
    """
    if name in SIGMOID_GATES:
        return {"scale": "sequential", "vmin": 0.0, "vmax": 1.0}
    top = robust_max_abs(array) or 1.0
    if name not in SIGNED:
        span = finite_range(array)
        if span and span[0] >= 0:
            return {"scale": "sequential", "vmin": 0.0, "vmax": top}
    return {"scale": "diverging", "vmin": -top, "vmax": top}


def colour_limits(values, scale: str) -> tuple[float, float]:
    """A colour scale's ends for ``values``: symmetric around 0 for "diverging", the finite range
    for "sequential", the positive finite magnitudes' range for "log" (a placeholder range when
    nothing qualifies, so the legend still reads sensibly)."""
    if scale not in SCALES:
        raise ValueError(f"scale: expected one of {', '.join(SCALES)}, got {scale!r}")
    log = scale == "log"
    span = finite_range(np.abs(values) if log else values, positive=log)
    if span is None:
        return (1e-3, 1.0) if log else (-1.0, 1.0) if scale == "diverging" else (0.0, 1.0)
    lo, hi = span
    if scale == "diverging":
        top = max(abs(lo), abs(hi)) or 1.0
        return -top, top
    if lo == hi:
        return (lo / 2, hi * 2) if log else (lo - 0.5, hi + 0.5)
    return lo, hi


def axis_range(values, log: bool = False) -> Optional[tuple]:
    """A chart axis's (min, max) for ``values``: their finite (for a log axis, positive) range,
    widened when it is one point; None when nothing qualifies."""
    span = finite_range(np.asarray(values, dtype=np.float64), positive=log)
    if span is None:
        return None
    lo, hi = span
    if lo == hi:
        return (lo / 2, hi * 2) if log else (lo - max(abs(lo) * 0.05, 1e-9), hi + max(abs(hi) * 0.05, 1e-9))
    return lo, hi
