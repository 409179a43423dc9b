"""Recording: trace a model that drives its cells from its own Python loop.

    with rw.recording(model) as rec:
        for x_t in xs:
            h, c = model.cell(x_t, (h, c))
    rec.trace                        # an rw.Trace

For the duration of the ``with`` block every ``nn.LSTMCell``, ``nn.GRUCell`` and ``nn.RNNCell``
inside ``model`` carries a forward hook; each call of a cell is one step of its layer (named by
the cell's module path, or its class name lowercased when the model is the cell itself). The
hook only keeps the call's input, previous state and output, detached; the gates are recomputed
from the cell's own weights after the block, as one batched matmul per cell.

``rw.record(name, tensor)`` inside any forward adds one step to a track called ``name``. The
track belongs to the layer of the innermost module of ``model`` whose forward is running (named
by its module path; the model itself by its class name lowercased), or to a layer called
"record" when no module of the model is running. Tracks named "h" and "c" are that layer's
states, so a hand-written recurrent module that records them shows like any other layer; every
other name goes to ``lt.tracks``. A tensor is one step: (batch, features), or (features,) /
a scalar for batch 1. Outside a recording ``record`` returns at once.
"""
from __future__ import annotations

import warnings
from contextvars import ContextVar
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..trace import LayerTrace, Trace
from .api import normalize_tokens
from .convert import steps_to_numpy, to_numpy

CELL_KINDS = {nn.LSTMCell: "lstm", nn.GRUCell: "gru", nn.RNNCell: "rnn"}
LSTM_GATES = ("input", "forget", "cell", "output")   # PyTorch's chunk order i, f, g, o
GRU_GATES = ("reset", "update", "new")               # chunk order r, z, n
STATE_NAMES = ("h", "c")

_active: ContextVar[Optional["Recording"]] = ContextVar("rnnwidgets_recording", default=None)


def record(name: str, tensor) -> None:
    """Add one step of ``tensor`` to the per-step track ``name`` of the active recording.

    Does nothing outside ``rw.recording`` (and inside ``rw.trace`` of a step module, which
    records the same way), so it can stay in a model's forward for good.
    """
    rec = _active.get()
    if rec is not None:
        rec.add_step(name, tensor)


def recording(model: nn.Module, tokens=None) -> "Recording":
    """Context manager recording every cell call and ``rw.record`` inside ``model``; see module doc."""
    return Recording(model, tokens=tokens)


def cell_kind(module: nn.Module) -> Optional[str]:
    for cls, kind in CELL_KINDS.items():
        if isinstance(module, cls):
            return kind
    return None


def as_step(name: str, tensor) -> torch.Tensor:
    """One step as a detached (batch, features) tensor, or a clear error."""
    t = torch.as_tensor(tensor).detach()
    if t.dim() == 0:
        t = t.reshape(1, 1)
    elif t.dim() == 1:
        t = t.unsqueeze(0)
    elif t.dim() != 2:
        raise ValueError(f"rw.record({name!r}, ...): expected a (batch, features) or (features,) tensor "
                         f"for one step, got shape {tuple(t.shape)}")
    return t.clone()


def stack_steps(where: str, steps: list) -> np.ndarray:
    """Per-step (batch, features) tensors -> float32 numpy (batch, time, features)."""
    shapes = {tuple(s.shape) for s in steps}
    if len(shapes) != 1:
        raise ValueError(f"{where}: every step must have the same (batch, features) shape, got {sorted(shapes)}")
    return to_numpy(torch.stack(steps, dim=1))


class Recording:
    """Hooks on ``model`` while the ``with`` block runs; ``.trace`` is built when it ends."""

    def __init__(self, model: nn.Module, tokens=None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"rw.recording expects a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.tokens = tokens
        self._root_name = type(model).__name__.lower()
        self._handles = []
        self._running = []          # module paths whose forward is running, innermost last
        self._cells = {}            # layer name -> the cell module
        self._cell_calls = {}       # layer name -> list of (input, previous state, output)
        self._tracks = {}           # layer name -> track name -> list of steps
        self._order = []            # layer names in the order they first did something
        self._token = None
        self._trace = None

    # ---- the with block ---------------------------------------------------------------------
    def __enter__(self) -> "Recording":
        if self._token is not None:
            raise RuntimeError("this recording is already running")
        try:
            for path, module in self.model.named_modules():
                name = self._layer_name(path)
                self._handles.append(module.register_forward_pre_hook(self._enter_hook(name)))
                self._handles.append(module.register_forward_hook(self._leave_hook, always_call=True))
                if cell_kind(module):
                    self._handles.append(module.register_forward_hook(self._cell_hook(name), with_kwargs=True))
        except BaseException:
            self._remove_hooks()
            raise
        self._token = _active.set(self)
        return self

    def __exit__(self, exc_type, exc, tb):
        self._remove_hooks()
        _active.reset(self._token)
        if exc_type is None:
            self._trace = self._build()
        return False

    @property
    def trace(self) -> Trace:
        if self._trace is None:
            raise RuntimeError("rec.trace exists once the `with rw.recording(model) as rec:` block has ended "
                               "without an error")
        return self._trace

    def _remove_hooks(self):
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._running.clear()

    def _layer_name(self, path: str) -> str:
        return path or self._root_name

    def _touch(self, layer: str):
        if layer not in self._tracks:
            self._tracks[layer] = {}
            self._order.append(layer)

    # ---- hooks --------------------------------------------------------------------------------
    def _enter_hook(self, name):
        def hook(module, args):
            self._running.append(name)
        return hook

    def _leave_hook(self, module, args, output):
        if self._running:
            self._running.pop()

    def _cell_hook(self, name):
        def hook(module, args, kwargs, output):
            x = args[0] if args else kwargs["input"]
            hx = args[1] if len(args) > 1 else kwargs.get("hx")
            self._touch(name)
            self._cells[name] = module
            self._cell_calls.setdefault(name, []).append(_cell_step(module, x, hx, output))
        return hook

    def add_step(self, name: str, tensor):
        layer = self._running[-1] if self._running else "record"
        step = as_step(name, tensor)
        self._touch(layer)
        self._tracks[layer].setdefault(name, []).append(step)

    # ---- building the Trace ---------------------------------------------------------------------
    def _build(self) -> Trace:
        if not self._order:
            raise ValueError(f"rw.recording: nothing was recorded — {type(self.model).__name__} called no "
                             "nn.LSTMCell / nn.GRUCell / nn.RNNCell inside the block and no rw.record(...) ran")
        layers, cell_inputs = {}, {}
        for name in self._order:
            if name in self._cells:
                lt, cell_inputs[name] = _cell_layer(name, self._cells[name], self._cell_calls[name])
            else:
                lt = LayerTrace(name, "custom", meta={"module": name})
            for track, steps in self._tracks[name].items():
                group = lt.states if track in STATE_NAMES else lt.tracks
                group[track] = stack_steps(f"layer {name!r}, track {track!r}", steps)
            layers[name] = lt
        # a Trace reads batch and steps from its first layer's h
        with_h = [n for n in layers if "h" in layers[n].states]
        if not with_h:
            raise ValueError("rw.recording: no layer has a hidden state — call a cell inside the block, or "
                             "rw.record('h', hidden) in your module's forward")
        order = with_h + [n for n in layers if n not in with_h]
        layers = {n: layers[n] for n in order}
        first = layers[order[0]]
        batch, steps = first.h.shape[:2]
        inputs = cell_inputs.get(order[0])   # the first cell's input per step, as the model's input
        return Trace(layers=layers, lengths=np.full(batch, steps), tokens=normalize_tokens(self.tokens),
                     inputs=inputs,
                     meta={"source": "recording", "model": type(self.model).__name__})


def _cell_step(cell: nn.Module, x, hx, output):
    """One call of a cell as detached, batched tensors: (input, (h_prev[, c_prev]), (h[, c]))."""
    unbatched = x.dim() == 1
    lift = (lambda t: t.unsqueeze(0)) if unbatched else (lambda t: t)
    keep = lambda t: lift(t.detach()).clone()  # noqa: E731  (copies: the user may reuse tensors in place)
    out = tuple(keep(t) for t in (output if isinstance(output, tuple) else (output,)))
    if hx is None:
        prev = tuple(torch.zeros_like(t) for t in out)
    else:
        prev = tuple(keep(t) for t in (hx if isinstance(hx, tuple) else (hx,)))
    return keep(x), prev, out


def _cell_layer(name: str, cell: nn.Module, calls: list):
    """(LayerTrace, inputs per step): states from the cell's own outputs, gates recomputed from its
    weights in one matmul over all steps."""
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
        gates = {}
        if kind == "lstm":
            c_prev = torch.stack([c[1][1] for c in calls])
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
        _check_recomputed(name, states, recomputed)
    meta = {"module": name, "cell": kind, "hidden_size": cell.hidden_size, "input_size": cell.input_size}
    if kind == "rnn":
        meta["nonlinearity"] = cell.nonlinearity
    lt = LayerTrace(name, "cell", states={k: steps_to_numpy(v) for k, v in states.items()},
                    gates={k: steps_to_numpy(v) for k, v in gates.items()}, meta=meta)
    return lt, steps_to_numpy(x)


def _check_recomputed(name: str, states: dict, recomputed: dict):
    """Warn when the cell's weights do not reproduce its output (a subclass with its own forward)."""
    for key, value in recomputed.items():
        actual = states[key].to(value.dtype)
        tol = 1e-4 if value.dtype in (torch.float32, torch.float64) else 1e-2
        if not torch.allclose(value, actual, atol=tol, rtol=tol):
            warnings.warn(f"rw.recording: the gates of {name!r} recomputed from its weights do not reproduce "
                          f"its output {key!r} (max difference {(value - actual).abs().max().item():.3g}); "
                          "its gates are shown as the standard cell equations give them", stacklevel=3)
