"""An LSTM layer on the CPU run by the native oneDNN kernel, its gates read from the kernel's
own workspace instead of recomputed.

In training mode (grad enabled) ``torch.mkldnn_rnn_layer`` keeps a workspace for its backward
whose first part holds every step's activated gates, (time, batch, ld) with the four gates
(input, forget, cell, output) side by side and ``ld`` their width padded as oneDNN pads it
(``gates_ld``). Reading them costs one copy into the Trace's buffers, where recomputing them
costs a second forward's matmuls (or our step loop's slower per-step ones). The layer runs in
chunks of time so the workspace (about 64 bytes a unit per step and batch element) stays small;
each chunk starts from the state the last one ended in, as the kernel's own time loop does, and
its gates and h are copied into their final buffers while they are still in the cache. A chunk
holds at least ``CHUNK_STEPS`` steps where the sequence has 32 times that: oneDNN's input
projection is one matmul per call, and at 8 steps of batch 32 the calls cost 1.4x the whole
sequence's native forward, at 32 steps about 1.0x (1 thread, CPU time); the workspace stays
under a twelfth of the layer's arrays (24 bytes a unit per step and batch element).

The layout is oneDNN's, not a documented API: the first chunk's first step is checked against
the gates computed from x_0 and the initial state, and where they differ (another oneDNN, a
kernel without a workspace) ``lstm`` returns None and the caller computes the gates its own way.
Call under ``torch.no_grad()`` or inside an autograd Function's forward.
"""
from __future__ import annotations

from typing import Optional

import torch

from .convert import trace_buffer
from .fused_loop import gate_buffers

WORKSPACE_BYTES = 4 << 20        # the workspace of one chunk, about, unless that is under CHUNK_STEPS
CHUNK_STEPS = 32                 # steps of one chunk, at least, in a sequence of 32 times as many
CHECK_TOLERANCE = 1e-4           # the first step's gates against ours (float32)


def available(x: torch.Tensor) -> bool:
    """Whether this torch has the kernel for ``x`` (float32 on the CPU, oneDNN built in)."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and hasattr(torch, "mkldnn_rnn_layer")
            and torch.backends.mkldnn.is_available() and bool(torch.backends.mkldnn.enabled))


def gates_ld(units: int) -> int:
    """The row width of oneDNN's workspace gates for ``units``: 4 units rounded up to a cache line
    of floats, one more line where that is a multiple of 256 (oneDNN's ``get_good_ld``)."""
    ld = -(-4 * units // 16) * 16
    return ld + 16 if ld % 256 == 0 else ld


def chunk_steps(batch: int, units: int, steps: int) -> int:
    """Steps per kernel call: a workspace of about ``WORKSPACE_BYTES``, or ``CHUNK_STEPS`` steps
    where that is fewer and the sequence has 32 chunks of them."""
    return max(1, WORKSPACE_BYTES // (batch * units * 64), min(CHUNK_STEPS, steps // 32))


def lstm(x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, weights: list) -> Optional[tuple]:
    """(out, h, h_n, c_n, [input, forget, cell, output]) for [w_ih, w_hh, b_ih, b_hh] of one
    forward direction; x is (time, batch, features), ``out`` (time, batch, units) the kernel's own
    h, a tensor of its own, ``h`` the same values as a (time, batch, units) view of a (batch, time,
    units) ``trace_buffer``, and each gate likewise. None where the workspace does not hold the
    gates as expected."""
    w_ih, w_hh, b_ih, b_hh = (w.detach() for w in weights)
    steps, batch, units = x.shape[0], x.shape[1], h0.shape[1]
    x = x.detach().contiguous()
    ld, chunk = gates_ld(units), chunk_steps(batch, units, steps)
    _, parts = gate_buffers(4, (batch, steps, units), x)
    h_all = trace_buffer((batch, steps, units), x)
    out = x.new_empty(steps, batch, units) if chunk < steps else None
    h, c = h0.detach().contiguous(), c0.detach().contiguous()
    with torch.enable_grad():
        for start in range(0, steps, chunk):
            part_out, h, c, workspace = torch.mkldnn_rnn_layer(x[start:start + chunk], w_ih, w_hh, b_ih, b_hh, h, c,
                                                               False, [], 2, units, 1, True, False, False, True)
            n = part_out.shape[0]
            if workspace is None or workspace.numel() < 4 * n * batch * ld:
                return None
            gates = workspace[:4 * n * batch * ld].view(torch.float32).view(n, batch, ld)[..., :4 * units]
            gates = gates.view(n, batch, 4, units)
            if start == 0 and not first_step_matches(gates[0], x[0], h0, weights):
                return None
            for k, part in enumerate(parts):
                part[:, start:start + n].copy_(gates[:, :, k].transpose(0, 1))
            part_out = part_out.detach()
            h_all[:, start:start + n].copy_(part_out.transpose(0, 1))
            if out is None:
                out = part_out
            else:
                out[start:start + n].copy_(part_out)
            del part_out, workspace, gates
    return out, h_all.transpose(0, 1), h.detach(), c.detach(), [p.transpose(0, 1) for p in parts]


def first_step_matches(found: torch.Tensor, x0: torch.Tensor, h0: torch.Tensor, weights: list) -> bool:
    """Whether ``found`` (batch, 4, units) are the activated gates of the first step."""
    w_ih, w_hh, b_ih, b_hh = (w.detach() for w in weights)
    with torch.no_grad():
        pre = torch.addmm(b_ih + b_hh, x0, w_ih.t()).addmm_(h0, w_hh.t()).view(found.shape)
        want = torch.cat([pre[:, :2].sigmoid(), pre[:, 2:3].tanh(), pre[:, 3:].sigmoid()], 1)
        return bool((want - found).abs().max() <= CHECK_TOLERANCE)
