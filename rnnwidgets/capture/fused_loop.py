"""One direction of an LSTM / GRU layer computed by our own step loop, keeping every gate.

On the CPU the native kernel's time goes into its matmuls (large batch) or into one small op
after another (a GRU at any batch), so recomputing the gates after it would cost about as much
again. This loop computes the layer once instead: the input projection as one matmul per gate
over all steps (spread over torch's threads), written straight into that gate's (batch, time,
units) buffer, then one recurrent matmul per step whose result completes the step's gates in
place. The gate buffers share one allocation (``gate_buffers``), so a step's gates are one
strided view: one add and one activation serve all of them, which keeps the ops per step few.
The buffers are ``convert.trace_buffer``s, so the float32 ones become the Trace's arrays
without a copy.

Call under ``torch.no_grad()``. ``x`` is (time, batch, features) in the order the steps are read;
every tensor returned is (time, batch, units) in that order (a transposed view of a buffer).
"""
from __future__ import annotations

from typing import Optional

import torch

from .convert import new_buffer, trace_buffer


def gate_buffers(count: int, shape: tuple, like: torch.Tensor) -> tuple:
    """(all, parts): ``count`` ``trace_buffer``s of ``shape`` over one allocation, and ``all``, a
    (count, *shape) view of that allocation. Each part is a tensor of its own over the shared
    storage (not a view of ``all``), so it is handed to the Trace without a copy; the storage
    lives as long as any part, and every part becomes an array of the same layer."""
    whole = new_buffer((count, *shape), like)
    size = whole[0].numel()
    parts = []
    for k in range(count):
        part = torch.empty(0, dtype=like.dtype, device=like.device)
        part.set_(whole.untyped_storage(), k * size, shape, whole[k].stride())
        part.for_trace = True  # type: ignore[attr-defined]  # convert.trace_buffer's marker
        parts.append(part)
    return whole, parts


def projected(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], parts: list,
              accumulate: bool = False) -> None:
    """x @ weight.T + bias into ``parts``, (batch, time, units) buffers, one batched matmul each
    (spread over torch's threads) reading x in place; x @ weight.T added to what they hold when
    ``accumulate`` (no bias then)."""
    assert not (accumulate and bias is not None)  # the bias goes into the first projection
    steps, batch = x.shape[:2]
    rows = x.transpose(0, 1)                                      # (batch, time, features), a view
    chunks = bias.chunk(len(parts)) if bias is not None else [None] * len(parts)
    for part, w, b in zip(parts, weight.chunk(len(parts)), chunks):
        w_t = w.t().expand(batch, *w.t().shape)
        if accumulate:
            part.baddbmm_(rows, w_t)
        elif b is not None:
            torch.baddbmm(b, rows, w_t, out=part)
        else:
            torch.bmm(rows, w_t, out=part)


def lstm_order(t: torch.Tensor) -> torch.Tensor:
    """An LSTM weight or bias with its gate blocks (input, forget, cell, output) stored as input,
    forget, output, cell: the three sigmoid gates side by side, as ``gate_buffers`` keep them."""
    blocks = t.view(4, t.shape[0] // 4, *t.shape[1:])
    return blocks[[0, 1, 3, 2]].reshape(t.shape)


def lstm(x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, weights: list) -> tuple:
    """(h, c, [input, forget, cell, output]) for [w_ih, w_hh, (b_ih, b_hh)] of one direction."""
    w_ih, w_hh = weights[:2]
    bias = weights[2] + weights[3] if len(weights) > 2 else None
    steps, batch, units = x.shape[0], x.shape[1], h0.shape[1]
    stacked, (i, f, o, g) = gate_buffers(4, (batch, steps, units), x)
    projected(x, lstm_order(w_ih), lstm_order(bias) if bias is not None else None, [i, f, o, g])
    h, c = (trace_buffer((batch, steps, units), x) for _ in range(2))
    w_hh_t = lstm_order(w_hh).t()
    recurrent = x.new_empty(batch, 4 * units)
    from_h = recurrent.view(batch, 4, units).transpose(0, 1)           # (4, batch, units) in the stored order
    h_prev, c_prev = h0, c0
    for gates_t, i_t, f_t, o_t, g_t, c_t, h_t in zip(stacked.unbind(2), *(t.unbind(1) for t in (i, f, o, g, c, h))):
        torch.mm(h_prev, w_hh_t, out=recurrent)
        gates_t.add_(from_h)
        gates_t[:3].sigmoid_()
        g_t.tanh_()
        torch.mul(i_t, g_t, out=c_t).addcmul_(f_t, c_prev)      # c_t = f_t c_{t-1} + i_t g_t
        torch.tanh(c_t, out=h_t).mul_(o_t)                      # h_t = o_t tanh(c_t)
        h_prev, c_prev = h_t, c_t
    return h.transpose(0, 1), c.transpose(0, 1), [t.transpose(0, 1) for t in (i, f, g, o)]


def gru(x: torch.Tensor, h0: torch.Tensor, weights: list) -> tuple:
    """(h, [reset, update, new]) for [w_ih, w_hh, (b_ih, b_hh)] of one direction."""
    w_ih, w_hh = weights[:2]
    b_ih, b_hh = (weights[2], weights[3]) if len(weights) > 2 else (None, None)
    steps, batch, units = x.shape[0], x.shape[1], h0.shape[1]
    stacked, (r, z, n) = gate_buffers(3, (batch, steps, units), x)
    projected(x, w_ih, b_ih, [r, z, n])
    h = trace_buffer((batch, steps, units), x)
    recurrent = x.new_empty(batch, 3 * units)
    w_hh_t = w_hh.t()
    from_h = recurrent.view(batch, 3, units).transpose(0, 1)[:2]        # (2, batch, units): reset, update
    hidden_new = recurrent[:, 2 * units:]
    h_prev = h0
    for gates_t, z_t, n_t, h_t in zip(stacked.unbind(2), *(t.unbind(1) for t in (z, n, h))):
        if b_hh is not None:
            torch.addmm(b_hh, h_prev, w_hh_t, out=recurrent)
        else:
            torch.mm(h_prev, w_hh_t, out=recurrent)
        rz_t = gates_t[:2].add_(from_h).sigmoid_()
        n_t.addcmul_(rz_t[0], hidden_new).tanh_()              # n_t = tanh(W_in x_t + b_in + r_t (W_hn h + b_hn))
        torch.lerp(n_t, h_prev, z_t, out=h_t)                   # h_t = (1 - z_t) n_t + z_t h_{t-1}
        h_prev = h_t
    return h.transpose(0, 1), [t.transpose(0, 1) for t in (r, z, n)]
