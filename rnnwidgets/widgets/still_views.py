"""Still PNGs of the views other than the Explorer (``still.py`` has its, and the colours and PNG
writer these use): a chart's lines (or points) in the series' colours (colormap.ts
SERIES_COLOURS.light) inside its plot frame, with horizontal grid lines (at each decade on a log
axis) and no text, which the cell around it gives.

Each view's still is what it shows first: a gradient flow's lines of ‖∂L/∂h_t‖ through time; a
training monitor's loss (nothing before the first step); a comparison's A, B and A - B heatmaps;
a dynamics view's trajectory in its PCA plane with the fixed points; a co-cluster view's ordered
matrix; a Match panel's rows of matches (nothing before a search).
"""
from __future__ import annotations

import numpy as np

from ..ranges import colour_scale, max_abs
from .still import MIN_HEIGHT, MIN_WIDTH, colours, heatmap_png, heatmap_rgb, png

SERIES = ["#0072b2", "#d55e00", "#008a64", "#b8609a", "#a66a00", "#2f86c0", "#666666", "#7a5195"]
FRAME, GRID = (189, 189, 189), (230, 230, 230)
CHART_WIDTH, CHART_HEIGHT, MARGIN = 640, 220, 12
GAP = 6                       # white rows between stacked heatmaps


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
    if chart.kind != "lines" or not chart.points or not np.isfinite(_placed(chart.y, chart.y_scale == "log")[0]).any():
        return None   # (nothing the axis can place: NaN, or on a log axis 0 and below too)
    return lines_png(chart.x, chart.y, chart.series, y_log=chart.y_scale == "log",
                     rules=[r["value"] for r in chart.rules])


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
