"""The live model behind a view: the one object through which views reach torch.

The torch-facing entry points (``rw.explore(model, ...)``, ``rw.gradient_flow``,
``rw.TrainingMonitor``) make one and hand it to the views, which never import torch
themselves: re-tracing on ``Explorer.update`` and the text box, the monitor's gradient hooks
and probe, and the numbers a chart needs from the model (weight norms, learning rates).
"""
from __future__ import annotations

from typing import Optional

import torch

from ..tracedata import Trace
from . import select, trace
from .attribution import attribution
from .call import ModelCall, unwrap
from .cells import cell_kind
from .edits import clamp, patch
from .fused import fused_modules
from .hooks import ParameterGradients


class LiveModel:
    """``model`` and the keywords every re-trace of it takes (``hidden=``, ``args=``, ``kwargs=``,
    ``loss=``...). A ``torch.compile`` or ``nn.DataParallel`` wrapper is unwrapped (call.py), so
    parameters and layers are named by the user's module paths."""

    def __init__(self, model: torch.nn.Module, who: str = "rnnwidgets", **trace_kwargs):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"{who}: expected a torch.nn.Module, got {type(model).__name__}")
        self.model = unwrap(model)
        self.trace_kwargs = {k: v for k, v in trace_kwargs.items() if v is not None and not (k == "args" and v == ())}
        # a bad selection is refused in the caller's name, before anything runs
        select.parse(who, *(self.trace_kwargs.get(k) for k in ("quantities", "layers", "steps")))

    @property
    def name(self) -> str:
        """What a Trace calls the model itself: its lower-cased class name."""
        return type(self.model).__name__.lower()

    def trace(self, inputs, tokens=None, **trace_kwargs) -> Trace:
        """``rw.trace`` of the model on ``inputs``, with this object's keywords unless overridden."""
        return trace(self.model, inputs, tokens=tokens, **{**self.trace_kwargs, **trace_kwargs})

    def edited(self, inputs, layer: str, quantity: str, units, steps, *, value=None, source: Optional[Trace] = None,
               tokens=None) -> Trace:
        """``rw.trace`` of the model on ``inputs`` with one more edit: ``units`` of ``layer``'s
        ``quantity`` at ``steps`` clamped to ``value``, or patched from ``source`` (a Trace)."""
        edit = clamp(layer, quantity, units, steps, value) if source is None else \
            patch(source, layer, quantity, units, steps)
        return self.trace(inputs, tokens=tokens, edits=[*(self.trace_kwargs.get("edits") or []), edit])

    def attribution(self, inputs, t: int, **options):
        """``rw.attribution`` of the model's prediction at step ``t`` on ``inputs`` (batch, time),
        with this object's ``hidden`` / ``args`` / ``kwargs``."""
        call = {k: v for k, v in self.trace_kwargs.items() if k in ("hidden", "args", "kwargs")}
        return attribution(self.model, inputs, t=t, **call, **options)

    def step_layer_of(self, param_name: str) -> Optional[str]:
        """The step module's own layer (its class name lowercased, as the trace names it) for a
        parameter the trace puts there: when rnnwidgets drives the model step by step, every
        parameter outside an nn.LSTM / GRU / RNN or a cell, which have layers of their own. None otherwise."""
        module_path = param_name.rpartition(".")[0]
        if self.step_module() and not recurrent(self.model.get_submodule(module_path)):
            return self.name
        return None

    def step_module(self) -> bool:
        """Whether the model is traced as a step module, forward(input, hidden) -> (output, hidden)
        with no nn.LSTM / GRU / RNN inside (with one, the trace runs it whole where it can)."""
        call = ModelCall(self.model, self.trace_kwargs.get("args", ()), self.trace_kwargs.get("kwargs"))
        return call.is_step_module() and not fused_modules(self.model)

    def gradients(self) -> ParameterGradients:
        return ParameterGradients(self.model)

    def weight_norms(self) -> dict:
        """Parameter name -> ‖W‖ (float64)."""
        return {name: float(p.detach().double().norm()) for name, p in self.model.named_parameters()}

    def learning_rates(self, optimizer) -> dict:
        """Parameter name -> the learning rate of the optimizer group that holds it."""
        by_id = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
        return {name: by_id[id(p)] for name, p in self.model.named_parameters() if id(p) in by_id}


def recurrent(module: torch.nn.Module) -> bool:
    """A module whose parameters make a Trace layer of their own: an nn.LSTM/GRU/RNN or a cell."""
    return isinstance(module, torch.nn.RNNBase) or bool(cell_kind(module))
