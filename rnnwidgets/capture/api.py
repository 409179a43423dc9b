"""``rw.trace``: one call on a model and its inputs gives back a Trace of every recurrent layer."""
from __future__ import annotations

import inspect

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from ..tracedata import Trace
from .finite import require_finite
from .fused import fused_modules
from .fused_trace import trace_fused
from .loop_gradients import trace_loop
from .recording import recording
from .step_module import trace_step_module
from .untouched import kept


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
    - Anything else: run once inside ``rw.recording`` (cells in the model's own loop, ``rw.record``);
      with ``loss`` its cells get their gradients through time (loop_gradients.py).

    ``tokens``: a list of strings (batch 1) or one list per batch element, shown as labels.
    ``loss``: a callable on the model's output returning a scalar, or ``"last"`` (the sum of the
    last valid step's output); then ``lt.grads["h"]`` (and ``["c"]``) hold dL/dh_t through time and
    ``tr.param_grads`` per-parameter gradient statistics. ``.grad`` fields are never touched.

    Other modules follow the model's own ``training`` flag (dropout, BatchNorm on batch
    statistics); ``tr.meta["training"]`` says which mode the trace ran in.

    The model is left exactly as found: parameters, ``.grad``, ``training``, hooks, ``forward``,
    and every buffer (BatchNorm running statistics, spectral_norm's vectors). Traces run one at
    a time: a second thread's trace waits for the first.
    """
    check_model(model)
    if loss is not None and loss != "last" and not callable(loss):
        raise TypeError(f"rw.trace: loss must be a callable on the model's output or \"last\", got {loss!r}")
    if loss is not None and torch.is_inference_mode_enabled():
        raise RuntimeError("rw.trace: loss= needs gradients, which torch.inference_mode() turns off; expected a "
                           "call outside inference_mode (torch.no_grad() around it is fine)")
    check_finite(inputs)
    with kept(model):
        return dispatch(model, inputs, hidden, tokens, loss)


def check_model(model) -> None:
    """A clear error for a model capture cannot run."""
    if isinstance(model, torch.jit.ScriptModule) or not isinstance(model, nn.Module):
        what = ("a torch.jit.script-ed module (pass the nn.Module it was scripted from)"
                if isinstance(model, torch.jit.ScriptModule) else type(model).__name__)
        raise TypeError(f"rw.trace: expected a torch.nn.Module as the model, got {what}")
    scripted = [path for path, m in model.named_modules() if isinstance(m, torch.jit.ScriptModule)]
    if scripted:
        raise TypeError(f"rw.trace: expected plain torch.nn.Modules, but {scripted[0]!r} is a torch.jit.script-ed "
                        "module; pass the model built from nn.Modules it was scripted from")
    on_meta = [name for name, t in (*model.named_parameters(), *model.named_buffers()) if t.device.type == "meta"]
    if on_meta:
        raise ValueError(f"rw.trace: expected a model with values, but {on_meta[0]!r} is on the 'meta' device "
                         "(no data); load its weights first (model.to_empty(device=...) and load_state_dict)")


def dispatch(model: nn.Module, inputs, hidden, tokens, loss) -> Trace:
    if fused_modules(model):
        return trace_fused(model, inputs, hidden, tokens, loss)
    per_step = isinstance(inputs, (list, tuple)) and not isinstance(inputs, PackedSequence)
    if per_step or takes_input_and_hidden(model):
        return trace_step_module(model, inputs, hidden=hidden, tokens=tokens, loss=loss)
    if loss is not None:   # cells in the model's own loop
        return trace_loop(model, inputs, hidden, tokens, loss)
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
        if isinstance(data, torch.Tensor):
            require_finite("rw.trace: inputs", data)
