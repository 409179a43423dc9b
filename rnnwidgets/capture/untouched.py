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


@contextmanager
def kept(model: nn.Module):
    """Run the block holding the trace lock, then put back every buffer the block changed."""
    with TRACE_LOCK:
        saved = [(where, name, t, t._version, t.detach().clone()) for where, name, t in tensors_to_keep(model)]
        try:
            yield
        finally:
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
