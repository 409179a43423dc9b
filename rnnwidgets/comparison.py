"""Two runs side by side (``rw.compare``): numpy only.

Runs of different lengths are aligned at their start: step t of one is step t of the other, and
the steps past the shorter run are unmatched (the difference is NaN there). A unit differs at a
step when ``|A - B| > tau``, or when the difference is not finite (one run blew up); the first
divergence is the first step where any unit differs. js/src/compare.ts applies the same rule
to the differences this module computes, so a tau set in the browser needs no kernel.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .kinds import last_forward_layer
from .tracedata import Trace

TAU = 1e-3  # the default threshold: about a colour step of a ±1 heatmap (2 / 256)


def check_tau(tau) -> float:
    """``tau`` as a float; refused unless a finite number >= 0."""
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.floating, np.integer)) \
            or not math.isfinite(tau) or tau < 0:
        raise ValueError(f"tau: expected a finite number >= 0 (how far apart two values may be and still "
                         f"count as equal), got {tau!r}")
    return float(tau)


def difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A - B of (steps_a, units) and (steps_b, units) aligned at their start: (max steps, units)
    float32, NaN at the unmatched steps (past the shorter run)."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"difference: expected two (steps, units) arrays of as many units, got shapes "
                         f"{a.shape} and {b.shape}")
    matched = min(a.shape[0], b.shape[0])
    out = np.full((max(a.shape[0], b.shape[0]), a.shape[1]), np.nan, dtype=np.float32)
    with np.errstate(invalid="ignore"):   # inf - inf is NaN, a non-finite difference ``differs`` flags
        np.subtract(a[:matched], b[:matched], out=out[:matched], dtype=np.float32)
    return out


def differs(diff: np.ndarray, tau: float) -> np.ndarray:
    """Where a unit differs: ``|diff| > tau`` or a non-finite difference (bool, diff's shape).
    Compared in float64, as the browser compares, so both agree at the threshold."""
    return ~(np.abs(diff.astype(np.float64)) <= check_tau(tau))


def first_divergence(diff: np.ndarray, matched: int, tau: float = TAU) -> Optional[int]:
    """The first of the ``matched`` steps of a (steps, units) difference where any unit differs,
    or None when they agree throughout."""
    steps = np.flatnonzero(differs(diff[:matched], tau).any(axis=1))
    return int(steps[0]) if steps.size else None


def differing_units(diff: np.ndarray, matched: int, tau: float = TAU) -> np.ndarray:
    """The units that differ at any of the ``matched`` steps, in increasing order (int64)."""
    return np.flatnonzero(differs(diff[:matched], tau).any(axis=0))


class Comparison:
    """Batch element ``batch`` of two Traces of the same model shape, layer by layer.

    ``layers``: the layers both traces have (in A's order), each quantity of as many units in
    both; a layer whose units differ is refused with a sentence. Each layer's runs are cut to
    their valid steps (``Trace.layer_lengths``) and aligned at their start.
    """

    def __init__(self, a: Trace, b: Trace, batch: int = 0, names: tuple = ("A", "B")):
        for side, trace in zip("ab", (a, b)):
            if not isinstance(trace, Trace):
                raise TypeError(f"compare: expected two rnnwidgets.Trace (or a model and inputs), got "
                                f"{type(trace).__name__} as {side}")
            assert trace.batch is not None  # a validated Trace sets it
            if not 0 <= batch < trace.batch:
                raise IndexError(f"compare: batch element {batch} is out of range: {side} holds {trace.batch}")
        if len(names) != 2 or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"names: expected two non-empty strings naming the runs, got {names!r}")
        self.a, self.b, self.batch, self.names = a, b, int(batch), (str(names[0]), str(names[1]))
        self.layers = [name for name in a.layers if name in b.layers]
        if not self.layers:
            raise ValueError(f"compare: the traces share no layer: A has {list(a.layers)}, B has {list(b.layers)}")
        self._quantities = {}
        for name in self.layers:
            qa, qb = a.layers[name].quantities(), b.layers[name].quantities()
            for q in qa.keys() & qb.keys():
                if qa[q].shape[2] != qb[q].shape[2]:
                    raise ValueError(f"compare: layer {name!r} {q} has {qa[q].shape[2]} units in A and "
                                     f"{qb[q].shape[2]} in B: expected runs of the same model shape")
            self._quantities[name] = [q for q in qa if q in qb]

    def default_layer(self) -> str:
        """The layer a model hands on, as the Explorer shows first."""
        return last_forward_layer(self.layers)

    def quantities(self, layer: str) -> list:
        return list(self._quantities[self.check_layer(layer)])

    def check_layer(self, layer: str) -> str:
        if layer not in self._quantities:
            raise ValueError(f"layer: expected one of {self.layers}, got {layer!r}")
        return layer

    def check_quantity(self, layer: str, quantity: str) -> str:
        names = self.quantities(layer)
        if quantity not in names:
            raise ValueError(f"quantity: expected one of {names} (layer {layer!r}), got {quantity!r}")
        return quantity

    def lengths(self, layer: str) -> tuple[int, int]:
        """The valid steps of A and of B in ``layer``."""
        self.check_layer(layer)
        return (int(self.a.layer_lengths(layer)[self.batch]), int(self.b.layer_lengths(layer)[self.batch]))

    def runs(self, layer: str, quantity: str) -> tuple[np.ndarray, np.ndarray]:
        """A's and B's (valid steps, units) arrays of ``quantity`` in ``layer``."""
        self.check_quantity(layer, quantity)
        la, lb = self.lengths(layer)
        return (self.a.layers[layer].quantities()[quantity][self.batch, :la],
                self.b.layers[layer].quantities()[quantity][self.batch, :lb])

    def difference(self, layer: str, quantity: str) -> np.ndarray:
        """A - B, (longer run's steps, units), NaN at the unmatched steps."""
        return difference(*self.runs(layer, quantity))

    def first_divergence(self, layer: str, quantity: str, tau: float = TAU) -> Optional[int]:
        """The first step where any unit of ``quantity`` differs by more than ``tau``, or None."""
        return first_divergence(self.difference(layer, quantity), min(self.lengths(layer)), tau)

    def differing_units(self, layer: str, quantity: str, tau: float = TAU) -> np.ndarray:
        """The units of ``quantity`` that differ by more than ``tau`` at some matched step."""
        return differing_units(self.difference(layer, quantity), min(self.lengths(layer)), tau)
