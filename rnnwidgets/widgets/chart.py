"""Charts drawn by our front end (js/src/chart.ts) and a step control for them (js/src/steps.ts).

``Chart``: a few series as lines through steps on a log or linear y axis, or as horizontal bars
per named category on a log axis. The values travel as one float32 buffer; the front end picks
ticks that never crowd (decades only on a log axis), puts the legend outside the data, shows
category names whole and takes its colours from JupyterLab's theme. Its ``t`` is a cursor that
a ``StepControl`` (or an Explorer, through its ``followers``) moves in the page.

``StepControl``: Play, a step slider and the speed, as the Explorer's; at every step it sets its
``followers``' ``t`` in the page (no kernel round trip), and saves its own ``t`` to the kernel
once the scrub rests.

A trace of a window of steps (``rw.trace(steps=...)``) is counted from 0 in ``x`` and ``t``, as the
Explorer's ``t``, so a follower's cursor is where the Explorer's step is; ``first_step`` (the
payload index's ``first_step``: ``payload.first_step(trace)``) is the model's number of step 0,
added to every step number they write (x ticks, the step readout), as the Explorer writes them.
"""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import traitlets

from .bundle import BundledView

KINDS = ("lines", "bars")
Y_SCALES = ("log", "linear")


def drawable(values, log: bool) -> np.ndarray:
    """float32 copy with what the axis cannot place as NaN (on a log axis: zero and negatives)."""
    a = np.asarray(values, dtype=np.float64).astype(np.float32)   # cast first: 1e-50 becomes 0 here
    if not log:
        return a
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(a) & (a > 0), a, np.float32(np.nan))


def undrawn_reason(values, sent, log: bool) -> str:
    """Why lines with points draw nothing, in words; "" when some value is drawn (or none is sent)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or np.isfinite(sent).any():
        return ""
    if not np.isfinite(values).any():
        return "nothing to draw: every value is NaN or infinite"
    return "nothing to draw on a log axis: every value is 0 (or below)" if log else ""


class Chart(BundledView):
    """A line or bar chart; ``show_lines`` / ``show_bars`` send its data in one message."""

    _view = traitlets.Unicode("chart").tag(sync=True)
    kind = traitlets.Enum(KINDS, default_value="lines").tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    x_label = traitlets.Unicode("").tag(sync=True)
    y_label = traitlets.Unicode("").tag(sync=True)
    y_scale = traitlets.Enum(Y_SCALES, default_value="log").tag(sync=True)
    x_integer = traitlets.Bool(True).tag(sync=True)      # ticks at whole steps only
    series = traitlets.List(traitlets.Dict()).tag(sync=True)  # [{name, colour, dash, points}]
    categories = traitlets.List(traitlets.Unicode()).tag(sync=True)
    flags = traitlets.Dict().tag(sync=True)               # category -> text drawn instead of its bars
    rules = traitlets.List(traitlets.Dict()).tag(sync=True)  # [{name, value}]: horizontal lines
    buffer = traitlets.Bytes(b"").tag(sync=True)          # float32 little-endian; chart.ts says the layout
    points = traitlets.Int(0).tag(sync=True)
    t = traitlets.Float(None, allow_none=True).tag(sync=True)   # the cursor, an x value; None: none
    first_step = traitlets.Int(0).tag(sync=True)   # added to x where the ticks say it (a window of steps' first)
    empty = traitlets.Unicode("no data yet").tag(sync=True)
    # why lines that have points draw nothing ("" when some value is drawn), in the words the
    # page would find too (js/src/chart.ts nothingDrawable)
    undrawn = traitlets.Unicode("").tag(sync=True)

    def show_lines(self, x, ys, series: list[dict]):
        """Lines: ``x`` (n,), ``ys`` (len(series), n). The values travel as they are (float32): a
        log axis leaves a gap where it cannot place one (0, negative), and its legend says the
        value at the cursor, "= 0" included (js/src/chart.ts)."""
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        ys = np.asarray(ys, dtype=np.float64).reshape(len(series), x.size)
        with self.hold_sync():
            self.undrawn = undrawn_reason(ys, drawable(ys, self.y_scale == "log"), self.y_scale == "log")
            ys = ys.astype(np.float32)
            self.kind = "lines"
            self.series = [dict(s) for s in series]
            self.points = int(x.size)
            self.buffer = np.concatenate([x, ys.reshape(-1)]).astype("<f4").tobytes()

    def show_bars(self, categories, values, series: list[dict], flags: dict | None = None):
        """Bars: ``values`` (len(series), len(categories)) on a log axis; ``flags``: category ->
        the text shown instead of its bars (e.g. "zero gradient")."""
        categories = [str(c) for c in categories]
        values = drawable(np.asarray(values, dtype=np.float64).reshape(len(series), len(categories)), log=True)
        with self.hold_sync():
            self.kind = "bars"
            self.series = [dict(s) for s in series]
            self.categories = categories
            self.flags = dict(flags or {})
            self.points = len(categories)
            self.buffer = values.astype("<f4").tobytes()

    @property
    def labels(self) -> list[str]:
        return [s["name"] for s in self.series]

    @property
    def x(self) -> np.ndarray:
        """The lines' x values as sent (float32)."""
        if self.kind != "lines":
            return np.zeros(0, np.float32)
        return np.frombuffer(self.buffer, dtype="<f4")[: self.points]

    @property
    def y(self) -> np.ndarray:
        """The values as sent: (series, points) float32 (bars: NaN where nothing is drawn)."""
        a = np.frombuffer(self.buffer, dtype="<f4")
        if self.kind == "lines":
            a = a[self.points:]
        return a.reshape(len(self.series), self.points) if self.series else np.zeros((0, self.points), np.float32)


class StepControl(BundledView):
    """Play, a step slider and the speed over ``steps`` steps; ``followers`` follow in the page."""

    _view = traitlets.Unicode("steps").tag(sync=True)
    t = traitlets.Int(0).tag(sync=True)
    steps = traitlets.Int(1).tag(sync=True)
    first_step = traitlets.Int(0).tag(sync=True)   # the model's number of step 0: the readout says t + it
    playing = traitlets.Bool(False).tag(sync=True)
    interval = traitlets.Int(150).tag(sync=True)    # ms per step while playing (16..5000, transport.ts)
    followers = traitlets.List(traitlets.Instance(widgets.Widget), default_value=[]).tag(
        sync=True, **widgets.widget_serialization)

    @traitlets.validate("t")
    def _valid_t(self, proposal):
        return int(min(max(proposal["value"], 0), max(self.steps - 1, 0)))
