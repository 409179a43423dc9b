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

    def spectrum(self, x: torch.Tensor, s: torch.Tensor, k: int):
        """(J, its k largest singular values (.., k) largest first, its smallest (..,)) at (x, s).
        The largest are the square roots of the top eigenvalues of J J^T; the smallest is
        1 / sigma_max(J^{-1}) where J has a closed-form inverse, else from svdvals of J."""
        inverse = self.inverse(x, s)
        if inverse is None:
            jac = self.jacobian(x, s)
            return (jac, *dense_extremes(jac, k))
        jac, gram = self.jacobian_gram(x, s)
        top = torch.linalg.eigvalsh(gram)[..., -k:].flip(-1).clamp_min(0).sqrt()
        return jac, top, smallest_singular_value(jac, *inverse)

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


def smallest_singular_value(jac: torch.Tensor, solve, solve_t, singular: torch.Tensor) -> torch.Tensor:
    """sigma_min of each J (.., S, S) as 1 / sigma_max(J^{-1}): subspace iteration on J^{-T} J^{-1}
    with a block of 4 and Rayleigh-Ritz, batched over every step, until the top Ritz pair's
    residual ||A x - theta x|| is at most INVERSE_TOL * theta (then |theta - lambda_max| is too).
    0 where J is singular; the few steps that do not converge take svdvals of J."""
    lead, size = jac.shape[:-2], jac.shape[-1]
    block = min(4, size)
    gen = torch.Generator(device=jac.device).manual_seed(0)
    start = torch.randn(*lead, size, block, generator=gen, dtype=torch.float64, device=jac.device)
    v = torch.linalg.qr(start)[0].mT                              # (.., p, S): orthonormal rows
    theta = torch.zeros(lead, dtype=torch.float64, device=jac.device)
    done = singular.clone()
    for _ in range(INVERSE_ITERATIONS):
        u = solve(v)                                              # rows of J^{-1} V
        values, y = torch.linalg.eigh(u @ u.mT)                   # V^T A V, ascending
        top = values[..., -1]
        z = solve_t(u)                                            # rows of A V
        ritz = y[..., -1:].mT                                     # (.., 1, p)
        residual = torch.linalg.vector_norm(ritz @ z - top[..., None, None] * (ritz @ v), dim=(-2, -1))
        found = (residual <= INVERSE_TOL * top) & ~done & torch.isfinite(top) & (top > 0)
        theta = torch.where(found, top, theta)
        done |= found
        if bool(done.all()):
            break
        v = torch.linalg.qr((y.flip(-1).mT @ z).mT)[0].mT
    out = torch.where(singular, 0.0, theta.rsqrt())
    if not bool(done.all()):
        rest = ~done
        out[rest] = torch.linalg.svdvals(jac[rest].to(torch.float64))[..., -1]
    return out.to(jac.dtype)


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


def recurrences(model: nn.Module) -> dict:
    """Trace layer name -> (module, Recurrence) for every fused module's layers and directions and
    every cell in ``model``."""
    found = {}
    for path, module in model.named_modules():
        base = path or type(module).__name__.lower()
        if isinstance(module, nn.RNNBase):
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
