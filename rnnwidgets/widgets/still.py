"""Still PNGs, for renderers where no widget can run (GitHub, nbviewer): the Explorer's, the
colours and PNG writer every still uses, and ``Still``, the views' mixin that puts a still in
their display bundle. The other views' stills (charts, comparisons, dynamics, patterns) are in
``still_views.py``: the first Explorer of a session is shown without compiling them.

Made with numpy and zlib only (no plotting library: the package has none, and a view never
imports torch). A heatmap's colours are the front end's own (js/src/colormap.ts: the same
anchors, table size and rounding), so the still looks like the live view's first paint: units
as rows, time as columns. The Explorer's still is what it shows first: its heatmap.
"""
from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

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
    values = np.asarray(values)
    finite = np.isfinite(values)
    everywhere = bool(finite.all())
    span = vmax - vmin
    # floor(clip((v - vmin) / span, 0, 1) * (LUT_SIZE - 1) + 0.5), in place on one float64 copy
    if span > 0:
        f = np.array(values, dtype=np.float64)
        if not everywhere:
            f[~finite] = 0.0
        f -= vmin
        f /= span
    else:
        f = np.full(values.shape, 0.5)
    np.clip(f, 0.0, 1.0, out=f)
    f *= LUT_SIZE - 1
    f += 0.5
    rgb = _lut(scale)[np.floor(f, out=f).astype(np.intp)]
    if not everywhere:
        rgb[~finite] = NON_FINITE
    return rgb


def png(rgb: np.ndarray) -> bytes:
    """A PNG file (8-bit RGB, no filter) of an (height, width, 3) uint8 image.

    Opaque on purpose (RGB, no alpha channel, no tRNS chunk): a still is drawn on its own white
    page in the light palette, where its colours were chosen (the series colours keep 3:1 against
    white), and a dark page (GitHub's or nbviewer's dark theme, JupyterLab Dark before the widget
    runs) shows it as a white card that reads as on a light one. A transparent still would put the
    light theme's dark lines and white-centred heatmaps on the dark page instead."""
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
