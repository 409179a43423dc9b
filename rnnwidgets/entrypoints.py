"""The entry points that take a live model: ``rw.explore``, ``rw.gradient_flow`` and
``rw.compare`` (``rw.TrainingMonitor``: rnnwidgets/training_monitor.py).

Each traces the model through capture and hands the views one small live object
(``rnnwidgets.capture.live.LiveModel``) for whatever needs the model again (re-tracing, the
text box, the monitor's hooks and probe), so the views themselves never import torch. Given a
Trace, ``explore`` builds the view without importing torch at all.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

from .tracedata import Trace
from .widgets.explorer import Explorer, encoded
from .widgets.payload import FULL_BUDGET, Labels

if TYPE_CHECKING:  # imported where used: the first rw.explore(trace) of a session compiles only what it shows
    from .widgets.compare import Compare


def live(model, who: str, **trace_kwargs):
    """The live object a view re-runs ``model`` through (``rnnwidgets.capture.live.LiveModel``)."""
    from .capture.live import LiveModel  # torch: only once a model is given

    return LiveModel(model, who, **trace_kwargs)


def explore(source, inputs=None, *, tokens=None, hidden=None, text: Optional[str] = None,
            encode: Optional[Callable] = None, decode: Labels = None, interval: int = 150,
            batch: int = 0, budget: int = FULL_BUDGET, dynamics=False, attribution: bool = False,
            patch_from: Optional[dict] = None, **trace_kwargs) -> Explorer:
    """The Explorer for a model run on ``inputs`` (or on ``text`` through ``encode``), or for a Trace.

    ``decode``: a vocabulary list or an ``id -> str`` function naming the model's output classes.
    Other keywords go to ``rw.trace``: ``args=``/``kwargs=`` (what the forward needs besides its
    input, as ``hidden=``), and with ``loss=`` the gradient-flow view (``rw.GradientFlow``) sits
    under the heatmaps, its cursor on the Explorer's step. ``dynamics=True`` adds the dynamics
    panel (``rw.dynamics`` of the model on the inputs), following the Explorer's step (with
    ``steps=`` the same window, step for step);
    ``dynamics=rw.fixed_points(...)`` (or a list of them, one per layer) adds it with those fixed
    points drawn on the layer they belong to. ``patch_from``: a dict name -> rw.Trace of this model
    (steps aligned by index), listed as sources in the what-if box beside the batch's elements.
    """
    fixed = fixed_points_of(dynamics)
    if isinstance(source, Trace):
        if inputs is not None or text is not None:
            raise ValueError("explore(trace) takes no inputs: the trace already holds its run")
        if attribution:
            raise ValueError("explore(trace, attribution=True): attribution needs the live model; "
                             "give explore(model, inputs, attribution=True)")
        if patch_from is not None:
            raise ValueError("explore(trace, patch_from=...): patching re-runs the model; "
                             "give explore(model, inputs, patch_from=...)")
        if dynamics is not False:
            raise ValueError("explore(trace, dynamics=True): the dynamics need the model; "
                             "give explore(model, inputs, dynamics=True)")
        return Explorer(source, labels=decode, interval=interval, batch=batch, budget=budget)
    if text is not None:
        if encode is None:
            raise ValueError("explore(model, text=...) needs encode=: a function from the text to the model's inputs")
        inputs, tokens = encoded(encode, text)
    elif inputs is None:
        raise ValueError("explore(model, inputs): expected the inputs the model's forward takes "
                         "(or text= with encode=)")
    if hidden is not None:
        trace_kwargs["hidden"] = hidden
    model = live(source, "explore", **trace_kwargs)
    explorer = Explorer(model.trace(inputs, tokens=tokens), live=model, labels=decode, interval=interval,
                        batch=batch, budget=budget)
    if dynamics is not False:
        from .capture.spectra import dynamics as dynamics_of  # torch: only for a model
        calling = {key: trace_kwargs[key] for key in ("args", "kwargs") if key in trace_kwargs}

        def recompute(new_inputs):
            return dynamics_of(source, new_inputs, hidden=hidden, **calling)
        explorer.show_dynamics(recompute(inputs), recompute, fixed_points=fixed)
    if attribution:
        explorer.show_attribution(inputs)
    from .widgets.what_if import WhatIf  # a live model only

    explorer.what_if = WhatIf(explorer, inputs, patch_from)
    if text is not None:
        assert encode is not None  # checked above
        explorer.add_text_box(text, encode)
    return explorer


def fixed_points_of(dynamics) -> list:
    """The fixed points ``explore(dynamics=...)`` names: none for True/False, else one or a list of rw.FixedPoints."""
    if isinstance(dynamics, bool):
        return []
    from .dynamics_analysis import FixedPoints  # only when fixed points are given

    found = list(dynamics) if isinstance(dynamics, (list, tuple)) else [dynamics]
    if not found or not all(isinstance(f, FixedPoints) for f in found):
        raise TypeError("explore: dynamics: expected True, False, a rw.FixedPoints (from rw.fixed_points) or a list of "
                        f"them, got {type(dynamics).__name__}")
    return found


def gradient_flow(model, inputs, loss="last", hidden=None, lr=None, optimizer=None, *, args=(), kwargs=None,
                  steps=None, layers=None):
    """Trace ``model`` on ``inputs`` with ``loss`` and show where its gradient goes.

    ``hidden``, ``args``, ``kwargs``: what the forward needs besides its input, as for ``rw.trace``
    (the README's "Your model"). ``steps`` (a slice or range, ``slice(120, 180)``) and ``layers``
    (layer or module names) show only that part, as ``rw.trace(steps=, layers=)`` keeps it: the
    gradients are still the whole run's, and a window's steps are numbered as the model numbers them.

    ``model``: one model, or several to compare — a list, or a dict name -> model — each traced
    on the same ``inputs`` and ``loss`` and overlaid on the same axes.
    ``loss``: a callable on the model's output, or "last" (the sum of the last step's output),
    as for ``rw.trace``. ``lr`` (a number) or ``optimizer`` (its groups' learning rates; one model
    only) adds the update/weight chart. The models, their parameters and their ``.grad`` are left
    as found.
    """
    from .widgets.gradient_flow import GradientFlow  # imported only for this view

    if lr is not None and optimizer is not None:
        raise ValueError("gradient_flow: give lr= or optimizer=, not both")
    if isinstance(model, (list, tuple, dict)):
        models = dict(model) if isinstance(model, dict) else {f"model {i}": m for i, m in enumerate(model)}
        if optimizer is not None:
            raise ValueError("gradient_flow: with several models give lr= (a number), not optimizer=")
        lives = {str(name): live(m, "gradient_flow", args=args, kwargs=kwargs, steps=steps, layers=layers)
                 for name, m in models.items()}
        traces = {name: lv.trace(inputs, hidden=hidden, loss=loss) for name, lv in lives.items()}
        if lr is None:   # the weight norms serve the update/weight chart only, which needs a learning rate
            return GradientFlow(traces)
        norms = {name: lv.weight_norms() for name, lv in lives.items()}
        return GradientFlow(traces, weight_norms=norms, lr={name: lr for name in lives})
    model_ = live(model, "gradient_flow", args=args, kwargs=kwargs, steps=steps, layers=layers)
    tr = model_.trace(inputs, hidden=hidden, loss=loss)
    rates = model_.learning_rates(optimizer) if optimizer is not None else lr
    return GradientFlow(tr, weight_norms=model_.weight_norms() if rates is not None else None, lr=rates)


def compare(a, b, c=None, *, tokens=None, tokens_b=None, names: tuple = ("A", "B"), decode: Labels = None,
            batch: int = 0, layer: Optional[str] = None, quantity: str = "h", tau: Optional[float] = None,
            hidden=None, **trace_kwargs) -> Compare:
    """Two runs side by side: ``compare(trace_a, trace_b)``, ``compare(model, inputs_a, inputs_b)``
    (``tokens=`` label A's steps, ``tokens_b=`` B's) or ``compare(model_a, model_b, inputs)`` (two
    checkpoints of one architecture; ``tokens=`` label both).

    The view (``rw.Compare``) shows A, B and A - B of the chosen layer and quantity on one time
    axis, runs of different lengths aligned at their start; the first step where any unit differs
    by more than ``tau`` is marked. ``names``: what to call the runs; ``decode``: the output
    classes' names; ``batch``: the element compared; ``tau``: the threshold of a difference (None:
    ``rnnwidgets.comparison.TAU``, 0.001). Other keywords go to ``rw.trace`` for both
    runs (``hidden=``, ``args=``, ``kwargs=``, ``edits=``...). Given two Traces it imports no torch.
    """
    from .comparison import TAU  # this view only: the first rw.explore of a session does without it
    from .widgets.compare import Compare

    def view(a_trace: Trace, b_trace: Trace) -> Compare:
        return Compare(a_trace, b_trace, names=names, decode=decode, batch=batch, layer=layer, quantity=quantity,
                       tau=TAU if tau is None else tau)

    if isinstance(a, Trace) or isinstance(b, Trace):
        if c is not None or tokens is not None or tokens_b is not None or hidden is not None or trace_kwargs:
            raise ValueError("compare(trace_a, trace_b) takes no inputs or trace options: the traces hold their runs")
        return view(a, b)
    if c is None:
        raise ValueError("compare: expected (trace_a, trace_b), (model, inputs_a, inputs_b) or "
                         "(model_a, model_b, inputs)")
    if hidden is not None:
        trace_kwargs["hidden"] = hidden
    import torch  # a model was given: torch is there

    if isinstance(b, torch.nn.Module):   # two checkpoints on the same inputs
        if tokens_b is not None:
            raise ValueError("compare(model_a, model_b, inputs): both run on the same inputs; "
                             "give tokens=, not tokens_b=")
        run_a, run_b = live(a, "compare", **trace_kwargs), live(b, "compare", **trace_kwargs)
        return view(run_a.trace(c, tokens=tokens), run_b.trace(c, tokens=tokens))
    model = live(a, "compare", **trace_kwargs)
    return view(model.trace(b, tokens=tokens), model.trace(c, tokens=tokens_b))
