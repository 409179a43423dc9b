"""``rw.compare``'s view: two runs of one batch element, A, B and A - B, drawn in the browser.

For the chosen layer and quantity, three heatmaps on one time axis (js/src/compare.ts), the
first divergence marked (the first step where any unit differs by more than ``tau``), a
"differing units only" filter, both runs' predictions at t side by side, and the steps past the
shorter run shown as unmatched. The step, unit, layer, quantity, tau and filter all change in
the browser from data already there, so it works in a saved notebook and an exported file; the
kernel hears the step once a scrub rests. The analysis is ``rnnwidgets.comparison`` (numpy).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import traitlets

from ..comparison import TAU, Comparison, check_tau
from ..tracedata import Trace
from .bundle import BundledView
from .explorer import interval_trait
from .payload import FULL_BUDGET, Labels, compare_floats, compare_payload
from .still import Still
from .still_views import compare_png


class Compare(Still, BundledView):
    """``Compare(a, b)``: two Traces of the same model shape (``rw.compare`` builds it from models
    and inputs too). ``names``: what to call the runs ("A", "B" unless given); ``decode``: a
    vocabulary list or ``id -> str`` naming the output classes; ``batch``: the element compared.
    ``heading``: a line shown above it (text); ``closable``: a × beside it that sets ``closed``.

    Traits the browser and Python share: ``t``, ``unit``, ``layer``, ``quantity``, ``tau``,
    ``differing_only``, ``playing``, ``interval``. Every layer travels to the browser when all of
    them hold at most ``budget`` float32 values (A, B and A - B of each quantity); above it only
    the shown layer does, and picking another asks the kernel for it (a saved page keeps the
    layer shown when it was saved).
    """

    _view = traitlets.Unicode("compare").tag(sync=True)
    index = traitlets.Dict().tag(sync=True)  # see payload.compare_payload
    buffer = traitlets.Bytes(b"").tag(sync=True)  # float32 little-endian
    t = traitlets.Int(0).tag(sync=True)
    unit = traitlets.Int(0).tag(sync=True)
    layer = traitlets.Unicode("").tag(sync=True)
    quantity = traitlets.Unicode("h").tag(sync=True)
    tau = traitlets.Float(TAU).tag(sync=True)
    differing_only = traitlets.Bool(False).tag(sync=True)
    playing = traitlets.Bool(False).tag(sync=True)
    interval = traitlets.Int(150).tag(sync=True)  # Play speed, ms per step
    # A line above it saying what the runs are (what edit made B, say), and a × that closes it:
    # the browser hides the view at once and sets ``closed`` (what_if.py then takes it away).
    heading = traitlets.Unicode("").tag(sync=True)
    closable = traitlets.Bool(False).tag(sync=True)
    closed = traitlets.Bool(False).tag(sync=True)

    def __init__(self, a: Trace, b: Trace, *, names: tuple = ("A", "B"), decode: Labels = None, batch: int = 0,
                 layer: Optional[str] = None, quantity: str = "h", tau: float = TAU, t: int = 0,
                 differing_only: bool = False, interval: int = 150, budget: int = FULL_BUDGET,
                 heading: str = "", closable: bool = False):
        self.comparison = Comparison(a, b, batch=batch, names=names)
        self.labels = decode
        layer = self.comparison.check_layer(layer) if layer is not None else self.comparison.default_layer()
        quantities = self.comparison.quantities(layer)
        quantity = quantity if quantity in quantities else quantities[0]
        # every layer when they fit the budget, else the shown one (sent anew as the layer changes)
        self.whole = sum(compare_floats(self.comparison, name) for name in self.comparison.layers) <= budget
        index, buffer = self._payload(layer)
        super().__init__(index=index, buffer=buffer, layer=layer, quantity=quantity, tau=check_tau(tau),
                         differing_only=differing_only, interval=interval, heading=heading, closable=closable)
        self.t = t

    def _still_png(self):
        return compare_png(self)

    def _payload(self, layer: str) -> tuple[dict, bytes]:
        return compare_payload(self.comparison, self.labels, None if self.whole else [layer])

    # ---- the rules a selection follows, whether the browser or Python sets it -----------------
    def _steps(self, layer: str) -> int:
        return max(self.comparison.lengths(layer))

    @traitlets.validate("layer")
    def _check_layer(self, proposal):
        return self._checked(lambda: self.comparison.check_layer(proposal["value"]))

    @traitlets.validate("quantity")
    def _check_quantity(self, proposal):
        return self._checked(lambda: self.comparison.check_quantity(self.layer, proposal["value"]))

    @traitlets.validate("t")
    def _check_t(self, proposal):  # a step past the layer's end (a stale scrub) shows its last one
        return max(0, min(int(proposal["value"]), self._steps(self.layer) - 1))

    @traitlets.validate("unit")
    def _check_unit(self, proposal):
        units = self.comparison.runs(self.layer, self.quantity)[0].shape[1]
        return max(0, min(int(proposal["value"]), units - 1))

    @traitlets.validate("tau")
    def _check_tau(self, proposal):
        return self._checked(lambda: check_tau(proposal["value"]))

    @traitlets.validate("interval")
    def _check_interval(self, proposal):
        return interval_trait(proposal)

    @staticmethod
    def _checked(rule):
        try:
            return rule()
        except ValueError as error:
            raise traitlets.TraitError(str(error)) from None

    @traitlets.observe("layer")
    def _on_layer(self, change):  # the quantity and unit kept where the new layer has them
        quantities = self.comparison.quantities(change["new"])
        with self.hold_sync():
            if not self.whole:
                self.index, self.buffer = self._payload(change["new"])
            if self.quantity not in quantities:
                self.quantity = quantities[0]
            self.unit = self.unit
            self.t = self.t

    # ---- what it shows, in Python ------------------------------------------------------------
    @property
    def a(self) -> Trace:
        return self.comparison.a

    @property
    def b(self) -> Trace:
        return self.comparison.b

    def difference(self) -> np.ndarray:
        """A - B of the shown layer and quantity: (longer run's steps, units), NaN where unmatched."""
        return self.comparison.difference(self.layer, self.quantity)

    def first_divergence(self) -> Optional[int]:
        """The step the marker is on: the first where any unit differs by more than ``tau`` (None: none)."""
        return self.comparison.first_divergence(self.layer, self.quantity, self.tau)

    def differing_units(self) -> list:
        """The units the "differing units only" filter keeps (those differing by more than ``tau``)."""
        return self.comparison.differing_units(self.layer, self.quantity, self.tau).tolist()

    def save_html(self, path, title: str = "rnnwidgets comparison"):
        """One self-contained HTML file of this comparison that opens and scrubs offline."""
        from .export import save_html

        return save_html(self, path, title)
