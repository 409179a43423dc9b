"""Gradients through time for cells in the model's own loop (nn.LSTMCell / nn.GRUCell / nn.RNNCell).

    class Sequence(nn.Module):                    # PyTorch's time_sequence_prediction example
        def forward(self, input, future=0):
            for input_t in input.split(1, dim=1):
                h_t, c_t = self.lstm1(input_t, (h_t, c_t))
                h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
                ...
    tr = rw.trace(Sequence(), x, loss=lambda out: out.square().mean())

The model runs once with gradients on, inside a recording (recording.py: the states and gates of
every cell call), while forward hooks keep the tensors each cell call returned, still in the
graph. One ``torch.autograd.grad`` then gives dL/dh_t for every call: the whole gradient, through
every later use of h_t (the next step, the next cell, a head). ``grads["c"]`` is dL/dc_t through
every path too, h_t = o_t tanh(c_t) inside the call included: where the cell's kernel returns
h_t and c_t as two outputs of one fused operation (CUDA), the returned c_t's gradient misses that
path and it is added, dL/dh_t o_t (1 - tanh² c_t), with o_t recomputed from the cell's weights
as it runs; where h_t is computed from the returned c_t (the CPU's composite cell), autograd
already counts it. No ``.grad`` field changes.
"""
from __future__ import annotations

import torch
from torch import nn

from ..tracedata import Trace
from .cells import hook_cells, remove_hooks
from .convert import steps_to_numpy
from .gradients import base_of, every_path, recorded_loss, stats
from .recording import HookRecording


class LiveCellCalls:
    """Forward hooks on every cell of ``model`` keeping, per call, what it returned (in the graph)
    and, for an LSTMCell, o_t (1 - tanh² c_t): how dL/dh_t reaches c_t inside the call."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.calls: dict[str, list] = {}   # layer name -> per call (h, c or None, slope or None)
        self._handles: list = []

    def __enter__(self) -> "LiveCellCalls":
        self._handles.extend(hook_cells(self.model, lambda name, kind: self._hook(name)))
        return self

    def __exit__(self, *exc):
        remove_hooks(self._handles)
        return False

    def _hook(self, name: str):
        def hook(cell, args, kwargs, output):
            if not isinstance(output, tuple):
                self.calls.setdefault(name, []).append((output, None, None))
                return
            h, c = output
            x = args[0] if args else kwargs["input"]
            hx = args[1] if len(args) > 1 else kwargs.get("hx")
            with torch.no_grad():
                o = output_gate(cell, x, hx[0] if hx is not None else torch.zeros_like(h))
                tanh_c = torch.tanh(c)
                slope = o * (1 - tanh_c * tanh_c)
            self.calls.setdefault(name, []).append((h, c, slope))
        return hook


def output_gate(cell: nn.LSTMCell, x: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
    """o_t = σ(W_io x + b_io + W_ho h_{t-1} + b_ho): the last quarter of the cell's weights."""
    rows = slice(3 * cell.hidden_size, 4 * cell.hidden_size)
    pre = x @ cell.weight_ih[rows].T + h_prev @ cell.weight_hh[rows].T
    if cell.bias:
        pre = pre + cell.bias_ih[rows] + cell.bias_hh[rows]
    return torch.sigmoid(pre)


def trace_loop(model: nn.Module, args: tuple, kwargs: dict, tokens, loss, edits=()) -> Trace:
    """Run ``model`` once, recorded, and add dL/dh_t (and dL/dc_t) to every cell's layer (module doc).
    ``edits`` (edited.py) act through hooks put in before ``LiveCellCalls``', so the tensors it
    keeps are the edited ones each call hands on: the gradients are those of the edited run."""
    with torch.enable_grad(), HookRecording(model, tokens=tokens, deferred=True, edits=edits, who="rw.trace") as rec:
        with LiveCellCalls(model) as live:
            output = model(*args, **kwargs)
    builder = rec.collected
    assert builder is not None  # a deferred recording collects its layers when the block ends
    if not live.calls:
        raise ValueError(f"rw.trace: loss= needs an nn.LSTM / nn.GRU / nn.RNN, a step module with "
                         f"forward(input, hidden), or nn.LSTMCell / nn.GRUCell / nn.RNNCell called in the forward; "
                         f"{type(model).__name__} ran none of them")
    last = builder.layers[list(live.calls)[-1]]["states"]["h"]
    value = recorded_loss(loss, output, batch=last.shape[0], steps=last.shape[1])
    if not value.requires_grad:
        raise ValueError("rw.trace: the loss does not depend on the output of any recurrent cell in the graph; "
                         "expected cells with parameters that require grad, called outside torch.no_grad()")
    params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    wanted = [t for calls in live.calls.values() for h, c, _ in calls for t in (h, c)
              if t is not None and t.requires_grad]
    # whether an LSTMCell's c_t already carries the path through h_t (read before the graph is freed)
    counted = {name: calls[0][1] is None or reads(*calls[0][:2]) for name, calls in live.calls.items()}
    grads = every_path(value, wanted + [p for _, p in params])
    found = dict(zip(map(id, wanted), grads))
    for name, calls in live.calls.items():
        builder.layers[name]["grads"].update(cell_grads(calls, found, counted[name]))
    builder.param_grads = {name: stats(g if g is not None else torch.zeros_like(p))
                           for (name, p), g in zip(params, grads[len(wanted):])}
    return builder.build()


def cell_grads(calls: list, found: dict, counted: bool) -> dict:
    """One cell's "h" (and "c") gradients as (batch, time, units) numpy, from each call's tensors;
    ``counted``: the returned c_t's gradient already holds the path through h_t."""
    def grad(t):
        g = found.get(id(t))
        return (g if g is not None else torch.zeros_like(t)).detach()

    def rows(t):   # an unbatched call's (units,) as (1, units)
        return t.unsqueeze(0) if t.dim() == 1 else t

    dh = torch.stack([rows(grad(h)) for h, _, _ in calls])                         # (time, batch, units)
    out = {"h": steps_to_numpy(dh)}
    if calls[0][1] is not None:
        dc = torch.stack([rows(grad(c) if counted else grad(c) + grad(h) * slope) for h, c, slope in calls])
        out["c"] = steps_to_numpy(dc)
    return out


def reads(h: torch.Tensor, c: torch.Tensor) -> bool:
    """Whether ``h`` is computed from ``c`` in the graph (so c's gradient holds the path through h);
    ``c`` a view (a step recomputed under edits hands on its c_t as one) counts by its base, whose
    gradient ``every_path`` gives it."""
    if not (h.requires_grad and c.requires_grad):
        return False
    return torch.autograd.grad(h, base_of(c), torch.ones_like(h), retain_graph=True,
                               allow_unused=True)[0] is not None
