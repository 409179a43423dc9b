"""``rw.trace``: one call on a model and its inputs gives back a Trace of every recurrent layer."""
from __future__ import annotations

import inspect
import warnings

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from ..tracedata import LayerTrace, Trace
from . import gradients
from .convert import steps_to_numpy, to_numpy
from .fused import KIND, FusedRecorder, fused_modules


def trace(model, inputs, hidden=None, tokens=None, loss=None) -> Trace:
    """Run ``model`` once on ``inputs`` and return what every recurrent layer did at every step.

    - A model that is or contains ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``: runs ``model(inputs)``
      (``model(inputs, hidden)`` when ``hidden`` is given) and captures every layer and direction
      of each such module: h, c (LSTM) and the gates, recomputed from the module's own weights and
      checked against its own output. Layers run in eval semantics: no inter-layer dropout, even
      when the module is in training mode (its ``training`` flag is left alone).
      A module called several times in one forward (a decoder run step by step) gives one layer
      per call concatenated along time when every call is full length with the same batch size;
      otherwise the calls after the first are separate layers named ``"<name>@<call>"``.
    - A step module, ``forward(input, hidden) -> (output, hidden)`` (or ``inputs`` given as a list
      of per-step tensors): driven over the sequence step by step.
    - Anything else: run once inside ``rw.recording`` (cells in the model's own loop, ``rw.record``).

    ``tokens``: a list of strings (batch 1) or one list per batch element, shown as labels.
    ``loss``: a callable on the model's output returning a scalar, or ``"last"`` (the sum of the
    last valid step's output); then ``lt.grads["h"]`` (and ``["c"]``) hold dL/dh_t through time and
    ``tr.param_grads`` per-parameter gradient statistics. ``.grad`` fields are never touched.

    The model is left exactly as found: parameters, ``.grad``, ``training``, hooks, ``forward``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"rw.trace: expected a torch.nn.Module as the model, got {type(model).__name__}")
    if loss is not None and loss != "last" and not callable(loss):
        raise TypeError(f"rw.trace: loss must be a callable on the model's output or \"last\", got {loss!r}")
    check_finite(inputs)
    if fused_modules(model):
        return trace_fused(model, inputs, hidden, tokens, loss)
    per_step = isinstance(inputs, (list, tuple)) and not isinstance(inputs, PackedSequence)
    if per_step or takes_input_and_hidden(model):
        from .step import trace_step_module
        return trace_step_module(model, inputs, hidden=hidden, tokens=tokens, loss=loss)
    if loss is not None:
        raise ValueError(f"rw.trace: loss= needs an nn.LSTM / nn.GRU / nn.RNN or a step module with "
                         f"forward(input, hidden); {type(model).__name__} has neither")
    from .recording import recording
    with torch.no_grad(), recording(model, tokens=tokens) as rec:
        model(inputs) if hidden is None else model(inputs, hidden)
    return rec.trace


def takes_input_and_hidden(model: nn.Module) -> bool:
    """Whether ``model.forward`` takes exactly two required positional arguments (input, hidden)."""
    try:
        parameters = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) == 2 and all(p.default is p.empty for p in positional)


def check_finite(inputs) -> None:
    """Non-finite input values are a user error: say how many (inputs may be a tuple/list of tensors)."""
    parts = inputs if isinstance(inputs, (tuple, list)) and not isinstance(inputs, PackedSequence) else [inputs]
    for part in parts:
        data = part.data if isinstance(part, PackedSequence) else part
        # a finite sum means every value is finite: one reduction instead of a mask as large as the input
        if (isinstance(data, torch.Tensor) and data.is_floating_point() and not bool(torch.isfinite(data.sum()))
                and not bool(torch.isfinite(data).all())):
            bad = int((~torch.isfinite(data)).sum())
            raise ValueError(f"rw.trace: inputs contain {bad} non-finite value(s) (NaN or inf); "
                             f"expected finite numbers")


def trace_fused(model: nn.Module, inputs, hidden, tokens, loss) -> Trace:
    anchor = torch.zeros((), requires_grad=True) if loss is not None else None
    run_layer = gradients.differentiable_layer(anchor) if anchor is not None else None
    with torch.enable_grad() if loss is not None else torch.no_grad():
        with FusedRecorder(model, run_layer) as recorder:
            output = model(inputs) if hidden is None else model(inputs, hidden)
        runs = recorder.runs
        if not runs:
            raise ValueError(f"rw.trace: {type(model).__name__} contains recurrent modules but none of them ran "
                             f"in its forward")
        if loss is not None:
            param_grads = gradients.backward(model, gradients.loss_value(loss, output, runs[-1]), anchor)
    with torch.no_grad():
        layers = []
        for run in runs:   # one run's tensors at a time, so they are freed once converted
            layers += [layer_arrays(d, with_grads=loss is not None) for d in run.recomputed()]
            run.release()
    first = runs[0]
    merged = merge_calls(layers)
    outputs = output_steps(output, merged)
    tr = Trace(layers=merged, lengths=first.lengths().cpu().numpy(),
               outputs=to_numpy(outputs) if outputs is not None else None,
               tokens=normalize_tokens(tokens), inputs=input_steps(inputs, first),
               param_grads=param_grads if loss is not None else {},
               meta={"source": "fused", "model": type(model).__name__})
    warn_non_finite(tr)
    return tr


def layer_arrays(d, with_grads: bool) -> dict:
    """One direction of one layer call as numpy arrays (batch, time, units) plus its meta; its
    gradients through time are zero when its output did not reach the loss."""
    module = d.run.module
    width = module.proj_size or module.hidden_size
    meta = {"module": d.run.name.rsplit(".l", 1)[0], "layer": d.run.layer,
            "direction": "reverse" if d.reverse else "forward",
            "input_size": module.input_size if d.run.layer == 0 else width * d.run.directions,
            "hidden_size": module.hidden_size, "bias": bool(module.bias), "batch_first": module.batch_first}
    if module.mode == "LSTM":
        meta["proj_size"] = module.proj_size
    if module.mode.startswith("RNN_"):
        meta["nonlinearity"] = module.nonlinearity
    states = {"h": d.natural(d.h)}
    if d.c is not None:
        states["c"] = d.natural(d.c)
    grads = {}
    if with_grads:
        k = int(d.reverse)
        grads = {key: d.natural(d.run.grads[k][key]) if d.run.grads else torch.zeros_like(states[key])
                 for key in states}
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


def merge_calls(layers: list) -> dict:
    """name -> LayerTrace in forward order; a module's repeated calls joined along time when all
    are full length with one batch size, else kept apart as "<name>@<call>"."""
    groups: dict = {}
    for arrays in layers:
        groups.setdefault(arrays["name"], []).append(arrays)
    merged = {}
    for name, calls in groups.items():
        joinable = len({c["states"]["h"].shape[0] for c in calls}) == 1 and all(
            bool((c["lengths"] == c["states"]["h"].shape[1]).all()) for c in calls)
        if len(calls) > 1 and joinable:
            groups_joined = {g: {k: np.concatenate([c[g][k] for c in calls], axis=1) for k in calls[0][g]}
                             for g in ("states", "gates", "grads")}
            meta = dict(calls[0]["meta"], calls=len(calls))
            # the joined sequence starts where the first call started
            merged[name] = LayerTrace(name, calls[0]["kind"], meta=meta, initial=calls[0]["initial"], **groups_joined)
            continue
        for c in calls:
            label = name if c["call"] == 0 else f"{name}@{c['call']}"
            merged[label] = LayerTrace(label, c["kind"], meta=dict(c["meta"], call=c["call"]), states=c["states"],
                                       gates=c["gates"], grads=c["grads"], initial=c["initial"])
    return merged


def output_steps(output, layers: dict):
    """The model's first output (a tensor, a tuple's first element, a padded PackedSequence) as
    (batch, time, features) when its time dimension matches a traced layer's sequence in that
    layer's module layout, else None."""
    out = output[0] if isinstance(output, (tuple, list)) and output else output
    if isinstance(out, PackedSequence):
        return pad_packed_sequence(out, batch_first=True)[0]
    if not isinstance(out, torch.Tensor) or out.dim() not in (2, 3):
        return None
    for name, lt in reversed(layers.items()):
        batch, steps = lt.h.shape[:2]
        if out.dim() == 2 and batch == 1 and out.shape[0] == steps:
            return out.unsqueeze(0)
        if out.dim() == 3 and lt.meta["batch_first"] and tuple(out.shape[:2]) == (batch, steps):
            return out
        if out.dim() == 3 and not lt.meta["batch_first"] and tuple(out.shape[:2]) == (steps, batch):
            return out.transpose(0, 1)
    return None


def input_steps(inputs, first_run):
    """Float model inputs per step as numpy (batch, time, features); None for token ids."""
    if isinstance(inputs, PackedSequence):
        if not inputs.data.is_floating_point():
            return None
        return to_numpy(pad_packed_sequence(inputs, batch_first=True)[0])
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        return None
    steps, batch = first_run.padded(first_run.x).shape[:2]
    if inputs.dim() == 2 and batch == 1 and inputs.shape[0] == steps:
        return to_numpy(inputs.unsqueeze(0))
    if inputs.dim() == 3:
        batch_major = inputs if first_run.module.batch_first else inputs.transpose(0, 1)
        if tuple(batch_major.shape[:2]) == (batch, steps):
            return to_numpy(batch_major)
    return None


def normalize_tokens(tokens):
    """tokens as one list of strings per batch element, or a clear error."""
    if tokens is None:
        return None
    expected = "a list of strings (batch 1) or one list of strings per batch element"
    if isinstance(tokens, str) or not isinstance(tokens, (list, tuple)):
        raise TypeError(f"rw.trace: tokens: expected {expected}, got {type(tokens).__name__}")
    if all(isinstance(t, str) for t in tokens):
        return [list(tokens)]
    if all(isinstance(seq, (list, tuple)) and all(isinstance(t, str) for t in seq) for seq in tokens):
        return [list(seq) for seq in tokens]
    raise TypeError(f"rw.trace: tokens: expected {expected}, got a {type(tokens).__name__} of other values")


def warn_non_finite(tr: Trace) -> None:
    """Non-finite values the model produced are kept (they are what it did), with a warning.
    Only the states are scanned: a non-finite gate always reaches c or h."""
    for lt in tr.layers.values():
        for key, value in lt.states.items():
            with np.errstate(over="ignore"):  # a sum that overflows only sends us to the full scan
                finite_sum = np.isfinite(value.sum())
            if not finite_sum and not np.isfinite(value).all():  # the sum first: no mask as big as the trace
                warnings.warn(f"rw.trace: {lt.name} {key} has non-finite values (NaN or inf); kept in the trace",
                              RuntimeWarning, stacklevel=3)
                return
