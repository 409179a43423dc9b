"""The still PNG of a view (rnnwidgets/widgets/still.py): its exact size, the colour table, the
pixels of a small known trace, non-finite values, and which element and quantity an Explorer's
still shows. (tests/test_widgets_export.py checks the anchors against colormap.ts and long sequences.)"""
import base64
import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from rnnwidgets.tracedata import LayerTrace, Trace
from rnnwidgets.widgets import still
from rnnwidgets.widgets.explorer import Explorer

REPO = Path(__file__).resolve().parents[1]

MAGENTA = (255, 0, 255)


def read_png(data: bytes) -> np.ndarray:
    """(height, width, 3) uint8: exactly the chunks IHDR, IDAT, IEND, each CRC checked."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        assert data[pos + 8 + length:pos + 12 + length] == struct.pack(">I", zlib.crc32(kind + body)), kind
        chunks.append((kind, body))
        pos += 12 + length
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"] and chunks[2][1] == b""
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, compression, filtering, interlace) == (8, 2, 0, 0, 0)
    rows = np.frombuffer(zlib.decompress(chunks[1][1]), np.uint8).reshape(height, 1 + 3 * width)
    assert not rows[:, 0].any()
    return rows[:, 1:].reshape(height, width, 3)


@pytest.mark.parametrize("steps, units, size", [
    (3, 2, (120, 402)),          # scaled up by whole pixels: 60 rows a unit, 134 columns a step
    (1, 1, (120, 400)),
    (7, 50, (150, 406)),         # 3 rows a unit, 58 columns a step
    (500, 200, (200, 500)),      # big enough: one pixel a value
    (1000, 1, (120, 1000)),      # as wide as allowed: not averaged
    (1001, 1, (120, 501)),       # wider: blocks of 2 steps, 501 columns
    (2000, 3, (120, 1000)),
])
def test_the_still_has_the_exact_size_its_trace_asks_for(steps, units, size):
    image = read_png(still.heatmap_png(np.zeros((steps, units), np.float32), "diverging", -1.0, 1.0))
    assert image.shape == (*size, 3)


def test_the_colour_table_is_the_front_ends_and_rounds_as_it_does():
    lut = still._lut("diverging")
    assert lut.shape == (still.LUT_SIZE, 3) == (257, 3) and lut.dtype == np.uint8
    fixture = json.loads((REPO / "js" / "tests" / "fixtures" / "diverging-light.json").read_text())
    assert lut.tolist() == fixture["lut"]                        # colormap.test.ts checks the same table
    assert tuple(lut[128]) == (255, 255, 255)                   # the centre (0) is the page's white, alone
    assert tuple(lut[0]) == (20, 75, 146) and tuple(lut[-1]) == (134, 39, 38)  # the OKLCh ends, rounded
    seq = still._lut("sequential")
    assert tuple(seq[0]) == (0x44, 0x01, 0x54) and tuple(seq[-1]) == (0xFD, 0xE7, 0x25)
    assert tuple(seq[1]) == (68, 2, 85)                         # 1/256 of the way, interpolated in sRGB
    with pytest.raises(ValueError, match=r"scale: expected one of \['diverging', 'sequential'\], got 'log'"):
        still._lut("log")


def test_the_oklab_conversion_matches_published_values_and_round_trips():
    # Ottosson's reference values (bottosson.github.io/posts/oklab): sRGB white, red, green, blue
    expected = {(255, 255, 255): (1.0, 0.0, 0.0), (255, 0, 0): (0.62796, 0.22486, 0.12585),
                (0, 255, 0): (0.86644, -0.23389, 0.1795), (0, 0, 255): (0.45201, -0.03246, -0.31153)}
    for rgb, lab in expected.items():
        assert np.allclose(still.oklab(rgb), lab, atol=2e-4)
        assert tuple(still.from_oklab(still.oklab(rgb))) == rgb
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, size=(500, 3))
    assert (still.from_oklab(still.oklab(colours)) == colours).all()


def test_the_diverging_map_is_perceptually_uniform():
    lab = still.oklab(still._lut("diverging")[::8])            # 33 samples, the centre at 16
    lightness, chroma = lab[:, 0], np.hypot(lab[:, 1], lab[:, 2])
    negative, positive = lightness[16::-1], lightness[16:]      # each half from the centre outwards
    for half in (negative, positive):
        assert (np.diff(half) < 0).all()                        # darker with |value| on a white page
        assert np.allclose(half, np.linspace(half[0], half[-1], 17), atol=0.004)  # linear in L
    assert np.allclose(negative, positive, atol=0.004) and np.allclose(chroma[16::-1], chroma[16:], atol=0.004)
    step = np.linalg.norm(np.diff(lab, axis=0), axis=1)         # OKLab's ΔE between neighbours
    assert np.abs(step / step.mean() - 1).max() < 0.08          # 8-bit rounding: about ±0.002 in L
    assert lab[0, 2] < -0.1 and lab[-1, 1] > 0.1                # blue below 0, red above


def test_colours_clamp_to_the_limits_and_mark_non_finite_values():
    lut = still._lut("sequential")
    values = np.array([[-5.0, 0.0, 0.5, 1.0, 2.0, 9.0], [np.nan, np.inf, -np.inf, 1.5, 1.0, 1.0]])
    rgb = still.colours(values, "sequential", 1.0, 2.0)
    assert rgb.shape == (2, 6, 3) and rgb.dtype == np.uint8
    assert [tuple(c) for c in rgb[0]] == [tuple(lut[0])] * 4 + [tuple(lut[-1])] * 2
    assert [tuple(c) for c in rgb[1, :3]] == [still.NON_FINITE] * 3 == [MAGENTA] * 3
    assert tuple(rgb[1, 3]) == tuple(lut[128])                 # halfway: floor(0.5 * 256 + 0.5)
    flat = still.colours(np.array([-1.0, 3.0, np.nan]), "diverging", 3.0, 3.0)   # no span: the middle
    assert [tuple(c) for c in flat] == [(255, 255, 255), (255, 255, 255), MAGENTA]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_colours_are_the_table_entry_of_each_value_by_the_front_ends_rounding(dtype):
    rng = np.random.default_rng(6)
    values = (rng.standard_normal((7, 300)) * 3).astype(dtype)
    if dtype != np.int64:
        values[0, :3] = [np.nan, np.inf, -np.inf]
    for scale, vmin, vmax in (("diverging", -2.5, 2.5), ("sequential", np.float32(0.1), np.float32(4.0))):
        reference = np.asarray(values, np.float64)
        finite = np.isfinite(reference)
        index = np.floor(np.clip((np.where(finite, reference, 0.0) - vmin) / (vmax - vmin), 0, 1) * 256 + 0.5)
        expected = still._lut(scale)[index.astype(int)]
        expected[~finite] = MAGENTA
        np.testing.assert_array_equal(still.colours(values, scale, vmin, vmax), expected)


def test_the_pixels_of_a_small_trace_are_its_cells_in_their_colours():
    values = np.array([[0.0, 1.0], [0.25, np.nan], [0.75, 1.0]], np.float32)   # (time 3, units 2)
    image = read_png(still.heatmap_png(values, "sequential", 0.0, 1.0))
    lut = still._lut("sequential")
    assert image.shape == (120, 402, 3)
    cells = image.reshape(2, 60, 3, 134, 3)                    # unit, row in cell, step, column in cell
    assert (cells == cells[:, :1, :, :1]).all()                # every cell one flat colour
    got = [[tuple(c) for c in row] for row in cells[:, 0, :, 0]]
    assert got == [[tuple(lut[0]), tuple(lut[64]), tuple(lut[192])],       # unit 0 along time
                   [tuple(lut[256]), MAGENTA, tuple(lut[256])]]           # unit 1: NaN at step 1


def test_integer_values_and_an_all_non_finite_trace():
    ints = read_png(still.heatmap_png(np.array([[0, 2], [1, 2]]), "sequential", 0, 2))
    floats = read_png(still.heatmap_png(np.array([[0.0, 2.0], [1.0, 2.0]]), "sequential", 0, 2))
    assert np.array_equal(ints, floats)
    blank = read_png(still.heatmap_png(np.full((4, 3), np.nan), "diverging", -1.0, 1.0))
    assert (blank == MAGENTA).all()


def test_a_still_refuses_an_empty_trace_in_one_sentence():
    for shape in [(0, 3), (4, 0)]:
        with pytest.raises(ValueError, match=r"expected a non-empty \(time, units\) array, got shape " + re.escape(str(shape))):
            still.heatmap_png(np.zeros(shape), "diverging", -1.0, 1.0)
    with pytest.raises(ValueError, match=r"got shape \(2, 3, 4\)"):
        still.heatmap_png(np.zeros((2, 3, 4)), "diverging", -1.0, 1.0)


def gru_trace():
    """Two elements of lengths 4 and 2; an "update" gate (sigmoid: coloured 0..1) and h."""
    update = np.array([[0.0, 0.25, 0.5, 1.0], [1.0, 0.0, 0.5, 0.5]], np.float32)[:, :, None]  # (2, 4, 1)
    update = np.concatenate([update, 1 - update], axis=2)                                     # 2 units
    h = np.linspace(-1, 1, 2 * 4 * 2, dtype=np.float32).reshape(2, 4, 2)
    return Trace(layers={"gru.l0": LayerTrace("gru.l0", "gru", states={"h": h}, gates={"update": update})},
                 lengths=[4, 2])


def test_an_explorers_still_shows_its_element_its_steps_and_its_quantity():
    lut = still._lut("sequential")
    explorer = Explorer(gru_trace(), batch=1, quantity="update")
    image = read_png(still.explorer_png(explorer))
    assert image.shape == (120, 400, 3)                        # element 1: its 2 valid steps only
    cells = image.reshape(2, 60, 2, 200, 3)[:, 0, :, 0]
    assert [[tuple(c) for c in row] for row in cells] == [[tuple(lut[256]), tuple(lut[0])],
                                                          [tuple(lut[0]), tuple(lut[256])]]
    explorer.batch.value = 0
    first = read_png(still.explorer_png(explorer))
    assert first.shape == (120, 400, 3)                        # 4 steps of 100 columns
    assert [tuple(first[0, 100 * t]) for t in range(4)] == [tuple(lut[i]) for i in (0, 64, 128, 256)]


def test_an_explorers_display_carries_the_still_as_base64_png():
    explorer = Explorer(gru_trace(), quantity="update")
    bundle = explorer._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]) == still.explorer_png(explorer)
    assert {"text/plain", "application/vnd.jupyter.widget-view+json"} <= set(bundle)


def test_an_explorer_of_a_trace_without_values_displays_without_a_still():
    """A trace of no steps (an empty sequence, a loaded file) still displays: no still, no error."""
    empty = Trace(layers={"gru.l0": LayerTrace("gru.l0", "gru", states={"h": np.zeros((1, 0, 2))})}, lengths=[0])
    explorer = Explorer(empty)
    assert still.explorer_png(explorer) is None
    bundle = explorer._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "image/png" not in data and "application/vnd.jupyter.widget-view+json" in data
