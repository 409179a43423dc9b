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


# ---- the other views' stills ------------------------------------------------------------------
def _bundle_png(view) -> np.ndarray:
    bundle = view._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle   # an anywidget view: (data, metadata)
    assert "application/vnd.jupyter.widget-view+json" in data
    return read_png(base64.b64decode(data["image/png"]))


def _count(image: np.ndarray, colour) -> int:
    return int((image == np.array(colour, np.uint8)).all(axis=-1).sum())


def test_the_series_colours_are_the_front_ends():
    from pathlib import Path
    source = (Path(__file__).resolve().parents[1] / "js" / "src" / "colormap.ts").read_text()
    light = re.search(r"SERIES_COLOURS = \{\s*light: \[([^\]]*)\]", source)[1]
    assert re.findall(r'"(#[0-9a-f]{6})"', light) == still.SERIES


def test_a_line_lies_where_its_values_put_it_solid_or_dashed():
    blue, orange = still._rgb(still.SERIES[0]), still._rgb(still.SERIES[1])
    # a constant line sits mid-plot (its axis widened by 0.5 each way); x spans the plot's width
    image = read_png(still.lines_png([0, 10], [[3.0, 3.0]], [{"colour": 0}], y_log=False))
    assert image.shape == (still.CHART_HEIGHT, still.CHART_WIDTH, 3)
    top, h = still.MARGIN, still.CHART_HEIGHT - 2 * still.MARGIN - 1
    middle = int(np.rint(top + h / 2))
    left, right = still.MARGIN, still.CHART_WIDTH - still.MARGIN - 1
    rows = {int(r) for r in np.flatnonzero((image == blue).all(-1).any(1))}
    assert rows == {middle, middle + 1}, rows                          # two pixels thick
    assert (image[middle, left:right] == blue).all()
    assert tuple(image[top, left + 5]) == still.FRAME and tuple(image[top + h, right - 5]) == still.FRAME
    # dashed: 6 pixels on, 4 off, along the line (a pixel more on: the stroke is two pixels wide)
    image = read_png(still.lines_png([0, 10], [[3.0, 3.0]], [{"colour": 1, "dash": True}], y_log=False))
    on = (image[middle, left:right] == orange).all(-1)
    assert on[:7].all() and not on[7:10].any() and on[10:17].all() and 0.65 < on.mean() < 0.75
    # a log axis: 1 and 100 are the axis' ends, 10 half way; a value it cannot place is a gap
    image = read_png(still.lines_png([0, 1, 2, 3], [[1.0, 10.0, 100.0, 0.0]], [{"colour": 0}]))
    blue_rows = np.flatnonzero((image == blue).all(-1).any(1))
    assert (blue_rows.min(), blue_rows.max()) == (top, top + h + 1)
    assert not (image[:, left + 2 * (right - left) // 3 + 3:] == blue).all(-1).any()   # nothing after the 0


def test_a_gradient_flows_still_is_its_time_chart_and_a_monitor_has_none_before_a_step():
    from rnnwidgets.widgets.chart import Chart
    from rnnwidgets.widgets.gradient_flow import GradientFlow
    from tests.test_widgets_gradient_flow import made_up_trace

    gf = GradientFlow(made_up_trace())
    image = _bundle_png(gf)
    np.testing.assert_array_equal(image, read_png(still.chart_png(gf.time_chart)))
    for spec in gf.time_chart.series:   # every layer's colour is drawn
        assert _count(image, still._rgb(still.SERIES[spec["colour"]])) > 50
    assert still.chart_png(Chart()) is None
    zeros = Chart(y_scale="log")
    zeros.show_lines([0, 1], [[0.0, 0.0]], [{"name": "h"}])   # sent as they are: nothing a log axis places
    assert still.chart_png(zeros) is None


def test_a_monitors_still_is_its_loss_once_a_step_is_recorded_and_finish_updates_its_cell(monkeypatch):
    import IPython.display
    import torch

    import rnnwidgets as rw
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda data, raw, display_id: shown.append(("show", data, display_id)))
    monkeypatch.setattr(IPython.display, "update_display",
                        lambda data, raw, display_id: shown.append(("update", data, display_id)))
    model = torch.nn.GRU(2, 3, batch_first=True)
    mon = rw.TrainingMonitor(model, interval=0.0)
    mon._ipython_display_()                       # as a cell shows it, before training
    (kind, bundle, display_id), = shown
    assert kind == "show" and display_id and "application/vnd.jupyter.widget-view+json" in bundle
    assert "image/png" not in bundle              # nothing to draw yet
    for _ in range(3):
        model.zero_grad()
        loss = model(torch.ones(1, 4, 2))[0].sum()
        loss.backward()
        mon.step(loss)
    np.testing.assert_array_equal(_bundle_png(mon), read_png(still.chart_png(mon.loss_chart)))
    mon.finish()                                  # the cell's output gets the final still
    kind, bundle, same_id = shown[-1]
    assert (kind, same_id, len(shown)) == ("update", display_id, 2)
    np.testing.assert_array_equal(read_png(base64.b64decode(bundle["image/png"])),
                                  read_png(still.chart_png(mon.loss_chart)))


def test_a_comparisons_still_stacks_a_b_and_their_difference_grey_past_the_shorter_run():
    from rnnwidgets.widgets.compare import Compare
    from tests.test_widgets_compare import lstm_trace

    h = np.linspace(-1, 1, 2 * 8 * 2, dtype=np.float32).reshape(2, 8, 2)
    hb = h[:, :5].copy()
    hb[0, 3, 1] += 0.5
    view = Compare(lstm_trace(h, h, [8, 8]), lstm_trace(hb, hb, [5, 5]))
    image = _bundle_png(view)
    band = still.MIN_HEIGHT // 2                      # 2 units: 30 rows each, 8 steps of 50 columns
    assert image.shape == (3 * band + 2 * still.GAP, 400, 3)
    a, b, d = (image[i * (band + still.GAP):i * (band + still.GAP) + band] for i in range(3))
    scale = still.colour_scale("h", np.concatenate([h[0], hb[0]]))
    np.testing.assert_array_equal(a[::30, ::50], still.colours(h[0].T, scale["scale"], scale["vmin"], scale["vmax"]))
    assert (b[:, 250:] == still.ABSENT).all() and (d[:, 250:] == still.ABSENT).all()
    np.testing.assert_array_equal(d[30, 150], still.colours(np.array(-0.5), "diverging", -0.5, 0.5))
    assert (d[0, :250] == 255).all()                  # unit 0 is the same in both runs
    assert (image[band:band + still.GAP] == 255).all()


def test_a_dynamics_still_draws_the_trajectory_and_the_fixed_points():
    import torch

    import rnnwidgets as rw
    from rnnwidgets.widgets.dynamics_view import DynamicsView

    torch.manual_seed(0)
    gru = torch.nn.GRU(2, 4, batch_first=True)
    dyn = rw.dynamics(gru, torch.randn(2, 12, 2), k=3)
    fps = rw.fixed_points(gru, layer="gru.l0", states=dyn, n_init=16, adam_steps=50)
    image = _bundle_png(DynamicsView(dyn, fps))
    assert image.shape == (still.CHART_HEIGHT, still.CHART_WIDTH, 3)
    assert _count(image, still._rgb(still.SERIES[0])) > 200      # the trajectory
    stable = int(fps.stable.sum())
    unstable = len(fps) - stable
    assert (_count(image, still._rgb(still.SERIES[2])) > 0) == (stable > 0)
    assert (_count(image, still._rgb(still.SERIES[1])) > 0) == (unstable > 0)


def test_pattern_views_stills_the_match_rows_after_a_search_and_the_ordered_matrix():
    import rnnwidgets as rw
    from rnnwidgets.widgets.patterns import CoClusterView, MatchPanel
    from tests.test_widgets_patterns import planted_dataset

    ds = planted_dataset()
    explorer = rw.explore(ds.sequence(0))
    explorer.view.brush, explorer.view.threshold = [1, 3], 0.0
    panel = MatchPanel(explorer, ds, context=2)
    assert "image/png" not in panel._repr_mimebundle_()        # nothing searched yet
    frame = panel.find()
    image = _bundle_png(panel)
    rows = len(frame)
    units = len(panel.view.units)
    assert image.shape[0] == rows * 24 // units * units + (rows - 1) * still.GAP
    band = image[:24]                                          # the first match: aligned, in its colours
    row = panel.view.rows[0]
    values = np.frombuffer(panel.view.buffer, "<f4")[:row["steps"] * units].reshape(-1, units)
    lead = max(r["before"] for r in panel.view.rows)
    sx = -(-still.MIN_WIDTH // max(lead - r["before"] + r["steps"] for r in panel.view.rows))
    first = (lead - row["before"]) * sx
    expected = still.colours(values.T, panel.view.scale, panel.view.vmin, panel.view.vmax)
    np.testing.assert_array_equal(band[::24 // units, first::sx][:, :row["steps"]], expected)

    view = CoClusterView(ds, explorer, n_clusters=2)
    ordered = np.frombuffer(view.buffer, "<f4").reshape(len(view.tokens), len(view.units))
    np.testing.assert_array_equal(_bundle_png(view),
                                  read_png(still.heatmap_png(ordered, "diverging", -view.vmax, view.vmax)))


def test_an_explorer_of_a_trace_without_values_displays_without_a_still():
    """A trace of no steps (an empty sequence, a loaded file) still displays: no still, no error."""
    empty = Trace(layers={"gru.l0": LayerTrace("gru.l0", "gru", states={"h": np.zeros((1, 0, 2))})}, lengths=[0])
    explorer = Explorer(empty)
    assert still.explorer_png(explorer) is None
    bundle = explorer._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "image/png" not in data and "application/vnd.jupyter.widget-view+json" in data
