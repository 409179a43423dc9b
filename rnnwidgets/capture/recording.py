"""Recording: trace a model that is driven step by step from a Python loop.

    with rw.recording(model) as rec:
        for x_t in xs:
            h, c = model.cell(x_t, (h, c))          # cells in the user's own loop
            output, hidden = model(x_t, hidden)      # or the model itself as a step module
    rec.trace                                        # an rw.Trace

While the ``with`` block runs, ``model`` and its submodules carry forward hooks:

- Every ``nn.LSTMCell``, ``nn.GRUCell`` and ``nn.RNNCell`` inside ``model``: each call is one step
  of its layer (kind "cell", named by the cell's module path, or its class name lowercased when
  the model is the cell itself); the gates are recomputed afterwards (see cells.py).
- ``model`` itself called as a step module, ``model(input, hidden) -> (output, hidden)`` with
  input (batch, features) or (features,): each call is one step of a layer named by its class
  name lowercased (kind "custom") with states "h" (and "c" for an (h, c) tuple), the track
  "output" (also ``tr.outputs``) and one track per direct submodule's output ("i2h", "i2o"; a
  submodule called twice in a step gives "name", "name.1"; a tuple output "name.0", "name.1").
- ``rw.record(name, tensor)`` adds one step to the track ``name`` of the layer of the innermost
  module of ``model`` whose forward is running (named as above), or of a layer called "record"
  when none is. Tracks named "h" and "c" are that layer's states, so a hand-written recurrent
  module that records them shows like any other layer. A tensor is one step: (batch, features);
  (batch,), one value per batch element; (features,) or a scalar for batch 1 (a vector as long
  as the batch, batch > 1, is read as one value per element). Outside a recording ``record`` returns at once.

A cell's ``initial`` is the hidden its first call was given (zeros when it was given none); a
step module's is the hidden passed into its first call, where it has one row per batch element
of a returned state (see ``given_states``); a state recorded with ``rw.record`` has none.

Everything kept is a detached copy; hooks are removed when the block ends, also on an error.
"""
from __future__ import annotations

import warnings
from contextvars import ContextVar, Token
from typing import NamedTuple, Optional

import numpy as np
import torch
from torch import nn

from ..kinds import module_label, states_of
from ..tracedata import Trace
from .build import TraceBuilder
from .cells import CellCalls, cell_kind, cell_layer, check_cell_dtypes
from .convert import to_numpy
from .edited import EditedLayers, EditHooks
from .edits import check_all_found, describe
from .fused import LayerByLayer, fused_modules
from .fused_trace import active_dropout, layer_arrays, merge_calls
from .gradients import recorded_loss

STATE_NAMES = states_of("lstm")   # "h", "c": recorded under these names, a track is a state

_active: ContextVar[Optional["HookRecording"]] = ContextVar("rnnwidgets_recording", default=None)


def record(name: str, tensor, time: Optional[int] = None, decay=None) -> None:
    """Add one step of ``tensor`` to the per-step track ``name`` of the active recording; with
    ``time=d``, every step of a whole sequence at once, time along dimension ``d`` (a parallel
    scan: ``rw.record("h", h, time=1)`` for h (batch, time, units)).

    ``decay`` (with ``time=``, for the state "h"): how much of h_{t-1} each h_t keeps, shaped
    like ``tensor`` or broadcast to it, as in h_t = decay_t * h_{t-1} + b_t (minGRU: 1 - z_t).
    A scan computes every h_t at once, so no step's h leads to the next in its graph; with
    ``decay`` a ``loss=`` gives ∂L/∂h_t through time exactly, g_t = ∂L/∂h_t|direct + decay_{t+1} g_{t+1}.

    Does nothing outside ``rw.recording`` (and outside ``rw.trace`` of a step module, which
    records the same way), so it can stay in a model's forward for good.
    """
    rec = _active.get()
    if rec is None:
        return
    if time is None:
        if decay is not None:
            raise ValueError(f"rw.record({name!r}, ..., decay=...): decay goes with time=, a whole sequence at once")
        rec.add_step(name, tensor)
        return
    t = torch.as_tensor(tensor)
    if not -t.dim() <= time < t.dim():
        raise ValueError(f"rw.record({name!r}, ..., time={time}): a tensor of shape {tuple(t.shape)} has no "
                         f"dimension {time}")
    if decay is not None:
        if name != "h":
            raise ValueError(f"rw.record({name!r}, ..., decay=...): decay belongs to the state 'h'")
        try:
            decay = torch.as_tensor(decay).expand_as(t)
        except RuntimeError:
            raise ValueError(f"rw.record('h', ..., decay=...): expected a decay shaped like h {tuple(t.shape)} or "
                             f"broadcast to it, got {tuple(torch.as_tensor(decay).shape)}") from None
    rec.add_sequence(name, t, time % t.dim(), decay)


def recording(model: nn.Module, tokens=None) -> "HookRecording":
    """Context manager recording what ``model`` does step by step; see the module doc.

    ``tokens``: a list of strings (batch 1) or one list per batch element. A model wrapped by
    ``torch.compile`` or ``nn.DataParallel`` is recorded as the module it wraps (call.py).
    """
    from .call import unwrap

    return HookRecording(unwrap(model), tokens=tokens)


def as_step(name: str, tensor) -> torch.Tensor:
    """One rw.record step as a detached copy of at most two dimensions, or a clear error."""
    t = torch.as_tensor(tensor).detach()
    if t.dim() > 2:
        raise ValueError(f"rw.record({name!r}, ...): expected a (batch, features), (batch,) or (features,) tensor "
                         f"for one step, got shape {tuple(t.shape)}")
    return t.clone()


def step_rows(step: torch.Tensor, batch: int) -> torch.Tensor:
    """A recorded step laid out (batch, features): a scalar is (1, 1); a vector of one value per
    batch element (batch > 1) is (batch, 1), any other vector the features of batch 1."""
    if step.dim() == 0:
        return step.reshape(1, 1)
    if step.dim() == 1:
        return step.unsqueeze(1) if batch > 1 and len(step) == batch else step.unsqueeze(0)
    return step


def per_batch(t: torch.Tensor, batch: int) -> Optional[torch.Tensor]:
    """A detached copy laid out (batch, features): (layers, batch, units) moved (an nn.RNN state's
    layout, read so even when layers == batch), (batch, ...) flattened, anything for batch 1
    flattened; None when no dimension is the batch."""
    t = t.detach()
    if t.dim() == 3 and t.shape[1] == batch:
        return t.transpose(0, 1).reshape(batch, -1).clone()
    if t.dim() >= 1 and t.shape[0] == batch:
        return t.reshape(batch, -1).clone()
    if batch == 1:
        return t.reshape(1, -1).clone()
    return None


def state_parts(hidden) -> dict:
    """A hidden state by name: a tensor is "h"; a tuple is "h", "c", then "state2", ..."""
    parts = hidden if isinstance(hidden, (tuple, list)) else (hidden,)
    names = [STATE_NAMES[i] if i < len(STATE_NAMES) else f"state{i}" for i in range(len(parts))]
    return dict(zip(names, parts))


def stack_steps(where: str, steps: list) -> np.ndarray:
    """Per-step (batch, features) tensors -> float32 numpy (batch, time, features)."""
    shapes = {tuple(s.shape) for s in steps}
    if len(shapes) != 1:
        raise ValueError(f"{where}: every step must have the same (batch, features) shape, got {sorted(shapes)}")
    return to_numpy(torch.stack(steps, dim=1))


def given_states(hidden, states: dict) -> dict:
    """The parts of the hidden passed into a step that correspond to the states it returned:
    same name, a tensor, and the same (batch, features) layout; the others are left out."""
    if not isinstance(hidden, (torch.Tensor, tuple, list)):
        return {}
    found = {}
    for name, part in state_parts(hidden).items():
        if name in states and isinstance(part, torch.Tensor):
            kept = per_batch(part, states[name].shape[0])
            if kept is not None and kept.shape == states[name].shape:
                found[name] = kept
    return found


class StepCall(NamedTuple):
    """One call of the model as a step module, as (batch, features) copies."""
    input: torch.Tensor
    output: torch.Tensor
    states: dict
    children: dict       # direct submodule outputs during the call; None where not per batch


def step_slots(model: nn.Module) -> tuple:
    """Where a step call's input and hidden sit among its positional arguments: the parameter
    before the one named like a state (``forward(category, input, hidden)``: 1, 2), else (0, 1)."""
    from .call import ModelCall, looks_like_hidden

    names = [p.name for p in ModelCall(model, who="rw.recording").positional]
    at = next((i for i, n in enumerate(names) if i > 0 and looks_like_hidden(n)), 1)
    return at - 1, at


def looks_like_step(args, slots: tuple = (0, 1)) -> bool:
    """Whether a call's arguments look like one step: (..., input, hidden), input (batch, features)
    or (features,), at ``slots``; with the default slots exactly (input, hidden)."""
    x_at, h_at = slots
    count_ok = len(args) == 2 if slots == (0, 1) else len(args) > h_at
    return count_ok and isinstance(args[x_at], torch.Tensor) and args[x_at].dim() in (1, 2)


def step_call(args, result, children, slots: tuple = (0, 1)) -> Optional[StepCall]:
    """The call as a StepCall when it looks like forward(input, hidden) -> (output, hidden)."""
    if not looks_like_step(args, slots):
        return None
    x_in = args[slots[0]]
    if not (isinstance(result, (tuple, list)) and len(result) == 2 and isinstance(result[0], torch.Tensor)):
        return None
    states = state_parts(result[1])
    if not all(isinstance(s, torch.Tensor) for s in states.values()):
        return None
    batch = x_in.shape[0] if x_in.dim() == 2 or not x_in.is_floating_point() else 1   # ids: (batch,)
    ids_step = not x_in.is_floating_point() and x_in.dim() == 2 and x_in.shape[0] == 1
    batch = x_in.shape[1] if ids_step else batch    # ids of one step with a time axis: (1, batch)
    kept = {k: per_batch(s, batch) for k, s in states.items()}
    output = per_batch(result[0], batch)
    if output is None or any(s is None for s in kept.values()):
        return None
    x = x_in.reshape(batch, 1).clone() if ids_step else per_batch(x_in, batch)
    assert x is not None  # batch was read from args[0]
    return StepCall(x, output, kept,
                    {name: per_batch(t, batch) for name, t in children.items()})


class HookRecording:
    """Forward hooks on ``model`` while the ``with`` block runs, recording each call as a step;
    ``.trace`` is built when it ends. With ``deferred``, the block's end only collects the layers
    (``collected``, a TraceBuilder) for the caller to complete and build."""

    def __init__(self, model: nn.Module, tokens=None, deferred: bool = False, slots: Optional[tuple] = None,
                 keep_states: bool = False, edits=(), who: str = "rw.recording", differentiable: bool = False):
        if not isinstance(model, nn.Module):
            raise TypeError(f"rw.recording expects a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.slots = slots if slots is not None else step_slots(model)  # a step call's (input, hidden)
        self.tokens = tokens
        self.root = module_label("", type(model).__name__)
        self._handles: list = []
        self._running: list[str] = []  # layer names of the modules whose forward is running, innermost last
        self._cells: dict[str, CellCalls] = {}  # layer name -> every call of that cell
        self._step_calls: list[StepCall] = []  # the model's own calls as a step module
        self._step_initial: dict = {}  # the hidden passed into the first of them, where it matches a state
        self._children = None       # direct submodule outputs of the model's call now running
        self._child_calls: dict[str, int] = {}  # output name -> how many outputs of that name the call gave
        self._tracks: dict[str, dict[str, list]] = {}  # layer name -> track name -> list of steps
        self._order: list[str] = []  # layer names in the order they first did something
        self._token: Optional[Token] = None
        self._deferred = deferred
        self.collected: Optional[TraceBuilder] = None
        self._trace = None
        # with keep_states (rw.trace with loss=): layer -> state name -> the recorded tensors, in the
        # graph, as (tensor, time dimension or None for one step, decay or None)
        self.keep_states = keep_states
        self.live_states: dict = {}
        # an nn.LSTM / GRU / RNN inside, called step by step (a one-token encoder), runs layer by
        # layer while the block runs: each call one run, its gates recomputed from its weights
        # edits (rw.clamp, rw.patch: edited.py) act through hooks put in before ours, and through
        # the fused modules' layer runs
        self.edits, self.who = list(edits), who
        self._edit_hooks = EditHooks(who, model, self.edits, lambda args: looks_like_step(args, self.slots)) \
            if self.edits else None
        # with ``differentiable`` (a step module traced with loss=, its gradients by autograd through
        # its calls) the fused modules' layers run on the native kernel in the graph, not on our
        # gradient-free fast paths; their gates are recomputed from the runs afterwards as always
        native = (lambda run, x, hx: run.native(x, hx)) if differentiable else None
        self._edited_layers = EditedLayers(who, self.edits, fallback=native) if self.edits else None
        self._fused = fused_layers(model, self._edited_layers or native)

    # ---- the with block ---------------------------------------------------------------------
    def __enter__(self) -> "HookRecording":
        if self._token is not None:
            raise RuntimeError("this recording is already running")
        try:
            if self._edit_hooks is not None:
                self._edit_hooks.__enter__()
            self._add_hooks()
            if self._fused is not None:
                self._fused.__enter__()
        except BaseException:
            self._remove_hooks()
            raise
        self._token = _active.set(self)
        return self

    def __exit__(self, exc_type, exc, tb):
        self._remove_hooks()
        for calls in self._cells.values():
            calls.release()         # no reference to the user's tensors outlives the block
        _active.reset(self._token)
        if exc_type is None:
            self.collected = self._collect()
            if not self._deferred:
                self._trace = self.collected.build()
        return False

    @property
    def trace(self) -> Trace:
        if self._trace is None:
            raise RuntimeError("rec.trace exists once the `with rw.recording(model) as rec:` block has ended "
                               "without an error")
        return self._trace

    def _add_hooks(self):
        hook = self._handles.append
        for path, module in self.model.named_modules():
            name = module_label(path, type(self.model).__name__)
            if cell_kind(module):   # one hook each way per call: a loop may run a cell many thousand times
                hook(module.register_forward_pre_hook(self._cell_enter_hook(name), with_kwargs=True))
                hook(module.register_forward_hook(self._cell_hook(name), with_kwargs=True, always_call=True))
            else:
                hook(module.register_forward_pre_hook(self._enter_hook(name)))
                hook(module.register_forward_hook(self._leave_hook, always_call=True))
        if not cell_kind(self.model):
            hook(self.model.register_forward_pre_hook(self._step_begins))
            hook(self.model.register_forward_hook(self._step_ends, always_call=True))
            for name, child in self.model.named_children():
                hook(child.register_forward_hook(self._child_hook(name)))

    def _remove_hooks(self):
        if self._edit_hooks is not None:
            self._edit_hooks.__exit__(None, None, None)
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._running.clear()
        if self._fused is not None:
            self._fused.__exit__(None, None, None)      # the fused modules' own forwards back

    def _touch(self, layer: str):
        if layer not in self._tracks:
            self._tracks[layer] = {}
            self._order.append(layer)

    # ---- hooks --------------------------------------------------------------------------------
    def _enter_hook(self, name):
        def hook(module, args):
            self._running.append(name)
        return hook

    def _cell_enter_hook(self, name):
        def hook(module, args, kwargs):
            self._running.append(name)
            x = args[0] if args else kwargs.get("input")
            hx = args[1] if len(args) > 1 else kwargs.get("hx")
            check_cell_dtypes(name, module, x, hx)
        return hook

    def _leave_hook(self, module, args, output):
        if self._running:
            self._running.pop()

    def _cell_hook(self, name):
        def hook(module, args, kwargs, output):
            if self._running:
                self._running.pop()
            if output is None:      # the call raised
                return
            x = args[0] if args else kwargs["input"]
            hx = args[1] if len(args) > 1 else kwargs.get("hx")
            calls = self._cells.get(name)
            if calls is None:
                self._touch(name)
                calls = self._cells[name] = CellCalls(module)
            calls.add(x, hx, output)
        return hook

    def _step_begins(self, module, args):
        # children are kept only for a call that can be a step, forward(input, hidden): a model
        # running its own loop would otherwise keep every child output of the whole loop
        self._children = {} if looks_like_step(args, self.slots) else None
        self._child_calls = {}

    def _child_hook(self, name):
        def hook(module, args, output):
            if self._children is None:
                return
            parts = {name: output} if isinstance(output, torch.Tensor) else (
                {f"{name}.{i}": p for i, p in enumerate(output) if isinstance(p, torch.Tensor)}
                if isinstance(output, (tuple, list)) else {})
            for key, tensor in parts.items():
                n = self._child_calls.get(key, 0)   # "name", "name.1", ...: counted, not searched
                label = key if n == 0 else f"{key}.{n}"
                while label in self._children:
                    n += 1
                    label = f"{key}.{n}"
                self._child_calls[key] = n + 1
                self._children[label] = tensor.detach()
        return hook

    def _step_ends(self, module, args, output):
        children, self._children = self._children or {}, None
        call = step_call(args, output, children, self.slots)
        if call is not None:
            self._touch(self.root)
            if not self._step_calls:     # only the first call's hidden is kept: the start of the run
                self._step_initial = given_states(args[self.slots[1]], call.states)
            self._step_calls.append(call)

    def add_step(self, name: str, tensor, live: bool = True):
        layer = self._running[-1] if self._running else "record"
        step = as_step(name, tensor)
        self._touch(layer)
        self._tracks[layer].setdefault(name, []).append(step)
        if live and self.keep_states and name in STATE_NAMES and isinstance(tensor, torch.Tensor):
            self.live_states.setdefault(layer, {}).setdefault(name, []).append((tensor, None, None))

    def add_sequence(self, name: str, tensor: torch.Tensor, time: int, decay):
        """Every step of ``tensor`` along ``time`` (``record``'s ``time=``)."""
        for step in tensor.detach().unbind(time):
            self.add_step(name, step, live=False)
        if self.keep_states and name in STATE_NAMES:
            layer = self._running[-1] if self._running else "record"
            self.live_states.setdefault(layer, {}).setdefault(name, []).append((tensor, time, decay))

    def state_gradients(self, value: torch.Tensor, params: list) -> tuple:
        """({layer: {state: ∂value/∂state_t as numpy (batch, time, units)}}, the parameters' gradients):
        the whole gradient reaching each recorded state, through later steps where the graph links
        them, and through ``decay`` for a sequence recorded at once (``record``)."""
        pieces = [(layer, name, piece) for layer, names in self.live_states.items()
                  for name, kept in names.items() for piece in kept]
        for layer, name, (tensor, time, decay) in pieces:
            if time is not None and decay is None and tensor.shape[time] > 1:
                raise ValueError(f"rw.trace: loss= on the state {name!r} of {layer!r}, recorded for every step at once "
                                 f"(rw.record({name!r}, ..., time={time})), needs decay=: how much of h_(t-1) each "
                                 "h_t keeps (minGRU: 1 - z); a scan's graph does not lead from one step to the next")
        wrt = [tensor for _, _, (tensor, _, _) in pieces] + params
        needed = [t.requires_grad for t in wrt]
        found = torch.autograd.grad(value, [t for t, n in zip(wrt, needed) if n], allow_unused=True) \
            if value.requires_grad and any(needed) else []
        it = iter(found)
        grads = [next(it) if n else None for n in needed]
        out: dict = {}
        for (layer, name, (tensor, time, decay)), g in zip(pieces, grads):
            g = torch.zeros_like(tensor) if g is None else g.detach()
            if time is None:
                steps = [g]
            else:
                steps = list(g.movedim(time, 0).unbind(0))
                if decay is not None:
                    d = decay.detach().movedim(time, 0)
                    for t in range(len(steps) - 2, -1, -1):
                        steps[t] = steps[t] + d[t + 1] * steps[t + 1]
            out.setdefault(layer, {}).setdefault(name, []).extend(step_rows(s, 1) for s in steps)
        arrays = {layer: {name: stack_steps(f"layer {layer!r}, gradient of {name!r}", steps)
                          for name, steps in named.items()} for layer, named in out.items()}
        return arrays, grads[len(pieces):]

    # ---- collecting the layers ------------------------------------------------------------------
    def _collect(self) -> TraceBuilder:
        runs = self._fused.runs if self._fused is not None else []
        if not self._order and not runs:
            raise ValueError(f"rw.recording: nothing was recorded — {type(self.model).__name__} called no "
                             "nn.LSTM / GRU / RNN or nn.LSTMCell / GRUCell / RNNCell inside the block, was not "
                             "called as a step "
                             "module model(input, hidden) -> (output, hidden), and no rw.record(...) ran")
        builder = TraceBuilder("rw.recording", type(self.model).__name__, "recording")
        inputs, outputs = {}, None
        for name in self._order:
            if name in self._cells:
                inputs[name] = cell_layer(builder, name, self._cells[name], self._cell_edit(name))
            elif name == self.root and self._step_calls:
                inputs[name], outputs = self._step_layer(builder)
            else:
                builder.layer(name, "custom", meta={"module": name})
            parts = builder.layers[name]
            for track in STATE_NAMES:
                if track in self._tracks[name]:
                    steps = [step_rows(step, 1) for step in self._tracks[name][track]]
                    parts["states"][track] = stack_steps(f"layer {name!r}, track {track!r}", steps)
                    parts["initial"].pop(track, None)   # a recorded state need not be the hidden passed in
        add_fused_layers(builder, runs)
        order = list(builder.layers)
        if self._step_calls:                     # the model driven as a step module comes first
            order.insert(0, order.pop(order.index(self.root)))
        # layers with a hidden state first: the first layer is the one a view opens on
        with_h = [n for n in order if "h" in builder.layers[n]["states"]]
        if not with_h:
            raise ValueError("rw.recording: no layer has a hidden state — call a cell inside the block, or "
                             "rw.record('h', hidden) in your module's forward")
        builder.layers = {n: builder.layers[n] for n in with_h + [n for n in order if n not in with_h]}
        batch = builder.layers[with_h[0]]["states"]["h"].shape[0]
        for name, tracks in self._tracks.items():
            for track, steps in tracks.items():
                if track not in STATE_NAMES:
                    builder.layers[name]["tracks"][track] = stack_steps(
                        f"layer {name!r}, track {track!r}", [step_rows(step, batch) for step in steps])
        builder.outputs = outputs if with_h[0] == self.root else None
        builder.inputs = inputs.get(with_h[0])
        builder.tokens = self.tokens
        builder.meta["training"] = bool(self.model.training)   # at the block's end: the mode it ran in
        builder.meta["dropout"] = active_dropout(self.model)
        if self.edits:
            assert self._edit_hooks is not None and self._edited_layers is not None  # made with the edits
            check_all_found(self.who, self.edits, {**self._edit_hooks.seen, **self._edited_layers.seen})
            builder.meta["edits"] = describe(self.edits)
        return builder

    def _cell_edit(self, name: str):
        """The edits of cell ``name`` over all its steps, for its gates recomputed (cells.cell_layer)."""
        plan = self._edit_hooks.plans.get(name) if self._edit_hooks is not None else None
        return None if plan is None else plan.apply_steps

    def _step_layer(self, builder: TraceBuilder):
        """Add the layer of the model's calls as a step module to ``builder``; (inputs, outputs)."""
        calls = self._step_calls
        where = f"{type(self.model).__name__} as a step module"
        states = {k: stack_steps(f"{where}, hidden {k!r}", [c.states[k] for c in calls]) for k in calls[0].states}
        outputs = stack_steps(f"{where}, output", [c.output for c in calls])
        tracks, skipped = {}, []
        for key in dict.fromkeys(k for c in calls for k in c.children):
            values = [v for v in (c.children.get(key) for c in calls) if v is not None]
            if len(values) != len(calls) or len({tuple(v.shape) for v in values}) != 1:
                skipped.append(key)
            else:
                tracks[key] = to_numpy(torch.stack(values, dim=1))
        if skipped:
            warnings.warn(f"rw.recording: {where}: no track for {skipped} (not one (batch, features) value at "
                          "every step)", stacklevel=5)
        tracks["output"] = outputs
        meta = {"module": "", "step_module": type(self.model).__name__, "hidden_size": states["h"].shape[2]}
        x = calls[0].input
        inputs = stack_steps(f"{where}, input", [c.input for c in calls]) if x.is_floating_point() else None
        initial = {k: to_numpy(v) for k, v in self._step_initial.items()}
        builder.layer(self.root, "custom", meta=meta, states=states, tracks=tracks, initial=initial)
        return inputs, outputs


def param_stats(named_params: list, grads: list) -> dict:
    """Parameter name -> the norm, mean and max |gradient| (float64; zeros where none reached it)."""
    stats = {}
    for (name, p), g in zip(named_params, grads):
        g = (torch.zeros_like(p) if g is None else g).detach().double()
        stats[name] = {"norm": g.norm().item(), "mean_abs": g.abs().mean().item(), "max_abs": g.abs().max().item()}
    return stats


def trace_recorded(model: nn.Module, args: tuple, kwargs: dict, tokens, loss, edits=()) -> Trace:
    """``model(*args, **kwargs)`` run once inside a recording with ``loss``: the states it records
    (``rw.record("h", ...)``) get ``grads`` through time, the parameters ``param_grads``; under
    ``edits`` where they name a layer of this run (edited.py)."""
    with torch.enable_grad(), HookRecording(model, tokens=tokens, deferred=True, keep_states=True, edits=edits,
                                            who="rw.trace") as rec:
        output = model(*args, **kwargs)
    builder = rec.collected
    assert builder is not None  # a deferred recording collects its layers when the block ends
    if rec._cells or not rec.live_states:
        raise ValueError(f"rw.trace: loss= needs an nn.LSTM / nn.GRU / nn.RNN, a step module with forward(input, "
                         f"hidden), nn.LSTMCell / nn.GRUCell / nn.RNNCell called in the forward, or a state recorded "
                         f"with rw.record('h', ...); {type(model).__name__} has none")
    first = next(iter(builder.layers.values()))
    value = recorded_loss(loss, output, *first["states"]["h"].shape[:2])
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads, param_grads = rec.state_gradients(value, [p for _, p in params])
    for layer, named in grads.items():
        builder.layers[layer]["grads"].update(named)
    builder.param_grads = param_stats(params, param_grads)
    return builder.build()


def fused_layers(model: nn.Module, run_layer=None) -> Optional[LayerByLayer]:
    """Layer-by-layer running of ``model``'s fused modules (each layer by ``run_layer``, default
    its own), None without any (or with one that overrides its forward, which only a whole-model
    trace refuses)."""
    if not fused_modules(model):
        return None
    try:
        return LayerByLayer(model, run_layer)
    except TypeError:
        return None


def add_fused_layers(builder: TraceBuilder, runs: list) -> None:
    """The fused modules' calls during a recording as layers, with their gates; a module's calls
    joined along time where each is full length with one batch size (fused_trace.merge_calls),
    so one step per call gives one layer over every step."""
    with torch.no_grad():
        layers = []
        while runs:   # one run at a time, let go of once converted, so its tensors are freed
            layers += [layer_arrays(d, None) for d in runs.pop(0).recomputed()]
    merge_calls(builder, layers)
