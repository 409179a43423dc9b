"""Still PNGs of the views, for renderers where no widget can run (GitHub, nbviewer).

Made with numpy and zlib only (no plotting library: the package has none, and a view never
imports torch). A heatmap's colours are the front end's own (js/src/colormap.ts: the same
anchors, table size and rounding), so the still looks like the live view's first paint: units
as rows, time as columns. A chart's still is its lines (or points) in the series' colours
(colormap.ts SERIES_COLOURS.light) inside its plot frame, with horizontal grid lines (at each
decade on a log axis); it has no text, which the cell around it gives.

Each view's still is what it shows first: the Explorer's heatmap; a gradient flow's lines of
‖∂L/∂h_t‖ through time; a training monitor's loss (nothing before the first step); a comparison's
A, B and A - B heatmaps; a dynamics view's trajectory in its PCA plane with the fixed points; a
co-cluster view's ordered matrix; a Match panel's rows of matches (nothing before a search).
"""
from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

from ..ranges import colour_scale, max_abs
from ..timeaxis import column_width, mean_columns

LUT_SIZE = 257  # odd, so a diverging scale's centre (0) has its own entry
# js/src/colormap.ts's maps on its default (white) page: a still has no theme to read. The diverging
# map is two straight lines in OKLab from the background to its ends (OKLCh: lightness, chroma, hue
# in degrees), negative end first; the sequential one viridis, interpolated between its anchors.
BACKGROUND = "#ffffff"
DIVERGING_ENDS = ((0.42, 0.13, 257), (0.42, 0.13, 25))
ANCHORS = {
    "sequential": ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89",
                   "#35b779", "#6ece58", "#b5de2b", "#fde725"],
}
SCALES = ("diverging", "sequential")
NON_FINITE = (255, 0, 255)
ABSENT = (238, 238, 238)      # steps past a run's end (compare.ts greys them)
SERIES = ["#0072b2", "#d55e00", "#008a64", "#b8609a", "#a66a00", "#2f86c0", "#666666", "#7a5195"]
FRAME, GRID = (189, 189, 189), (230, 230, 230)
CHART_WIDTH, CHART_HEIGHT, MARGIN = 640, 220, 12
GAP = 6                       # white rows between stacked heatmaps
MAX_COLUMNS = 1000  # longer sequences are averaged over blocks of steps to fit this width
MIN_WIDTH, MIN_HEIGHT = 400, 120  # small heatmaps are scaled up by whole pixels to at least this


_M1 = np.array([[0.4122214708, 0.5363325363, 0.0514459929], [0.2119034982, 0.6806995451, 0.1073969566],
                [0.0883024619, 0.2817188376, 0.6299787005]])
_M2 = np.array([[0.2104542553, 0.793617785, -0.0040720468], [1.9779984951, -2.428592205, 0.4505937099],
                [0.0259040371, 0.7827717662, -0.808675766]])
_M2_INV = np.array([[1.0, 0.3963377774, 0.2158037573], [1.0, -0.1055613458, -0.0638541728],
                    [1.0, -0.0894841775, -1.291485548]])
_M1_INV = np.array([[4.0767416621, -3.3077115913, 0.2309699292], [-1.2684380046, 2.6097574011, -0.3413193965],
                    [-0.0041960863, -0.7034186147, 1.707614701]])


def _hex(h: str) -> np.ndarray:
    return np.array([int(h[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)


def oklab(rgb) -> np.ndarray:
    """OKLab (L 0..1, a, b) of sRGB colours (..., 3) in 0..255, as colormap.ts's ``oklab``."""
    s = np.asarray(rgb, dtype=np.float64) / 255
    linear = np.where(s <= 0.04045, s / 12.92, ((s + 0.055) / 1.055) ** 2.4)
    return np.cbrt(linear @ _M1.T) @ _M2.T


def from_oklab(lab) -> np.ndarray:
    """uint8 sRGB of OKLab colours (..., 3), rounded and clamped as colormap.ts's ``fromOklab``."""
    linear = ((np.asarray(lab, dtype=np.float64) @ _M2_INV.T) ** 3) @ _M1_INV.T
    s = 255 * np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.abs(linear) ** (1 / 2.4) - 0.055)
    return np.clip(np.floor(s + 0.5), 0, 255).astype(np.uint8)  # Math.round


def _lut(scale: str) -> np.ndarray:
    """(LUT_SIZE, 3) uint8 colours, built as colormap.ts does."""
    if scale not in SCALES:
        raise ValueError(f"scale: expected one of {list(SCALES)}, got {scale!r}")
    if scale == "diverging":
        centre = oklab(_hex(BACKGROUND))
        ends = [np.array([L, C * np.cos(np.radians(h)), C * np.sin(np.radians(h))]) for L, C, h in DIVERGING_ENDS]
        half = (LUT_SIZE - 1) // 2
        i = np.arange(LUT_SIZE)
        f = (np.abs(i - half) / half)[:, None]
        end = np.where((i < half)[:, None], ends[0], ends[1])
        lut = from_oklab(centre + (end - centre) * f)
        lut[half] = _hex(BACKGROUND)
        return lut
    rgb = np.array([_hex(h) for h in ANCHORS[scale]])
    x = np.arange(LUT_SIZE) / (LUT_SIZE - 1) * (len(rgb) - 1)
    k = np.minimum(np.floor(x).astype(int), len(rgb) - 2)
    f = (x - k)[:, None]
    return np.floor(rgb[k] + (rgb[k + 1] - rgb[k]) * f + 0.5).astype(np.uint8)  # Math.round


def colours(values: np.ndarray, scale: str, vmin: float, vmax: float) -> np.ndarray:
    """RGB uint8 of each value (shape + (3,)), clamped to [vmin, vmax]; non-finite values magenta."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    span = vmax - vmin
    f = (np.where(finite, values, 0.0) - vmin) / span if span > 0 else np.full(values.shape, 0.5)
    index = np.floor(np.clip(f, 0.0, 1.0) * (LUT_SIZE - 1) + 0.5).astype(int)
    rgb = _lut(scale)[index]
    rgb[~finite] = NON_FINITE
    return rgb


def png(rgb: np.ndarray) -> bytes:
    """A PNG file (8-bit RGB, no filter) of an (height, width, 3) uint8 image."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    height, width, _ = rgb.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), rgb.reshape(height, width * 3)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    # zlib level 1: the still is made as the cell displays, before the view can paint; level 6
    # took 7x as long (360 ms for a 1,024 x 1,000 heatmap) for a file 7-20% smaller
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 1))
            + chunk(b"IEND", b""))


def heatmap_rgb(values: np.ndarray, scale: str, vmin: float, vmax: float, length: int | None = None,
                min_height: int = MIN_HEIGHT) -> np.ndarray:
    """The (height, width, 3) image of a (time, units) array: one row per unit, one column per step
    (or block of steps), scaled up by whole pixels to at least MIN_WIDTH x ``min_height``. A long
    float32 trace is averaged down to MAX_COLUMNS columns before anything is converted. Columns
    that start at or past ``length`` (a shorter run's end) are grey."""
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float32)
    if values.ndim != 2 or 0 in values.shape:
        raise ValueError(f"heatmap_png: expected a non-empty (time, units) array, got shape {values.shape}")
    image = colours(mean_columns(values, MAX_COLUMNS).T, scale, vmin, vmax)  # (units, columns, 3)
    if length is not None:
        width = column_width(values.shape[0], MAX_COLUMNS)
        image[:, np.arange(image.shape[1]) * width >= length] = ABSENT
    sy = max(1, -(-min_height // image.shape[0]))
    sx = max(1, -(-MIN_WIDTH // image.shape[1]))
    return np.repeat(np.repeat(image, sy, axis=0), sx, axis=1)


def heatmap_png(values: np.ndarray, scale: str, vmin: float, vmax: float) -> bytes:
    """A PNG of a (time, units) array (``heatmap_rgb``)."""
    return png(heatmap_rgb(values, scale, vmin, vmax))


def stacked_png(images: list) -> bytes:
    """Images of one width (heatmaps of as many steps) one above the other, GAP white rows apart."""
    width = max(image.shape[1] for image in images)
    gap = np.full((GAP, width, 3), 255, np.uint8)
    rows = []
    for image in images:
        if image.shape[1] < width:
            image = np.concatenate([image, np.full((image.shape[0], width - image.shape[1], 3), 255, np.uint8)], 1)
        rows += [image, gap]
    return png(np.concatenate(rows[:-1]))


def _rgb(colour: str) -> tuple:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def _placed(values: np.ndarray, log: bool) -> tuple[np.ndarray, float, float]:
    """Values on the axis (log10 on a log axis; what it cannot place NaN) and the axis' ends."""
    v = np.asarray(values, dtype=np.float64)
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), np.nan)
    v = np.where(np.isfinite(v), v, np.nan)
    if not np.isfinite(v).any():
        return v, 0.0, 1.0
    lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    return v, lo, hi


def _stroke(canvas: np.ndarray, xs: np.ndarray, ys: np.ndarray, colour, dash: bool, width: int = 2) -> None:
    """A polyline through the pixel positions (xs, ys), broken where a point is NaN; dashed: 6 on, 4 off."""
    ok = np.isfinite(xs) & np.isfinite(ys)
    seg = np.flatnonzero(ok[:-1] & ok[1:])
    px, py = [xs[ok]], [ys[ok]]                 # every point, so a lone point shows too
    if seg.size:
        dx, dy = xs[seg + 1] - xs[seg], ys[seg + 1] - ys[seg]
        n = np.ceil(np.maximum(np.abs(dx), np.abs(dy))).astype(np.int64) + 1
        which = np.repeat(np.arange(seg.size), n)
        start = np.cumsum(n) - n
        f = (np.arange(which.size) - start[which]) / np.maximum(n[which] - 1, 1)
        sx, sy = xs[seg][which] + dx[which] * f, ys[seg][which] + dy[which] * f
        if dash:
            step = np.hypot(dx, dy)[which] / np.maximum(n[which] - 1, 1)
            travelled = np.cumsum(step) - step
            keep = (travelled % 10) < 6
            sx, sy = sx[keep], sy[keep]
        px.append(sx)
        py.append(sy)
    x, y = np.rint(np.concatenate(px)).astype(np.int64), np.rint(np.concatenate(py)).astype(np.int64)
    for ox in range(width):
        for oy in range(width):
            inside = (x + ox >= 0) & (x + ox < canvas.shape[1]) & (y + oy >= 0) & (y + oy < canvas.shape[0])
            canvas[y[inside] + oy, x[inside] + ox] = colour


def _dots(canvas: np.ndarray, xs: np.ndarray, ys: np.ndarray, colour, filled: bool = True, r: int = 3) -> None:
    """A square dot (filled) or ring of side 2r+1 at each finite point."""
    ok = np.isfinite(xs) & np.isfinite(ys)
    height, width = canvas.shape[:2]
    for cx, cy in zip(np.rint(xs[ok]).astype(int), np.rint(ys[ok]).astype(int)):
        canvas[max(cy - r, 0):min(cy + r + 1, height), max(cx - r, 0):min(cx + r + 1, width)] = colour
        if not filled and r > 1:
            canvas[max(cy - r + 1, 0):min(cy + r, height), max(cx - r + 1, 0):min(cx + r, width)] = 255


def lines_png(x, ys, series: list[dict], y_log: bool = True, x_log: bool = False, rules=(),
              dots: list | None = None) -> bytes:
    """A chart of lines: ``x`` (n,) or (series, n), ``ys`` (series, n), ``series`` as Chart's
    ({colour, dash, points}); ``rules``: y values drawn as horizontal lines (red); ``dots``: extra
    points [(x, y, colour index, filled)] placed on the same axes."""
    ys = np.atleast_2d(np.asarray(ys, dtype=np.float64))
    xs = np.broadcast_to(np.asarray(x, dtype=np.float64), ys.shape)
    extra = np.asarray([(d[0], d[1]) for d in dots or []], dtype=np.float64).reshape(-1, 2)
    rule_values = np.asarray([float(r) for r in rules], dtype=np.float64)
    px, xlo, xhi = _placed(np.concatenate([xs.ravel(), extra[:, 0]]), x_log)
    py, ylo, yhi = _placed(np.concatenate([ys.ravel(), extra[:, 1], rule_values]), y_log)
    canvas = np.full((CHART_HEIGHT, CHART_WIDTH, 3), 255, np.uint8)
    left, top = MARGIN, MARGIN
    w, h = CHART_WIDTH - 2 * MARGIN - 1, CHART_HEIGHT - 2 * MARGIN - 1
    to_x = lambda v: left + (v - xlo) / (xhi - xlo) * w  # noqa: E731
    to_y = lambda v: top + h - (v - ylo) / (yhi - ylo) * h  # noqa: E731
    grid = np.arange(np.ceil(ylo), np.floor(yhi) + 1) if y_log else np.linspace(ylo, yhi, 5)[1:-1]
    for g in grid:
        canvas[int(round(to_y(g))), left:left + w + 1] = GRID
    canvas[top, left:left + w + 1] = canvas[top + h, left:left + w + 1] = FRAME
    canvas[top:top + h + 1, left] = canvas[top:top + h + 1, left + w] = FRAME
    n = ys.size
    line_x, line_y = to_x(px[:n].reshape(ys.shape)), to_y(py[:n].reshape(ys.shape))
    for r in to_y(py[n + len(extra):]):
        canvas[int(round(r)), left:left + w + 1] = (211, 47, 47)
    for i, spec in enumerate(series):
        colour = _rgb(SERIES[int(spec.get("colour", i)) % len(SERIES)])
        if spec.get("points"):
            _dots(canvas, line_x[i], line_y[i], colour, r=2)
        else:
            _stroke(canvas, line_x[i], line_y[i], colour, bool(spec.get("dash")))
    for (_, _, k, filled), ex, ey in zip(dots or [], to_x(px[n:n + len(extra)]), to_y(py[n:n + len(extra)])):
        _dots(canvas, np.array([ex]), np.array([ey]), _rgb(SERIES[k % len(SERIES)]), filled=filled, r=4)
    return png(canvas)


def chart_png(chart) -> bytes | None:
    """The still of a line Chart as sent (``Chart.x``/``Chart.y``), None while it has no data."""
    if chart.kind != "lines" or not chart.points or not np.isfinite(chart.y).any():
        return None
    return lines_png(chart.x, chart.y, chart.series, y_log=chart.y_scale == "log",
                     rules=[r["value"] for r in chart.rules])


def explorer_png(explorer) -> bytes | None:
    """The still of what an Explorer shows first: its layer and quantity, its batch element's steps;
    None when the layer holds no values (no steps or no units: a trace of an empty sequence)."""
    state, view = explorer.state, explorer.view
    name = state.shown_quantity(view.layer, view.quantity)  # a quantity the layer lacks: its first, as shown
    layer = state.layer_or_default(view.layer)
    quantity = explorer.trace.layers[layer].quantities()[name]
    if quantity.shape[1] == 0 or quantity.shape[2] == 0:
        return None
    batch = explorer.batch.value or 0
    steps = int(explorer.trace.layer_lengths(layer)[batch])   # on the layer's own time axis
    scale = state.scales[(layer, name)]  # the view's own colours, computed once per trace
    return heatmap_png(quantity[batch, :max(steps, 1)], scale["scale"], scale["vmin"], scale["vmax"])


def compare_png(view) -> bytes:
    """A comparison's shown layer and quantity: A, B (one colour scale over both) and A - B
    (diverging over its largest magnitude), stacked on one time axis; unmatched steps grey."""
    comparison, layer, quantity = view.comparison, view.layer, view.quantity
    a, b = comparison.runs(layer, quantity)
    steps = max(len(a), len(b), 1)
    scale = colour_scale(quantity, np.concatenate([a, b]))
    diff = comparison.difference(layer, quantity)[:min(len(a), len(b))]
    dmax = max_abs(diff) or 1.0
    images = []
    for run, (name, lo, hi) in ((a, (scale["scale"], scale["vmin"], scale["vmax"])),
                                (b, (scale["scale"], scale["vmin"], scale["vmax"])),
                                (diff, ("diverging", -dmax, dmax))):
        padded = np.zeros((steps, a.shape[1]), np.float32)
        padded[:len(run)] = run
        images.append(heatmap_rgb(padded, str(name), float(lo), float(hi), length=len(run),
                                  min_height=MIN_HEIGHT // 2))
    return stacked_png(images)


def dynamics_png(view) -> bytes:
    """A dynamics view's layer: the batch element's trajectory in the PCA plane (PC1 across, PC2
    up), its first step as a dot; the fixed points stable filled, unstable hollow."""
    index, data = view.index, np.frombuffer(view.buffer, dtype="<f4")
    offset, size = index["arrays"]["trajectory"]
    trajectory = data[offset:offset + size].reshape(-1, 3)[: max(index["length"], 1)]
    dots = [(trajectory[0, 0], trajectory[0, 1], 0, True)] if len(trajectory) else []
    if index["points"]:
        (p, n), (s, _) = index["arrays"]["points"], index["arrays"]["stable"]
        points = data[p:p + n].reshape(-1, 3)
        for point, stable in zip(points, data[s:s + len(points)]):
            dots.append((point[0], point[1], 2 if stable else 1, bool(stable)))
    return lines_png(trajectory[:, 0], trajectory[:, 1][None], [{"colour": 0}], y_log=False, dots=dots)


def matches_png(view) -> bytes | None:
    """A Match panel's rows: each match's snippet (its units as rows) aligned on the match's first
    step, one under the other; None before a search (or when it found nothing)."""
    if not view.rows or not view.units:
        return None
    data, units = np.frombuffer(view.buffer, dtype="<f4"), len(view.units)
    lead = max(r["before"] for r in view.rows)
    width = max(lead - r["before"] + r["steps"] for r in view.rows)
    images = []
    for r in view.rows:
        block, present = np.zeros((width, units), np.float32), np.zeros(width, bool)
        first = lead - r["before"]
        block[first:first + r["steps"]] = data[r["offset"]:r["offset"] + r["steps"] * units].reshape(-1, units)
        present[first:first + r["steps"]] = True
        image = colours(block.T, view.scale, view.vmin, view.vmax)
        image[:, ~present] = 255                                 # before or after its snippet: page
        sy, sx = max(1, -(-24 // units)), max(1, -(-MIN_WIDTH // width))
        images.append(np.repeat(np.repeat(image, sy, axis=0), sx, axis=1))
    return stacked_png(images)


def coclusters_png(view) -> bytes:
    """A co-cluster view's units x tokens matrix in its display order (diverging over ±vmax)."""
    values = np.frombuffer(view.buffer, dtype="<f4").reshape(len(view.tokens), len(view.units))
    return heatmap_png(values, "diverging", -view.vmax, view.vmax)


class Still:
    """Mixin for a view: its display bundle carries an ``image/png`` still (``_still_png``; None:
    none yet) beside the widget view, which a static renderer shows where the widget cannot run."""

    def _still_png(self) -> bytes | None:
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        image = self._still_png()
        if image is not None:  # an anywidget view's bundle is (data, metadata), an ipywidgets box's its data
            data = bundle[0] if isinstance(bundle, tuple) else bundle
            data["image/png"] = base64.b64encode(image).decode("ascii")
        return bundle


class StillImage(Still):
    """The Explorer's: its heatmap (``explorer_png``)."""

    def _still_png(self) -> bytes | None:
        return explorer_png(self)
