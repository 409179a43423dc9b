"""rnnwidgets: Jupyter widgets that show what a live PyTorch recurrent network does at every step.

Names are imported on first use, so ``import rnnwidgets`` stays light and a saved Trace can be
loaded on a machine without torch.
"""
from importlib import import_module

from ._version import __version__
from .tracedata import LayerTrace, Trace

# public name -> module that defines it
_LAZY = {
    "trace": "rnnwidgets.capture",
    "recording": "rnnwidgets.capture",
    "record": "rnnwidgets.capture",
    "explore": "rnnwidgets.entrypoints",
    "Explorer": "rnnwidgets.widgets.explorer",
    "gradient_flow": "rnnwidgets.entrypoints",
    "GradientFlow": "rnnwidgets.widgets.gradient_flow",
    "TrainingMonitor": "rnnwidgets.training_monitor",
    "trace_dataset": "rnnwidgets.dataset",
    "DatasetTrace": "rnnwidgets.dataset",
    "unit_stats": "rnnwidgets.patterns",
    "MatchPanel": "rnnwidgets.widgets.patterns",
    "CoClusterView": "rnnwidgets.widgets.patterns",
    "attribution": "rnnwidgets.capture.attribution",
    "dynamics": "rnnwidgets.capture.spectra",
    "Dynamics": "rnnwidgets.dynamics_analysis",
    "fixed_points": "rnnwidgets.capture.fixed_points",
    "FixedPoints": "rnnwidgets.dynamics_analysis",
    "DynamicsView": "rnnwidgets.widgets.dynamics_view",
    "clamp": "rnnwidgets.capture.edits",
    "patch": "rnnwidgets.capture.edits",
    "generate": "rnnwidgets.capture.generate",
    "compare": "rnnwidgets.entrypoints",
    "Compare": "rnnwidgets.widgets.compare",
}

__all__ = ["__version__", "Trace", "LayerTrace", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rnnwidgets' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
