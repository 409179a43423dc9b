"""Cells in a loop: one call of an nn.LSTMCell / nn.GRUCell / nn.RNNCell kept per step, and the
gates of all steps recomputed from the cell's own weights in one batched matmul afterwards."""
from __future__ import annotations

import warnings
from typing import Optional

import torch
from torch import nn

from ..kinds import GRU_GATES, LSTM_GATES
from .build import TraceBuilder
from .convert import steps_to_numpy, to_numpy

CELL_KINDS = {nn.LSTMCell: "lstm", nn.GRUCell: "gru", nn.RNNCell: "rnn"}


def cell_kind(module: nn.Module) -> Optional[str]:
    for cls, kind in CELL_KINDS.items():
        if isinstance(module, cls):
            return kind
    return None


def check_cell_dtypes(name: str, cell: nn.Module, x, hx) -> None:
    """A clear error, before the cell runs, for an input or hidden of another dtype than its weights."""
    dtype = cell.weight_ih.dtype
    given = [("input", x)] + [("hidden", t) for t in (hx if isinstance(hx, tuple) else (hx,))]
    for what, t in given:
        if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dtype != dtype:
            raise TypeError(f"rw.recording: cell {name!r} has {dtype} weights but got a {t.dtype} {what}; "
                            f"expected the cell's dtype (convert with .to({dtype}))")


def cell_step(cell: nn.Module, x, hx, output, last=None):
    """One call of a cell as detached, batched tensors: (input, (h_prev[, c_prev]), (h[, c])).

    ``last``: the previous call's (output as returned, its versions, its kept copy); when the
    hidden passed in is that output, unchanged, its copy is reused instead of copied again.
    """
    unbatched = x.dim() == 1
    lift = (lambda t: t.unsqueeze(0)) if unbatched else (lambda t: t)
    keep = lambda t: lift(t.detach()).clone()  # noqa: E731  (copies: the user may reuse tensors in place)
    returned = output if isinstance(output, tuple) else (output,)
    out = tuple(keep(t) for t in returned)
    given = hx if isinstance(hx, tuple) or hx is None else (hx,)
    if hx is None:
        prev = tuple(torch.zeros_like(t) for t in out)
    elif last is not None and len(given) == len(last[0]) and all(
            a is b and a._version == v for a, b, v in zip(given, last[0], last[1])):
        prev = last[2]
    else:
        prev = tuple(keep(t) for t in given)
    return keep(x), prev, out


def last_output(output, kept) -> tuple:
    """What ``cell_step`` needs to know of a call's output for the next call (its ``last``)."""
    returned = output if isinstance(output, tuple) else (output,)
    return returned, tuple(t._version for t in returned), kept


def cell_layer(builder: TraceBuilder, name: str, cell: nn.Module, calls: list):
    """Add the cell's layer to ``builder`` and return its inputs per step: states from the cell's
    own outputs, gates recomputed from its weights in one matmul over all steps, the initial state
    from the first call's hidden."""
    kind = cell_kind(cell)
    batches = {x.shape[0] for x, _, _ in calls}
    if len(batches) != 1:
        raise ValueError(f"rw.recording: cell {name!r} was called with batch sizes {sorted(batches)}; "
                         "a recording needs the same batch at every step")
    with torch.no_grad():
        x = torch.stack([c[0] for c in calls])                   # (time, batch, input)
        h_prev = torch.stack([c[1][0] for c in calls])
        h = torch.stack([c[2][0] for c in calls])
        gi = x.to(cell.weight_ih.dtype) @ cell.weight_ih.T
        gh = h_prev.to(cell.weight_hh.dtype) @ cell.weight_hh.T
        if cell.bias:
            gi = gi + cell.bias_ih
            gh = gh + cell.bias_hh
        states = {"h": h}
        initial = {"h": h_prev[0]}    # what the first call was given (zeros when it had no hidden)
        gates = {}
        if kind == "lstm":
            c_prev = torch.stack([c[1][1] for c in calls])
            initial["c"] = c_prev[0]
            states["c"] = torch.stack([c[2][1] for c in calls])
            i, f, g, o = (gi + gh).chunk(4, dim=-1)
            gates = dict(zip(LSTM_GATES, (i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid())))
            c_new = gates["forget"] * c_prev + gates["input"] * gates["cell"]
            recomputed = {"c": c_new, "h": gates["output"] * c_new.tanh()}
        elif kind == "gru":
            ir, iz, in_ = gi.chunk(3, dim=-1)
            hr, hz, hn = gh.chunk(3, dim=-1)
            r, z = (ir + hr).sigmoid(), (iz + hz).sigmoid()
            n = (in_ + r * hn).tanh()
            gates = dict(zip(GRU_GATES, (r, z, n)))
            recomputed = {"h": (1 - z) * n + z * h_prev}
        else:
            pre = gi + gh
            recomputed = {"h": pre.tanh() if cell.nonlinearity == "tanh" else pre.relu()}
        check_recomputed(name, states, recomputed)
    meta = {"module": name, "cell": kind, "hidden_size": cell.hidden_size, "input_size": cell.input_size}
    if kind == "rnn":
        meta["nonlinearity"] = cell.nonlinearity
    builder.layer(name, "cell", meta=meta, states={k: steps_to_numpy(v) for k, v in states.items()},
                  gates={k: steps_to_numpy(v) for k, v in gates.items()},
                  initial={k: to_numpy(v) for k, v in initial.items()})
    return steps_to_numpy(x)


def check_recomputed(name: str, states: dict, recomputed: dict):
    """Warn when the cell's weights do not reproduce its output (a subclass with its own forward)."""
    for key, value in recomputed.items():
        actual = states[key].to(value.dtype)
        tol = 1e-4 if value.dtype in (torch.float32, torch.float64) else 1e-2
        if not torch.allclose(value, actual, atol=tol, rtol=tol):
            warnings.warn(f"rw.recording: the gates of {name!r} recomputed from its weights do not reproduce "
                          f"its output {key!r} (max difference {(value - actual).abs().max().item():.3g}); "
                          "its gates are shown as the standard cell equations give them", stacklevel=3)
