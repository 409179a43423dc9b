"""The recurrence as a map of its state: one step s_t = F(x_t, s_{t-1}) per layer and direction,
and its Jacobian J_t = dF/ds_{t-1} in closed form (inputs held fixed).

s is h for an RNN or a GRU and [h, c] for an LSTM (h is the projected h with ``proj_size``).
Every function here is batched over any leading dimensions (batch, time) and runs on the
weights' device and dtype; the weights are read from the module (``weight_hh_l{k}[_reverse]``
...) and never written. Step modules, which have no closed form, are differentiated through
``torch.func`` (see ``AutogradStep``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..kinds import layer_name

MODES = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu"}
CELLS = {nn.LSTMCell: "lstm", nn.GRUCell: "gru"}


@dataclass
class Recurrence:
    """One layer and direction of a recurrent module: its weights and its step as a map of the state."""

    mode: str                      # "lstm" | "gru" | "rnn_tanh" | "rnn_relu"
    w_ih: torch.Tensor             # (gates * hidden, input)
    w_hh: torch.Tensor             # (gates * hidden, width)
    b_ih: Optional[torch.Tensor]
    b_hh: Optional[torch.Tensor]
    w_hr: Optional[torch.Tensor] = None   # LSTM projection (proj_size, hidden)

    @property
    def hidden(self) -> int:
        return self.w_hh.shape[1] if self.w_hr is None else self.w_hr.shape[1]

    @property
    def width(self) -> int:
        """The width of h as the layer hands it on (proj_size when projected)."""
        return self.w_hh.shape[1]

    @property
    def state_size(self) -> int:
        return self.width + (self.hidden if self.mode == "lstm" else 0)

    @property
    def input_size(self) -> int:
        return self.w_ih.shape[1]

    def to(self, dtype) -> "Recurrence":
        cast = lambda t: None if t is None else t.to(dtype)  # noqa: E731
        return Recurrence(self.mode, self.w_ih.to(dtype), self.w_hh.to(dtype), cast(self.b_ih), cast(self.b_hh),
                          cast(self.w_hr))

    def split(self, s: torch.Tensor):
        """(h, c) of a state; c is None for kinds without a cell state."""
        if self.mode == "lstm":
            return s[..., :self.width], s[..., self.width:]
        return s, None

    def _pre(self, x, h):
        gi = x @ self.w_ih.T
        gh = h @ self.w_hh.T
        if self.b_ih is not None:
            gi, gh = gi + self.b_ih, gh + self.b_hh
        return gi, gh

    def step(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """F(x, s): the next state, (..., state_size)."""
        h, c = self.split(s)
        gi, gh = self._pre(x, h)
        if self.mode == "lstm":
            i, f, g, o = (gi + gh).chunk(4, dim=-1)
            c_new = f.sigmoid() * c + i.sigmoid() * g.tanh()
            h_new = o.sigmoid() * c_new.tanh()
            if self.w_hr is not None:
                h_new = h_new @ self.w_hr.T
            return torch.cat([h_new, c_new], dim=-1)
        if self.mode == "gru":
            ir, iz, in_ = gi.chunk(3, dim=-1)
            hr, hz, hn = gh.chunk(3, dim=-1)
            r, z = (ir + hr).sigmoid(), (iz + hz).sigmoid()
            n = (in_ + r * hn).tanh()
            return (1 - z) * n + z * h
        pre = gi + gh
        return pre.tanh() if self.mode == "rnn_tanh" else pre.relu()

    def _lstm_gates(self, x: torch.Tensor, s: torch.Tensor):
        """(i, f, g, o, c, tanh(c_new)) of an LSTM step, each (.., H)."""
        h, c = self.split(s)
        gi, gh = self._pre(x, h)
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
        return i, f, g, o, c, (f * c + i * g).tanh()

    def _lstm_blocks(self, x: torch.Tensor, s: torch.Tensor):
        """An LSTM's Jacobian in blocks: (dh/dh (.., W, P), dc/dh (.., H, P), dh/dc scale (.., H), f (.., H));
        dh/dc is diag(scale), projected by w_hr when there is one, and dc/dc is diag(f)."""
        col = lambda v: v.unsqueeze(-1)  # noqa: E731  (scales the rows of a weight matrix)
        wi, wf, wg, wo = self.w_hh.chunk(4, dim=0)                       # (H, P) each
        i, f, g, o, c, tc = self._lstm_gates(x, s)
        dc_dh = col(c * f * (1 - f)) * wf + col(g * i * (1 - i)) * wi + col(i * (1 - g * g)) * wg  # (.., H, P)
        through_c = o * (1 - tc * tc)
        dh_dh = col(tc * o * (1 - o)) * wo + col(through_c) * dc_dh                           # (.., H, P)
        if self.w_hr is not None:
            dh_dh = self.w_hr @ dh_dh
        return dh_dh, dc_dh, through_c * f, f

    def jacobian(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """dF/ds at (x, s): (..., state_size, state_size), rows the new state, columns the old."""
        if self.mode == "lstm":
            dh_dh, dc_dh, scale, f = self._lstm_blocks(x, s)
            dh_dc = torch.diag_embed(scale) if self.w_hr is None else self.w_hr * scale.unsqueeze(-2)
            top = torch.cat([dh_dh, dh_dc], dim=-1)
            bottom = torch.cat([dc_dh, torch.diag_embed(f)], dim=-1)
            return torch.cat([top, bottom], dim=-2)
        h, c = self.split(s)
        gi, gh = self._pre(x, h)
        col = lambda v: v.unsqueeze(-1)  # noqa: E731  (scales the rows of a weight matrix)
        if self.mode == "gru":
            wr, wz, wn = self.w_hh.chunk(3, dim=0)
            ir, iz, in_ = gi.chunk(3, dim=-1)
            hr, hz, hn = gh.chunk(3, dim=-1)
            r, z = (ir + hr).sigmoid(), (iz + hz).sigmoid()
            n = (in_ + r * hn).tanh()
            dn = (1 - z) * (1 - n * n)
            return (torch.diag_embed(z) + col(dn * r) * wn + col(dn * hn * r * (1 - r)) * wr
                    + col((h - n) * z * (1 - z)) * wz)
        pre = gi + gh
        slope = 1 - pre.tanh() ** 2 if self.mode == "rnn_tanh" else (pre > 0).to(pre.dtype)
        return col(slope) * self.w_hh

    def operator(self, x: torch.Tensor, s: torch.Tensor) -> "StepOperator":
        """J and J^T at (x, s), steps (n, ·), as maps of blocks of vectors held as rows (StepOperator):
        the closed form, each product one matmul with the recurrent weights over every step and vector."""
        if self.mode == "lstm":
            i, f, g, o, c, tc = self._lstm_gates(x, s)
            # J [x; y] = [a_o W_o x + tcp c'; c'], c' = a_i W_i x + a_f W_f x + a_g W_g x + f y
            parts = dict(a=torch.cat([g * i * (1 - i), c * f * (1 - f), i * (1 - g * g), tc * o * (1 - o)], dim=-1),
                         tcp=o * (1 - tc * tc), f=f)
        elif self.mode == "gru":
            h, _ = self.split(s)
            gi, gh = self._pre(x, h)
            ir, iz, in_ = gi.chunk(3, dim=-1)
            hr, hz, hn = gh.chunk(3, dim=-1)
            r, z = (ir + hr).sigmoid(), (iz + hz).sigmoid()
            n = (in_ + r * hn).tanh()
            dn = (1 - z) * (1 - n * n)
            parts = dict(a=torch.cat([dn * hn * r * (1 - r), (h - n) * z * (1 - z), dn * r], dim=-1), z=z)
        else:
            pre = sum(self._pre(x, s))
            parts = dict(slope=1 - pre.tanh() ** 2 if self.mode == "rnn_tanh" else (pre > 0).to(pre.dtype))
        return StepOperator(self, parts)

    def uses_lanczos(self, k: int) -> bool:
        """Whether ``spectrum`` takes the top k by Lanczos: a state large enough for it to beat a dense
        decomposition, and a closed-form inverse for sigma_min (without one, the dense SVD gives both)."""
        return (self.state_size >= LANCZOS_MIN_SIZE and 4 * k <= min(self.state_size, LANCZOS_MAX_DIM)
                and (self.mode in ("rnn_tanh", "rnn_relu") or (self.mode == "lstm" and self.w_hr is None)))

    def step_bytes(self, k: int) -> int:
        """About the memory ``spectrum`` needs per step (its chunks of steps are sized by it)."""
        size, item = self.state_size, self.w_hh.element_size()
        return (LANCZOS_BASIS + 1) * size * item + 64 * size if self.uses_lanczos(k) else size * size * item

    def spectrum(self, x: torch.Tensor, s: torch.Tensor, k: int):
        """(the steps as a StepOperator over the steps flattened (n = prod(lead)), their k largest
        singular values (.., k) largest first, their smallest (..,)) at (x, s) of shape (.., ·).

        Large states (``uses_lanczos``): the largest by Lanczos, certified step by step, the few steps
        not certified by the eigenvalues of J J^T; else those eigenvalues for every step. The
        smallest is 1 / sigma_max(J^{-1}) where J has a closed-form inverse, else from svdvals of J."""
        lead = s.shape[:-1]
        x, s = x.reshape(-1, x.shape[-1]), s.reshape(-1, s.shape[-1])
        inverse = self.inverse(x, s)
        if inverse is None:
            jac = self.jacobian(x, s)
            top, bottom = dense_extremes(jac, k)
            return DenseOperator(jac), top.reshape(*lead, -1), bottom.reshape(lead)
        op: "StepOperator | DenseOperator"
        if self.uses_lanczos(k):
            op = self.operator(x, s)
            top, certified = lanczos_top(op, k)
            rest = torch.nonzero(~certified).flatten()
            for part in rest.split(dense_rows(self.state_size)):
                top[part] = self.dense_top(x[part], s[part], k)
            dense = lambda rows: self.jacobian(x[rows], s[rows])  # noqa: E731
        else:                           # small states: J is formed anyway (and carries the Lyapunov QR)
            jac, gram = self.jacobian_gram(x, s)
            top = torch.linalg.eigvalsh(gram)[..., -k:].flip(-1).clamp_min(0).sqrt()
            op = DenseOperator(jac)
            dense = lambda rows: jac[rows]  # noqa: E731
        solve, solve_t, singular = inverse
        bottom = smallest_singular_value(len(x), self.state_size, x.dtype, solve, solve_t, singular, dense=dense)
        return op, top.reshape(*lead, -1), bottom.reshape(lead)

    def dense_top(self, x: torch.Tensor, s: torch.Tensor, k: int) -> torch.Tensor:
        """The k largest singular values (n, k) of each step, from the eigenvalues of J J^T."""
        _, gram = self.jacobian_gram(x, s)
        return torch.linalg.eigvalsh(gram)[..., -k:].flip(-1).clamp_min(0).sqrt()

    def jacobian_gram(self, x: torch.Tensor, s: torch.Tensor):
        """(J, J J^T) at (x, s). An LSTM without projection is J = [M | N] with M = [dh/dh; dc/dh]
        and N = [diag(scale); diag(f)], so J J^T = M M^T plus four diagonals: half the product's
        cost. An RNN's J = diag(slope) W gives J J^T = slope slope^T * W W^T."""
        if self.mode == "lstm" and self.w_hr is None:
            dh_dh, dc_dh, scale, f = self._lstm_blocks(x, s)
            m = torch.cat([dh_dh, dc_dh], dim=-2)                                   # (.., 2H, H)
            gram = m @ m.transpose(-1, -2)
            hidden = f.shape[-1]
            blocks = gram.view(*gram.shape[:-2], 2, hidden, 2, hidden)
            for a, b, v in ((0, 0, scale * scale), (0, 1, scale * f), (1, 0, scale * f), (1, 1, f * f)):
                blocks[..., a, :, b, :].diagonal(dim1=-2, dim2=-1).add_(v)
            n = torch.cat([torch.diag_embed(scale), torch.diag_embed(f)], dim=-2)   # (.., 2H, H)
            return torch.cat([m, n], dim=-1), gram
        if self.mode in ("rnn_tanh", "rnn_relu"):
            pre = sum(self._pre(x, s))
            slope = 1 - pre.tanh() ** 2 if self.mode == "rnn_tanh" else (pre > 0).to(pre.dtype)
            outer = slope.unsqueeze(-1) * slope.unsqueeze(-2)
            return slope.unsqueeze(-1) * self.w_hh, outer * (self.w_hh @ self.w_hh.T)
        jac = self.jacobian(x, s)
        return jac, jac @ jac.transpose(-1, -2)


    def inverse(self, x: torch.Tensor, s: torch.Tensor):
        """J^{-1} and J^{-T} at (x, s) as maps of blocks of p vectors held as rows, (.., p, S) (so each
        product is one matmul over every step), in float64, and where J is singular (.., bool);
        None for kinds without a closed-form inverse (a GRU, a projected LSTM).

        An RNN's J = diag(slope) W is inverted through W^{-1}. An LSTM's J = [[A, diag(tcp f)],
        [C, diag(f)]] (tcp = o (1 - tanh(c)^2)) has the Schur complement A - diag(tcp) C =
        diag(tanh(c) o (1 - o)) W_o, so J^{-1} needs W_o^{-1} and diagonals only."""
        if not (self.mode in ("rnn_tanh", "rnn_relu") or (self.mode == "lstm" and self.w_hr is None)):
            return None
        f64 = lambda t: t.to(torch.float64)  # noqa: E731
        row = lambda v: v.unsqueeze(-2)      # noqa: E731  (scales each vector of a block)
        if self.mode != "lstm":
            pre = sum(self._pre(x, s))
            slope = f64(1 - pre.tanh() ** 2 if self.mode == "rnn_tanh" else (pre > 0).to(pre.dtype))
            w_inv = torch.linalg.inv(f64(self.w_hh))
            singular = (slope == 0).any(-1)
            safe = row(torch.where(slope == 0, 1.0, slope))
            return (lambda b: (b / safe) @ w_inv.T), (lambda y: (y @ w_inv) / safe), singular
        i, f, g, o, c, tc = (f64(v) for v in self._lstm_gates(x, s))
        hidden = f.shape[-1]
        w_hh = f64(self.w_hh)
        w_ifg, wo_inv = w_hh[:3 * hidden], torch.linalg.inv(w_hh[3 * hidden:])      # (3H, H), (H, H)
        a_o, tcp = tc * o * (1 - o), row(o * (1 - tc * tc))
        a_ifg = row(torch.cat([g * i * (1 - i), c * f * (1 - f), i * (1 - g * g)], dim=-1))   # (.., 1, 3H)
        singular = (a_o == 0).any(-1) | (f == 0).any(-1)
        a_o, f = row(torch.where(a_o == 0, 1.0, a_o)), row(torch.where(f == 0, 1.0, f))

        def c_times(x1):                     # C x1 = sum over i, f, g of diag(a) W x1
            return (a_ifg * (x1 @ w_ifg.T)).unflatten(-1, (3, hidden)).sum(-2)

        def solve(b):                        # J x = b
            b1, b2 = b[..., :hidden], b[..., hidden:]
            x1 = ((b1 - tcp * b2) / a_o) @ wo_inv.T
            return torch.cat([x1, (b2 - c_times(x1)) / f], dim=-1)

        def solve_t(y):                      # J^T z = y
            y1, y2 = y[..., :hidden], y[..., hidden:]
            w = y2 / f
            u = ((y1 - (a_ifg * w.repeat(*(1,) * (w.dim() - 1), 3)) @ w_ifg) @ wo_inv) / a_o
            return torch.cat([u, w - tcp * u], dim=-1)
        return solve, solve_t, singular


def dense_extremes(jac: torch.Tensor, k: int):
    """(the k largest singular values (.., k), the smallest (..,)) of explicit Jacobians (.., S, S)."""
    values = torch.linalg.svdvals(jac)
    return values[..., :k], values[..., -1]


# sigma_max of J^{-1} is taken as found once its Ritz residual is below this share of it
INVERSE_TOL = 1e-7
INVERSE_ITERATIONS = 60


def smallest_singular_value(n: int, size: int, dtype, solve, solve_t, singular: torch.Tensor, dense) -> torch.Tensor:
    """sigma_min of n Jacobians (n,) as 1 / sigma_max(J^{-1}): subspace iteration on J^{-T} J^{-1}
    with a block of 4 and Rayleigh-Ritz, batched over every step, until the top Ritz pair's
    residual ||A x - theta x|| is at most INVERSE_TOL * theta (then |theta - lambda_max| is too).
    0 where J is singular; the few steps that do not converge take svdvals of ``dense(rows)``,
    their Jacobians."""
    device = singular.device
    block = min(4, size)
    gen = torch.Generator(device=device).manual_seed(0)
    start = torch.randn(n, size, block, generator=gen, dtype=torch.float64, device=device)
    v = torch.linalg.qr(start)[0].mT                              # (n, p, S): orthonormal rows
    theta = torch.zeros(n, dtype=torch.float64, device=device)
    done = singular.clone()
    for _ in range(INVERSE_ITERATIONS):
        u = solve(v)                                              # rows of J^{-1} V
        values, y = torch.linalg.eigh(u @ u.mT)                   # V^T A V, ascending
        top = values[..., -1]
        z = solve_t(u)                                            # rows of A V
        ritz = y[..., -1:].mT                                     # (n, 1, p)
        residual = torch.linalg.vector_norm(ritz @ z - top[..., None, None] * (ritz @ v), dim=(-2, -1))
        found = (residual <= INVERSE_TOL * top) & ~done & torch.isfinite(top) & (top > 0)
        theta = torch.where(found, top, theta)
        done |= found
        if bool(done.all()):
            break
        v = torch.linalg.qr((y.flip(-1).mT @ z).mT)[0].mT
    out = torch.where(singular, 0.0, theta.rsqrt())
    if not bool(done.all()):
        for rest in torch.nonzero(~done).flatten().split(dense_rows(size)):
            out[rest] = torch.linalg.svdvals(dense(rest).to(torch.float64))[..., -1]
    return out.to(dtype)


def dense_rows(size: int) -> int:
    """How many dense S x S Jacobians a fallback forms at once (a few MiB of them)."""
    return max(1, 2 ** 21 // (size * size))


class StepOperator:
    """The Jacobians of n steps (n = the leading dimension of every part) as maps of blocks of
    vectors held as rows: ``apply(v)`` (n, p, S) -> (n, p, S), each row of block i multiplied by
    J_i, and ``apply_t`` by J_i^T, in closed form: diagonals and one matmul with the recurrent
    weights over every step and vector. ``parts``: the per-step coefficients of ``Recurrence.operator``."""

    def __init__(self, rec: Recurrence, parts: dict):
        self.rec, self.parts = rec, parts
        self.device = rec.w_hh.device

    def __len__(self) -> int:
        return len(next(iter(self.parts.values())))

    def select(self, index) -> "StepOperator":
        """The operator of the steps ``index`` picks (an index into the leading dimension)."""
        return StepOperator(self.rec, {key: v[index] for key, v in self.parts.items()})

    def to(self, dtype) -> "StepOperator":
        return StepOperator(self.rec.to(dtype), {key: v.to(dtype) for key, v in self.parts.items()})

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        rec, p = self.rec, {key: t.unsqueeze(-2) for key, t in self.parts.items()}   # (n, 1, ·): scale rows
        if rec.mode == "lstm":
            width, hidden = rec.width, rec.hidden
            u = (v[..., :width] @ rec.w_hh.T).mul_(p["a"])                           # (n, p, 4H): i, f, g, o
            c_new = (u[..., :hidden] + u[..., hidden:2 * hidden] + u[..., 2 * hidden:3 * hidden]
                     + p["f"] * v[..., width:])
            h_new = u[..., 3 * hidden:] + p["tcp"] * c_new
            if rec.w_hr is not None:
                h_new = h_new @ rec.w_hr.T
            return torch.cat([h_new, c_new], dim=-1)
        if rec.mode == "gru":
            hidden = v.shape[-1]
            u = (v @ rec.w_hh.T).mul_(p["a"])                                          # (n, p, 3H): r, z, n
            return p["z"] * v + u[..., :hidden] + u[..., hidden:2 * hidden] + u[..., 2 * hidden:]
        return p["slope"] * (v @ rec.w_hh.T)

    def apply_t(self, y: torch.Tensor) -> torch.Tensor:
        rec, p = self.rec, {key: t.unsqueeze(-2) for key, t in self.parts.items()}
        if rec.mode == "lstm":
            width = rec.width
            z = y[..., :width] if rec.w_hr is None else y[..., :width] @ rec.w_hr      # (n, p, H)
            w = p["tcp"] * z + y[..., width:]
            coeff = torch.cat([w, w, w, z], dim=-1).mul_(p["a"])
            return torch.cat([coeff @ rec.w_hh, p["f"] * w], dim=-1)
        if rec.mode == "gru":
            return p["z"] * y + torch.cat([y, y, y], dim=-1).mul_(p["a"]) @ rec.w_hh
        return (p["slope"] * y) @ rec.w_hh

    def gram(self, q: torch.Tensor) -> torch.Tensor:
        """J_i^T J_i q_i for one vector per step, q (n, S) -> (n, S): ``apply_t(apply(q))`` fused, as
        two plain matmuls with the recurrent weights over all the steps and the diagonals in place."""
        rec, p = self.rec, self.parts
        if rec.mode == "lstm" and rec.w_hr is None:
            hidden = rec.hidden
            u = torch.mm(q[:, :hidden], rec.w_hh.T).mul_(p["a"])                       # (n, 4H): i, f, g, o
            blocks, a = u.view(-1, 4, hidden), p["a"].view(-1, 4, hidden)
            c = blocks[:, :3].sum(1).addcmul_(p["f"], q[:, hidden:])                 # (J q)'s c part
            h = torch.addcmul(blocks[:, 3], p["tcp"], c)                             # (J q)'s h part
            w = torch.addcmul(c, p["tcp"], h)
            torch.mul(a[:, :3], w.unsqueeze(1), out=blocks[:, :3])                   # J^T's coefficients, in u
            torch.mul(a[:, 3], h, out=blocks[:, 3])
            out = torch.empty_like(q)
            torch.mm(u, rec.w_hh, out=out[:, :hidden])
            torch.mul(p["f"], w, out=out[:, hidden:])
            return out
        if rec.mode in ("rnn_tanh", "rnn_relu"):
            return torch.mm(torch.mm(q, rec.w_hh.T).mul_(p["slope"]).mul_(p["slope"]), rec.w_hh)
        return self.apply_t(self.apply(q.unsqueeze(1))).squeeze(1)


class DenseOperator:
    """``StepOperator``'s maps for explicit Jacobians (n, S, S)."""

    def __init__(self, jac: torch.Tensor):
        self.jac = jac
        self.device = jac.device

    def __len__(self) -> int:
        return len(self.jac)

    def select(self, index) -> "DenseOperator":
        return DenseOperator(self.jac[index])

    def to(self, dtype) -> "DenseOperator":
        return DenseOperator(self.jac.to(dtype))

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        return v @ self.jac.mT

    def apply_t(self, y: torch.Tensor) -> torch.Tensor:
        return y @ self.jac

    def gram(self, q: torch.Tensor) -> torch.Tensor:
        return self.apply_t(self.apply(q.unsqueeze(1))).squeeze(1)


# Lanczos (``lanczos_top``): used from this state size; a step's top k are certified when the
# Ritz residual bounds every value to LANCZOS_TOL relative; LANCZOS_BASIS vectors are held per step
# at first, the few steps not certified by then go on to LANCZOS_MAX_DIM, checked every
# LANCZOS_CHECK steps of the iteration
LANCZOS_MIN_SIZE = 128
LANCZOS_TOL = 1e-5
LANCZOS_BASIS = 80
LANCZOS_MAX_DIM = 160
LANCZOS_CHECK = 8
REORTHOGONALISE = 1


def lanczos_top(op, k: int, seed: int = 0, iterations: Optional[torch.Tensor] = None):
    """The k largest singular values (n, k) of the n Jacobians of ``op`` (a StepOperator), largest
    first, and whether each step's are certified (n,) bool; those not certified are NaN.
    ``iterations`` (n,) int64, when given, receives how many products J^T J q each step took.

    Lanczos on A = J^T J with full reorthogonalisation, batched over the steps (each product two
    matmuls over all of them, ``op.gram``), from a random start; a breakdown (an invariant subspace: a multiple
    singular value) restarts from a fresh random vector. Every LANCZOS_CHECK iterations the steps
    whose Lanczos residual estimate is small are checked in float64: their k Ritz vectors X
    (orthonormalised), Rayleigh-Ritz on span(X) and the residual R = A X - X diag(theta). Kahan's
    theorem puts k distinct eigenvalues of A within ||R||_F of the theta, so each singular value
    sqrt(theta) is within ||R||_F / theta of its own, and sqrt(theta_i) <= sigma_i (Cauchy
    interlacing); a step is certified when ||R||_F <= LANCZOS_TOL * theta_k. What a residual cannot
    show is a singular direction the Krylov space never reached (a start orthogonal to it, or a
    multiple value met without a breakdown), as with any Krylov method (ARPACK's svds too).
    """
    n, rec = len(op), op.rec
    size, dtype = rec.state_size, rec.w_hh.dtype
    device = rec.w_hh.device
    eps = torch.finfo(dtype).eps
    gen = torch.Generator(device=device).manual_seed(seed)
    values = torch.full((n, k), float("nan"), dtype=dtype, device=device)
    certified = torch.zeros(n, dtype=torch.bool, device=device)
    limit = min(size, LANCZOS_MAX_DIM)
    if iterations is not None:
        iterations.fill_(limit)
    basis = torch.empty(n, min(limit, LANCZOS_BASIS) + 1, size, dtype=dtype, device=device)
    alpha = torch.zeros(n, limit, dtype=torch.float64, device=device)
    beta = torch.zeros(n, limit, dtype=torch.float64, device=device)
    scale = torch.zeros(n, dtype=dtype, device=device)            # the largest |alpha| so far: about ||A||
    start = torch.randn(n, size, generator=gen, dtype=dtype, device=device)
    torch.div(start, torch.linalg.vector_norm(start, dim=-1, keepdim=True), out=basis[:, 0])
    rows = torch.arange(n, device=device)                         # the steps still running
    active, wide = op, None                                       # wide: the float64 operator of ``rows``
    first = min(limit, max(4 * k, 32))
    for j in range(limit):
        if j + 1 >= basis.shape[1] and j + 1 < limit:               # grow the basis of the steps left
            more = min(limit, 2 * (basis.shape[1] - 1)) + 1 - basis.shape[1]
            basis = torch.cat([basis, basis.new_empty(len(rows), more, size)], dim=1)
        q = basis[:, j]
        w = active.gram(q)                                         # a new tensor: updated in place
        a = torch.linalg.vecdot(w, q)
        w.sub_(a[:, None] * q)
        if j:
            w.sub_(beta[:, j - 1, None].to(dtype) * basis[:, j - 1])
        done = basis[:, :j + 1]
        for _ in range(REORTHOGONALISE):                            # full reorthogonalisation
            w.sub_(((w[:, None] @ done.mT) @ done)[:, 0])
        b = torch.linalg.vector_norm(w, dim=-1)
        torch.maximum(scale, a.abs(), out=scale)
        alpha[:, j] = a
        broke = b <= 10 * eps * size ** 0.5 * scale
        if j + 1 < limit and bool(broke.any()):                     # restart from a random vector orthogonal to all
            fresh = torch.randn(int(broke.sum()), size, generator=gen, dtype=dtype, device=device)
            for _ in range(2):
                fresh = fresh - ((fresh[:, None] @ done[broke].mT) @ done[broke])[:, 0]
            w[broke] = fresh
            b = torch.where(broke, torch.linalg.vector_norm(w, dim=-1), b)
        beta[:, j] = torch.where(broke, 0.0, b)
        if j + 1 < limit:
            torch.div(w, b[:, None], out=basis[:, j + 1])
        m = j + 1
        if m < first or (m - first) % LANCZOS_CHECK and m != limit:
            continue
        if wide is None:
            wide = active.to(torch.float64)
        found, vals = ritz_check(active, basis[:, :m], alpha[:, :m], beta[:, :m], k, final=m == limit, wide=wide)
        if bool(found.any()):
            values[rows[found]] = vals[found].to(dtype)
            certified[rows[found]] = True
            if iterations is not None:
                iterations[rows[found]] = m
            keep = ~found
            rows, basis, alpha, beta, scale = rows[keep], basis[keep], alpha[keep], beta[keep], scale[keep]
            active, wide = active.select(keep), wide.select(keep)
        if not len(rows):
            break
    return values, certified


def tridiagonal_top(d: np.ndarray, e: np.ndarray, k: int):
    """The k largest eigenvalues (n, k), ascending, and their eigenvectors (n, m, k) of n symmetric
    tridiagonals (diagonals ``d`` (n, m), off-diagonals ``e`` (n, m - 1)): LAPACK's MRRR (?stemr)
    called directly for each, a few microseconds of Python apiece; one it does not solve goes to
    scipy's bisection and inverse iteration (``eigh_tridiagonal``)."""
    from scipy.linalg import eigh_tridiagonal, lapack
    n, m = d.shape
    theta, y = np.zeros((n, k)), np.zeros((n, m, k))
    d = np.ascontiguousarray(d, dtype=np.float64)
    padded = np.zeros((n, m), dtype=np.float64)                # ?stemr takes the off-diagonal with m entries
    padded[:, :m - 1] = e[:, :m - 1]
    stemr, = lapack.get_lapack_funcs(("stemr",), (d,))
    for i in range(n):
        count, w, v, fail = stemr(d[i], padded[i], 2, 0.0, 0.0, m - k + 1, m)     # overwrites padded[i]
        if fail == 0 and count == k:
            theta[i], y[i] = w[:k], v[:, :k]
        else:
            theta[i], y[i] = eigh_tridiagonal(d[i], e[i, :m - 1], select="i", select_range=(m - k, m - 1))
    return theta, y


def ritz_check(op, basis: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor, k: int, final: bool, wide=None):
    """(certified (n,) bool, singular values (n, k) float64) of the steps of a Lanczos run after m
    iterations (``basis`` (n, m, S), the tridiagonal ``alpha`` (n, m), ``beta`` (n, m)): the top k
    Ritz pairs of each tridiagonal (``tridiagonal_top``), and for the steps whose Lanczos residual
    estimate beta_m |y_m| is small (all of them when ``final``), the check ``lanczos_top``
    describes. ``wide``: ``op`` in float64, when the caller keeps one."""
    n, m = alpha.shape
    d, e = alpha.cpu().numpy(), beta.cpu().numpy()
    theta, y = tridiagonal_top(d, e, k)
    estimate = np.linalg.norm(e[:, m - 1, None] * y[:, m - 1], axis=-1)
    candidate = theta[:, 0] > 0
    if not final:
        candidate &= estimate <= LANCZOS_TOL * theta[:, 0] / 2
    found = torch.zeros(n, dtype=torch.bool, device=alpha.device)
    out = torch.zeros(n, k, dtype=torch.float64, device=alpha.device)
    idx = torch.from_numpy(np.flatnonzero(candidate)).to(alpha.device)
    if not len(idx):
        return found, out
    ritz = torch.from_numpy(y[candidate]).to(basis.device, basis.dtype)      # (c, m, k)
    x = (ritz.mT @ basis[idx]).to(torch.float64)                           # (c, k, S) Ritz vectors
    x = torch.linalg.qr(x.mT)[0].mT                                        # orthonormal rows
    op64 = (wide if wide is not None else op.to(torch.float64)).select(idx)
    jx = op64.apply(x)
    vals, z = torch.linalg.eigh(jx @ jx.mT)                                # Rayleigh-Ritz on span(X)
    vals, z = vals.flip(-1), z.flip(-1)
    x, jx = z.mT @ x, z.mT @ jx
    residual = torch.linalg.vector_norm(op64.apply_t(jx) - vals[..., None] * x, dim=(-2, -1))
    found[idx] = (residual <= LANCZOS_TOL * vals[:, -1]) & (vals[:, -1] > 0)
    out[idx] = vals.clamp_min(0).sqrt()
    return found, out


def module_recurrence(module: nn.Module, layer: int = 0, reverse: bool = False) -> Recurrence:
    """The Recurrence of one layer and direction of an nn.LSTM / nn.GRU / nn.RNN, or of a cell."""
    if isinstance(module, nn.RNNBase):
        sfx = f"_l{layer}" + ("_reverse" if reverse else "")
        get = lambda n: getattr(module, n + sfx).detach() if hasattr(module, n + sfx) else None  # noqa: E731
        w_ih, w_hh = get("weight_ih"), get("weight_hh")
        assert w_ih is not None and w_hh is not None   # every layer and direction has both
        return Recurrence(MODES[module.mode], w_ih, w_hh, get("bias_ih"), get("bias_hh"),
                          get("weight_hr") if getattr(module, "proj_size", 0) else None)
    mode = cell_mode(module)
    if mode is None:
        raise TypeError(f"expected an nn.LSTM / nn.GRU / nn.RNN or a cell, got {type(module).__name__}")
    get = lambda n: getattr(module, n).detach() if getattr(module, n, None) is not None else None  # noqa: E731
    w_ih, w_hh = get("weight_ih"), get("weight_hh")
    assert w_ih is not None and w_hh is not None   # every cell has both
    return Recurrence(mode, w_ih, w_hh, get("bias_ih"), get("bias_hh"))


def cell_mode(module: nn.Module) -> Optional[str]:
    for cls, mode in CELLS.items():
        if isinstance(module, cls):
            return mode
    if isinstance(module, nn.RNNCell):
        return "rnn_tanh" if module.nonlinearity == "tanh" else "rnn_relu"
    return None


def recurrences(model: nn.Module, who: str = "rw.dynamics") -> dict:
    """Trace layer name -> (module, Recurrence) for every fused module's layers and directions and
    every cell in ``model``. A fused module whose weights are not its parameters (set before each
    call by a wrapper) has no fixed step: ``who`` says so."""
    found = {}
    for path, module in model.named_modules():
        base = path or type(module).__name__.lower()
        if isinstance(module, nn.RNNBase):
            per_call = [n for n in module._flat_weights_names if n not in module._parameters]
            if per_call:
                raise ValueError(f"{who}: expected {base}'s weights to be its parameters, but {per_call[0]} is set "
                                 "before each call (as AWD-LSTM's WeightDrop sets weight_hh_l0 from weight_hh_l0_raw, "
                                 "dropped out in training), so its step has no fixed weights to analyse")
            for layer in range(module.num_layers):
                for reverse in ((False, True) if module.bidirectional else (False,)):
                    found[layer_name(base, layer, reverse)] = (module, module_recurrence(module, layer, reverse))
        elif cell_mode(module) is not None:
            found[base] = (module, module_recurrence(module))
    return found


class AutogradStep:
    """A step module ``forward(input, hidden) -> (output, hidden)`` as a map of its state, with its
    Jacobian through ``torch.func`` (vmap over the batch of one jacrev): for models without a
    closed form. The hidden is a (batch, units) tensor or a tuple of them (s is their concatenation).
    ``bound`` (call.py's Bound): the forward's other arguments, held fixed; those with one row per
    batch element are taken row by row with the state."""

    def __init__(self, model: nn.Module, hidden_like, bound=None):
        self.model = model
        parts = hidden_like if isinstance(hidden_like, (tuple, list)) else (hidden_like,)
        if not all(isinstance(p, torch.Tensor) and p.dim() == 2 for p in parts):
            raise TypeError(f"rw.dynamics: {type(model).__name__}: expected a hidden state that is a (batch, units) "
                            f"tensor or a tuple of them, got {type(hidden_like).__name__}")
        self.sizes = [p.shape[1] for p in parts]
        self.tuple = isinstance(hidden_like, (tuple, list))
        self.state_size = sum(self.sizes)
        self.batch = parts[0].shape[0]
        self.bound = bound

    def hidden(self, s: torch.Tensor):
        parts = torch.split(s, self.sizes, dim=-1)
        return tuple(parts) if self.tuple else parts[0]

    def flat(self, hidden) -> torch.Tensor:
        return torch.cat(list(hidden), dim=-1) if self.tuple else hidden

    def rows(self) -> dict:
        """The bound call's other tensors with one row per batch element: "p<i>" positional, "k<name>" by name."""
        if self.bound is None or self.batch == 1:
            return {}
        slots = (self.bound.input_at, self.bound.hidden_at)
        items = {f"p{i}": v for i, v in enumerate(self.bound.positional) if i not in slots}
        items.update({f"k{n}": v for n, v in self.bound.keywords.items()})
        return {key: v for key, v in items.items()
                if isinstance(v, torch.Tensor) and v.dim() and v.shape[0] == self.batch}

    def step(self, x: torch.Tensor, s: torch.Tensor, rows: Optional[dict] = None) -> torch.Tensor:
        """F(x, s) for (batch, ·) tensors (``rows``: the bound call's per-row tensors for this batch)."""
        if self.bound is None:
            return self.flat(self.model(x, self.hidden(s))[1])
        args, kwargs = self.bound.at(x, self.hidden(s))
        args = list(args)
        for key, v in (rows or {}).items():
            if key[0] == "p":
                args[int(key[1:])] = v
            else:
                kwargs[key[1:]] = v
        return self.flat(self.model(*args, **kwargs)[1])

    def jacobian(self, x: torch.Tensor, s: torch.Tensor, repeat: int = 1) -> torch.Tensor:
        """dF/ds for (n, ·) x and s: (n, state, state); row i belongs to batch element i // repeat."""
        rows = {key: v.repeat_interleave(repeat, dim=0) for key, v in self.rows().items()}
        one = lambda s1, x1, r1: self.step(x1.unsqueeze(0), s1.unsqueeze(0),  # noqa: E731
                                           {key: v.unsqueeze(0) for key, v in r1.items()}).squeeze(0)
        with torch.enable_grad():
            return torch.func.vmap(torch.func.jacrev(one))(s, x, rows).detach()
