"""``rw.fixed_points``: the states a layer's step maps to themselves at a constant input.

Minimises q(s) = ½‖s − F(s)‖² (Sussillo & Barak 2013) from many states at once in float64:
Adam first (it walks off the trajectory towards slow regions), then Levenberg–Marquardt on
s − F(s) = 0 with the closed-form Jacobian (quadratic convergence to machine precision near a
root, saddles included). Points with q at or below ``tol`` are deduplicated and their Jacobian
eigen-decomposed (numpy, ``dynamics_analysis``).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import nn

from ..dynamics_analysis import FixedPoints, deduplicate, eigen
from ..tracedata import Trace
from .call import refuse_scripted, unwrap
from .jacobians import recurrences


def fixed_points(model: nn.Module, layer: Optional[str] = None, input=None, n_init: int = 256, tol: float = 1e-10,
                 states=None, noise: float = 0.0, adam_steps: int = 300, newton_steps: int = 60,
                 unique: float = 1e-4, seed: int = 0) -> FixedPoints:
    """Fixed points of one layer's step at a constant ``input`` (zeros by default).

    ``layer``: a name as ``rw.trace`` gives it ("gru.l0"; may be left out when the model has one).
    ``states``: where the search starts — an array (n, state_size) or (batch, time, state_size),
    a Trace or a ``rw.Dynamics`` (its states along the trajectory); ``n_init`` of them are drawn
    (with ``noise``: Gaussian noise of that standard deviation added). Without ``states``, starts
    uniform in [-1, 1]. ``tol``: the largest q kept; ``unique``: points closer than this are one.
    """
    refuse_scripted("rw.fixed_points", model)
    found = recurrences(unwrap(model), who="rw.fixed_points")
    if not found:
        raise ValueError(f"rw.fixed_points: expected a model holding an nn.LSTM / nn.GRU / nn.RNN or a cell "
                         f"(nn.LSTMCell / GRUCell / RNNCell), whose step has a closed form; {type(model).__name__} "
                         "has none (a hand-written step module is not supported here, though rw.dynamics "
                         "differentiates it)")
    if layer is None:
        if len(found) != 1:
            raise ValueError(f"rw.fixed_points: layer= is needed: one of {sorted(found)}")
        layer = next(iter(found))
    if layer not in found:
        raise ValueError(f"rw.fixed_points: layer must be one of {sorted(found)}, got {layer!r}")
    if isinstance(n_init, bool) or not isinstance(n_init, int) or n_init < 1:
        raise ValueError(f"rw.fixed_points: n_init must be a positive integer, got {n_init!r}")
    rec = found[layer][1].to(torch.float64)
    device = rec.w_hh.device
    x = torch.zeros(rec.input_size, dtype=torch.float64, device=device)
    if input is not None:
        given = input.detach().cpu() if isinstance(input, torch.Tensor) else input   # on any device
        x = torch.as_tensor(np.asarray(given, dtype=np.float64), device=device).reshape(-1)
        if x.shape[0] != rec.input_size:
            raise ValueError(f"rw.fixed_points: input must have {rec.input_size} values (the layer's input size), "
                             f"got {x.shape[0]}")
    rng = np.random.default_rng(seed)
    start = initial_states(states, layer, rec.state_size, n_init, rng)
    if noise:
        start = start + noise * rng.standard_normal(start.shape)
    s = torch.as_tensor(start, dtype=torch.float64, device=device)
    xs = x.expand(len(s), -1)
    s = minimise(rec, xs, s, adam_steps, newton_steps, tol)
    with torch.no_grad():
        q = (0.5 * ((s - rec.step(xs, s)) ** 2).sum(-1)).cpu().numpy()
    minima = s.cpu().numpy()
    ok = np.flatnonzero(q <= tol)
    keep = ok[deduplicate(minima[ok], q[ok], unique)]
    points = torch.as_tensor(minima[keep], device=device)
    with torch.no_grad():
        jac = rec.jacobian(x.expand(len(points), -1), points).cpu().numpy()
    values, stable, modes = eigen(jac) if len(keep) else (np.zeros((0, rec.state_size), complex),
                                                             np.zeros(0, bool), [])
    return FixedPoints(layer, minima[keep], q[keep], values, stable, modes,
                       meta={"input": x.cpu().numpy(), "started": len(s), "converged": len(ok),
                             "width": rec.width})


def initial_states(states, layer: str, size: int, n: int, rng) -> np.ndarray:
    """``n`` starting states (n, size) drawn from what was given (module doc)."""
    if states is None:
        return rng.uniform(-1, 1, (n, size))
    if isinstance(states, Trace):
        lt = states.layers[layer]
        rows = np.concatenate([lt.states[k] for k in ("h", "c") if k in lt.states], axis=-1)
        rows = rows[np.arange(rows.shape[1])[None, :] < states.lengths[:, None]]
    elif hasattr(states, "layers"):                  # a Dynamics
        d = states.layers[layer]
        rows = d.states[np.arange(d.states.shape[1])[None, :] < d.lengths[:, None]]
    else:
        rows = np.asarray(states.detach().cpu() if isinstance(states, torch.Tensor) else states, dtype=np.float64)
        rows = rows.reshape(-1, rows.shape[-1])
    if rows.shape[-1] != size:
        raise ValueError(f"rw.fixed_points: states must have {size} values per row (the state of {layer}), "
                         f"got {rows.shape[-1]}")
    rows = rows[np.isfinite(rows).all(axis=1)]
    if len(rows) == 0:
        raise ValueError("rw.fixed_points: states has no finite row to start from")
    return rows[rng.choice(len(rows), size=n, replace=len(rows) < n)].astype(np.float64)


def minimise(rec, xs, s, adam_steps: int, newton_steps: int, tol: float) -> torch.Tensor:
    """Adam on the sum of q, then Levenberg–Marquardt per point; returns the final states."""
    s = s.clone().requires_grad_(True)
    opt = torch.optim.Adam([s], lr=1e-2)
    with torch.enable_grad():
        for _ in range(adam_steps):
            opt.zero_grad()
            q = 0.5 * ((s - rec.step(xs, s)) ** 2).sum()
            q.backward()
            opt.step()
    s = s.detach()
    eye = torch.eye(s.shape[1], dtype=s.dtype, device=s.device)
    damping = torch.full((len(s), 1, 1), 1e-3, dtype=s.dtype, device=s.device)
    with torch.no_grad():
        g = s - rec.step(xs, s)
        q = 0.5 * (g ** 2).sum(-1)
        for _ in range(newton_steps):
            if bool((q <= tol * 1e-3).all()):
                break
            a = eye - rec.jacobian(xs, s)                                       # d(s - F(s))/ds
            at = a.transpose(-1, -2)
            delta = torch.linalg.solve(at @ a + damping * eye, (at @ g.unsqueeze(-1))).squeeze(-1)
            trial = s - delta
            g_trial = trial - rec.step(xs, trial)
            q_trial = 0.5 * (g_trial ** 2).sum(-1)
            better = q_trial < q
            s = torch.where(better[:, None], trial, s)
            g = torch.where(better[:, None], g_trial, g)
            q = torch.where(better, q_trial, q)
            damping = torch.where(better[:, None, None], damping * 0.1, damping * 10).clamp(1e-12, 1e8)
    return s
