"""``rw.trace``: one call on a model and its inputs gives back a Trace of every recurrent layer."""
from __future__ import annotations

import functools
from typing import Optional

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from ..tracedata import Trace
from . import select
from .call import ModelCall, ids_explained, main_output, refuse_scripted, unpack, unwrap
from .cells import cell_kind
from .convert import to_numpy
from .edits import check_edits
from .finite import require_finite
from .fused import fused_modules
from .fused_trace import forward_ran, trace_fused
from .loop_gradients import trace_loop
from .recording import HookRecording, trace_recorded
from .step_module import trace_step_module
from .untouched import kept


def trace(model, inputs, hidden=None, tokens=None, loss=None, *, args=(), kwargs=None, edits=None,
          quantities=None, layers=None, steps=None) -> Trace:
    """Run ``model`` once on ``inputs`` and return what every recurrent layer did at every step.

    What the forward gets besides ``inputs`` (capture/call.py, the README's "Your model"):
    ``hidden`` (by default the model's ``init_hidden``/``initHidden`` where its forward needs a
    state), ``args`` (more positional arguments) and ``kwargs`` (by name; ``inputs`` goes to the
    first parameter they leave free). A tuple or dict ``inputs`` that the forward's parameters ask
    for (``(ids, lengths)``) is spread over them. A ``torch.compile`` / ``nn.DataParallel``
    wrapper is traced as the module it wraps.

    - A model that is or contains ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``: runs the model once on
      the whole sequence and captures every layer and direction
      of each such module: h, c (LSTM) and the gates, recomputed from the module's own weights and
      checked against its own output. Layers run in eval semantics: no inter-layer dropout, even
      when the module is in training mode (its ``training`` flag is left alone).
      A module called several times in one forward (a decoder run step by step) gives one layer
      per call concatenated along time when every call is full length with the same batch size;
      otherwise the calls after the first are separate layers named ``"<name>@<call>"``.
    - A step module, ``forward(input, hidden) -> (output, hidden)`` (or ``inputs`` given as a list
      of per-step tensors): driven over the sequence step by step. One with an nn.LSTM / GRU / RNN
      inside is run whole first, and driven step by step when that fails (a one-token encoder).
    - Anything else: run once inside ``rw.recording`` (cells in the model's own loop, ``rw.record``;
      with ``loss=``, cells in the model's own loop get their gradients through time
      (loop_gradients.py), and so do the states recorded with ``rw.record("h", ...)``).

    ``tokens``: a list of strings (batch 1) or one list per batch element, shown as labels.
    ``loss``: a callable on the model's output returning a scalar, or ``"last"`` (the sum of the
    last valid step's output); then ``lt.grads["h"]`` (and ``["c"]``) hold dL/dh_t through time and
    ``tr.param_grads`` per-parameter gradient statistics. ``.grad`` fields are never touched.

    ``edits``: a list of ``rw.clamp(...)`` / ``rw.patch(...)`` (capture/edits.py) applied inside the
    recurrence as it runs, so they reach the next steps, the next layers and ``tr.outputs``; the
    Trace is the run under them and ``tr.meta["edits"]`` lists them. With ``loss=`` too, the
    gradients are those of the edited run: ``grads["h"]`` is dL/dh_t of each step's state as the
    recurrence carries it on (after the edit), and a clamped value is a constant that passes no
    gradient back.

    ``quantities``, ``layers``, ``steps`` (capture/select.py; None: everything) keep a subset:
    ``quantities`` states and gates by name ("h", "c", "input", "forget", ..., "reset", ...;
    gradients and initial states go with their states, tracks are always kept); ``layers`` names
    as in ``tr.layers`` ("lstm.l0" is that layer's forward direction and its later calls,
    "lstm.l0.reverse" its reverse one), or a module path, which selects every layer of the modules
    under it ("lstm", "encoder"); ``steps`` a slice or range of consecutive steps from 0 on
    (``slice(100, 200)``), cut from each layer's own time axis with the lengths, tokens, outputs
    and inputs; each layer's ``initial`` is then the state fed into the window, ``meta["steps"]``
    the window it holds. What is kept is bit for bit the full trace's. For nn.LSTM / GRU / RNN
    modules without ``loss=`` or ``edits=``, no gate is recomputed for a layer asked for neither
    gates nor (LSTM) c, unselected layers are not computed beyond the forward nor copied, and
    only what is kept comes back to host memory. With ``loss=`` or ``edits=`` the run and its gradients are those of the
    whole model, as without a selection: the selection only cuts what is returned.
    ``tr.meta["selection"]`` records it.

    Other modules follow the model's own ``training`` flag (dropout, BatchNorm on batch
    statistics); ``tr.meta["training"]`` says which mode the trace ran in.

    The model is left exactly as found: parameters, ``.grad``, ``training``, hooks, ``forward``,
    and every buffer (BatchNorm running statistics, spectral_norm's vectors). Traces run one at
    a time: a second thread's trace waits for the first.
    """
    model = unwrap(model)
    check_model(model)
    call = ModelCall(model, args, kwargs)
    inputs, spread = unpack(call, inputs, strict=True)
    if spread:
        call = ModelCall(model, args, {**spread, **call.kwargs})
    if loss is not None and loss != "last" and not callable(loss):
        raise TypeError(f"rw.trace: loss must be a callable on the model's output or \"last\", got {loss!r}")
    if loss is not None and torch.is_inference_mode_enabled():
        raise RuntimeError("rw.trace: loss= needs gradients, which torch.inference_mode() turns off; expected a "
                           "call outside inference_mode (torch.no_grad() around it is fine)")
    check_finite(inputs)
    edits = check_edits("rw.trace", edits)
    selection = select.parse("rw.trace", quantities, layers, steps)
    with kept(model):
        parts = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        with ids_explained("rw.trace", model, [*parts, *call.args, *call.kwargs.values()]):
            return dispatch(model, inputs, hidden, tokens, loss, call, edits, selection)


def check_model(model) -> None:
    """A clear error for a model capture cannot run."""
    refuse_scripted("rw.trace", model)
    if not isinstance(model, nn.Module):
        raise TypeError(f"rw.trace: expected a torch.nn.Module as the model, got {type(model).__name__}")
    on_meta = [name for name, t in (*model.named_parameters(), *model.named_buffers()) if t.device.type == "meta"]
    if on_meta:
        raise ValueError(f"rw.trace: expected a model with values, but {on_meta[0]!r} is on the 'meta' device "
                         "(no data); load its weights first (model.to_empty(device=...) and load_state_dict)")


def dispatch(model: nn.Module, inputs, hidden, tokens, loss, call: ModelCall, edits=(),
             selection: Optional[select.Selection] = None) -> Trace:
    """Trace by the model's shape (``trace``'s doc). A model whose forward is (input, hidden)
    and which holds an nn.LSTM / GRU / RNN is run whole first; when that fails and the model is
    called one step at a time (a one-token encoder), it is driven step by step instead, and an
    error says both calls that were tried. The fused path applies ``selection`` as it goes, the
    others to the whole Trace they capture (``select.apply``)."""
    cut = functools.partial(select.apply, selection=selection)
    per_step = isinstance(inputs, (list, tuple)) and not isinstance(inputs, PackedSequence)
    if per_step and (call.is_step_module() or not fused_modules(model)):   # a list of per-step tensors
        return cut(trace_step_module(model, inputs, hidden=hidden, tokens=tokens, loss=loss, call=call,
                                     edits=edits))
    if fused_modules(model):
        bound = call.whole(inputs, hidden, fused=True)
        if not call.is_step_module():
            with call.calling(bound) as given:
                return trace_fused(model, inputs, given, tokens, loss, edits, selection)
        try:
            with call.calling(bound) as given:
                return trace_fused(model, inputs, given, tokens, loss, edits, selection)
        except Exception as whole:
            if forward_ran(whole):      # the model took the whole sequence: the error is in what was asked
                raise
            try:
                return cut(trace_step_module(model, inputs, hidden=hidden, tokens=tokens, loss=loss, call=call,
                                             edits=edits))
            except Exception as stepped:
                if not (isinstance(inputs, torch.Tensor) and inputs.dim() == 2 and not inputs.is_floating_point()):
                    raise both_failed(call, whole, stepped) from whole
                try:            # (time, batch) ids fed (1, batch) a step (the chatbot tutorial's decoder)
                    return cut(trace_step_module(model, inputs, hidden=hidden, tokens=tokens, loss=loss, call=call,
                                                 edits=edits, time_axis=True))
                except Exception:
                    raise both_failed(call, whole, stepped) from whole
    if call.is_step_module():
        return cut(trace_step_module(model, inputs, hidden=hidden, tokens=tokens, loss=loss, call=call,
                                     edits=edits))
    args, kwargs = call.whole(inputs, hidden, fused=False).at(inputs)
    if loss is not None:
        if any(cell_kind(m) for m in model.modules()):  # nn.LSTMCell / GRUCell / RNNCell in its own loop
            return cut(trace_loop(model, args, kwargs, tokens, loss, edits))
        return cut(trace_recorded(model, args, kwargs, tokens, loss, edits))
    with torch.no_grad(), HookRecording(model, tokens=tokens, edits=edits, who="rw.trace") as rec:
        output = model(*args, **kwargs)
    tr = rec.trace
    if tr.outputs is None:      # cells in the model's own loop: its output, when it has one row per step
        tr.outputs = loop_outputs(output, tr)
        tr.validate()
    return cut(tr)


def loop_outputs(output, tr: Trace):
    """The model's main output (``call.main_output``) as (batch, time, features) when it is
    (batch, time[, features]) or (time, batch[, features]) for the first layer's batch and steps
    (which must differ, or the layout cannot be told); else None."""
    out = main_output(output)
    batch, steps = tr.first.h.shape[:2] if "h" in tr.first.states else (0, 0)
    if not isinstance(out, torch.Tensor) or not out.is_floating_point() or out.dim() not in (2, 3) or batch == steps:
        return None
    if tuple(out.shape[:2]) == (steps, batch):
        out = out.transpose(0, 1)
    elif tuple(out.shape[:2]) != (batch, steps):
        return None
    return to_numpy(out if out.dim() == 3 else out.unsqueeze(-1))


def both_failed(call: ModelCall, whole: Exception, stepped: Exception) -> Exception:
    """The whole-model run's error, of its own type where it can be made, saying what else was tried."""
    message = (f"{whole}\n(rnnwidgets ran {call.shown(hidden=True)} on the whole sequence, as above, and "
               f"driven one step at a time, model(inputs[t], hidden): {type(stepped).__name__}: {stepped}. "
               "For a model run on the whole sequence pass hidden= (or kwargs=) as its forward needs; for a "
               "step module, inputs as (time, batch, ...) or a list of per-step tensors)")
    try:
        return type(whole)(message)
    except Exception:
        return RuntimeError(message)


def check_finite(inputs) -> None:
    """Non-finite input values are a user error: say how many (inputs may be a tuple/list of tensors)."""
    parts = inputs if isinstance(inputs, (tuple, list)) and not isinstance(inputs, PackedSequence) else [inputs]
    for part in parts:
        data = part.data if isinstance(part, PackedSequence) else part
        if isinstance(data, torch.Tensor):
            require_finite("rw.trace: inputs", data)
