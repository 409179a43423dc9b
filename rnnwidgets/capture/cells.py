"""Cells in a loop: one call of an nn.LSTMCell / nn.GRUCell / nn.RNNCell kept per step, and the
gates of all steps recomputed from the cell's own weights in one batched matmul afterwards."""
from __future__ import annotations

import warnings
from typing import Optional

import torch
from torch import nn

from ..kinds import GRU_GATES, LSTM_GATES, module_label
from .build import TraceBuilder
from .convert import steps_to_numpy, to_numpy

CELL_KINDS = {nn.LSTMCell: "lstm", nn.GRUCell: "gru", nn.RNNCell: "rnn"}


def cell_kind(module: nn.Module) -> Optional[str]:
    for cls, kind in CELL_KINDS.items():
        if isinstance(module, cls):
            return kind
    return None


def hook_cells(model: nn.Module, make_hook) -> list:
    """A forward hook (given the call's args and kwargs) on every cell of ``model`` (its
    nn.LSTMCell, nn.GRUCell and nn.RNNCell modules, ``model`` itself included):
    ``make_hook(name, kind)``, the cell's layer name and kind, makes each. Returns the handles."""
    handles = []
    for path, module in model.named_modules():
        kind = cell_kind(module)
        if kind:
            name = module_label(path, type(model).__name__)
            handles.append(module.register_forward_hook(make_hook(name, kind), with_kwargs=True))
    return handles


def remove_hooks(handles: list) -> None:
    """Remove every hook of ``handles`` and empty the list."""
    for handle in handles:
        handle.remove()
    handles.clear()


def check_cell_dtypes(name: str, cell: nn.Module, x, hx) -> None:
    """A clear error, before the cell runs, for an input or hidden of another dtype than its weights."""
    dtype = cell.weight_ih.dtype
    given = [("input", x)] + [("hidden", t) for t in (hx if isinstance(hx, tuple) else (hx,))]
    for what, t in given:
        if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dtype != dtype:
            raise TypeError(f"rw.recording: cell {name!r} has {dtype} weights but got a {t.dtype} {what}; "
                            f"expected the cell's dtype (convert with .to({dtype}))")


class CellCalls:
    """Every call of one cell, kept as it happened: one copy per call of [input | h (| c)] in a
    single row (one copy instead of one per tensor), and the hidden each call was given where it
    is not simply the previous call's output, unchanged (then that output's copy serves).
    Copies, because the user may reuse tensors in place."""

    def __init__(self, cell: nn.RNNCellBase):
        self.cell = cell
        self.rows: list[torch.Tensor] = []  # per call: (batch, input + state widths)
        self.given: dict[int, Optional[tuple]] = {}  # call index -> (h_prev[, c_prev]) copies, or None for zeros
        self._last: Optional[tuple] = None  # the previous call's returned tensors and their versions

    def add(self, x, hx, output) -> None:
        returned = output if isinstance(output, tuple) else (output,)
        row = torch.cat([x.detach(), *(t.detach() for t in returned)], -1)
        self.rows.append(row.unsqueeze(0) if x.dim() == 1 else row)
        last, self._last = self._last, (returned, tuple(t._version for t in returned))
        if hx is None:
            self.given[len(self.rows) - 1] = None
            return
        given = hx if isinstance(hx, tuple) else (hx,)
        if not (last is not None and len(given) == len(last[0]) and all(
                a is b and a._version == v for a, b, v in zip(given, *last))):
            lift = (lambda t: t.unsqueeze(0)) if x.dim() == 1 else (lambda t: t)
            self.given[len(self.rows) - 1] = tuple(lift(t.detach()).clone() for t in given)

    def release(self) -> None:
        """Let go of the user's last output (only its versions were needed)."""
        self._last = None

    def tensors(self, name: str) -> tuple:
        """(x, states, previous states): (time, batch, ·) tensors; states "h" (and "c")."""
        batches = sorted({r.shape[0] for r in self.rows})
        if len(batches) != 1:
            raise ValueError(f"rw.recording: cell {name!r} was called with batch sizes {batches}; "
                             "a recording needs the same batch at every step")
        rows = torch.stack(self.rows)
        count = (rows.shape[2] - self.cell.input_size) // self.cell.hidden_size   # 2 for an LSTMCell: h, c
        widths = [self.cell.input_size] + [self.cell.hidden_size] * count
        x, *parts = rows.split(widths, -1)
        keys = ("h", "c")[:len(parts)]
        states = dict(zip(keys, parts))
        previous = {}
        for k, key in enumerate(keys):
            prev = torch.empty_like(states[key])
            prev[1:] = states[key][:-1]
            for t, given in self.given.items():
                prev[t] = 0 if given is None else given[k]
            previous[key] = prev
        return x, states, previous


def cell_layer(builder: TraceBuilder, name: str, calls: CellCalls, edit=None):
    """Add the cell's layer to ``builder`` and return its inputs per step: states from the cell's
    own outputs, gates recomputed from its weights in one matmul over all steps, the initial state
    from the first call's hidden. ``edit(quantity, (time, batch, units) tensor)``: the edits the
    run applied (edited.py), applied again as the gates are recomputed."""
    cell = calls.cell
    kind = cell_kind(cell)
    with torch.no_grad():
        x, states, previous = calls.tensors(name)                # (time, batch, ·)
        initial = {key: prev[0] for key, prev in previous.items()}   # the first call's hidden (zeros if none)
        recomputed, gates = cell_equations(cell, kind, x, previous["h"], previous.get("c"), edit)
        check_recomputed(name, states, recomputed)
    meta: dict = {"module": name, "cell": kind, "hidden_size": cell.hidden_size, "input_size": cell.input_size}
    if kind == "rnn":
        meta["nonlinearity"] = cell.nonlinearity
    builder.layer(name, "cell", meta=meta, states={k: steps_to_numpy(v) for k, v in states.items()},
                  gates={k: steps_to_numpy(v) for k, v in gates.items()},
                  initial={k: to_numpy(v) for k, v in initial.items()})
    return steps_to_numpy(x)


def cell_equations(cell: nn.Module, kind: Optional[str], x, h_prev, c_prev=None, edit=None) -> tuple:
    """(states, gates) of the cell's documented equations on (time, batch, ·) inputs and previous
    states, in one matmul over all steps. ``edit(quantity, tensor)`` is applied to each gate and
    state as it is computed, before what depends on it (edited.py), when given."""
    edit = edit or (lambda quantity, value: value)
    gi = x.to(cell.weight_ih.dtype) @ cell.weight_ih.T
    gh = h_prev.to(cell.weight_hh.dtype) @ cell.weight_hh.T
    if cell.bias:
        gi = gi + cell.bias_ih
        gh = gh + cell.bias_hh
    if kind == "lstm":
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        gates = {n: edit(n, v) for n, v in zip(LSTM_GATES, (i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()))}
        c_new = edit("c", gates["forget"] * c_prev + gates["input"] * gates["cell"])
        return {"h": edit("h", gates["output"] * c_new.tanh()), "c": c_new}, gates
    if kind == "gru":
        ir, iz, in_ = gi.chunk(3, dim=-1)
        hr, hz, hn = gh.chunk(3, dim=-1)
        r, z = edit("reset", (ir + hr).sigmoid()), edit("update", (iz + hz).sigmoid())
        n = edit("new", (in_ + r * hn).tanh())
        return {"h": edit("h", (1 - z) * n + z * h_prev)}, dict(zip(GRU_GATES, (r, z, n)))
    pre = gi + gh
    return {"h": edit("h", pre.tanh() if cell.nonlinearity == "tanh" else pre.relu())}, {}


def check_recomputed(name: str, states: dict, recomputed: dict):
    """Warn when the cell's weights do not reproduce its output (a subclass with its own forward)."""
    for key, value in recomputed.items():
        actual = states[key].to(value.dtype)
        tol = 1e-4 if value.dtype in (torch.float32, torch.float64) else 1e-2
        if not torch.allclose(value, actual, atol=tol, rtol=tol):
            warnings.warn(f"rw.recording: the gates of {name!r} recomputed from its weights do not reproduce "
                          f"its output {key!r} (max difference {(value - actual).abs().max().item():.3g}); "
                          "its gates are shown as the standard cell equations give them", stacklevel=3)
