"""One direction of an LSTM / GRU layer computed by our own step loop, keeping every gate.

On the CPU with a large batch the native kernel's time goes into its matmuls, so recomputing the
gates after it costs about as much again. This loop computes the layer once instead: the input
projection as one matmul per gate, written straight into that gate's (batch, time, units) buffer,
then one recurrent matmul per step whose result completes the step's gates in place. The buffers
are ``convert.trace_buffer``s, so the float32 ones become the Trace's arrays without a copy.

Call under ``torch.no_grad()``. ``x`` is (time, batch, features) in the order the steps are read;
every tensor returned is (time, batch, units) in that order (a transposed view of a buffer).
"""
from __future__ import annotations

from typing import Optional

import torch

from .convert import trace_buffer


def projected(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], gates: int) -> list:
    """x @ weight.T + bias split into ``gates`` buffers of (batch, time, units), one matmul each."""
    steps, batch = x.shape[:2]
    rows = x.transpose(0, 1).reshape(batch * steps, x.shape[2])   # batch-major rows, like the buffers
    found = []
    for w, b in zip(weight.chunk(gates), bias.chunk(gates) if bias is not None else [None] * gates):
        buffer = trace_buffer((batch, steps, w.shape[0]), x)
        flat = buffer.view(batch * steps, -1)
        torch.addmm(b, rows, w.t(), out=flat) if b is not None else torch.mm(rows, w.t(), out=flat)
        found.append(buffer)
    return found


def lstm(x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, weights: list) -> tuple:
    """(h, c, [input, forget, cell, output]) for [w_ih, w_hh, (b_ih, b_hh)] of one direction."""
    w_ih, w_hh = weights[:2]
    bias = weights[2] + weights[3] if len(weights) > 2 else None
    gates = projected(x, w_ih, bias, 4)
    h, c = (trace_buffer(gates[0].shape, x) for _ in range(2))
    recurrent = x.new_empty(h0.shape[0], w_hh.shape[0])
    w_hh_t = w_hh.t()
    i, f, g, o = (recurrent[:, k * h0.shape[1]:(k + 1) * h0.shape[1]] for k in range(4))
    h_prev, c_prev = h0, c0
    for i_t, f_t, g_t, o_t, c_t, h_t in zip(*(t.unbind(1) for t in (*gates, c, h))):
        torch.mm(h_prev, w_hh_t, out=recurrent)
        i_t.add_(i).sigmoid_()
        f_t.add_(f).sigmoid_()
        g_t.add_(g).tanh_()
        o_t.add_(o).sigmoid_()
        torch.mul(i_t, g_t, out=c_t).addcmul_(f_t, c_prev)      # c_t = f_t c_{t-1} + i_t g_t
        torch.tanh(c_t, out=h_t).mul_(o_t)                      # h_t = o_t tanh(c_t)
        h_prev, c_prev = h_t, c_t
    return h.transpose(0, 1), c.transpose(0, 1), [t.transpose(0, 1) for t in gates]


def gru(x: torch.Tensor, h0: torch.Tensor, weights: list) -> tuple:
    """(h, [reset, update, new]) for [w_ih, w_hh, (b_ih, b_hh)] of one direction."""
    w_ih, w_hh = weights[:2]
    b_ih, b_hh = (weights[2], weights[3]) if len(weights) > 2 else (None, None)
    gates = projected(x, w_ih, b_ih, 3)
    h = trace_buffer(gates[0].shape, x)
    recurrent = x.new_empty(h0.shape[0], w_hh.shape[0])
    w_hh_t = w_hh.t()
    r, z, n = (recurrent[:, k * h0.shape[1]:(k + 1) * h0.shape[1]] for k in range(3))
    h_prev = h0
    for r_t, z_t, n_t, h_t in zip(*(t.unbind(1) for t in (*gates, h))):
        if b_hh is not None:
            torch.addmm(b_hh, h_prev, w_hh_t, out=recurrent)
        else:
            torch.mm(h_prev, w_hh_t, out=recurrent)
        r_t.add_(r).sigmoid_()
        z_t.add_(z).sigmoid_()
        n_t.addcmul_(r_t, n).tanh_()                         # n_t = tanh(W_in x_t + b_in + r_t (W_hn h + b_hn))
        torch.lerp(n_t, h_prev, z_t, out=h_t)                   # h_t = (1 - z_t) n_t + z_t h_{t-1}
        h_prev = h_t
    return h.transpose(0, 1), [t.transpose(0, 1) for t in gates]
