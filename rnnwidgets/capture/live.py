"""The live model behind a view: the one object through which views reach torch.

The torch-facing entry points (``rw.explore(model, ...)``, ``rw.gradient_flow``,
``rw.TrainingMonitor``) make one and hand it to the views, which never import torch
themselves: re-tracing on ``Explorer.update`` and the text box, the monitor's gradient hooks
and probe, and the numbers a chart needs from the model (weight norms, learning rates).
"""
from __future__ import annotations

import torch

from ..tracedata import Trace
from . import trace
from .hooks import ParameterGradients


class LiveModel:
    """``model`` and the keywords every re-trace of it takes (``hidden=``, ``loss=``...)."""

    def __init__(self, model: torch.nn.Module, who: str = "rnnwidgets", **trace_kwargs):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"{who}: expected a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.trace_kwargs = trace_kwargs

    @property
    def name(self) -> str:
        """What a Trace calls the model itself: its lower-cased class name."""
        return type(self.model).__name__.lower()

    def trace(self, inputs, tokens=None, **trace_kwargs) -> Trace:
        """``rw.trace`` of the model on ``inputs``, with this object's keywords unless overridden."""
        return trace(self.model, inputs, tokens=tokens, **{**self.trace_kwargs, **trace_kwargs})

    def gradients(self) -> ParameterGradients:
        return ParameterGradients(self.model)

    def weight_norms(self) -> dict:
        """Parameter name -> ‖W‖ (float64)."""
        return {name: float(p.detach().double().norm()) for name, p in self.model.named_parameters()}

    def learning_rates(self, optimizer) -> dict:
        """Parameter name -> the learning rate of the optimizer group that holds it."""
        by_id = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
        return {name: by_id[id(p)] for name, p in self.model.named_parameters() if id(p) in by_id}
