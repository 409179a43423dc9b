"""The Explorer: a scrubbable per-timestep dashboard of a recurrent model, drawn in the browser.

``Explorer`` is an ipywidgets VBox: a batch-element selector (it re-sends that element's data)
above ``ExplorerView``, the anywidget view that holds one batch element's arrays in a float32
buffer and draws everything a scrub changes (js/src/explorer.ts), its Play/step slider/speed
controls included (js/src/transport.ts): playing and scrubbing run in the browser, and the kernel
hears the step once a scrub rests, so ``explorer.view.t`` follows within a second.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Optional

import ipywidgets as widgets
import traitlets

from ..tracedata import Trace
from .bundle import BUNDLE, BundledView  # noqa: F401  (BUNDLE: the views' code, re-exported)
from .explorer_state import ExplorerState
from .payload import FULL_BUDGET, WINDOW, Labels, step_message
from .still import StillImage

if TYPE_CHECKING:  # for annotations only: bqplot is imported only for a trace with gradients
    from .dynamics_view import DynamicsView
    from .gradient_flow import GradientFlow

TEXT_DEBOUNCE_S = 0.3
# Play speed bounds (js/src/transport.ts has the same): faster than one step per display frame
# (60 Hz) only queues redraws.
MIN_INTERVAL_MS, MAX_INTERVAL_MS = 16, 5000


def check_interval(ms):
    """``ms`` when it is a Play interval in milliseconds per step within [MIN_INTERVAL_MS,
    MAX_INTERVAL_MS]; else a ValueError that says so."""
    if not MIN_INTERVAL_MS <= ms <= MAX_INTERVAL_MS:
        raise ValueError(f"interval: expected milliseconds per step in [{MIN_INTERVAL_MS}, {MAX_INTERVAL_MS}], "
                         f"got {ms}")
    return ms


def interval_trait(proposal):
    """check_interval for a trait's validator (a TraitError)."""
    try:
        return check_interval(proposal["value"])
    except ValueError as error:
        raise traitlets.TraitError(str(error)) from None


class ExplorerView(BundledView):
    """The browser view: the payload of one batch element and the shared selection."""

    _view = traitlets.Unicode("explorer").tag(sync=True)
    index = traitlets.Dict().tag(sync=True)  # see payload.build_payload
    buffer = traitlets.Bytes(b"").tag(sync=True)  # float32 little-endian
    tokens = traitlets.List(traitlets.Unicode(), allow_none=True, default_value=None).tag(sync=True)
    t = traitlets.Int(0).tag(sync=True)
    unit = traitlets.Int(0).tag(sync=True)
    layer = traitlets.Unicode("").tag(sync=True)
    quantity = traitlets.Unicode("h").tag(sync=True)
    playing = traitlets.Bool(False).tag(sync=True)
    interval = traitlets.Int(150).tag(sync=True)  # Play speed, ms per step
    # A hypothesis for Explorer.matches (js/src/patterns.ts): steps [start, end) dragged over and a threshold;
    # highlight: units the kernel asks the view to compare (a co-cluster's).
    brush = traitlets.List(traitlets.Int(), default_value=[]).tag(sync=True)
    threshold = traitlets.Float(0.5).tag(sync=True)
    highlight = traitlets.List(traitlets.Int(), default_value=[]).tag(sync=True)
    # This view's id on the page: the Match panel and co-cluster view bring it into view by it.
    uid = traitlets.Unicode().tag(sync=True)
    # Widgets with a `t` the view sets at each step in the browser, so they follow a scrub live
    # (the gradient view's grid); the kernel hears the step when the scrub rests.
    # Why the prediction at step t: {"t", "batch", "values" (one per input step), "title"} from the
    # live model (Explorer.show_attribution), drawn under the token strip (js/src/attribution.ts).
    attribution = traitlets.Dict().tag(sync=True)
    # What if (widgets/what_if.py, js/src/what_if.ts): the browser's request {"op": "zero" | "value" |
    # "patch", "value", "source", "unit", "start", "end", "n"} and the kernel's answer {"live", "n", "text"}.
    what_if = traitlets.Dict().tag(sync=True)
    what_if_status = traitlets.Dict().tag(sync=True)
    followers = traitlets.List(traitlets.Instance(widgets.Widget), default_value=[]).tag(
        sync=True, **widgets.widget_serialization)

    # The Explorer's ExplorerState: the rules these traits follow, whether the browser or Python
    # sets them (None until the Explorer attaches it).
    _state: Optional[ExplorerState] = None

    @traitlets.default("uid")
    def _new_uid(self):
        return os.urandom(8).hex()  # secrets.token_hex(8), without importing hashlib

    @traitlets.validate("interval")
    def _check_interval(self, proposal):
        return interval_trait(proposal)

    def _rule(self, proposal, rule):
        if self._state is None:
            return proposal["value"]
        try:
            return rule(proposal["value"])
        except ValueError as error:
            raise traitlets.TraitError(str(error)) from None

    @traitlets.validate("t")
    def _check_t(self, proposal):  # a step past the layer's end (a stale scrub) shows its last one
        return self._rule(proposal, lambda t: self._state.clamp_t(t, self.layer))

    @traitlets.validate("unit")
    def _check_unit(self, proposal):
        return self._rule(proposal, lambda u: self._state.clamp_unit(self.layer, self.quantity, u))

    @traitlets.validate("layer")
    def _check_layer(self, proposal):
        return self._rule(proposal, lambda name: self._state.check_layer(name))

    @traitlets.validate("quantity")
    def _check_quantity(self, proposal):
        return self._rule(proposal, lambda name: self._state.check_quantity(self.layer, name))

    @traitlets.validate("brush")
    def _check_brush(self, proposal):
        return self._rule(proposal, lambda brush: self._state.check_brush(brush, self.layer))

    @traitlets.validate("threshold")
    def _check_threshold(self, proposal):
        return self._rule(proposal, lambda value: self._state.check_threshold(value))

    @traitlets.validate("highlight")
    def _check_highlight(self, proposal):  # units the shown quantity lacks are not highlighted
        return self._rule(proposal, lambda units: self._state.units_within(self.layer, self.quantity, units))



class Explorer(StillImage, widgets.VBox):
    """Scrub through what every layer of a recurrent model did at every step.

    Build it with ``rw.explore(model, inputs)`` or ``rw.explore(trace)``. ``interval`` is the
    Play speed in milliseconds per step; its display carries a still PNG for static renderers
    (``StillImage``); ``labels`` (a vocabulary list or an ``id -> str``
    function) names the output classes shown as the top predictions at each step. When one batch
    element holds more than ``budget`` float32 values, the browser gets a window of steps around
    t (fetched anew as t moves) and an overview of the selected quantity over the whole sequence.
    ``live``: the model the trace came from (``rnnwidgets.capture.live.LiveModel``, made by
    ``rw.explore(model, ...)``), which ``update`` and the text box re-run.

    What it shows lives in ``state`` (``ExplorerState``: the trace, windows, live model); this
    class lays it out: the batch-element selector, the view, a text box, the gradient view.
    """

    children: tuple  # the VBox trait (ipywidgets has no types): declared so the type checker reads it

    def __init__(self, trace: Trace, *, live=None, labels: Labels = None, interval: int = 150,
                 batch: int = 0, layer: Optional[str] = None, quantity: str = "h", budget: int = FULL_BUDGET):
        check_interval(interval)
        self.state = ExplorerState(trace, live=live, labels=labels, budget=budget)
        self.gradients: Optional[GradientFlow] = None  # under the heatmaps when the trace has gradients
        self.dynamics: Optional[DynamicsView] = None  # the dynamics panel (show_dynamics), following the step
        self._dynamics_of: Optional[Callable] = None   # inputs -> rw.Dynamics, for update
        self._gradients_link: Optional[widgets.Widget] = None  # the jslink (a Link widget)
        self.what_if: Any = None  # widgets/what_if.py's WhatIf, on a live model (rw.explore(model, inputs))
        self.view = ExplorerView(interval=interval)
        self._refilling = False
        self.batch = widgets.Dropdown(description="element", layout=widgets.Layout(width="220px"))
        self.batch.observe(self._on_batch, names="value")
        self.view.observe(self._on_selection, names=["layer", "quantity"])
        self.view.on_msg(self._on_view_message)
        super().__init__([self.batch, self.view])
        self.add_class("rw-explorer-box")  # the view marks it so notebook shortcuts leave its keys alone
        self.view._state = self.state
        self.set_trace(trace, batch=batch, layer=layer, quantity=quantity)

    # ---- what it shows (ExplorerState) ------------------------------------------------------
    @property
    def trace(self) -> Trace:
        return self.state.trace

    @property
    def live(self):
        return self.state.live

    @property
    def labels(self) -> Labels:
        return self.state.labels

    @property
    def dataset(self):
        """The DatasetTrace (rw.trace_dataset) that ``matches`` searches."""
        return self.state.dataset

    @dataset.setter
    def dataset(self, dataset) -> None:
        self.state.dataset = dataset

    @property
    def model(self):
        """The live model that ``update`` re-runs (None for an Explorer of a saved Trace)."""
        return None if self.live is None else self.live.model

    @model.setter
    def model(self, model) -> None:
        if self.live is None:
            raise ValueError("this Explorer was built from a Trace: build it with rw.explore(model, inputs) "
                             "to re-run a model")
        self.live.model = model

    def save_html(self, path, title: str = "rnnwidgets"):
        """One self-contained HTML file of this Explorer that opens and scrubs offline, with no kernel."""
        from .export import save_html

        return save_html(self, path, title)

    def select(self, *, unit: Optional[int] = None, t: Optional[int] = None, layer: Optional[str] = None,
               quantity: Optional[str] = None) -> "Explorer":
        """Point the view at a unit, step, layer and/or quantity (e.g. a unit found in Python)."""
        state = self.state
        if layer is not None:
            state.check_layer(layer)
        target = layer or self.view.layer
        if quantity is not None:
            state.check_quantity(target, quantity)
        shown = quantity or state.shown_quantity(target, self.view.quantity)
        if unit is not None:
            state.check_unit(target, shown, unit)
        if t is not None:
            state.check_t(t, target)   # on the layer's own time axis
        before = (self.view.layer, self.view.quantity)
        self._refilling = True  # a long sequence's overview follows layer and quantity: sent once, below
        try:
            with self.view.hold_sync():
                if layer is not None:
                    self.view.layer = layer
                    self._fit_time_axis()
                self.view.quantity = shown
                if unit is not None:
                    self.view.unit = unit
                if state.held is not None and (self.view.layer, self.view.quantity) != before:
                    self._show_element(self.batch.value)
        finally:
            self._refilling = False
        if t is not None:
            self._go_to(t)
        return self

    def matches(self, dataset=None, **options):
        """Where in a dataset trace (default ``self.dataset``) the units selected here (on over the
        brushed steps, off around them, at the view's threshold) are on together again: a pandas
        DataFrame, best first (``rnnwidgets.widgets.patterns.explorer_matches``)."""
        from .patterns import explorer_matches  # the dataset search: imported on its first use

        return explorer_matches(self, dataset if dataset is not None else self.dataset, **options)

    # ---- data ---------------------------------------------------------------------------
    def set_trace(self, trace: Trace, *, batch: Optional[int] = None, layer: Optional[str] = None,
                  quantity: Optional[str] = None) -> None:
        """Show a new trace, keeping the selection (layer, quantity, unit, step) where it still fits."""
        state = self.state
        state.set_trace(trace)
        assert trace.batch is not None  # a validated Trace sets it
        if self.what_if is not None:  # an open what-if comparison described the trace before
            self.what_if.new_trace()
        batch = self.batch.value if batch is None else batch
        batch = batch if batch is not None and 0 <= batch < trace.batch else 0
        self._refilling = True  # the selection and options move: send the payload once, below
        try:
            self.view.layer = state.layer_or_default(layer or self.view.layer)
            t = state.clamp_t(self.view.t, self.view.layer)  # the browser saves the step back here as a scrub rests
            self.view.quantity = state.shown_quantity(self.view.layer, quantity or self.view.quantity)
            self.view.unit = state.clamp_unit(self.view.layer, self.view.quantity, self.view.unit)
            self.view.highlight = state.units_within(self.view.layer, self.view.quantity, self.view.highlight)
            self.view.brush = state.fit_brush(self.view.brush, self.view.layer)
            self.batch.options = [(f"{b} (length {int(n)})", b) for b, n in enumerate(trace.lengths)]
            self.batch.value = batch
            self._go_to(t)
        finally:
            self._refilling = False
        self.batch.layout.display = None if trace.batch > 1 else "none"
        self._show_element(batch)
        self._show_gradients(trace)

    def _fit_time_axis(self) -> None:
        """The step and brush kept inside the newly selected layer's own steps (an encoder of 7
        steps after its decoder's step 9 shows its step 6)."""
        t = self.state.clamp_t(self.view.t, self.view.layer)
        if t != self.view.t:
            self._go_to(t)
        self.view.brush = self.state.fit_brush(self.view.brush, self.view.layer)

    def _go_to(self, t: int) -> None:
        """Move the view to step t. The browser saves its step here only once a scrub rests, so
        `view.t` may already equal t while the page shows another step: the message moves it anyway."""
        self.view.t = t
        self.view.send(step_message(t))

    def _show_gradients(self, trace: Trace) -> None:
        """A trace with gradients (``rw.explore(..., loss=...)``) gets the gradient-flow view under
        the heatmaps, its cursor linked in the browser to the Explorer's step."""
        old = self.gradients
        if old is not None:
            assert self._gradients_link is not None  # made with the gradient view
            self._gradients_link.unlink()
            self.view.followers = [f for f in self.view.followers if all(f is not c for c in old.cursor_views)]
            self.children = tuple(c for c in self.children if c is not old)
            self.gradients = None
        if not any("h" in lt.grads for lt in trace.layers.values()):
            return
        from .gradient_flow import GradientFlow  # imported only for a trace with gradients

        flow = self.gradients = GradientFlow(trace)
        flow.steps.layout.display = "none"  # the Explorer's own slider drives it
        self._gradients_link = flow.link_t(self.view)  # the kernel side: its charts' cursors
        self.view.followers = [*self.view.followers, *flow.cursor_views]  # live in the browser: every chart cursor
        self.children = (*self.children, flow)

    def _show_element(self, batch: int) -> None:
        index, buffer, tokens = self.state.payload(batch, self.view.t, self.view.layer, self.view.quantity)
        with self.view.hold_sync():
            self.view.index = index
            self.view.buffer = buffer
            self.view.tokens = tokens
        self._show_attribution()

    # ---- why this prediction ------------------------------------------------------------------
    def show_attribution(self, inputs) -> None:
        """Draw, under the token strip, how much each input step contributed to the prediction at
        the chosen step (``rw.attribution``, integrated gradients), recomputed by the live model
        as the step rests or the batch element changes. ``inputs``: those of the trace shown."""
        first = self.state.explained is None
        self.state.explain(inputs)
        if first:
            self.view.observe(lambda _change: self._show_attribution(), names="t")
        self._show_attribution()

    def _show_attribution(self) -> None:
        if self.state.explained is None or self.batch.value is None:
            return
        t = self.view.t
        try:
            self.view.attribution = self.state.attribution_at(self.batch.value, t)
        except Exception as error:  # noqa: BLE001 - shown to the user in the strip's title
            self.view.attribution = {"t": t, "batch": self.batch.value, "values": [],
                                     "title": f"no attribution for step {t}: {type(error).__name__}: {error}"}

    def _on_batch(self, change) -> None:
        if change["new"] is not None and not self._refilling:
            self._show_element(change["new"])

    def _on_selection(self, change) -> None:
        """A layer picked in the browser keeps the quantity where the layer has it (else its first,
        as the browser shows it) and a unit it has; a long sequence's overview is of one
        quantity: send the newly selected one's."""
        if self._refilling:
            return
        if change["name"] == "layer":
            self._refilling = True
            try:
                self.view.quantity = self.state.shown_quantity(self.view.layer, self.view.quantity)
                self.view.unit = self.state.clamp_unit(self.view.layer, self.view.quantity, self.view.unit)
                self._fit_time_axis()
            finally:
                self._refilling = False
        if self.state.held is not None:
            self._show_element(self.batch.value)

    def _on_view_message(self, _view, content, _buffers) -> None:
        """The browser asks for the window of steps around where the user has scrubbed to."""
        if content.get("type") != WINDOW or self.state.held is None:
            return
        message, data = self.state.window_reply(self.batch.value, content.get("start", 0))
        self.view.send(message, buffers=[data])

    def update(self, inputs, tokens=None, **trace_kwargs) -> Trace:
        """Re-trace the live model on new inputs and redraw, keeping the selection."""
        if self.live is None:
            raise ValueError("this Explorer was built from a Trace, not a model: there is nothing to re-run")
        new = self.live.trace(inputs, tokens=tokens, **trace_kwargs)
        if self.state.explained is not None:
            self.state.explain(inputs)
        if self.what_if is not None:
            self.what_if.inputs = inputs
        self.set_trace(new)
        if self.dynamics is not None and self._dynamics_of is not None:
            self.show_dynamics(self._dynamics_of(inputs), self._dynamics_of)
        return new

    def show_dynamics(self, dyn, recompute: Optional[Callable] = None, fixed_points=None) -> None:
        """The dynamics panel (``rw.DynamicsView`` of ``dyn``, from ``rw.dynamics``) under the views,
        following the Explorer's step live in the browser (its spectrum under the heatmap's
        columns), its layer where ``dyn`` has it, and its batch element. ``recompute(inputs)``:
        the Dynamics of new inputs, for ``update``. ``fixed_points``: rw.FixedPoints (one, or a
        list, one per layer) drawn on their layer; an update keeps those already shown.

        ``dyn`` is of the whole sequence the trace ran on; a trace of a window of steps
        (``rw.trace(steps=...)``) has the panel show that window, its step t the Explorer's step t."""
        from .dynamics_view import DynamicsView, layer_window

        old = self.dynamics
        if fixed_points is None and old is not None:
            fixed_points = list(old.fixed_points.values())
        window = tuple((self.trace.meta.get("selection") or {}).get("steps") or (0, None))
        for name in (n for n in dyn.layers if n in self.trace.layers):   # step for step with the trace, or refused
            (start, stop), held = layer_window(dyn.layers[name], window), self.trace.layers[name].steps
            if stop - start != held:
                raise ValueError(f"show_dynamics: expected rw.dynamics of the inputs the Explorer's trace ran on, "
                                 f"whose {name} steps {window[0]}–{window[0] + held - 1} it shows; the dynamics' "
                                 f"{name} has {dyn.layers[name].singular_values.shape[1]} steps")
        layer = self.view.layer if self.view.layer in dyn.layers else None
        panel = DynamicsView(dyn, fixed_points, layer=layer, batch=self.batch.value or 0, t=self.view.t,
                             steps=slice(*window))
        self.dynamics, self._dynamics_of = panel, recompute
        self.view.followers = [*(f for f in self.view.followers if f is not old), panel]
        self.children = (*(c for c in self.children if c is not old), panel)
        if old is None:   # the links: to whichever panel is current
            def follow(change):
                current = self.dynamics
                if change["name"] == "t":
                    current.t = change["new"]
                elif change["name"] == "layer" and change["new"] in current.dynamics.layers:
                    current.layer = change["new"]
                elif change["name"] == "value" and change["new"] is not None:
                    current.batch = change["new"]
            self.view.observe(follow, names=["t", "layer"])
            self.batch.observe(follow, names="value")

    # ---- text input ---------------------------------------------------------------------
    def add_text_box(self, text: str, encode: Callable) -> widgets.Text:
        """A Text box above the view that re-runs the model as the user types (debounced).

        ``encode(text)`` returns the model's inputs, or ``(inputs, tokens)``; without tokens each
        character of the text is one token when the lengths match.
        """
        box = widgets.Text(value=text, description="input", continuous_update=True,
                           layout=widgets.Layout(width="100%"))
        # shown only while it says something: an empty Label still takes a row (a 34 px gap under the box)
        problem = widgets.Label("", style={"text_color": "#b2182b"}, layout=widgets.Layout(display="none"))
        problem.observe(lambda change: setattr(problem.layout, "display", "" if change["new"] else "none"),
                        names="value")
        self.text, self.text_problem = box, problem
        pending: list = []

        def run():
            # A text the model cannot take (say, a character outside the vocabulary) is an
            # ordinary moment while typing: say why beside the box and keep the last good view.
            pending.clear()
            try:
                self.update(*encoded(encode, box.value))
            except Exception as error:  # noqa: BLE001 - shown to the user, not swallowed
                problem.value = f"not run: {type(error).__name__}: {error}"
            else:
                problem.value = ""

        def on_change(_change):
            loop = _running_loop()
            if loop is None:
                run()
                return
            for handle in pending:
                handle.cancel()
            pending[:] = [loop.call_later(TEXT_DEBOUNCE_S, run)]

        box.observe(on_change, names="value")
        self.children = (box, problem, *self.children)
        return box


def _running_loop():
    """The kernel's event loop when one is running (in Jupyter), else None (plain Python: no debounce)."""
    import asyncio  # the text box only (a Jupyter kernel has it already)

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def encoded(encode: Callable, text: str):
    """(inputs, tokens) for a text: what ``encode`` returns, tokens defaulting to its characters."""
    out = encode(text)
    if isinstance(out, tuple) and len(out) == 2:
        return out
    steps = getattr(out, "shape", (None,))
    lengths = [n for n in steps if n == len(text)]
    return out, ([list(text)] if lengths and len(text) > 0 else None)
