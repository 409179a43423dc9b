"""Gradient analysis in plain numpy: norms through time, the verdict, per-gate flow.

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
    Steps at the end whose gradient is exactly 0 are not read by the loss (e.g. a loss on an
    earlier step's output): they are left out (``unread``), and the verdict is on the steps
    up to the last one the loss reads — a zero there is no "explosion" of the ratio.
    The text names the quantity it read (``QUANTITY_NAMES``), so the words match the chart's line,
    and says steps as the model numbers them: ``first`` is the model's number of the series' step 0
    (a window of steps, ``rw.trace(steps=...)``, starts at its first step; the views take it from
    ``widgets.payload.first_step``). ``steps`` and ``decade`` stay counted from the series' start.

Per-gate flow (``each_path``): the gradient leaving step t, split by the path it takes, from the
gates, states and total gradients δh_t = ∂L/∂h_t, δc_t = ∂L/∂c_t of the trace (PyTorch's cell
equations; ⊙ is the elementwise product, σ' = s(1-s) for a sigmoid output s).
    LSTM  c_t = f⊙c_{t-1} + i⊙g,  h_t = o⊙tanh(c_t)
        "forget carry"  δc_t ⊙ f_t                       reaches c_{t-1} with no weight in between
        "input gate"    δc_t ⊙ g_t ⊙ σ'(i_t)             these four are ∂L/∂(gate pre-activation):
        "forget gate"   δc_t ⊙ c_{t-1} ⊙ σ'(f_t)          they reach h_{t-1} only through the
        "candidate"     δc_t ⊙ i_t ⊙ (1 - g_t²)           recurrent weights W_h·
        "output gate"   δh_t ⊙ tanh(c_t) ⊙ σ'(o_t)
        With proj_size, h_t = W_hr (o⊙tanh(c_t)): the output gate path reads δm_t = ∂L/∂(o⊙tanh c_t)
        (``grads["m"]``, as wide as c) in place of δh_t; a trace without it has no output gate path.
    GRU   h_t = (1-z)⊙n + z⊙h_{t-1}
        "update carry"  δh_t ⊙ z_t                       reaches h_{t-1} with no weight in between
        "update gate"   δh_t ⊙ (h_{t-1} - n_t) ⊙ σ'(z_t)
        "candidate"     δh_t ⊙ (1-z_t) ⊙ (1 - n_t²)      (the reset gate acts inside this path: its
                                                          own share needs W_hn·h_{t-1}, not traced)
    RNN (tanh)  h_t = tanh(W_ih x_t + W_hh h_{t-1} + b)
        "recurrent"     δh_t ⊙ (1 - h_t²)                the only path back, through W_hh
The state before the first step (c_{-1}, h_{-1}) is ``initial`` when given, else zeros.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .kinds import GRU_GATES, LSTM_GATES, previous
from .timeaxis import on_axis

VANISHING_BELOW = 1e-2
QUANTITY_NAMES = {"h": "‖∂L/∂h_t‖ (hidden state)", "c": "‖∂L/∂c_t‖ (cell state)"}
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


def trace_norms(trace, key: str = "h") -> dict:
    """Layer name -> ``step_norms`` of its ∂L/∂<key> over its own valid steps (``layer_lengths``),
    on the trace's longest time axis: a shorter layer (an encoder beside its decoder) is NaN past
    its own steps. Layers without that gradient are left out."""
    return {name: on_axis(step_norms(lt.grads[key], trace.layer_lengths(name)), trace.steps)
            for name, lt in trace.layers.items() if key in lt.grads}


def _steps_text(n: int) -> str:
    """ "1 step", "5 steps"."""
    return f"{n} step{'' if n == 1 else 's'}"


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
    unread: int = 0           # steps at the end with exactly zero gradient, left out (not read by the loss)
    first: int = 0            # the model's number of the series' step 0 (a window of steps' first): the text adds it

    @property
    def measured(self) -> str:
        """What was read, in words: "‖∂L/∂c_t‖ (cell state)"."""
        return QUANTITY_NAMES.get(self.quantity, f"‖∂L/∂{self.quantity}_t‖")

    def text(self, thresholds: bool = True) -> str:
        """The verdict as plain-language sentences that name what they read, with the numbers
        (and the thresholds, unless ``thresholds`` is False: a view that says them once)."""
        if self.label == "none":
            return f"no gradient: {self.measured} is 0 at every step (the loss does not depend on this layer)."
        if math.isnan(self.first_mean) and math.isnan(self.last_mean):
            return (f"exploding: {self.measured} is NaN over the first {_steps_text(self.window)} and over the last "
                    f"{self.window} (a NaN in the forward or the loss), so they cannot be compared.")
        if not math.isfinite(self.first_mean) or not math.isfinite(self.last_mean) or math.isnan(self.ratio):
            return (f"exploding: {self.measured} is not finite (inf or NaN) at some step, "
                    f"mean over the first {_steps_text(self.window)} {self.first_mean:.3g}, "
                    f"over the last {self.last_mean:.3g}.")
        n = self.first    # a step as the model numbers it is n + the series' index
        end = n + self.steps - 1
        head = (f"{self.label}: {self.measured} averages {self.first_mean:.3g} over the first "
                f"{_steps_text(self.window)} and {self.last_mean:.3g} over the last {self.window} (to step {end}): "
                f"the start gets {self.ratio:.3g}× what the end gets")
        if self.decade is not None:
            s, e = n + self.decade[0], n + self.decade[1]
            change = "falls" if self.label != "exploding" and self.first_mean <= self.last_mean else "grows"
            head += f"; going back from step {e} it {change} 10× by step {s} ({e - s} steps)"
        head += "."
        if self.unread:
            head += (f" The last {self.unread} step{'s' if self.unread > 1 else ''} get exactly zero gradient "
                     f"(the loss does not read them), so they are left out: measured over steps {n}–{end}.")
        if not thresholds:
            return head
        return head + (f" Thresholds: vanishing below {VANISHING_BELOW:g}, exploding above "
                       f"{EXPLODING_ABOVE:g} or non-finite, healthy in between.")


def layer_verdict(layer, lengths=None, first: int = 0) -> "Verdict":
    """The verdict on a LayerTrace's gradient: on ∂L/∂c_t for an LSTM, on ∂L/∂h_t otherwise
    (``first``: the model's number of the layer's step 0, as ``verdict`` says)."""
    quantity = "c" if layer.kind == "lstm" and "c" in layer.grads else "h"
    return verdict(step_norms(layer.grads[quantity], lengths), quantity, _reached(layer.grads[quantity], lengths),
                   first)


def _reached(grad, lengths) -> np.ndarray:
    """(time,) bool: the steps some batch element runs (a NaN norm there is a NaN gradient)."""
    shape = np.shape(grad)
    return np.asarray(valid_mask(lengths, shape[0], shape[1]).any(axis=0))


def layer_verdicts(layer, lengths=None, first: int = 0) -> dict:
    """Every verdict a layer's chart lines need: {"c": ..., "h": ...} for an LSTM (the one
    ``layer_verdict`` judges by first), {"h": ...} otherwise. Both are drawn, so both are said."""
    judged = layer_verdict(layer, lengths, first)
    out = {judged.quantity: judged}
    if judged.quantity != "h" and "h" in layer.grads:
        out["h"] = verdict(step_norms(layer.grads["h"], lengths), "h", _reached(layer.grads["h"], lengths), first)
    return out


def verdict(norms, quantity: str = "h", reached=None, first: int = 0) -> Verdict:
    """The verdict on a series of norms through time (NaN marks steps no element reaches).

    ``first``: the model's number of the series' step 0 (a window of steps' first), which every
    step the text says counts from.

    ``reached``: (time,) bool, the steps some element runs, when known (``layer_verdict``): a NaN
    norm at one of them is a NaN gradient, judged non-finite ("exploding"), not a step left out.
    """
    norms = np.asarray(norms, dtype=np.float64)
    if norms.ndim != 1:
        raise ValueError(f"norms: expected a 1-d series over time, got shape {norms.shape}")
    if reached is not None and np.shape(reached) != norms.shape:
        raise ValueError(f"reached: expected a bool series of shape {norms.shape}, got {np.shape(reached)}")
    reached = np.flatnonzero(~np.isnan(norms) if reached is None else np.asarray(reached, dtype=bool))
    if reached.size == 0:
        raise ValueError("norms: no step is reached by any batch element (all NaN)")
    series = norms[: reached[-1] + 1]
    read = np.flatnonzero(~(series == 0.0))              # NaN counts as read (non-finite is judged)
    unread = 0
    if read.size and read[-1] < series.size - 1:        # trailing exact zeros: the loss reads no state there
        unread = series.size - 1 - int(read[-1])
        series = series[: read[-1] + 1]
    n = series.size
    k = max(1, int(round(n * WINDOW_FRACTION)))
    with np.errstate(invalid="ignore"), warnings.catch_warnings():   # a window of NaN only: its mean is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        head, tail = float(np.nanmean(series[:k])), float(np.nanmean(series[n - k:]))
    finite = bool(np.all(np.isfinite(series[~np.isnan(series)]))) and np.isfinite(head) and np.isfinite(tail)
    if finite and head == 0.0 and tail == 0.0:
        return Verdict("none", float("nan"), k, n, head, tail, None, quantity, first=first)
    if not finite:
        return Verdict("exploding", float("inf"), k, n, head, tail, None, quantity, unread, first)
    ratio = head / tail if tail > 0 else float("inf")
    label = "exploding" if ratio > EXPLODING_ABOVE else "vanishing" if ratio < VANISHING_BELOW else "healthy"
    return Verdict(label, ratio, k, n, head, tail, _decade(series), quantity, unread, first)


def _decade(series: np.ndarray) -> Optional[tuple]:
    """(s, e): going back from the last step e, the first step whose norm is 10x off from e's
    (a NaN step never is); one vectorised comparison over the steps before e."""
    e = series.size - 1
    ref = series[e]
    head = series[:e]
    with np.errstate(invalid="ignore", over="ignore"):
        off = head >= ref * 10
        if ref > 0:
            off |= head <= ref / 10
    hits = np.flatnonzero(off)
    return (int(hits[-1]), e) if hits.size else None


def _sig_slope(s):
    return s * (1.0 - s)


def gate_flow(kind: str, gates: dict, states: dict, grads: dict, lengths=None, initial=None,
              reverse: bool = False) -> dict:
    """Per path, the step norms (``step_norms``) of ``each_path``: path name -> (time,) array.

    Each path's array is reduced as soon as it is made, so only one is held at a time.
    """
    return {name: step_norms(a, lengths)
            for name, a in each_path(kind, gates, states, grads, initial, reverse, lengths)}


def each_path(kind: str, gates: dict, states: dict, grads: dict, initial=None, reverse: bool = False,
              lengths=None):
    """The gradient leaving each step by path: (path name, (batch, time, units) array) one at a
    time, in the order of the module docstring (formulas there).

    ``initial``: the state the layer started from, (batch, units) — c_0 for an LSTM, h_0 for a
    GRU; zeros when None. ``reverse``: the layer runs backward in time (a bidirectional module's
    second direction), so its state before step t is step t+1's, and ``initial`` feeds each
    element's last valid step (``lengths``; all steps when None). A kind without gates ("cell",
    "custom") has no paths to split: nothing.
    """
    if kind == "lstm":
        i, f, g, o = (_steps(f"gates[{k!r}]", gates[k]) for k in LSTM_GATES)
        c = _steps("states['c']", states["c"])
        dc = _steps("grads['c']", grads["c"])
        # what reaches o ⊙ tanh(c_t): δh_t, or with a projection (h narrower than c) δm_t
        dm = _steps("grads['m']", grads["m"]) if "m" in grads else _steps("grads['h']", grads["h"])
        yield "forget carry", dc * f
        yield "input gate", dc * g * _sig_slope(i)
        yield "forget gate", dc * previous(c, initial, reverse, lengths) * _sig_slope(f)
        yield "candidate", dc * i * (1.0 - g * g)
        if dm.shape == c.shape:
            yield "output gate", dm * np.tanh(c) * _sig_slope(o)
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
