"""A Trace of a model's fused modules (nn.LSTM / nn.GRU / nn.RNN): run the model once with every
such module layer by layer (fused.py), then turn each layer run into the Trace's arrays.

With a selection (select.py) and neither loss nor edits, the gates of a layer the module's kernel
ran are recomputed only when a gate (or an LSTM's c) is asked for, and an LSTM layer read from
its kernel's workspace copies its gates out only when a gate is asked for; a layer no key selects is
neither recomputed nor copied (every layer runs as without a selection, so what is kept is
bit for bit the full trace's), and only the selected quantities and steps of a layer are copied to host
memory. With a loss or edits everything is computed as without a selection, and only what is
returned is cut. Copies from a GPU overlap the next layer's work (``convert.HostCopies``).
"""
from __future__ import annotations

import contextlib
from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from ..kinds import is_reverse
from ..tracedata import Trace
from . import edited, gradients
from .build import TraceBuilder, normalize_tokens
from .call import main_output
from .convert import HostCopies
from .edited import EditedLayers
from .edits import check_all_found, describe
from .fused import KIND, LayerByLayer, LayerRun, recompute
from .select import Selection, check_not_empty, cut, cut_parts, window_initial, window_lengths


def trace_fused(model: nn.Module, inputs, hidden, tokens, loss, edits=(),
                selection: Optional[Selection] = None) -> Trace:
    anchor = torch.zeros((), device="cpu", requires_grad=True) if loss is not None else None
    run_layer = gradients.differentiable_layer(anchor) if anchor is not None else None
    if edits:   # the layers edits name run as our edited step loop (edited.py), in the graph with a loss
        run_layer = editor = EditedLayers("rw.trace", list(edits), fallback=run_layer, anchor=anchor)
    lean = selection is not None and run_layer is None   # nothing but the selection needs computing
    builder = TraceBuilder("rw.trace", type(model).__name__, "fused")
    copies = HostCopies()
    early = None
    if not edits and (selection is None or not selection.cuts_steps):   # arrays whole in time: made early
        early = EarlyArrays(copies, loss is not None, selection, lean)
    try:
        with torch.enable_grad() if loss is not None else torch.no_grad():
            keeps = gates_kept(selection) if lean and selection is not None else None
            with LayerByLayer(model, run_layer, after_layer=early, keeps_gates=keeps) as recorder:
                output = model(inputs) if hidden is None else model(inputs, hidden)
            with after_forward():
                return trace_runs(model, inputs, output, recorder.runs, builder, tokens, loss, edits, selection,
                                  lean, anchor, editor if edits else None, copies, early)
    finally:
        copies.close()   # a forward that raised leaves no copy running


class EarlyArrays:
    """``LayerByLayer``'s ``after_layer`` for a trace without edits, whose arrays keep every step:
    each layer run's states, gates and initial state (``run_arrays``), made as soon as its kernel
    has returned, so that from a GPU their copies to host memory overlap the model's next layer
    and the backward pass. ``with_grads``: its gradients are made after the backward (``take``).
    ``selection`` and ``lean`` as ``trace_runs`` takes them. Should making them fail, the rest are
    left to ``trace_runs``, which makes them after the forward and raises there, as for any trace."""

    def __init__(self, copies: HostCopies, with_grads: bool = False, selection: Optional[Selection] = None,
                 lean: bool = False):
        self.copies, self.with_grads, self.selection, self.lean = copies, with_grads, selection, lean
        self.made: dict = {}   # id(run) -> its arrays; the runs live in LayerByLayer.runs
        self.stopped = False

    def __call__(self, run: LayerRun) -> None:
        if self.stopped or not may_keep(run, self.selection):
            return
        try:
            with torch.no_grad():
                self.made[id(run)] = run_arrays(run, False, self.copies, self.selection, self.lean)
        except Exception:   # noqa: BLE001  # made again after the forward, where the error is raised
            self.stopped = True

    def take(self, run: LayerRun) -> Optional[list]:
        """The run's arrays, its gradients through time included where there is a loss (call after
        the backward), or None where they were not made."""
        made = self.made.pop(id(run), None)
        if made is not None and self.with_grads:
            for arrays, d in zip(made, run.recomputed()):
                grads = selected(layer_grads(d, run.grads), self.selection)
                arrays["grads"] = {k: self.copies.steps(v) for k, v in grads.items()}
        return made


def run_arrays(run: LayerRun, with_grads: bool, copies: HostCopies, selection: Optional[Selection], lean: bool,
               cut_here: bool = False) -> list:
    """``layer_arrays`` of every direction of one layer run. A layer the kernel ran (not our loop,
    nor read from its workspace) gets its gates recomputed only when asked for (``lean``: nothing
    but the selection needs computing): its h as the kernel gave it otherwise."""
    bare = selection is not None and lean and not run.has_own_states() and not needs_gates(run, selection)
    directions = recompute(run, gates=False) if bare else run.recomputed()
    grads = run.grads if with_grads else None
    return [layer_arrays(d, grads, copies, selection, cut_here) for d in directions]


def gates_kept(selection: Selection):
    """``LayerByLayer``'s ``keeps_gates`` for a trace that computes nothing but ``selection``
    (``lean``): a run keeps its gates where the selection keeps one of them."""
    return lambda run: may_keep(run, selection) and selection.keeps_gates(KIND[run.module.mode])


def may_keep(run: LayerRun, selection: Optional[Selection]) -> bool:
    """Whether the selection may keep a direction of the run (every run without one)."""
    return selection is None or any(selection.may_keep(name) for name in direction_names(run))


@contextlib.contextmanager
def after_forward():
    """Marks an error raised once the model's forward has run whole on the sequence: an error in
    what was asked of the trace (tokens, edits, a selection, the loss), never a sign that the model
    wants to be driven one step at a time, so capture/api.py's ``dispatch`` raises it as it is."""
    try:
        yield
    except Exception as error:
        error.__dict__["rw_forward_ran"] = True
        raise


def forward_ran(error: BaseException) -> bool:
    """Whether ``error`` was raised after the model's forward had run whole (``after_forward``)."""
    return bool(getattr(error, "__dict__", {}).get("rw_forward_ran"))


def active_dropout(model: nn.Module) -> bool:
    """Whether ``model`` in its present mode drops values: a dropout module (nn.Dropout and its
    kin) with p > 0, or an RNN module of several layers with dropout > 0 between them, in
    training mode (``meta["dropout"]``). A forward calling dropout as a function is not seen."""
    for m in model.modules():
        if not m.training:
            continue
        if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0:
            return True
        if isinstance(m, nn.RNNBase) and m.dropout > 0 and m.num_layers > 1:
            return True
    return False


def trace_runs(model: nn.Module, inputs, output, runs: list, builder: TraceBuilder, tokens, loss, edits,
               selection: Optional[Selection], lean: bool, anchor, editor, copies: HostCopies,
               early: Optional[EarlyArrays] = None) -> Trace:
    """The Trace of one forward's layer runs (``trace_fused``), gradients and edits included;
    ``early``: the arrays of runs made during the forward."""
    with torch.enable_grad() if loss is not None else torch.no_grad():
        if not runs:
            raise ValueError(f"rw.trace: {type(model).__name__} contains recurrent modules but none of them ran "
                             f"in its forward")
        if edits:
            check_all_found("rw.trace", list(edits), editor.seen)
            builder.meta["edits"] = describe(list(edits))
        if loss is not None:
            assert anchor is not None  # made above whenever there is a loss
            value = gradients.loss_value(loss, output, runs[-1])
            builder.param_grads = edited.backward(model, value, anchor, editor.live) if edits else \
                gradients.backward(model, value, anchor)
    lengths = runs[0].lengths()
    steps, batch = runs[0].padded(runs[0].x).shape[:2]
    batch_first = runs[0].module.batch_first
    calls: dict = {}
    for run in runs:
        calls[run.name] = calls.get(run.name, 0) + 1
    shapes = layer_shapes(runs)
    if selection is not None:
        selection.layer_names(shapes)   # an unknown key is refused, naming every layer
    with torch.no_grad():
        layers = []
        while runs:   # one run at a time, let go of once converted, so its tensors are freed
            run = runs.pop(0)
            if not may_keep(run, selection):
                continue
            made = early.take(run) if early is not None else None
            if made is None:
                # a module called once is cut to the window of steps here; repeated calls once joined
                cut_here = selection is not None and selection.cuts_steps and calls[run.name] == 1
                made = run_arrays(run, loss is not None, copies, selection, lean, cut_here)
            layers += made
    outputs = output_steps(output, shapes, batch)
    builder.outputs = copies.array(outputs) if outputs is not None else None
    builder.inputs = input_steps(inputs, steps, batch, batch_first, copies)
    copies.wait()   # every array holds its values from here on
    merge_calls(builder, layers, selection)
    kept = list(builder.layers) if selection is None else selection.layer_names(builder.layers)
    builder.lengths = lengths.cpu().numpy()
    builder.tokens = tokens
    builder.meta["training"] = bool(model.training)
    builder.meta["dropout"] = active_dropout(model)
    if selection is not None:
        cut_trace_fields(builder, selection, max(shapes[name][1] for name in kept))
        builder.meta["selection"] = selection.describe()
    return builder.build(order=kept, batch=batch)


def direction_names(run: LayerRun) -> list:
    names = [run.name]
    return names + [run.name + ".reverse"] if run.module.bidirectional else names


def layer_shapes(runs: list) -> dict:
    """Each layer ``merge_calls`` will make of ``runs``, by the same rule: name -> (batch, steps,
    batch_first) as the module ran it."""
    groups: dict = {}
    for run in runs:
        groups.setdefault(run.name, []).append(run)
    found = {}
    for name, calls in groups.items():
        shapes = [tuple(run.padded(run.x).shape[:2]) for run in calls]
        joinable = len({batch for _, batch in shapes}) == 1 and all(
            bool((run.lengths() == steps).all()) for run, (steps, _) in zip(calls, shapes))
        batch_first = calls[0].module.batch_first
        for suffix in ("", ".reverse")[:calls[0].direction_count]:
            if len(calls) > 1 and joinable:
                found[name + suffix] = (shapes[0][1], sum(steps for steps, _ in shapes), batch_first)
                continue
            for run, (steps, batch) in zip(calls, shapes):
                found[name + suffix + (f"@{run.call}" if run.call else "")] = (batch, steps, batch_first)
    return found


def needs_gates(run: LayerRun, selection: Selection) -> bool:
    """Whether a layer run must compute its gates for the selection."""
    return (any(selection.may_keep(name) for name in direction_names(run))
            and selection.needs_gates(KIND[run.module.mode]))


def cut_trace_fields(builder: TraceBuilder, selection: Selection, steps: int) -> None:
    """The trace's lengths, outputs, inputs and tokens cut to the window of its longest layer's
    ``steps`` steps, as ``select.apply`` cuts them."""
    window = selection.window(steps)
    assert builder.lengths is not None  # set by the caller
    builder.lengths = window_lengths(builder.lengths, *window)
    builder.outputs, builder.inputs = (cut(a, *window) if a is not None and a.shape[1] > window[0] else None
                                       for a in (builder.outputs, builder.inputs))
    tokens = normalize_tokens(builder.tokens)
    start, stop = window
    if isinstance(tokens, dict):
        tokens = {key: [seq[start:stop] for seq in value] if value is not None else None
                  for key, value in tokens.items()}
    elif tokens is not None:
        tokens = [seq[start:stop] for seq in tokens]
    builder.tokens = tokens


def layer_arrays(d, run_grads: Optional[list], copies: Optional[HostCopies] = None,
                 selection: Optional[Selection] = None, cut_here: bool = False) -> dict:
    """One direction of one layer call as numpy arrays (batch, time, units) plus its meta, with
    its gradients through time where ``run_grads`` (its run's ``LayerRun.grads``) is given: zero
    when that is empty (its output did not reach the loss). Only the selected
    quantities are copied, and with ``cut_here`` only the selection's window of steps (its
    initial state then the one fed into the window, ``select.window_initial``). ``copies``: how
    arrays reach host memory (default: each copied before this returns)."""
    copies = copies or HostCopies(overlap=False)
    module = d.module
    width = module.proj_size or module.hidden_size
    meta = {"module": d.module_path, "layer": d.layer,
            "direction": "reverse" if d.reverse else "forward",
            "input_size": module.input_size if d.layer == 0 else width * (2 if module.bidirectional else 1),
            "hidden_size": module.hidden_size, "bias": bool(module.bias), "batch_first": module.batch_first}
    if module.mode == "LSTM":
        meta["proj_size"] = module.proj_size
    if module.mode.startswith("RNN_"):
        meta["nonlinearity"] = module.nonlinearity
    states = {"h": d.natural(d.h)}
    if d.c is not None:
        states["c"] = d.natural(d.c)
    grads = layer_grads(d, run_grads) if run_grads is not None else {}
    gates = {k: d.natural(v) for k, v in d.gates.items()}
    initial = {"h": d.h0}
    if d.c0 is not None:
        initial["c"] = d.c0
    steps, batch = d.h.shape[:2]
    lengths = d.lengths
    if selection is not None:
        states, gates, grads, initial = (selected(group, selection) for group in (states, gates, grads, initial))
        check_not_empty(selection, d.name, KIND[module.mode], {"states": states, "gates": gates}, {})
    if cut_here:
        assert selection is not None  # cut only for a selection of steps
        start, stop = selection.check_window(d.name, steps)
        # the states batch-major as window_initial reads them: (batch, time, units) views
        initial = {k: window_initial(states[k].transpose(0, 1), v, d.reverse, d.lengths, start, stop)
                   for k, v in initial.items()}
        states, gates, grads = ({k: v[start:stop] for k, v in group.items()} for group in (states, gates, grads))
        lengths = (d.lengths - start).clamp(0, stop - start)
        meta["steps"] = [start, stop]
    return {"name": d.name, "kind": KIND[module.mode], "call": d.call, "meta": meta,
            "lengths": lengths, "shape": (batch, steps), "cut": cut_here,
            "states": {k: copies.steps(v) for k, v in states.items()},
            "gates": {k: copies.steps(v) for k, v in gates.items()},
            "grads": {k: copies.steps(v) for k, v in grads.items()},
            "initial": {k: copies.array(v) for k, v in initial.items()}}


def selected(group: dict, selection: Optional[Selection]) -> dict:
    """The quantities of ``group`` (name -> array) the selection keeps; all of them without one."""
    return group if selection is None else {k: v for k, v in group.items() if selection.keeps(k)}


def layer_grads(d, run_grads: list) -> dict:
    """One direction's gradients through time in natural order, dL/dh_t and dL/dc_t (a projected
    LSTM's also "m": dL/dm_t, h_t = W_hr m_t, as wide as c), from its run's ``LayerRun.grads``;
    zero where that is empty (its output did not reach the loss)."""
    keys = ["h"] + (["c"] if d.c is not None else []) + (["m"] if getattr(d.module, "proj_size", 0) else [])
    k = int(d.reverse)
    return {key: d.natural(run_grads[k][key]) if run_grads else torch.zeros_like(d.h if key == "h" else d.c)
            for key in keys}


def merge_calls(builder: TraceBuilder, layers: list, selection: Optional[Selection] = None) -> None:
    """Add the layers to ``builder`` in forward order; a module's repeated calls joined along time
    when all are full length with one batch size, else kept apart as "<name>@<call>"
    (``layer_shapes`` names them alike). A layer not cut yet is cut to the selection's window of
    steps here."""
    groups: dict = {}
    for arrays in layers:
        groups.setdefault(arrays["name"], []).append(arrays)

    def add(label: str, kind: str, meta: dict, lengths, parts: dict, steps: int, cut_already: bool) -> None:
        groups_ = {g: parts[g] for g in ("states", "gates", "grads", "initial")}
        if selection is not None and selection.cuts_steps and not cut_already:
            start, stop = selection.check_window(label, steps)
            groups_, lengths = cut_parts(groups_, is_reverse(label), lengths, start, stop)
            meta = dict(meta, steps=[start, stop])
        builder.layer(label, kind, meta=meta, lengths=lengths, **groups_)

    for name, calls in groups.items():
        joinable = len({c["shape"][0] for c in calls}) == 1 and all(
            bool((c["lengths"] == c["shape"][1]).all()) for c in calls)
        if len(calls) > 1 and joinable:
            joined = {g: {k: np.concatenate([c[g][k] for c in calls], axis=1) for k in calls[0][g]}
                      for g in ("states", "gates", "grads")}
            # the joined sequence starts where the first call started
            add(name, calls[0]["kind"], dict(calls[0]["meta"], calls=len(calls)),
                sum(own_lengths(c) for c in calls), dict(joined, initial=calls[0]["initial"]),
                sum(c["shape"][1] for c in calls), False)
            continue
        for c in calls:
            label = name if c["call"] == 0 else f"{name}@{c['call']}"
            add(label, c["kind"], dict(c["meta"], call=c["call"]), own_lengths(c), c, c["shape"][1], c["cut"])


def own_lengths(call: dict) -> np.ndarray:
    """A layer call's valid steps per batch element: each layer keeps its own time axis (an encoder
    over the source, a decoder over the target)."""
    return np.asarray(call["lengths"].cpu() if isinstance(call["lengths"], torch.Tensor) else call["lengths"])


def output_steps(output, shapes: dict, batch: int):
    """The model's main output (``call.main_output``: a tensor, a tuple's first item, a dict's
    "logits"; a PackedSequence padded) as
    (batch, time, features) when its time dimension matches a traced layer's sequence in that
    layer's module layout (a layer of the trace's batch; ``shapes``: each layer's (batch, steps,
    batch_first) as run, from ``merge_calls``), else None. A 2-D output of steps x
    batch rows is that sequence flattened in the module's layout (the word language model's
    ``decoded.view(-1, ntoken)``)."""
    out = main_output(output)
    if isinstance(out, PackedSequence):
        return pad_packed_sequence(out, batch_first=True)[0]
    if not isinstance(out, torch.Tensor) or out.dim() not in (2, 3):
        return None
    for rows, steps, batch_first in reversed(shapes.values()):
        if rows != batch:
            continue
        if out.dim() == 2 and batch == 1 and out.shape[0] == steps:
            return out.unsqueeze(0)
        if out.dim() == 2 and out.shape[0] == steps * batch:   # flattened, as .view(-1, classes) leaves it
            return out.reshape(batch, steps, -1) if batch_first else out.reshape(steps, batch, -1).transpose(0, 1)
        if out.dim() == 3 and batch_first and tuple(out.shape[:2]) == (batch, steps):
            return out
        if out.dim() == 3 and not batch_first and tuple(out.shape[:2]) == (steps, batch):
            return out.transpose(0, 1)
    return None


def input_steps(inputs, steps: int, batch: int, batch_first: bool, copies: Optional[HostCopies] = None):
    """Float model inputs per step as numpy (batch, time, features); None for token ids. ``steps``,
    ``batch`` and ``batch_first`` are those of the first layer run. ``copies``: how the array
    reaches host memory (default: copied before this returns)."""
    array = (copies or HostCopies(overlap=False)).array
    if isinstance(inputs, PackedSequence):
        if not inputs.data.is_floating_point():
            return None
        return array(pad_packed_sequence(inputs, batch_first=True)[0])
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        return None
    if inputs.dim() == 2 and batch == 1 and inputs.shape[0] == steps:
        return array(inputs.unsqueeze(0))
    if inputs.dim() == 3:
        batch_major = inputs if batch_first else inputs.transpose(0, 1)
        if tuple(batch_major.shape[:2]) == (batch, steps):
            return array(batch_major)
    return None
