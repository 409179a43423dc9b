"""An LSTM layer on the CPU run by the native oneDNN kernel, its gates and cell states read from
the kernel's own workspace instead of recomputed.

In training mode (grad enabled) ``torch.mkldnn_rnn_layer`` keeps a workspace for its backward
whose first part holds every step's activated gates, (time, batch, ld) with the four gates
(input, forget, cell, output) side by side and ``ld`` their width padded as oneDNN pads it
(``gates_ld``); further on, page-aligned, it holds every step's cell state but the last, which
the kernel returns as c_n (``cell_offset``). Reading them costs one copy into the Trace's
buffers, where recomputing them costs a second forward's matmuls (or our step loop's slower
per-step ones) and a scan over time for c. The layer runs in chunks of time so the workspace
(about 64 bytes a unit per step and batch element) stays small; each chunk starts from the state
the last one ended in, as the kernel's own time loop does, and its gates, h and c are copied
into their final buffers while they are still in the cache. A chunk holds at least
``CHUNK_STEPS`` steps where the sequence has 32 times that: oneDNN's input projection is one
matmul per call, and at 8 steps of batch 32 the calls cost 1.4x the whole sequence's native
forward, at 32 steps about 1.0x (1 thread, CPU time); the workspace stays under a twelfth of the
layer's arrays (24 bytes a unit per step and batch element). Parts of a batch run at once
(batch_threads.py) share ``WORKSPACE_BYTES``: their workspaces are there at once.

The layout is oneDNN's, not a documented API: the first chunk's first step's gates are checked
(once every call is made) against the gates computed from x_0 and the initial state, and where
they differ (another oneDNN, a kernel without a workspace) ``lstm`` returns None and the caller
computes the gates its own way. The cell states are checked at both ends of the first and the last chunk against
f_t c_{t-1} + i_t g_t from the gates read and the state before (``cells_match``); where they
differ ``lstm`` gives no c and the caller scans it from the gates, as it does for recomputed gates.
Call under ``torch.no_grad()`` or inside an autograd Function's forward.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional

import torch

from .convert import trace_buffer
from .fused_loop import gate_buffers
from .prefault import Prefault

WORKSPACE_BYTES = 4 << 20        # the workspace of one chunk, about, unless that is under CHUNK_STEPS
CHUNK_STEPS = 32                 # steps of one chunk, at least, in a sequence of 32 times as many
CHECK_TOLERANCE = 1e-4           # the first step's gates against ours (float32); c relative to max(1, |c|)
PAGE_FLOATS = 1024               # oneDNN starts each part of its workspace on a 4 KiB page


def available(x: torch.Tensor) -> bool:
    """Whether this torch has the kernel for ``x`` (float32 on the CPU, oneDNN built in)."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and hasattr(torch, "mkldnn_rnn_layer")
            and torch.backends.mkldnn.is_available() and bool(torch.backends.mkldnn.enabled))


def good_ld(width: int) -> int:
    """A row width as oneDNN pads it (``get_good_ld``, float32): rounded up to a cache line of
    floats, one more line where that is a multiple of 256."""
    ld = -(-width // 16) * 16
    return ld + 16 if ld % 256 == 0 else ld


def gates_ld(units: int) -> int:
    """The row width of oneDNN's workspace gates for ``units``: ``good_ld`` of 4 units."""
    return good_ld(4 * units)


def page(floats: int) -> int:
    """``floats`` rounded up to a whole page of the workspace."""
    return -(-floats // PAGE_FLOATS) * PAGE_FLOATS


def cell_offset(steps: int, batch: int, features: int, units: int) -> int:
    """Where (in floats) the cell state of a call's first step starts in the workspace of a one-layer
    call over ``steps`` steps. oneDNN lays out, each part on a new page: the gates (time, batch,
    ``gates_ld``); h before its projection (time, batch, ``good_ld(units)``); the states fed
    between layers and steps, (layers + 1, time + 1, batch, ``good_ld(max(features, units))``);
    then the cell states (layers + 1, time + 1, batch, units), where the layer's own are at layer
    index 1 and step t's at time index t + 1 (the last step's go to c_n instead)."""
    gates = page(steps * batch * gates_ld(units))
    projected = page(gates + steps * batch * good_ld(units))
    states = page(projected + 2 * (steps + 1) * batch * good_ld(max(features, units)))
    return states + (steps + 2) * batch * units


def chunk_steps(batch: int, units: int, steps: int, share: int = 1) -> int:
    """Steps per kernel call: a workspace of about ``WORKSPACE_BYTES`` divided by ``share`` (the
    parts of the batch running at once: their workspaces are there at once), or ``CHUNK_STEPS``
    steps where that is fewer and the sequence has 32 chunks of them (at batch 32 in two parts,
    calls of 16 steps took a 2-layer trace 1.47 of the forward, calls of 31 steps 1.32)."""
    return max(1, WORKSPACE_BYTES // share // workspace_bytes(1, batch, units), min(CHUNK_STEPS, steps // 32))


def workspace_bytes(steps: int, batch: int, units: int) -> int:
    """About the bytes of a call's workspace: 64 a unit per step and batch element (``cell_offset``)."""
    return steps * batch * units * 64


def lstm(x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, weights: list,
         shared_out: bool = False, keep_gates: bool = True, part: Optional[Part] = None) -> Optional[tuple]:
    """(out, h, c, h_n, c_n, [input, forget, cell, output]) for [w_ih, w_hh, b_ih, b_hh] of one
    forward direction; x is (time, batch, features), ``out`` (time, batch, units) the kernel's own
    h, a tensor of its own, ``h`` the same values as a (time, batch, units) view of a (batch, time,
    units) ``trace_buffer``, ``c`` and each gate likewise. None where the workspace does not hold
    the gates as expected; ``c`` None where it does not hold the cell states as expected.
    ``shared_out``: ``out`` goes nowhere but into the next layer of the same module (never to the
    user's code), so ``out`` is ``h`` itself, a strided view where the batch has several
    elements (the next layer's call reads it a chunk of steps at a time): one copy and one
    sequence of memory less. ``x`` may be strided likewise. ``keep_gates=False``: the gates are
    not copied out (a selection keeps none of them): the list is None, and so is the whole result
    where c is not as expected (the caller then computes the layer its own way). ``part``: ``x`` is
    a part of the batch run at once with the others (batch_threads.py), and the layer writes into
    the part's views of the whole batch's buffers."""
    w_ih, w_hh, b_ih, b_hh = (w.detach() for w in weights)
    steps, batch, units = x.shape[0], x.shape[1], h0.shape[1]
    x = x.detach()
    ld, chunk = gates_ld(units), chunk_steps(batch, units, steps, part.share if part is not None else 1)
    c_all: Optional[torch.Tensor]
    if part is not None:
        whole, h_all, c_all = part.gates if keep_gates else None, part.h, part.c
        parts = list(whole.unbind(0)) if whole is not None else None
    else:
        whole, parts = gate_buffers(4, (batch, steps, units), x) if keep_gates else (None, None)
        h_all, c_all = trace_buffer((batch, steps, units), x), trace_buffer((batch, steps, units), x)
    out: Optional[torch.Tensor] = None
    if shared_out:
        out = h_all.transpose(0, 1)
    elif part is not None and part.out is not None:
        out = part.out
    elif chunk < steps:
        out = x.new_empty(steps, batch, units)
    h, c = h0.detach().contiguous(), c0.detach().contiguous()
    new = [(h_all, 1), (c_all, 1)] + ([(whole, 2)] if whole is not None else []) + (
        [(out, 0)] if out is not None and not shared_out else [])
    ends: dict = {}   # step -> its gates (batch, 4, units), at the ends of the first and the last call
    last_start = (steps - 1) // chunk * chunk
    with torch.enable_grad(), Prefault(new if part is None else [], steps, chunk):   # parts use every core
        for start in range(0, steps, chunk):
            if part is not None and part.stop.is_set():
                return None
            part_out, h, c, workspace = torch.mkldnn_rnn_layer(x[start:start + chunk].contiguous(), w_ih, w_hh, b_ih,
                                                               b_hh, h, c, False, [], 2, units, 1, True, False, False,
                                                               True)
            n = part_out.shape[0]
            floats = workspace.view(torch.float32) if workspace is not None else None
            if floats is None or floats.numel() < n * batch * ld:
                return None
            gates = floats[:n * batch * ld].view(n, batch, ld)[..., :4 * units].view(n, batch, 4, units)
            if start in (0, last_start):
                ends.update({start + t: gates[t].clone() for t in (0, n - 1)})
            if whole is not None:
                whole[:, :, start:start + n].copy_(gates.permute(2, 1, 0, 3))   # all four gates at once
            c = c.detach()
            if c_all is not None:
                at = cell_offset(n, batch, x.shape[2], units)
                if floats.numel() < at + (n - 1) * batch * units:
                    c_all = None
                else:
                    c_all[:, start:start + n - 1].copy_(
                        floats[at:at + (n - 1) * batch * units].view(n - 1, batch, units).transpose(0, 1))
                    c_all[:, start + n - 1].copy_(c)
            part_out = part_out.detach()
            h_all[:, start:start + n].copy_(part_out.transpose(0, 1))
            if out is None:
                out = part_out
            elif out.data_ptr() != h_all.data_ptr():
                out[start:start + n].copy_(part_out)
            del part_out, workspace, floats, gates   # before the next call, which then reuses their memory
    # checked once every call is made: the first check after the kernel's calls and copies meets cold
    # caches (1-2 ms at batch 1), the one after it warm ones (0.1-0.3 ms)
    if not first_step_matches(ends[0], x[0], h0, weights):
        return None
    c_steps = None
    if c_all is not None and cells_match(c_all, ends, c0):
        c_steps = c_all.transpose(0, 1)
    if parts is None:
        return None if c_steps is None else (out, h_all.transpose(0, 1), c_steps, h.detach(), c.detach(), None)
    return out, h_all.transpose(0, 1), c_steps, h.detach(), c.detach(), [p.transpose(0, 1) for p in parts]


@dataclass
class Part:
    """Where a layer run on a part of the batch writes (``lstm``'s ``part``): the part's views of
    the whole batch's buffers, and the stop it shares with the other parts."""

    share: int                      # parts running at once: their workspaces share WORKSPACE_BYTES
    h: torch.Tensor                 # (batch, time, units) views of the layer's h and c buffers
    c: torch.Tensor
    gates: Optional[torch.Tensor]   # (4, batch, time, units) view of its gate buffers; None: not kept
    out: Optional[torch.Tensor]     # (time, batch, units) view of the module's output (its last layer)
    stop: threading.Event           # set: another part failed, this one stops at its next call


def first_step_matches(found: torch.Tensor, x0: torch.Tensor, h0: torch.Tensor, weights: list) -> bool:
    """Whether ``found`` (batch, 4, units) are the activated gates of the first step."""
    w_ih, w_hh, b_ih, b_hh = (w.detach() for w in weights)
    with torch.no_grad():
        pre = torch.addmm(b_ih + b_hh, x0, w_ih.t()).addmm_(h0, w_hh.t()).view(found.shape)
        want = torch.cat([pre[:, :2].sigmoid(), pre[:, 2:3].tanh(), pre[:, 3:].sigmoid()], 1)
        return bool((want - found).abs().max() <= CHECK_TOLERANCE)


def cells_match(c: torch.Tensor, ends: dict, c0: torch.Tensor) -> bool:
    """Whether the cell states ``c`` (batch, time, units) read from the workspace are f_t c_{t-1}
    + i_t g_t of the gates read at the steps of ``ends`` (step -> the workspace's (batch, 4, units)
    gates: input, forget, cell, output), within CHECK_TOLERANCE relative to max(1, |c_t|). ``lstm``
    gives the first and last step of the first and the last call: those steps hold a value read
    from each end of a call's part of the workspace (and c_n), and the workspace's layout depends
    only on a call's length, every one of which these two calls have (checking every call's ends
    cost 4 ms a layer at batch 32)."""
    steps = sorted(ends)
    gates = torch.stack([ends[t] for t in steps], 1)                   # (batch, len(steps), 4, units)
    i, f, g = gates[:, :, 0], gates[:, :, 1], gates[:, :, 2]
    at = torch.tensor(steps, device=c.device)
    before = c.index_select(1, (at - 1).clamp(min=0))                 # c_{t-1}, c_{-1} = c0
    if steps[0] == 0:
        before[:, 0] = c0
    found = c.index_select(1, at)
    want = torch.addcmul(i * g, f, before)
    return bool(((want - found).abs() <= CHECK_TOLERANCE * found.abs().clamp(min=1)).all())
