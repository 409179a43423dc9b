"""Step modules: ``forward(input, hidden) -> (output, hidden)``, driven over a sequence by us.

    class RNN(nn.Module):                        # the classic char-RNN step module
        def forward(self, input, hidden):
            combined = torch.cat((input, hidden), 1)
            return self.i2o(combined), self.i2h(combined)

    tr = trace_step_module(RNN(57, 128, 18), line_tensor)     # (time, batch, features)

The loop runs inside ``rw.recording(model)``, which records each call as one step (see
recording.py): a layer named by the class name lowercased, kind "custom", with the hidden state
("h"; a tuple (h, c) gives "h" and "c"), the output (track "output" and ``tr.outputs``), every
direct submodule's output as a track named after it ("i2h", "i2o"), any ``rw.record`` its
forward makes, and a layer of its own for every cell inside it. Its ``initial`` is the hidden
passed in at step 0 (``hidden`` or the default), each part that is one row per batch element of
a recorded state; a part with no such row (a state shared by the batch) is left out.

``loss`` is a callable on the outputs stacked as (time, batch, features) returning a scalar, or
"last" for the sum of the last step's output. It adds ``lt.grads["h"]`` (and "c"): the whole
gradient of the loss reaching each step's hidden state through the recurrence, and
``tr.param_grads``; both via ``torch.autograd.grad``, so no ``.grad`` field changes.

The model runs in its own mode (dropout on in training mode, as it would train; ``meta["training"]``
says which) and is left as found.
"""
from __future__ import annotations

from contextlib import ExitStack

import torch
from torch import nn

from ..tracedata import Trace
from .call import ModelCall, default_hidden, device_and_dtype
from .convert import to_numpy
from .finite import require_finite
from .gradients import every_path
from .recording import HookRecording, param_stats, per_batch, state_parts


def trace_step_module(model: nn.Module, inputs, hidden=None, tokens=None, loss=None, call=None, edits=(),
                      time_axis: bool = False) -> Trace:
    """Drive ``model`` over ``inputs`` one step at a time and record what it does (module doc).

    ``inputs``: a list of per-step tensors, each (batch, features) or (features,), or one tensor
    (time, batch, features) — a 2-D tensor is read as (time, features) with batch 1, or as
    (time, batch) token ids when it holds integers (a list: (batch,) ids a step). ``hidden``:
    the initial state; by default the module's ``init_hidden``/``initHidden``, else zeros of
    (batch, ``model.hidden_size``). ``call`` (call.py's ModelCall): what else forward takes, a
    constant argument before the input (``forward(category, input, hidden)``) or by name.

    An nn.LSTM / nn.GRU / nn.RNN inside the module (a one-token encoder) gives layers of its own,
    one step per call, with its gates recomputed from its weights as in a whole-model trace.
    ``edits`` (rw.clamp, rw.patch) act on each step as it runs (edited.py).
    ``time_axis``: each step of token ids is fed as (1, batch), a time axis of one, as the chatbot
    tutorial's decoder takes ``input_step`` (``target_variable[t].view(1, -1)``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"trace_step_module expects a torch.nn.Module, got {type(model).__name__}")
    if loss is not None and loss != "last" and not callable(loss):
        raise ValueError(f"loss: expected a callable on the outputs (time, batch, features) or 'last', got {loss!r}")
    call = call if call is not None else ModelCall(model)
    device, dtype = device_and_dtype(model)
    steps = [x.to(device, dtype if x.is_floating_point() else x.dtype) for x in split_steps(inputs)]
    batch = steps[0].shape[0]
    if time_axis:
        steps = [x.unsqueeze(0) for x in steps]     # (1, batch) ids
    if hidden is None:
        hidden = default_hidden(model, batch, device, dtype)
    bound = call.bind(steps[0], hidden)
    with ExitStack() as stack:
        stack.enter_context(torch.enable_grad() if loss is not None else torch.no_grad())
        if loss is not None and device.type == "cuda":
            stack.enter_context(torch.backends.cudnn.flags(enabled=False))  # cuDNN RNNs refuse backward in eval
        if loss is not None:
            hidden = _as_leaf(hidden)
        outputs, states = [], []
        with HookRecording(model, tokens=tokens, deferred=True, slots=(bound.input_at, bound.hidden_at),
                           edits=edits, who="rw.trace", differentiable=loss is not None) as rec:
            for x in steps:
                args, kwargs = bound.at(x, hidden)
                result = model(*args, **kwargs)
                if not (isinstance(result, (tuple, list)) and len(result) == 2):
                    got = f"a {type(result).__name__} of {len(result)}" if isinstance(result, (tuple, list)) \
                        else type(result).__name__
                    raise TypeError(f"{type(model).__name__}: a step module's forward(input, hidden) must return "
                                    f"(output, hidden), got {got}{call.split_state_note()}")
                output, hidden = result
                outputs.append(output)
                states.append(hidden)
        collected = rec.collected
        assert collected is not None  # a deferred recording collects its layers when the block ends
        first = next(iter(collected.layers.values()))
        if first["meta"].get("step_module") != type(model).__name__:
            raise TypeError(f"{type(model).__name__}: expected forward(input, hidden) to return (output, hidden) "
                            "with tensors that have the batch as a dimension")
        if loss is not None:
            grads, collected.param_grads = _gradients(model, outputs, states, loss)
            first["grads"].update({k: _stack_grads(v, batch) for k, v in grads.items()})
    return collected.build()


# ---- inputs and the initial state -------------------------------------------------------------
def split_steps(inputs) -> list:
    """Per-step (batch, features) tensors from a list of steps or one (time, batch, features) tensor;
    token ids (an integer tensor) are per step (batch,): (time, batch) ids, or a list of (batch,)."""
    if isinstance(inputs, torch.Tensor):
        if inputs.dim() == 2 and inputs.is_floating_point():
            inputs = inputs.unsqueeze(1)
        if inputs.dim() != 3 and not (inputs.dim() == 2 and not inputs.is_floating_point()):
            raise ValueError(f"step module inputs: expected a (time, batch, features) tensor or a list of "
                             f"per-step tensors, got a tensor of shape {tuple(inputs.shape)}")
        steps = list(inputs.unbind(0))
    elif isinstance(inputs, (list, tuple)):
        steps = [torch.as_tensor(x) for x in inputs]
        for t, x in enumerate(steps):
            if x.dim() not in (1, 2):
                raise ValueError(f"step module inputs[{t}]: expected a (batch, features) or (features,) tensor, "
                                 f"got shape {tuple(x.shape)}")
        steps = [x.unsqueeze(0) if x.dim() == 1 and x.is_floating_point() else x for x in steps]
    else:
        raise TypeError(f"step module inputs: expected a list of per-step tensors or a (time, batch, features) "
                        f"tensor, got {type(inputs).__name__}")
    if not steps:
        raise ValueError("step module inputs: the sequence is empty (expected at least one step)")
    if steps[0].shape[0] == 0:
        raise ValueError("step module inputs: a batch of 0 sequences; expected at least one")
    shapes = {tuple(x.shape) for x in steps}
    if len(shapes) != 1:
        raise ValueError(f"step module inputs: every step must have the same (batch, features) shape, "
                         f"got {sorted(shapes)}")
    for t, x in enumerate(steps):
        require_finite(f"step module inputs[{t}]", x)
    return steps


def _as_leaf(hidden):
    """A copy of the initial state that requires grad, so every later state is in the graph."""
    if isinstance(hidden, torch.Tensor):
        return hidden.detach().clone().requires_grad_(hidden.is_floating_point())
    return type(hidden)(_as_leaf(h) for h in hidden)



# ---- gradients through time -------------------------------------------------------------------
def _gradients(model, outputs, states, loss):
    """dL/d(state_t) for every step (the whole gradient, through later steps) and parameter stats."""
    stacked = torch.stack(outputs)                    # (time, batch, features)
    value = stacked[-1].sum() if loss == "last" else loss(stacked)
    if not (isinstance(value, torch.Tensor) and value.numel() == 1):
        raise ValueError(f"loss: expected a scalar tensor, got {type(value).__name__} "
                         f"{tuple(value.shape) if isinstance(value, torch.Tensor) else ''}")
    per_step = [state_parts(s) for s in states]
    targets = [(t, n, tensor) for t, parts in enumerate(per_step) for n, tensor in parts.items()
               if tensor.requires_grad]
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    wrt = [tensor for _, _, tensor in targets] + [p for _, p in params]
    found = every_path(value, wrt) if wrt and value.requires_grad else [None] * len(wrt)
    grads = {n: [torch.zeros_like(parts[n]).detach() for parts in per_step] for n in per_step[0]}
    for (t, n, _), g in zip(targets, found):
        if g is not None:
            grads[n][t] = g
    return grads, param_stats(params, found[len(targets):])


def _stack_grads(steps: list, batch: int):
    """Per-step gradients, shaped like their states, as float32 numpy (batch, time, features)."""
    rows = []
    for g in steps:
        row = per_batch(g, batch)
        assert row is not None  # shaped like its state, which has the batch as a dimension
        rows.append(row)
    return to_numpy(torch.stack(rows, dim=1))
