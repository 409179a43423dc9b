"""Gradient analysis in plain numpy: norms through time, the verdict, per-gate flow, min/max history.

Everything here reads arrays laid out (batch, time, units), as a Trace holds them, and returns
float64 numpy; no torch, no widgets, so each piece is tested on arrays built by hand.

Norms through time
    ``step_norms(g, lengths)[t]`` = mean over the batch elements still running at step t of the
    Euclidean norm ‖g[b, t, :]‖. Steps no element reaches are NaN.

The verdict (``verdict``), on ‖∂L/∂h_t‖ — for an LSTM on ‖∂L/∂c_t‖ (``layer_verdict``): the cell
state is the LSTM's long-range path, while its ∂L/∂h_t at the last step is dominated by the
loss's direct term, which only reaches earlier steps through the gates.
    Over the n steps that some element reaches, with a window of k = max(1, round(n/10)) steps:
    ``ratio`` = mean norm over the first k steps / mean norm over the last k steps: how much of
    the gradient that is present at the end of the sequence still reaches its beginning.
    ``decade``: going back from the last step e, the first step s at which the norm has fallen
    below a tenth of its value at e (or, when it grows, risen above ten times it); the gradient
    changes 10× over the e - s steps in between. None when it never does.
    The label, by these thresholds:
        "exploding"  ratio > EXPLODING_ABOVE (100), or any norm is inf/NaN;
        "vanishing"  ratio < VANISHING_BELOW (0.01);
        "healthy"    in between;
        "none"       no gradient at all (every norm is 0).

Per-gate flow (``gate_paths``): the gradient leaving step t, split by the path it takes, from the
gates, states and total gradients δh_t = ∂L/∂h_t, δc_t = ∂L/∂c_t of the trace (PyTorch's cell
equations; ⊙ is the elementwise product, σ' = s(1-s) for a sigmoid output s).
    LSTM  c_t = f⊙c_{t-1} + i⊙g,  h_t = o⊙tanh(c_t)
        "forget carry"  δc_t ⊙ f_t                       reaches c_{t-1} with no weight in between
        "input gate"    δc_t ⊙ g_t ⊙ σ'(i_t)             these four are ∂L/∂(gate pre-activation):
        "forget gate"   δc_t ⊙ c_{t-1} ⊙ σ'(f_t)          they reach h_{t-1} only through the
        "candidate"     δc_t ⊙ i_t ⊙ (1 - g_t²)           recurrent weights W_h·
        "output gate"   δh_t ⊙ tanh(c_t) ⊙ σ'(o_t)
    GRU   h_t = (1-z)⊙n + z⊙h_{t-1}
        "update carry"  δh_t ⊙ z_t                       reaches h_{t-1} with no weight in between
        "update gate"   δh_t ⊙ (h_{t-1} - n_t) ⊙ σ'(z_t)
        "candidate"     δh_t ⊙ (1-z_t) ⊙ (1 - n_t²)      (the reset gate acts inside this path: its
                                                          own share needs W_hn·h_{t-1}, not traced)
    RNN (tanh)  h_t = tanh(W_ih x_t + W_hh h_{t-1} + b)
        "recurrent"     δh_t ⊙ (1 - h_t²)                the only path back, through W_hh
The state before the first step (c_{-1}, h_{-1}) is ``initial`` when given, else zeros.

Bounded history (``downsample_minmax``, ``MinMaxSeries``): a long series is cut into buckets and
each bucket keeps its minimum and its maximum (at their own steps), so a spike survives any
amount of downsampling.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .kinds import GRU_GATES, LSTM_GATES, previous

VANISHING_BELOW = 1e-2
EXPLODING_ABOVE = 1e2
WINDOW_FRACTION = 0.1


def _steps(name: str, a) -> np.ndarray:
    """A (batch, time, units) float array, kept in float32 when it is (a Trace's arrays are: no
    float64 copies of every gate), float64 otherwise."""
    a = np.asarray(a)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    if a.ndim != 3:
        raise ValueError(f"{name}: expected a (batch, time, units) array, got shape {a.shape}")
    return a


def valid_mask(lengths, batch: int, steps: int) -> np.ndarray:
    """(batch, time) bool: True where step t is within element b's length (all True when None)."""
    if lengths is None:
        return np.ones((batch, steps), dtype=bool)
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.shape != (batch,):
        raise ValueError(f"lengths: expected shape ({batch},), got {lengths.shape}")
    return np.arange(steps)[None, :] < lengths[:, None]


def step_norms(grad, lengths=None) -> np.ndarray:
    """Mean over running batch elements of ‖grad[b, t, :]‖ for each step t; NaN where none runs."""
    g = _steps("grad", grad)
    mask = valid_mask(lengths, g.shape[0], g.shape[1])
    norms = np.sqrt(np.einsum("btu,btu->bt", g, g).astype(np.float64))
    counts = mask.sum(axis=0)
    total = np.where(mask, norms, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, total / np.maximum(counts, 1), np.nan)


@dataclass
class Verdict:
    """How the gradient through time behaves; see the module docstring for the definitions."""

    label: str                # "vanishing" | "exploding" | "healthy" | "none"
    ratio: float              # mean norm over the first window / over the last window
    window: int               # steps in each window
    steps: int                # steps some element reaches
    first_mean: float
    last_mean: float
    decade: Optional[tuple]   # (s, e): the norm changes 10x going back from step e to step s
    quantity: str = "h"       # the state whose gradient was judged: "h", or "c" for an LSTM

    def text(self) -> str:
        """The verdict as one plain-language sentence with its numbers."""
        if self.label == "none":
            return f"none: no gradient reaches this layer (every ∂L/∂{self.quantity}_t is 0)."
        span = f"first {self.window} of {self.steps} steps"
        head = (f"{self.label}: the gradient reaching the {span} is {self.ratio:.3g}× "
                f"the gradient at the last {self.window} (mean ‖∂L/∂{self.quantity}_t‖ {self.first_mean:.3g} vs "
                f"{self.last_mean:.3g})")
        if self.decade is not None:
            s, e = self.decade
            change = "falls" if self.label != "exploding" and self.first_mean <= self.last_mean else "grows"
            head += f"; going back from step {e} it {change} 10× by step {s} ({e - s} steps)"
        return head + (f". Thresholds: vanishing below {VANISHING_BELOW:g}, exploding above "
                       f"{EXPLODING_ABOVE:g} or non-finite, healthy in between.")


def layer_verdict(layer, lengths=None) -> "Verdict":
    """The verdict on a LayerTrace's gradient: on ∂L/∂c_t for an LSTM, on ∂L/∂h_t otherwise."""
    quantity = "c" if layer.kind == "lstm" and "c" in layer.grads else "h"
    return verdict(step_norms(layer.grads[quantity], lengths), quantity)


def verdict(norms, quantity: str = "h") -> Verdict:
    """The verdict on a series of norms through time (NaN marks steps no element reaches)."""
    norms = np.asarray(norms, dtype=np.float64)
    if norms.ndim != 1:
        raise ValueError(f"norms: expected a 1-d series over time, got shape {norms.shape}")
    reached = np.flatnonzero(~np.isnan(norms))
    if reached.size == 0:
        raise ValueError("norms: no step is reached by any batch element (all NaN)")
    series = norms[: reached[-1] + 1]
    n = series.size
    k = max(1, int(round(n * WINDOW_FRACTION)))
    first, last = float(np.nanmean(series[:k])), float(np.nanmean(series[n - k:]))
    finite = bool(np.all(np.isfinite(series[~np.isnan(series)]))) and np.isfinite(first) and np.isfinite(last)
    if finite and first == 0.0 and last == 0.0:
        return Verdict("none", float("nan"), k, n, first, last, None, quantity)
    if not finite:
        return Verdict("exploding", float("inf"), k, n, first, last, None, quantity)
    ratio = first / last if last > 0 else float("inf")
    label = "exploding" if ratio > EXPLODING_ABOVE else "vanishing" if ratio < VANISHING_BELOW else "healthy"
    return Verdict(label, ratio, k, n, first, last, _decade(series), quantity)


def _decade(series: np.ndarray) -> Optional[tuple]:
    """(s, e): going back from the last step e, the first step whose norm is 10x off from e's."""
    e = series.size - 1
    ref = series[e]
    for s in range(e - 1, -1, -1):
        v = series[s]
        if np.isnan(v):
            continue
        if (ref > 0 and v <= ref / 10) or v >= ref * 10:
            return (s, e)
    return None


def _sig_slope(s):
    return s * (1.0 - s)


def gate_paths(kind: str, gates: dict, states: dict, grads: dict, initial=None, reverse: bool = False,
               lengths=None) -> dict:
    """The gradient leaving each step by path, (batch, time, units) arrays by path name.

    Formulas in the module docstring. ``initial``: the state the layer started from, (batch,
    units) — c_0 for an LSTM, h_0 for a GRU; zeros when None. ``reverse``: the layer runs backward
    in time (a bidirectional module's second direction), so its state before step t is step
    t+1's, and ``initial`` feeds each element's last valid step (``lengths``; all steps when None).
    A kind without gates ("cell", "custom") has no paths to split: an empty dict.
    """
    return dict(_each_path(kind, gates, states, grads, initial, reverse, lengths))


def gate_flow(kind: str, gates: dict, states: dict, grads: dict, lengths=None, initial=None,
              reverse: bool = False) -> dict:
    """Per path, the step norms (``step_norms``) of ``gate_paths``: path name -> (time,) array.

    Each path's array is reduced as soon as it is made, so only one is held at a time.
    """
    return {name: step_norms(a, lengths)
            for name, a in _each_path(kind, gates, states, grads, initial, reverse, lengths)}


def _each_path(kind, gates, states, grads, initial, reverse=False, lengths=None):
    """(path name, array) one at a time, in the order of the module docstring."""
    if kind == "lstm":
        i, f, g, o = (_steps(f"gates[{k!r}]", gates[k]) for k in LSTM_GATES)
        c = _steps("states['c']", states["c"])
        dh, dc = _steps("grads['h']", grads["h"]), _steps("grads['c']", grads["c"])
        yield "forget carry", dc * f
        yield "input gate", dc * g * _sig_slope(i)
        yield "forget gate", dc * previous(c, initial, reverse, lengths) * _sig_slope(f)
        yield "candidate", dc * i * (1.0 - g * g)
        yield "output gate", dh * np.tanh(c) * _sig_slope(o)
    elif kind == "gru":
        z, n = (_steps(f"gates[{k!r}]", gates[k]) for k in GRU_GATES[1:])  # update, new
        h = _steps("states['h']", states["h"])
        dh = _steps("grads['h']", grads["h"])
        yield "update carry", dh * z
        yield "update gate", dh * (previous(h, initial, reverse, lengths) - n) * _sig_slope(z)
        yield "candidate", dh * (1.0 - z) * (1.0 - n * n)
    elif kind == "rnn":
        h = _steps("states['h']", states["h"])
        dh = _steps("grads['h']", grads["h"])
        yield "recurrent", dh * (1.0 - h * h)


def downsample_minmax(y, max_points: int, x=None):
    """At most ``max_points`` (x, y) points of a series, keeping each bucket's min and max.

    The series is cut into max_points // 2 buckets of consecutive points; each keeps its minimum
    and its maximum, in step order, so no spike is ever dropped. NaN points are skipped. A series
    that already fits is returned as it is.
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.arange(y.size, dtype=np.float64) if x is None else np.asarray(x, dtype=np.float64)
    if y.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"expected 1-d x and y of one length, got {x.shape} and {y.shape}")
    if max_points < 2:
        raise ValueError(f"max_points: expected at least 2, got {max_points}")
    if y.size <= max_points:
        return x, y
    xs, ys = [], []
    for idx in np.array_split(np.arange(y.size), max_points // 2):
        seg = y[idx]
        if np.all(np.isnan(seg)):
            continue
        lo, hi = idx[np.nanargmin(seg)], idx[np.nanargmax(seg)]
        for j in sorted({lo, hi}):
            xs.append(x[j])
            ys.append(y[j])
    return np.array(xs), np.array(ys)


class MinMaxSeries:
    """A series that grows one point at a time in bounded memory, keeping spikes.

    Points land in buckets of ``width`` consecutive appends; each bucket keeps its minimum and
    maximum and their steps. When ``max_points // 2`` buckets are full, pairs of neighbours merge and the width doubles, so memory stays O(max_points) over any number of
    appends, every bucket covers the same number of appends, and the global min and max (the
    spikes) are always among the points.
    """

    def __init__(self, max_points: int = 2000):
        if max_points < 4 or max_points % 4:
            raise ValueError(f"max_points: expected a multiple of 4, got {max_points}")
        self.max_buckets = max_points // 2
        self.width = 1
        self.count = 0                              # points appended so far
        self._lo = np.empty((0, 2))                 # closed buckets: rows of (step, value)
        self._hi = np.empty((0, 2))
        self._open = None                           # (lo_step, lo, hi_step, hi, n) of the open bucket

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

    def buckets(self) -> int:
        return len(self._lo) + (self._open is not None)

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
