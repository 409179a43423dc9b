"""The model is left exactly as found: one trace at a time, and every buffer put back.

A model traced in training mode runs as it would train (BatchNorm on batch statistics, dropout
modules active, spectral_norm's power iteration), and those forwards update buffers in place:
running statistics, ``num_batches_tracked``, spectral_norm's ``weight_u``/``weight_v`` and the
``weight`` it recomputes. ``kept(model)`` copies every buffer and plain tensor attribute of every
module first and puts back any that changed (same tensor object, same values).

Capture swaps fused modules' ``forward`` on the instance while the model runs, so two traces of
one model at once (two threads) would each save the other's swap as the module's own; one
process-wide lock runs traces one at a time. It is re-entrant: a trace inside a trace (a model
that traces a part of itself) still runs.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

import torch
from torch import nn

TRACE_LOCK = threading.RLock()


def tensors_to_keep(model: nn.Module) -> list:
    """(container dict, name, tensor) of every buffer and plain tensor attribute of every module."""
    found = []
    for module in model.modules():
        found += [(module._buffers, name, t) for name, t in module._buffers.items() if t is not None]
        found += [(module.__dict__, name, t) for name, t in vars(module).items()
                  if isinstance(t, torch.Tensor) and not isinstance(t, nn.Parameter)]
    return found


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two tensors of one dtype and shape hold the same bits (NaN equal to itself)."""
    return torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8)) if a.numel() else True


def holds_tensors(value) -> bool:
    return isinstance(value, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in value)


def attributes_to_keep(model: nn.Module) -> list:
    """(module, its parameters, its attributes holding None or tensors, the names of all its attributes) of
    every module: forwards that reassign them run too (AWD-LSTM's WeightDrop sets ``weight_hh_l0`` at every call, which
    registers it as a parameter when dropout is off; the BiLSTM-CRF tutorial keeps ``self.hidden = (h, c)``;
    a stateful model starts from ``self.hidden = None`` and sets it at its first forward)."""
    return [(m, dict(m._parameters), {name: v for name, v in vars(m).items() if v is None or holds_tensors(v)},
             set(vars(m))) for m in model.modules()]


def put_back_attributes(saved: list) -> None:
    for module, params, states, names in saved:
        if module._parameters.keys() != params.keys() or \
                any(module._parameters[k] is not p for k, p in params.items()):
            module._parameters.clear()
            module._parameters.update(params)
        found = vars(module)
        for name in [n for n, v in found.items() if n not in names and not isinstance(v, nn.Parameter)
                     and (isinstance(v, torch.Tensor) or holds_tensors(v))]:
            del found[name]                 # a tensor (or tuple of them) the block's forwards left
        for name, value in states.items():
            if found.get(name) is not value:
                found[name] = value


def detached(value):
    """A tensor, or a tuple / list of them, without its autograd history (the same values)."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    items = [v.detach() if isinstance(v, torch.Tensor) else v for v in value]
    return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)


def has_history(value) -> bool:
    parts = value if isinstance(value, (tuple, list)) else [value]
    return any(isinstance(v, torch.Tensor) and v.grad_fn is not None for v in parts)


def cut_history(saved: list) -> None:
    """State a forward left on the model with its graph (the old tagger tutorial's ``self.hidden`` after
    a training step that did not reset it) is read for the block as values only: a trace's gradients
    are those of its own run, and a graph the user's backward already freed is not walked again."""
    for module, _, states, _ in saved:   # ``states``: every attribute holding tensors (attributes_to_keep)
        found = vars(module)
        for name, value in states.items():
            if has_history(value) and not isinstance(value, nn.Parameter):
                found[name] = detached(value)


@contextmanager
def kept(model: nn.Module):
    """Run the block holding the trace lock, then put back every buffer, parameter registration and
    tensor attribute (a tensor, or a tuple / list of them) the block changed. Tensor attributes that
    carry autograd history are read without it inside the block (``cut_history``)."""
    with TRACE_LOCK:
        saved = [(where, name, t, t._version, t.detach().clone()) for where, name, t in tensors_to_keep(model)]
        attributes = attributes_to_keep(model)
        cut_history(attributes)
        try:
            yield
        finally:
            put_back_attributes(attributes)
            with torch.no_grad():
                for where, name, t, version, copy in saved:
                    where[name] = t
                    # native kernels (batch_norm) update running statistics without a version bump;
                    # an unchanged tensor is not written, so a user's graph that saved it stays valid
                    if t._version != version or not same_bits(t, copy):
                        t.copy_(copy)


class eval_mode:
    """Eval mode (no dropout) for the duration; every module's own training flag is put back after."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self):
        self.flags = [(m, m.training) for m in self.model.modules()]
        self.model.eval()

    def __exit__(self, *exc):
        for module, flag in self.flags:
            module.training = flag
        return False
