"""Dynamics of a recurrent network, numpy only: the results of ``rw.dynamics`` and
``rw.fixed_points`` and the arithmetic that needs no model — the QR accumulation of finite-time
Lyapunov exponents, the PCA plane of the states, deduplication and eigen-decomposition of fixed
points. The torch side (the step maps and their Jacobians) is ``capture/jacobians.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


# ---- finite-time Lyapunov exponents ------------------------------------------------------------------
class LyapunovQR:
    """The QR method (Benettin et al.; Eckmann & Ruelle): carry k orthonormal directions through
    the step Jacobians in the order the layer runs, re-orthonormalise after each step and sum
    log |R_ii|. ``update`` takes the Jacobians of one batch of steps; ``exponents`` divides each
    element's sums by its number of valid steps (nats per step). Float64 throughout."""

    def __init__(self, batch: int, state_size: int, k: int, seed: int = 0):
        self.k = min(k, state_size)
        q = np.random.default_rng(seed).standard_normal((state_size, self.k))
        q = np.linalg.qr(q)[0]
        self.q = np.repeat(q[None], batch, axis=0)                 # (B, S, k)
        self.sums = np.zeros((batch, self.k))
        self.count = np.zeros(batch, dtype=np.int64)

    def update(self, jacobians: np.ndarray, valid: np.ndarray) -> None:
        """``jacobians`` (B, steps, S, S) in the order the layer runs them; ``valid`` (B, steps) bool."""
        # the product in the Jacobians' own precision (no float64 copy of each S x S matrix)
        self.advance(lambda p, rows, q: jacobians[rows, p] @ q.astype(jacobians.dtype), valid)

    def advance(self, product, valid: np.ndarray) -> None:
        """Carry the directions through one batch of steps given only their products:
        ``product(p, rows, q)`` is J q (len(rows), S, k) for the p-th step of the batch and the
        batch elements ``rows`` (q: their directions, (len(rows), S, k) float64); ``valid``
        (B, steps) bool, the steps in the order the layer runs them."""
        every = np.arange(len(self.q))
        with np.errstate(divide="ignore"):
            for p in range(valid.shape[1]):
                rows = np.flatnonzero(valid[:, p])
                if rows.size == 0:
                    continue
                whole = rows.size == len(self.q)                   # every element: no gathers, no scatters
                moved = np.asarray(product(p, every if whole else rows, self.q if whole else self.q[rows]),
                                   dtype=np.float64)
                q, r = np.linalg.qr(moved)
                logs = np.log(np.abs(np.diagonal(r, axis1=-2, axis2=-1)))
                if whole:
                    self.sums += logs
                    self.q, self.count = q, self.count + 1
                else:
                    self.sums[rows] += logs
                    self.q[rows] = q
                    self.count[rows] += 1

    def exponents(self) -> np.ndarray:
        """(B, k) float64, largest first; NaN for an element without valid steps."""
        with np.errstate(invalid="ignore", divide="ignore"):
            out = self.sums / self.count[:, None]
        return -np.sort(-out, axis=1)


# ---- the PCA plane ----------------------------------------------------------------------------------
@dataclass
class PCA:
    """The states' principal components: ``components`` (units, 3), ``explained_variance`` (3,)
    (the variance along each), ``explained_variance_ratio`` (3,) (its share of the total),
    ``mean`` (units,), ``trajectory`` (batch, time, 3) (NaN past each element's length)."""

    components: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    mean: np.ndarray
    trajectory: np.ndarray

    def project(self, states) -> np.ndarray:
        """States (..., units) onto the components: (..., 3)."""
        states = np.asarray(states, dtype=np.float64)
        return (states[..., :self.mean.shape[0]] - self.mean) @ self.components

    # the tuple the API names: components, explained variance, trajectory
    def __iter__(self):
        return iter((self.components, self.explained_variance, self.trajectory))


def pca(states: np.ndarray, lengths=None, n: int = 3) -> PCA:
    """PCA of (batch, time, units) states over each element's valid steps."""
    states = np.asarray(states, dtype=np.float64)
    batch, steps, units = states.shape
    lengths = np.full(batch, steps) if lengths is None else np.asarray(lengths)
    valid = np.arange(steps)[None, :] < lengths[:, None]
    rows = states[valid]                                            # (N, units)
    mean = rows.mean(axis=0) if len(rows) else np.zeros(units)
    centred = rows - mean
    cov = centred.T @ centred / max(len(rows) - 1, 1)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1][:n]
    values, vectors = np.clip(values[order], 0, None), vectors[:, order]
    # a fixed sign per component (largest loading positive), so reruns draw the same picture
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])])
    vectors = vectors * np.where(signs == 0, 1, signs)
    if vectors.shape[1] < n:                                         # fewer units than components
        pad = n - vectors.shape[1]
        vectors = np.pad(vectors, ((0, 0), (0, pad)))
        values = np.pad(values, (0, pad))
    total = np.trace(cov)
    trajectory = (states - mean) @ vectors
    trajectory[~valid] = np.nan
    return PCA(vectors, values, values / total if total > 0 else np.zeros(n), mean, trajectory)


# ---- results --------------------------------------------------------------------------------------
@dataclass
class LayerDynamics:
    """One layer and direction: ``singular_values`` float32 (batch, time, k), the top k singular
    values of J_t = ds_t/ds_{t-1} (s = h, or [h, c] for an LSTM; for a reverse layer
    ds_t/ds_{t+1}), NaN past each element's length; ``lyapunov`` float64 (batch, k), the
    finite-time Lyapunov exponents over the valid steps (nats per step, largest first); ``pca``
    the PCA plane of h; ``states`` the state s per step (batch, time, state_size); ``sigma_min``
    float32 (batch, time), the smallest singular value of J_t (NaN past each element's length)."""

    name: str
    kind: str
    singular_values: np.ndarray
    lyapunov: np.ndarray
    pca: PCA
    states: np.ndarray
    lengths: np.ndarray
    meta: dict = field(default_factory=dict)
    sigma_min: Optional[np.ndarray] = None

    @property
    def sigma_max(self) -> np.ndarray:
        return self.singular_values[..., 0]

    def running_exponent(self) -> np.ndarray:
        """(batch, time): the mean of log sigma_max over the steps so far, in the order the layer
        runs them (an upper bound on the largest finite-time exponent up to each step)."""
        logs = np.log(self.singular_values[..., 0].astype(np.float64))
        if self.meta.get("direction") == "reverse":
            out = np.full(logs.shape, np.nan)
            for b, n in enumerate(self.lengths):
                out[b, :n] = (np.cumsum(logs[b, :n][::-1]) / np.arange(1, n + 1))[::-1]
            return out
        return np.cumsum(logs, axis=1) / np.arange(1, logs.shape[1] + 1)

    def __repr__(self):
        b, t, k = self.singular_values.shape
        return f"LayerDynamics({self.name!r}, kind={self.kind!r}, batch={b}, steps={t}, k={k})"


@dataclass
class Dynamics:
    """``rw.dynamics``: ``layers`` name -> LayerDynamics, named as in ``rw.trace``; ``trace`` the Trace."""

    layers: dict
    trace: object = None

    def __repr__(self):
        return f"Dynamics(layers=[{', '.join(self.layers)}])"


@dataclass
class FixedPoints:
    """``rw.fixed_points``: ``states`` (n, state_size) with q = ½‖s − F(s)‖² (``q``, (n,)) at or
    below the tolerance, deduplicated; ``eigenvalues`` (n, state_size) complex of the Jacobian at
    each point, largest modulus first; ``stable`` (n,) all |λ| < 1; ``unstable_modes`` one
    (m, state_size) complex array per point, its eigenvectors with |λ| >= 1 (rows, in the order of
    ``eigenvalues``)."""

    layer: str
    states: np.ndarray
    q: np.ndarray
    eigenvalues: np.ndarray
    stable: np.ndarray
    unstable_modes: list
    meta: dict = field(default_factory=dict)

    @property
    def saddles(self) -> np.ndarray:
        """Unstable points with exactly one unstable direction (the saddles between attractors)."""
        return np.array([len(m) == 1 for m in self.unstable_modes], dtype=bool)

    def __len__(self):
        return len(self.states)

    def __repr__(self):
        return (f"FixedPoints({self.layer!r}, n={len(self)}, stable={int(self.stable.sum())}, "
                f"unstable={int((~self.stable).sum())})")


def deduplicate(states: np.ndarray, q: np.ndarray, tol: float) -> np.ndarray:
    """Indices of distinct points, lowest q first: a point within ``tol`` (Euclidean) of one kept
    is dropped."""
    kept: list = []
    for i in np.argsort(q, kind="stable"):
        if all(np.linalg.norm(states[i] - states[j]) > tol for j in kept):
            kept.append(i)
    return np.array(kept, dtype=np.int64)


def eigen(jacobians: np.ndarray):
    """(eigenvalues (n, S) complex largest modulus first, stable (n,), unstable modes list of (m, S))."""
    values, vectors = np.linalg.eig(np.asarray(jacobians, dtype=np.float64))
    order = np.argsort(-np.abs(values), axis=1, kind="stable")
    values = np.take_along_axis(values, order, axis=1)
    vectors = np.take_along_axis(vectors, order[:, None, :], axis=2)
    unstable = np.abs(values) >= 1
    modes = [vectors[i][:, unstable[i]].T for i in range(len(values))]
    return values, ~unstable.any(axis=1), modes
