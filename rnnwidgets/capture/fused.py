"""Fused recurrent modules (nn.LSTM, nn.GRU, nn.RNN): every layer's states and gates.

A fused module keeps its gates inside its native kernel. While the model runs, each module's
``forward`` is replaced on the instance by a run of the same native kernel one layer at a time
(same weights, same op, ``num_layers=1``), which gives every layer's full h sequence for the
cost of one forward and returns what the module returns. Afterwards the gates of all steps are
recomputed at once from ``[x_t, h_{t-1}]`` (one batched matmul per layer and direction); only
the LSTM cell state needs a scan over time, and that is elementwise. Where the kernel's time is
all matmuls (an LSTM or GRU on the CPU with a large batch), recomputing would cost a second
forward, so the layer runs as our own step loop instead (fused_loop.py), which keeps its gates.
An LSTM layer on the CPU (float32, one direction, not packed, with biases, no projection) runs the
native kernel in training mode and reads its gates from the kernel's workspace (fused_native.py),
at any batch: neither a recompute nor our loop then. Where torch has several threads, the batch
of such a module runs in parts at once, each part through every layer on a thread of its own with
its share of torch's threads (batch_threads.py).

Inter-layer dropout is never applied: layers run with eval semantics whatever the module's
``training`` flag (which is left as it is).
"""
from __future__ import annotations

import functools
import threading
import warnings
from dataclasses import InitVar, dataclass, field
from typing import Callable, Optional

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from ..kinds import GRU_GATES, LSTM_GATES, layer_name, module_label
from . import batch_threads, fused_loop, fused_native
from .convert import reverse_valid, step_mask, trace_buffer

NATIVE = {"LSTM": torch.lstm, "GRU": torch.gru, "RNN_TANH": torch.rnn_tanh, "RNN_RELU": torch.rnn_relu}
KIND = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn", "RNN_RELU": "rnn"}
STOCK_FORWARDS = (nn.LSTM.forward, nn.GRU.forward, nn.RNN.forward)
# how far a recomputed h may drift from the kernel's before we warn (summation order differs;
# cuDNN may run float32 RNNs in TF32, about 1e-3 relative)
CHECK_TOLERANCE = {torch.float64: 1e-8, torch.float32: 1e-4}
TF32_TOLERANCE = 1e-2
# callables shown each fused module call LayerByLayer runs, ``observe(module, input, hx)``: called as
# module(...) or as module.forward(...) alike (AWD-LSTM's WeightDrop), which no forward hook sees
CALL_OBSERVERS: list = []
LOW_PRECISION_TOLERANCE = 5e-2
# an LSTM/GRU layer on the CPU runs as our step loop from this many batch elements per torch
# thread on. The CPU's native GRU is itself a loop of small ops over steps, so ours costs about
# what it costs at any batch (single layer, 1 thread: batch 1 about 1.0-1.2x the kernel, batch 32
# 1.0-1.4x) and recomputing on top of the kernel does not (batch 32: 2.0-2.4x). The native LSTM
# (oneDNN) fuses its steps: at batch 1 recomputing after it wins (1.2-1.5x against 2.6-3.5x for the
# loop), at batch 32 the loop (1.2-1.8x against 2.2-2.5x); the kernel spreads its matmuls over
# threads where the loop's per-step elementwise work stays on one, hence per thread
LOOP_BATCH_PER_THREAD = {"LSTM": 16, "GRU": 0}
# an LSTM layer whose gates the native kernel's workspace gives (fused_native.py) runs that way:
# about the native forward's time at any batch and thread count (False: recompute or our loop)
WORKSPACE_GATES = {"LSTM": True}
# the batch of an LSTM whose kernels' workspaces give its gates runs in parts at once
# (``workspace_parts``) where what the parts add is at most this share of the arrays of a full
# trace (h, c and 4 gates a layer): each part's thread holds its workspace and the kernel's own
# memory, about as much again, where the whole batch holds one workspace (a 2-layer 256-unit LSTM
# over 1,000 steps at batch 32: 4 % of the arrays, peak/arrays 1.11-1.13 against 1.12 whole;
# forced at 1 layer of 128 units, 500 steps and batch 4, 69 %: 1.71 against 1.41)
SPLIT_MEMORY = 0.1
# the LSTM cell-state scan on the CPU runs in chunks below this many elements per step (``scan``)
CHUNKED_SCAN_BELOW = 4096


def fused_modules(model: nn.Module) -> list:
    """(path, module) of every nn.LSTM / nn.GRU / nn.RNN in ``model``, the model itself included."""
    return [(path, m) for path, m in model.named_modules() if isinstance(m, nn.RNNBase)]


def base_name(path: str, module: nn.Module) -> str:
    """The module's name in the Trace (``kinds.module_label``)."""
    return module_label(path, type(module).__name__)


class PackedLayout:
    """Where each row of a PackedSequence's data sits in the padded (time, batch) grid, batch in
    the user's order; maps kernel inputs/outputs (and their gradients) both ways."""

    def __init__(self, batch_sizes: torch.Tensor, sorted_indices: Optional[torch.Tensor], device):
        self.batch_sizes, self.sorted_indices = batch_sizes, sorted_indices
        steps, batch = len(batch_sizes), int(batch_sizes[0])
        # batch_sizes is on the CPU (torch's rule); so is this grid, whatever torch's default device
        time = torch.repeat_interleave(torch.arange(steps, device=batch_sizes.device), batch_sizes)
        starts = torch.cumsum(batch_sizes, 0) - batch_sizes
        rank = torch.arange(len(time), device=batch_sizes.device) - starts[time]   # position in the sorted batch
        element = sorted_indices.cpu()[rank] if sorted_indices is not None else rank
        self.index = (time.to(device), element.to(device))
        self.shape = (steps, batch)
        self.lengths = torch.bincount(element, minlength=batch).to(device)

    def padded(self, data: torch.Tensor) -> torch.Tensor:
        out = data.new_zeros(*self.shape, data.shape[-1])
        out[self.index] = data
        return out

    def packed(self, padded: torch.Tensor) -> torch.Tensor:
        return padded[self.index]


@dataclass
class LayerRun:
    """One call of one layer (both directions) of a fused module, as the kernel ran it.

    ``x``/``out`` are the kernel's input and output, detached (padded in the module's layout, or
    packed data); ``h0``/``c0`` are (directions, batch, units) in the kernel's batch order (sorted
    for a PackedSequence). ``grads`` is filled by a backward pass: per direction {"h", "c"}.
    """

    module_path: str     # the module's path in the model (its class name lowercased for the model itself)
    module: nn.RNNBase
    layer: int
    call: int            # how many times the module ran before, in this forward
    x: torch.Tensor
    h0: torch.Tensor
    c0: Optional[torch.Tensor]
    weights: list
    layout: Optional[PackedLayout] = None
    out: Optional[torch.Tensor] = None
    grads: list = field(default_factory=list)
    keep_gates: bool = True   # False: a kernel whose workspace gives the states without them leaves them out
    _recomputed: Optional[list] = None   # every Direction, once computed (``recomputed``)

    @property
    def name(self) -> str:
        """The layer's name in the Trace: "<module path>.l<k>"."""
        return layer_name(self.module_path, self.layer)

    @property
    def direction_count(self) -> int:
        return 2 if self.module.bidirectional else 1

    def padded(self, t: torch.Tensor) -> torch.Tensor:
        """A kernel input/output (or its gradient) as (time, batch, features) in the user's batch order."""
        if self.layout is not None:
            return self.layout.padded(t)
        return t.transpose(0, 1) if self.module.batch_first else t

    def kernel_layout(self, t: torch.Tensor) -> torch.Tensor:
        """The inverse of ``padded``."""
        if self.layout is not None:
            return self.layout.packed(t)
        return t.transpose(0, 1) if self.module.batch_first else t

    def user_order(self, state: torch.Tensor) -> torch.Tensor:
        """A (directions, batch, units) state from the kernel's batch order to the user's."""
        if self.layout is None or self.layout.sorted_indices is None:
            return state
        return state.new_empty(state.shape).index_copy_(1, self.layout.sorted_indices, state)

    def kernel_order(self, state: torch.Tensor) -> torch.Tensor:
        """The inverse of ``user_order``."""
        if self.layout is None or self.layout.sorted_indices is None:
            return state
        return state.index_select(1, self.layout.sorted_indices)

    def lengths(self) -> torch.Tensor:
        """Valid steps per batch element (user order), on the model's device."""
        if self.layout is not None:
            return self.layout.lengths
        steps, batch = self.padded(self.x).shape[:2]
        return torch.full((batch,), steps, dtype=torch.long, device=self.x.device)

    def forward(self, x, hx):
        """This layer on (x, hx) as the module computes it: (out, h_n) or (out, h_n, c_n)."""
        if self.reads_workspace():
            found = workspace_layer(self, x, hx)
            if found is not None:
                result, self._recomputed = found
                return result
        if self.runs_our_loop():
            result, self._recomputed = loop_layer(self, x, hx)
            return result
        return self.native(x, hx)

    def has_own_states(self) -> bool:
        """Whether this run's states are in buffers of its own (our step loop ran it), rather than
        to be read from ``out``, the output the model goes on with."""
        return self._recomputed is not None

    def reads_workspace(self) -> bool:
        """Whether the native kernel's workspace can give this layer's gates (fused_native.py)."""
        module = self.module
        return (WORKSPACE_GATES.get(module.mode, False) and self.layout is None and not module.proj_size
                and bool(module.bias) and not module.bidirectional and fused_native.available(self.x))

    def runs_our_loop(self) -> bool:
        """Whether our step loop is the faster way to get this layer's gates (see LOOP_BATCH_PER_THREAD)."""
        module, batch = self.module, self.padded(self.x).shape[1]
        return (self.layout is None and module.mode in ("LSTM", "GRU") and not module.proj_size
                and self.x.device.type == "cpu" and self.x.dtype in (torch.float32, torch.float64)
                and batch >= LOOP_BATCH_PER_THREAD[module.mode] * torch.get_num_threads())

    def native(self, x, hx):
        """This layer's native kernel on (x, hx): (out, h_n) or (out, h_n, c_n). Always eval
        semantics (no dropout); with a loss our own backward runs, never the kernel's."""
        module = self.module
        with warnings.catch_warnings():   # cuDNN copies one layer's weights out of the flat buffer
            warnings.filterwarnings("ignore", message="RNN module weights are not part")
            if self.layout is not None:
                return NATIVE[module.mode](x, self.layout.batch_sizes, hx, self.weights, module.bias, 1, 0.0,
                                           False, module.bidirectional)
            return NATIVE[module.mode](x, hx, self.weights, module.bias, 1, 0.0, False, module.bidirectional,
                                       module.batch_first)

    def recomputed(self) -> list:
        """Every direction of this run with its gates (computed once, under no_grad)."""
        if self._recomputed is None:
            with torch.no_grad():
                self._recomputed = recompute(self)
        return self._recomputed


class LayerByLayer:
    """Context manager: while active, every fused module of ``model`` runs layer by layer and
    appends one LayerRun per layer call to ``runs``. ``run_layer(run, x, hx)`` runs one layer on
    its input and initial state and returns the module's result; by default ``LayerRun.forward``.
    ``after_layer(run)``, when given, is called once each layer run is whole, before the next layer.
    ``keeps_gates(run)``, when given, says whether a run keeps its gates (``LayerRun.keep_gates``).
    """

    def __init__(self, model: nn.Module, run_layer: Optional[Callable] = None,
                 after_layer: Optional[Callable] = None, keeps_gates: Optional[Callable] = None):
        self.modules = fused_modules(model)
        for path, module in self.modules:
            if type(module).forward not in STOCK_FORWARDS:
                raise TypeError(f"rw.trace: {base_name(path, module)} ({type(module).__name__}) overrides "
                                f"forward; only the stock nn.LSTM / nn.GRU / nn.RNN forward can be traced")
        self.own_runs = run_layer is None   # LayerRun.forward runs each layer: the batch may run in parts
        self.run_layer = run_layer or (lambda run, x, hx: run.forward(x, hx))
        self.after_layer = after_layer
        self.keeps_gates = keeps_gates
        self.runs: list = []
        self._calls: dict = {}
        self._saved: list = []

    def __enter__(self) -> "LayerByLayer":
        for path, module in self.modules:
            self._saved.append((module, module.__dict__.get("forward")))
            module.forward = functools.partial(self._forward, base_name(path, module), module)
        return self

    def __exit__(self, *exc):
        for module, own_forward in self._saved:
            if own_forward is None:
                del module.forward
            else:
                module.forward = own_forward
        self._saved.clear()
        return False

    def _forward(self, name: str, module: nn.RNNBase, input, hx=None):
        for observe in CALL_OBSERVERS:
            observe(module, input, hx)
        call = self._calls[name] = self._calls.get(name, -1) + 1
        lstm = module.mode == "LSTM"
        layout = None
        if isinstance(input, PackedSequence):
            x, batch_sizes, sorted_indices, unsorted_indices = input
            check_features(name, module, x, 2)
            if sorted_indices is not None and len(sorted_indices) != int(batch_sizes[0]):
                raise ValueError(f"rw.trace: {name} got a PackedSequence of {len(sorted_indices)} sequences of which "
                                 f"only {int(batch_sizes[0])} have steps; expected every length to be at least 1")
            layout = PackedLayout(batch_sizes, sorted_indices, x.device)
            batch, unbatched = int(batch_sizes[0]), False
        else:
            check_features(name, module, input, (2, 3))
            unbatched = input.dim() == 2
            x = input.unsqueeze(0 if module.batch_first else 1) if unbatched else input
            batch, steps = (x.shape[0], x.shape[1]) if module.batch_first else (x.shape[1], x.shape[0])
            if steps == 0:
                raise ValueError(f"rw.trace: {name} got an empty sequence (0 steps)")
            if batch == 0:
                raise ValueError(f"rw.trace: {name} got a batch of 0 sequences; expected at least one")
        states = initial_states(name, module, hx, batch, unbatched, x)
        if layout is not None and layout.sorted_indices is not None:
            states = [s.index_select(1, layout.sorted_indices) for s in states]

        bottom = self.new_run(name, module, call, 0, x, states, layout)
        split = self.split(bottom, states) if layout is None else None
        layer_in, h_n, c_n = x, [], []
        for layer in range(module.num_layers):
            run: LayerRun
            if split is not None:
                run, result = split[layer]
            else:
                run = bottom if layer == 0 else self.new_run(name, module, call, layer, layer_in, states, layout)
                first = layer_states(module, states, layer)
                result = self.run_layer(run, layer_in, first if lstm else first[0])
            run.out = result[0].detach()
            own = run.has_own_states()   # asked now: after_layer may compute the states of a kernel's run
            if not own:
                # the kernel's output goes only to the next layer's kernel (the model gets a copy,
                # below): where it is a whole h in the Trace's layout it becomes that array as it is
                run.out.for_trace = True  # type: ignore[union-attr]  # convert.trace_buffer's marker
            self.runs.append(run)
            if self.after_layer is not None:
                self.after_layer(run)
            h_n.append(result[1])
            c_n.append(result[2] if lstm else None)
            layer_in = result[0]
        # an in-place op after the module (a ReLU(inplace=True), a forward hook) must not rewrite the h the
        # trace keeps: the model gets a copy of the output, unless that h is in buffers of our own already
        out = layer_in if own else layer_in.clone()
        return module_result(module, out, h_n, c_n, input if layout is not None else None, unbatched)

    def new_run(self, name: str, module: nn.RNNBase, call: int, layer: int, layer_in: torch.Tensor, states: list,
                layout: Optional[PackedLayout]) -> LayerRun:
        """The LayerRun of one layer of a module call, on its input ``layer_in``."""
        count = 2 if module.bidirectional else 1
        # all_weights: per layer and direction [w_ih, w_hh, (b_ih, b_hh), (w_hr)], the kernel's order
        weights = [w for ws in module.all_weights[layer * count:(layer + 1) * count] for w in ws]
        first = layer_states(module, states, layer)
        run = LayerRun(name, module, layer, call, layer_in.detach(), first[0].detach(),
                       first[1].detach() if len(first) > 1 else None, weights, layout)
        if self.keeps_gates is not None:
            run.keep_gates = bool(self.keeps_gates(run))
        return run

    def split(self, first: LayerRun, states: list) -> Optional[list]:
        """[(run, what the layer returns)] of every layer of one module call (not packed), ``first``
        the run of its bottom layer, its batch run in parts at once, each through every layer on a
        thread of its own (``workspace_parts``), or None where it runs whole: where each layer runs
        as ``LayerRun.forward`` would, every layer reads its kernel's workspace, torch has threads
        to share, and what the parts add is at most ``SPLIT_MEMORY`` of the arrays."""
        if not self.own_runs:
            return None
        name, module, call, x = first.module_path, first.module, first.call, first.x
        steps, batch = first.padded(first.x).shape[:2]
        parts, threads = batch_threads.parts(batch)
        if not parts or not first.reads_workspace():
            return None
        part, units = -(-batch // parts), module.hidden_size
        # every part's workspace and as much again for the kernel's own memory, less the whole batch's workspace
        added = (2 * fused_native.workspace_bytes(fused_native.chunk_steps(part, units, steps, parts), batch, units)
                 - fused_native.workspace_bytes(fused_native.chunk_steps(batch, units, steps), batch, units))
        if added > SPLIT_MEMORY * 24 * steps * batch * units * module.num_layers:
            return None
        # every layer's h is a trace buffer (batch, time, units) the parts write into; an inner layer's
        # is the next layer's input
        h = [trace_buffer((batch, steps, units), x) for _ in range(module.num_layers)]
        runs = [first] + [self.new_run(name, module, call, layer, first.kernel_layout(h[layer - 1].transpose(0, 1)),
                                       states, None) for layer in range(1, module.num_layers)]
        found = workspace_parts(runs, h, parts, threads)
        if found is None:
            return None
        for run, (_, directions) in zip(runs, found):
            run._recomputed = directions
        return [(run, result) for run, (result, _) in zip(runs, found)]


def layer_states(module: nn.RNNBase, states: list, layer: int) -> list:
    """[h0] or [h0, c0] of one layer, each (directions, batch, units), from the module's ``states``."""
    count = 2 if module.bidirectional else 1
    return [s[layer * count:(layer + 1) * count] for s in states]


def check_features(name: str, module: nn.RNNBase, x, ranks) -> None:
    """A clear error for an input the module cannot take."""
    ranks = ranks if isinstance(ranks, tuple) else (ranks,)
    layout = "(batch, time, features)" if module.batch_first else "(time, batch, features)"
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"rw.trace: {name} expected a tensor {layout} or a PackedSequence, got {type(x).__name__}")
    if x.dim() not in ranks or x.shape[-1] != module.input_size:
        expected = " or ".join(f"{r}-D" for r in ranks)
        raise ValueError(f"rw.trace: {name} expected a {expected} input {layout} (unbatched: (time, features)) "
                         f"with {module.input_size} features, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"rw.trace: {name} expected floating-point input, got {x.dtype}")
    check_dtype(name, module, x, "input")
    # CPU autocast runs nn.LSTM in bfloat16 (nn.GRU stays float32); the gates and cell states are
    # read and checked in the module's own dtype, which they would then not be in
    if module.mode == "LSTM" and x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        raise TypeError(f"rw.trace: {name} is an nn.LSTM called under torch.autocast('cpu'), which runs it in "
                        f"{torch.get_autocast_dtype('cpu')}; expected it traced outside the autocast block (its "
                        f"weights' {module.all_weights[0][0].dtype}), or the model converted with "
                        f".to(torch.bfloat16)")


def check_dtype(name: str, module: nn.RNNBase, t: torch.Tensor, what: str) -> None:
    """A clear error for an input or hidden state of another dtype than the module's weights."""
    dtype = module.all_weights[0][0].dtype
    if t.dtype != dtype:
        raise TypeError(f"rw.trace: {name} has {dtype} weights but got a {t.dtype} {what}; expected the "
                        f"module's dtype (convert with .to({dtype}))")


def initial_states(name: str, module: nn.RNNBase, hx, batch: int, unbatched: bool, x) -> list:
    """[h0] or [h0, c0], each (layers * directions, batch, units), zeros when none is given."""
    lstm = module.mode == "LSTM"
    rows = module.num_layers * (2 if module.bidirectional else 1)
    widths = [module.proj_size or module.hidden_size] + ([module.hidden_size] if lstm else [])
    if hx is None:
        return [torch.zeros(rows, batch, w, dtype=x.dtype, device=x.device) for w in widths]
    given = list(hx) if lstm and isinstance(hx, (tuple, list)) else [hx]
    label = "(h0, c0)" if lstm else "h0"
    if len(given) != len(widths) or not all(isinstance(s, torch.Tensor) for s in given):
        raise TypeError(f"rw.trace: {name} expected hidden={label} as tensor(s), got {type(hx).__name__}")
    states = []
    for s, w in zip(given, widths):
        check_dtype(name, module, s, "initial state")
        expected = (rows, w) if unbatched else (rows, batch, w)
        if tuple(s.shape) != expected:
            raise ValueError(f"rw.trace: {name} expected an initial state of shape {expected}, got {tuple(s.shape)}")
        states.append(s.unsqueeze(1) if unbatched else s)
    return states


def module_result(module: nn.RNNBase, out, h_n: list, c_n: list, packed_input, unbatched: bool):
    """What the module's own forward returns, from the per-layer kernel results."""
    h = torch.cat(h_n, 0)
    c = torch.cat(c_n, 0) if module.mode == "LSTM" else None
    if packed_input is not None:
        output = PackedSequence(out, packed_input.batch_sizes, packed_input.sorted_indices,
                                packed_input.unsorted_indices)
        if packed_input.unsorted_indices is not None:
            h = h.index_select(1, packed_input.unsorted_indices)
            c = c.index_select(1, packed_input.unsorted_indices) if c is not None else None
    elif unbatched:
        output = out.squeeze(0 if module.batch_first else 1)
        h = h.squeeze(1)
        c = c.squeeze(1) if c is not None else None
    else:
        output = out
    return (output, (h, c)) if c is not None else (output, h)


@dataclass
class Direction:
    """One direction of one layer run, every tensor (time, batch, ·) in the order the kernel read
    the steps: natural for the forward direction, each element's valid steps reversed for the
    reverse one (``convert.reverse_valid``). ``h0`` (and ``c0``) is the (batch, units) state fed
    into the first step in that order, batch in the user's order: the Trace's ``initial``.
    It keeps what it needs of its layer run (``owner``), never the run itself: the run keeps its
    Directions (``LayerRun.recomputed``), and a cycle between them would keep every tensor of the
    layer (a Trace's arrays share their memory) alive after the Trace is let go of, until Python's
    cyclic collector happens to run.
    """

    owner: InitVar[LayerRun]
    reverse: bool
    lengths: torch.Tensor
    x: torch.Tensor
    h: torch.Tensor
    h0: torch.Tensor
    gates: dict = field(default_factory=dict)
    c: Optional[torch.Tensor] = None
    c0: Optional[torch.Tensor] = None
    hidden_new: Optional[torch.Tensor] = None    # GRU: W_hn h_{t-1} + b_hn, inside r * (...), when kept

    def __post_init__(self, owner: LayerRun) -> None:
        self.module, self.module_path, self.layer, self.call = owner.module, owner.module_path, owner.layer, owner.call
        per_direction = len(owner.weights) // owner.direction_count
        d = int(self.reverse)
        self.weights: list = owner.weights[d * per_direction:(d + 1) * per_direction]   # w_ih, w_hh, (biases), (w_hr)

    @property
    def name(self) -> str:
        return layer_name(self.module_path, self.layer, self.reverse)

    def ordered(self, t: torch.Tensor) -> torch.Tensor:
        """A natural-order (time, batch, ·) tensor in this direction's step order (and back)."""
        return reverse_valid(t, self.lengths) if self.reverse else t

    def natural(self, t: torch.Tensor) -> torch.Tensor:
        """A tensor of this direction in natural time order, zero past each element's length."""
        t = self.ordered(t)
        return t if self.full else t.masked_fill(~step_mask(self.lengths, t.shape[0]), 0)

    def last_steps(self) -> tuple:
        """Index of each element's last step (in step order): ``tensor[self.last_steps()]`` is (batch, ·)."""
        return self.lengths - 1, torch.arange(len(self.lengths), device=self.lengths.device)

    @functools.cached_property
    def h_prev(self) -> torch.Tensor:
        """The state each step started from (time, batch, units), in this direction's step order,
        where a reverse direction runs forward: so a shift by one step here, on the model's device;
        ``kinds.previous`` is the same rule for natural-order arrays of a Trace."""
        steps, batch, width = self.h.shape
        prev = self.h.new_empty(batch, steps, width)        # batch-major, like the gate buffers' rows
        prev[:, 0] = self.h0
        prev[:, 1:] = self.h[:-1].transpose(0, 1)
        return prev.transpose(0, 1)

    @functools.cached_property
    def full(self) -> bool:
        """Whether every element runs the whole sequence (no padding to mask)."""
        return bool((self.lengths == self.h.shape[0]).all())


def recompute(run: LayerRun, gates: bool = True) -> list:
    """Recompute every direction of a layer run (call under torch.no_grad()); with ``gates``
    False only its h (and no c), read from the kernel's output: nothing is computed."""
    module = run.module
    assert run.out is not None  # a run is recomputed once the kernel has returned
    x = run.padded(run.x)
    out = run.padded(run.out)
    lengths = run.lengths()
    h0 = run.user_order(run.h0)
    c0 = run.user_order(run.c0) if run.c0 is not None else None
    width = module.proj_size or module.hidden_size
    found = []
    for d in range(run.direction_count):
        order = functools.partial(reverse_valid, lengths=lengths) if d == 1 else (lambda t: t)
        h = order(out[..., d * width:(d + 1) * width])
        direction = Direction(run, d == 1, lengths, order(x), h, h0[d])
        if not gates:
            pass
        elif module.mode == "LSTM":
            assert c0 is not None  # an LSTM run carries its c0
            lstm_gates(direction, c0[d])
        elif module.mode == "GRU":
            gru_gates(direction)
        found.append(direction)
    return found


def loop_layer(run: LayerRun, x: torch.Tensor, hx) -> tuple:
    """A layer (not packed) by our step loop: (what the kernel returns, every Direction with its
    gates), so nothing is recomputed. A reverse direction reads the steps flipped."""
    lstm = run.module.mode == "LSTM"
    h0 = hx[0] if lstm else hx
    steps = run.padded(x.detach())
    per_direction = len(run.weights) // run.direction_count
    found, outputs, c_n = [], [], []
    with torch.no_grad():
        for d in range(run.direction_count):
            order = (lambda t: t.flip(0)) if d == 1 else (lambda t: t)
            weights = run.weights[d * per_direction:(d + 1) * per_direction]
            x_d, h0_d = order(steps), h0[d].detach()
            c: Optional[torch.Tensor]
            if lstm:
                c0_d = hx[1][d].detach()
                h, c, gates = fused_loop.lstm(x_d, h0_d, c0_d, weights)
                c_n.append(c[-1])
            else:
                (h, gates), c, c0_d = fused_loop.gru(x_d, h0_d, weights), None, None
            direction = Direction(run, d == 1, run.lengths(), x_d, h, h0_d,
                                  dict(zip(LSTM_GATES if lstm else GRU_GATES, gates)), c, c0_d)
            found.append(direction)
            outputs.append(run.kernel_layout(order(direction.h)))
        if len(outputs) == 1 and run.layer < run.module.num_layers - 1:
            # an inner layer's output goes only to the next layer: the trace's own h, strided where the
            # batch has several elements (the next layer's input projection reads it as (batch, time) rows)
            out = outputs[0]
        else:
            out = torch.cat(outputs, 2)   # a new tensor in the module's layout: the model never holds our buffers
        h_n = torch.stack([d.h[-1] for d in found])
        result = (out, h_n, torch.stack(c_n)) if lstm else (out, h_n)
        return result, found


def workspace_layer(run: LayerRun, x: torch.Tensor, hx) -> Optional[tuple]:
    """An LSTM layer (one forward direction, not packed) by the native kernel with its gates from
    its workspace (fused_native.py): (what the kernel returns, [its Direction]), or None where the
    workspace does not hold them. c is the kernel's own, read from its workspace too, or where that
    does not hold it as expected the scan over the kernel's gates, as ``lstm_gates`` runs it."""
    steps = run.padded(x.detach())
    h0, c0 = hx[0][0].detach(), hx[1][0].detach()
    with torch.no_grad():
        found = fused_native.lstm(steps, h0, c0, run.weights, is_inner(run), run.keep_gates)
        return None if found is None else workspace_result(run, steps, h0, c0, found)


def is_inner(run: LayerRun) -> bool:
    """Whether the run's output goes only to the next layer of its module: it may be the trace's own h."""
    return run.layer < run.module.num_layers - 1


def workspace_parts(runs: list, h: list, parts: int, threads: int) -> Optional[list]:
    """Every layer of one module call (``runs``, each ``reads_workspace``) with its batch in
    ``parts`` parts run at once, each through every layer on a thread of its own with ``threads``
    torch threads (batch_threads.py): [(what the kernel returns, [its Direction])] a layer, as
    ``workspace_layer`` gives, or None where a workspace does not hold the gates (the caller then
    runs the batch whole). ``h``: each layer's h, a ``trace_buffer`` (batch, time, units); an
    inner layer's is the next layer's input."""
    steps = [run.padded(run.x) for run in runs]
    length, batch = steps[0].shape[:2]
    units = runs[0].module.hidden_size
    c = [trace_buffer((batch, length, units), h[0]) for _ in runs]
    gates = [fused_loop.gate_buffers(4, (batch, length, units), h[0]) if run.keep_gates else (None, None)
             for run in runs]
    out = steps[0].new_empty(length, batch, units)   # the module's output: a tensor of its own, never a trace buffer
    stop = threading.Event()

    def part(b0: int, b1: int) -> Callable:
        def run_part() -> Optional[list]:
            found = []
            for k, run in enumerate(runs):
                inner = is_inner(run)
                kept = gates[k][0][:, b0:b1] if gates[k][0] is not None else None
                view = fused_native.Part(parts, h[k][b0:b1], c[k][b0:b1], kept, None if inner else out[:, b0:b1], stop)
                with torch.no_grad():
                    layer = fused_native.lstm(steps[k][:, b0:b1], run.h0[0][b0:b1], run.c0[0][b0:b1], run.weights,
                                              inner, run.keep_gates, part=view)
                if layer is None:
                    stop.set()   # the other parts stop at their next kernel call
                    return None
                found.append(layer)
            return found
        return run_part

    bounds = [(p * batch // parts, (p + 1) * batch // parts) for p in range(parts)]
    founds = batch_threads.run_all([part(b0, b1) for b0, b1 in bounds], threads, stop)
    if any(found is None for found in founds):
        return None
    results = []
    with torch.no_grad():
        for k, run in enumerate(runs):
            layer = [found[k] for found in founds]
            cells = c[k].transpose(0, 1) if all(one[2] is not None for one in layer) else None
            kept = [p.transpose(0, 1) for p in gates[k][1]] if gates[k][1] is not None else None
            h_n, c_n = (torch.cat([one[i] for one in layer]) for i in (3, 4))
            whole_out = h[k].transpose(0, 1) if is_inner(run) else out
            merged = (whole_out, h[k].transpose(0, 1), cells, h_n, c_n, kept)
            results.append(workspace_result(run, steps[k], run.h0[0], run.c0[0], merged))
    return results


def workspace_result(run: LayerRun, steps: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, found: tuple) -> tuple:
    """``workspace_layer``'s result from what ``fused_native.lstm`` found for the run (call under
    torch.no_grad()): ``steps`` its input (time, batch, features), h0 and c0 (batch, units)."""
    out, h, c, h_n, c_n, gates = found
    if gates is None:   # not kept: c was read and checked (cells_match), h is the kernel's own
        direction = Direction(run, False, run.lengths(), steps, h, h0, {}, c, c0)
    else:
        i, f, g, o = gates
        if c is None:
            c = torch.mul(i.transpose(0, 1), g.transpose(0, 1), out=trace_buffer(i.transpose(0, 1).shape, i))
            c = c.transpose(0, 1)
            scan(c)(c, f, c0)   # c_t = f_t c_{t-1} + i_t g_t
        direction = Direction(run, False, run.lengths(), steps, h, h0, dict(zip(LSTM_GATES, gates)), c, c0)
        last = direction.last_steps()
        check_recomputed(direction, o[last] * torch.tanh(c[last]))
    # the last layer's: a tensor of the module's layout the model may keep, the kernel's own output,
    # never a trace buffer; an inner layer's goes only to the next layer, the trace's own h as it is
    out = run.kernel_layout(out)
    result = (out if is_inner(run) else out.contiguous(), h_n.unsqueeze(0), c_n.unsqueeze(0))
    return result, [direction]


def affine(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """x @ weight.T + bias for (time, batch, features) x, as one matmul."""
    flat = x.reshape(-1, x.shape[-1])
    out = torch.addmm(bias, flat, weight.t()) if bias is not None else flat @ weight.t()
    return out.view(*x.shape[:2], -1)


def lstm_gates(direction: Direction, c0: torch.Tensor) -> None:
    """Every step's gates and c from x_t and the kernel's own h_{t-1}: a few matmuls over all
    steps, written straight into the Trace's buffers (batch, time, units), then the c scan."""
    w = direction.weights
    steps, batch = direction.x.shape[:2]
    units = direction.module.hidden_size
    bias = w[2] + w[3] if direction.module.bias else None
    stacked, (i, f, o, g) = fused_loop.gate_buffers(4, (batch, steps, units), direction.x)
    parts = [i, f, g, o]   # the weights' gate order; stored as i, f, o, g (``fused_loop.lstm_order``)
    fused_loop.projected(direction.x, w[0], bias, parts)
    fused_loop.projected(direction.h_prev, w[1], None, parts, accumulate=True)
    stacked[:3].sigmoid_()
    g.tanh_()
    c = torch.mul(i, g, out=trace_buffer(i.shape, i))
    i, f, g, o, c = (t.transpose(0, 1) for t in (i, f, g, o, c))     # (time, batch, units)
    scan(c)(c, f, c0)   # c_t = f_t c_{t-1} + i_t g_t
    direction.c, direction.c0 = c, c0
    direction.gates = dict(zip(LSTM_GATES, (i, f, g, o)))
    last = direction.last_steps()
    h = o[last] * torch.tanh(c[last])
    check_recomputed(direction, h @ w[-1].t() if direction.module.proj_size else h)


def scan(u: torch.Tensor) -> Callable:
    """The fastest exact-to-rounding way to run ``recurrence`` over a (time, ·) tensor like ``u``:
    on a GPU by doubling; on the CPU one step at a time where a step is large enough that each op
    does real work, else in chunks (1,000 steps of 256 units: 2.4 ms against 7.9 ms; batch 32:
    47 ms against 20 ms)."""
    if u.device.type != "cpu":
        return recurrence_by_doubling
    return recurrence_in_chunks if u[0].numel() < CHUNKED_SCAN_BELOW else recurrence


def recurrence(u: torch.Tensor, a: torch.Tensor, first: torch.Tensor) -> None:
    """u_t <- a_t u_{t-1} + u_t along dim 0 in place, u_{-1} = ``first``: one step at a time."""
    previous = first
    for u_t, a_t in zip(u.unbind(0), a.unbind(0)):
        previous = u_t.addcmul_(a_t, previous)


def recurrence_in_chunks(u: torch.Tensor, a: torch.Tensor, first: torch.Tensor) -> None:
    """``recurrence`` in chunks of about sqrt(time) steps: about 3 sqrt(time) ops over many
    elements instead of one small op per step (on the CPU, the faster where a step is small).
    Each chunk is scanned from 0, all chunks at once, keeping the running product of its a's;
    then, chunk after chunk, the state it starts from is carried in through that product. It
    multiplies the a's in another order than a step loop: rounding-level differences."""
    steps = len(u)
    size = int(steps ** 0.5)
    whole = steps // size * size if size > 1 else 0
    previous = first
    if whole:
        chunk_u, chunk_a = (t[:whole].unflatten(0, (whole // size, size)) for t in (u, a))   # (chunks, size, ·)
        product = torch.empty_like(chunk_a)
        product[:, 0] = chunk_a[:, 0]
        for k in range(1, size):
            chunk_u[:, k].addcmul_(chunk_a[:, k], chunk_u[:, k - 1])
            torch.mul(product[:, k - 1], chunk_a[:, k], out=product[:, k])
        for part_u, part_product in zip(chunk_u.unbind(0), product.unbind(0)):
            previous = part_u.addcmul_(part_product, previous)[-1]
    for u_t, a_t in zip(u[whole:].unbind(0), a[whole:].unbind(0)):
        previous = u_t.addcmul_(a_t, previous)


def recurrence_by_doubling(u: torch.Tensor, a: torch.Tensor, first: torch.Tensor) -> None:
    """``recurrence`` in log2(time) whole-sequence steps (an inclusive scan of the maps
    x -> a_t x + u_t, Hillis-Steele): on a GPU about 20 kernel launches instead of one per step.
    It multiplies the a's in another order than the step loop: rounding-level differences."""
    u[0].addcmul_(a[0], first)
    done, a = u.clone(), a.clone()   # u_t and a_t over the steps (t - span, t]
    span = 1
    while span < len(u):
        joined = done.clone()
        joined[span:].addcmul_(a[span:], done[:-span])
        a[span:] = a[span:] * a[:-span]
        done, span = joined, span * 2
    u.copy_(done)


def gru_gates(direction: Direction) -> None:
    """Every step's gates from x_t and the kernel's own h_{t-1}, written straight into the
    Trace's buffers; W_hn h_{t-1} + b_hn (inside r * (...)) is kept for the gradients."""
    w = direction.weights
    steps, batch = direction.x.shape[:2]
    units = direction.module.hidden_size
    b_ih, b_hh = (w[2], w[3]) if direction.module.bias else (None, None)
    stacked, (r, z, n) = fused_loop.gate_buffers(3, (batch, steps, units), direction.x)
    # the reset and update gates take both biases at once; the new gate keeps b_hn inside r * (...)
    bias = None
    if b_ih is not None and b_hh is not None:
        bias = torch.cat([b_ih[:2 * units] + b_hh[:2 * units], b_ih[2 * units:]])
    fused_loop.projected(direction.x, w[0], bias, [r, z, n])
    fused_loop.projected(direction.h_prev, w[1][:2 * units], None, [r, z], accumulate=True)
    hidden_new = torch.empty_like(n)
    fused_loop.projected(direction.h_prev, w[1][2 * units:], b_hh[2 * units:] if b_hh is not None else None,
                         [hidden_new])
    stacked[:2].sigmoid_()
    n.addcmul_(r, hidden_new).tanh_()
    r, z, n = (t.transpose(0, 1) for t in (r, z, n))                   # (time, batch, units)
    direction.gates = dict(zip(GRU_GATES, (r, z, n)))
    direction.hidden_new = hidden_new.transpose(0, 1)
    last = direction.last_steps()
    check_recomputed(direction, torch.lerp(n[last], direction.h_prev[last], z[last]))   # (1-z) n + z h_{t-1}


def check_recomputed(direction: Direction, h_last: torch.Tensor) -> None:
    """Warn when the module's weights do not reproduce its own h at each element's last step
    (every step's gates start from the kernel's own h_{t-1}, and the cell state scan runs up to
    there, so a wrong gate anywhere shows here)."""
    gap = (h_last - direction.h[direction.last_steps()]).abs()
    drift = float(gap.masked_fill(gap != gap, 0).max()) if gap.numel() else 0.0   # NaNs are warned about later
    tolerance = CHECK_TOLERANCE.get(h_last.dtype, LOW_PRECISION_TOLERANCE)
    if h_last.dtype == torch.float32 and h_last.is_cuda and torch.backends.cudnn.allow_tf32:
        tolerance = TF32_TOLERANCE
    if not drift <= tolerance:
        warnings.warn(f"rw.trace: {direction.name}: the recomputed h differs from the module's own by {drift:.3g} "
                      f"(tolerance {tolerance:g}); its gates may not match what the module computed",
                      RuntimeWarning, stacklevel=3)
