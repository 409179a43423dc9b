"""A Trace of a model's fused modules (nn.LSTM / nn.GRU / nn.RNN): run the model once with every
such module layer by layer (fused.py), then turn each layer run into the Trace's arrays."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from ..tracedata import Trace
from . import edited, gradients
from .build import TraceBuilder
from .convert import steps_to_numpy, to_numpy
from .edited import EditedLayers
from .edits import check_all_found, describe
from .fused import KIND, LayerByLayer


def trace_fused(model: nn.Module, inputs, hidden, tokens, loss, edits=()) -> Trace:
    anchor = torch.zeros((), requires_grad=True) if loss is not None else None
    run_layer = gradients.differentiable_layer(anchor) if anchor is not None else None
    if edits:   # the layers edits name run as our edited step loop (edited.py), in the graph with a loss
        run_layer = editor = EditedLayers("rw.trace", list(edits), fallback=run_layer, anchor=anchor)
    builder = TraceBuilder("rw.trace", type(model).__name__, "fused")
    with torch.enable_grad() if loss is not None else torch.no_grad():
        with LayerByLayer(model, run_layer) as recorder:
            output = model(inputs) if hidden is None else model(inputs, hidden)
        runs = recorder.runs
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
    with torch.no_grad():
        layers = []
        while runs:   # one run at a time, let go of once converted, so its tensors are freed
            layers += [layer_arrays(d, with_grads=loss is not None) for d in runs.pop(0).recomputed()]
    merge_calls(builder, layers)
    outputs = output_steps(output, builder.layers, batch)
    builder.outputs = to_numpy(outputs) if outputs is not None else None
    builder.lengths = lengths.cpu().numpy()
    builder.tokens = tokens
    builder.inputs = input_steps(inputs, steps, batch, batch_first)
    builder.meta["training"] = bool(model.training)
    return builder.build(batch=batch)


def layer_arrays(d, with_grads: bool) -> dict:
    """One direction of one layer call as numpy arrays (batch, time, units) plus its meta; its
    gradients through time are zero when its output did not reach the loss."""
    module = d.run.module
    width = module.proj_size or module.hidden_size
    meta = {"module": d.run.module_path, "layer": d.run.layer,
            "direction": "reverse" if d.reverse else "forward",
            "input_size": module.input_size if d.run.layer == 0 else width * d.run.direction_count,
            "hidden_size": module.hidden_size, "bias": bool(module.bias), "batch_first": module.batch_first}
    if module.mode == "LSTM":
        meta["proj_size"] = module.proj_size
    if module.mode.startswith("RNN_"):
        meta["nonlinearity"] = module.nonlinearity
    states = {"h": d.natural(d.h)}
    if d.c is not None:
        states["c"] = d.natural(d.c)
    grads = {}
    if with_grads:   # a projected LSTM's also "m": dL/dm_t (h_t = W_hr m_t), as wide as c
        k = int(d.reverse)
        keys = list(states) + (["m"] if getattr(module, "proj_size", 0) else [])
        grads = {key: d.natural(d.run.grads[k][key]) if d.run.grads else torch.zeros_like(states.get(key, d.c))
                 for key in keys}
    return {"name": d.name, "kind": KIND[module.mode], "call": d.run.call, "meta": meta,
            "lengths": d.lengths,
            "states": {k: steps_to_numpy(v) for k, v in states.items()},
            "gates": {k: steps_to_numpy(d.natural(v)) for k, v in d.gates.items()},
            "grads": {k: steps_to_numpy(v) for k, v in grads.items()},
            "initial": initial_arrays(d)}


def initial_arrays(d) -> dict:
    """The state fed into a direction's first step (given or zeros), user batch order: (batch, units)."""
    found = {"h": to_numpy(d.h0)}
    if d.c0 is not None:
        found["c"] = to_numpy(d.c0)
    return found


def merge_calls(builder: TraceBuilder, layers: list) -> None:
    """Add the layers to ``builder`` in forward order; a module's repeated calls joined along time
    when all are full length with one batch size, else kept apart as "<name>@<call>"."""
    groups: dict = {}
    for arrays in layers:
        groups.setdefault(arrays["name"], []).append(arrays)
    for name, calls in groups.items():
        joinable = len({c["states"]["h"].shape[0] for c in calls}) == 1 and all(
            bool((c["lengths"] == c["states"]["h"].shape[1]).all()) for c in calls)
        if len(calls) > 1 and joinable:
            joined = {g: {k: np.concatenate([c[g][k] for c in calls], axis=1) for k in calls[0][g]}
                      for g in ("states", "gates", "grads")}
            # the joined sequence starts where the first call started
            builder.layer(name, calls[0]["kind"], meta=dict(calls[0]["meta"], calls=len(calls)),
                          initial=calls[0]["initial"], lengths=sum(own_lengths(c) for c in calls), **joined)
            continue
        for c in calls:
            label = name if c["call"] == 0 else f"{name}@{c['call']}"
            builder.layer(label, c["kind"], meta=dict(c["meta"], call=c["call"]), states=c["states"],
                          gates=c["gates"], grads=c["grads"], initial=c["initial"], lengths=own_lengths(c))


def own_lengths(call: dict) -> np.ndarray:
    """A layer call's valid steps per batch element: each layer keeps its own time axis (an encoder
    over the source, a decoder over the target)."""
    return np.asarray(call["lengths"].cpu() if isinstance(call["lengths"], torch.Tensor) else call["lengths"])


def output_steps(output, layers: dict, batch: int):
    """The model's first output (a tensor, a tuple's first element, a padded PackedSequence) as
    (batch, time, features) when its time dimension matches a traced layer's sequence in that
    layer's module layout (a layer of the trace's batch), else None. A 2-D output of steps x
    batch rows is that sequence flattened in the module's layout (the word language model's
    ``decoded.view(-1, ntoken)``)."""
    out = output[0] if isinstance(output, (tuple, list)) and output else output
    if isinstance(out, PackedSequence):
        return pad_packed_sequence(out, batch_first=True)[0]
    if not isinstance(out, torch.Tensor) or out.dim() not in (2, 3):
        return None
    for parts in reversed(layers.values()):
        steps = parts["states"]["h"].shape[1]
        batch_first = parts["meta"]["batch_first"]
        if parts["states"]["h"].shape[0] != batch:
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


def input_steps(inputs, steps: int, batch: int, batch_first: bool):
    """Float model inputs per step as numpy (batch, time, features); None for token ids. ``steps``,
    ``batch`` and ``batch_first`` are those of the first layer run."""
    if isinstance(inputs, PackedSequence):
        if not inputs.data.is_floating_point():
            return None
        return to_numpy(pad_packed_sequence(inputs, batch_first=True)[0])
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        return None
    if inputs.dim() == 2 and batch == 1 and inputs.shape[0] == steps:
        return to_numpy(inputs.unsqueeze(0))
    if inputs.dim() == 3:
        batch_major = inputs if batch_first else inputs.transpose(0, 1)
        if tuple(batch_major.shape[:2]) == (batch, steps):
            return to_numpy(batch_major)
    return None
