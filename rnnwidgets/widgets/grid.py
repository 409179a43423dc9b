"""``HeatmapGrid``: a rows x columns grid of numbers drawn on a canvas (js/src/gridview.ts).

The values travel as one float32 buffer (row-major), never as JSON lists, and are painted one
pixel per cell through a colour table, so a grid of layers x 10,000 steps draws at once where a
bqplot ``HeatMap`` draws one SVG rect per cell. ``t`` is a cursor in column units (a step); it is
drawn on an overlay, so linking it to a slider with ``jslink`` moves it without a repaint.
``first_step`` (a window of steps' first, as ``chart.Chart``'s) is added to every column value the
grid writes (its axis, the hover readout); the columns and ``t`` stay counted from 0.
"""
from __future__ import annotations

import numpy as np
import traitlets

from ..ranges import SCALES, colour_limits
from .bundle import BundledView


class HeatmapGrid(BundledView):
    """A rows x columns heatmap with row labels, a column range, a legend and a cursor.

    ``grid.show(values, row_labels, column_start=0, column_step=1)`` sends a new grid; column c
    covers [column_start + c*column_step, column_start + (c+1)*column_step). NaN and ±Inf are drawn
    in their own colour.
    """

    _view = traitlets.Unicode("grid").tag(sync=True)
    buffer = traitlets.Bytes(b"").tag(sync=True)  # float32 little-endian, rows x columns row-major
    rows = traitlets.Int(0).tag(sync=True)
    columns = traitlets.Int(0).tag(sync=True)
    row_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    column_start = traitlets.Float(0.0).tag(sync=True)
    column_step = traitlets.Float(1.0).tag(sync=True)
    column_label = traitlets.Unicode("step").tag(sync=True)
    first_step = traitlets.Int(0).tag(sync=True)   # added to a column's value where it is written
    scale = traitlets.Enum(SCALES, default_value="sequential").tag(sync=True)
    vmin = traitlets.Float(0.0).tag(sync=True)  # a log scale's ends are magnitudes
    vmax = traitlets.Float(1.0).tag(sync=True)
    t = traitlets.Float(None, allow_none=True).tag(sync=True)  # the cursor, in column units; None: none
    title = traitlets.Unicode("").tag(sync=True)

    def __init__(self, values=None, row_labels=None, *, scale: str = "sequential", title: str = "",
                 column_label: str = "step", column_start: float = 0.0, column_step: float = 1.0, **kwargs):
        if scale not in SCALES:
            raise ValueError(f"HeatmapGrid: scale must be one of {', '.join(SCALES)}, got {scale!r}")
        super().__init__(scale=scale, title=title, column_label=column_label, **kwargs)
        if values is not None:
            self.show(values, row_labels, column_start=column_start, column_step=column_step)

    def show(self, values, row_labels=None, *, column_start: float = 0.0, column_step: float = 1.0,
             vmin: float | None = None, vmax: float | None = None):
        """Send ``values`` (rows x columns); the colour range fits the data unless given."""
        a = np.asarray(values, dtype=np.float32)
        if a.ndim != 2:
            raise ValueError(f"HeatmapGrid: expected a 2-d array (rows x columns), got shape {a.shape}")
        labels = [str(r) for r in range(a.shape[0])] if row_labels is None else [str(n) for n in row_labels]
        if len(labels) != a.shape[0]:
            raise ValueError(f"HeatmapGrid: expected {a.shape[0]} row labels (one per row), got {len(labels)}")
        if not column_step > 0:
            raise ValueError(f"HeatmapGrid: column_step must be positive, got {column_step}")
        lo, hi = colour_limits(a, self.scale)
        with self.hold_sync():
            self.buffer = np.ascontiguousarray(a, dtype="<f4").tobytes()
            self.rows, self.columns = a.shape
            self.row_labels = labels
            self.column_start, self.column_step = float(column_start), float(column_step)
            self.vmin = lo if vmin is None else float(vmin)
            self.vmax = hi if vmax is None else float(vmax)

    @property
    def values(self) -> np.ndarray:
        """The grid as sent: float32 (rows, columns)."""
        return np.frombuffer(self.buffer, dtype="<f4").reshape(self.rows, self.columns)
