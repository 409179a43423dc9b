"""The still PNGs of the views other than the Explorer (rnnwidgets/widgets/still_views.py): a
chart's lines where their values put them, in the front end's series colours; a monitor's,
a comparison's, a dynamics view's and the pattern views' stills."""
import base64
import re

import numpy as np
from test_widgets_still import read_png

from rnnwidgets.ranges import colour_scale
from rnnwidgets.widgets import still, still_views


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
    assert re.findall(r'"(#[0-9a-f]{6})"', light) == still_views.SERIES


def test_a_line_lies_where_its_values_put_it_solid_or_dashed():
    blue, orange = still_views._rgb(still_views.SERIES[0]), still_views._rgb(still_views.SERIES[1])
    # a constant line sits mid-plot (its axis widened by 0.5 each way); x spans the plot's width
    image = read_png(still_views.lines_png([0, 10], [[3.0, 3.0]], [{"colour": 0}], y_log=False))
    assert image.shape == (still_views.CHART_HEIGHT, still_views.CHART_WIDTH, 3)
    top, h = still_views.MARGIN, still_views.CHART_HEIGHT - 2 * still_views.MARGIN - 1
    middle = int(np.rint(top + h / 2))
    left, right = still_views.MARGIN, still_views.CHART_WIDTH - still_views.MARGIN - 1
    rows = {int(r) for r in np.flatnonzero((image == blue).all(-1).any(1))}
    assert rows == {middle, middle + 1}, rows                          # two pixels thick
    assert (image[middle, left:right] == blue).all()
    assert tuple(image[top, left + 5]) == still_views.FRAME and tuple(image[top + h, right - 5]) == still_views.FRAME
    # dashed: 6 pixels on, 4 off, along the line (a pixel more on: the stroke is two pixels wide)
    image = read_png(still_views.lines_png([0, 10], [[3.0, 3.0]], [{"colour": 1, "dash": True}], y_log=False))
    on = (image[middle, left:right] == orange).all(-1)
    assert on[:7].all() and not on[7:10].any() and on[10:17].all() and 0.65 < on.mean() < 0.75
    # a log axis: 1 and 100 are the axis' ends, 10 half way; a value it cannot place is a gap
    image = read_png(still_views.lines_png([0, 1, 2, 3], [[1.0, 10.0, 100.0, 0.0]], [{"colour": 0}]))
    blue_rows = np.flatnonzero((image == blue).all(-1).any(1))
    assert (blue_rows.min(), blue_rows.max()) == (top, top + h + 1)
    assert not (image[:, left + 2 * (right - left) // 3 + 3:] == blue).all(-1).any()   # nothing after the 0


def test_a_gradient_flows_still_is_its_time_chart_and_a_monitor_has_none_before_a_step():
    from rnnwidgets.widgets.chart import Chart
    from rnnwidgets.widgets.gradient_flow import GradientFlow
    from tests.test_widgets_gradient_flow import made_up_trace

    gf = GradientFlow(made_up_trace())
    image = _bundle_png(gf)
    np.testing.assert_array_equal(image, read_png(still_views.chart_png(gf.time_chart)))
    for spec in gf.time_chart.series:   # every layer's colour is drawn
        assert _count(image, still_views._rgb(still_views.SERIES[spec["colour"]])) > 50
    assert still_views.chart_png(Chart()) is None
    zeros = Chart(y_scale="log")
    zeros.show_lines([0, 1], [[0.0, 0.0]], [{"name": "h"}])   # sent as they are: nothing a log axis places
    assert still_views.chart_png(zeros) is None


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
    np.testing.assert_array_equal(_bundle_png(mon), read_png(still_views.chart_png(mon.loss_chart)))
    mon.finish()                                  # the cell's output gets the final still
    kind, bundle, same_id = shown[-1]
    assert (kind, same_id, len(shown)) == ("update", display_id, 2)
    np.testing.assert_array_equal(read_png(base64.b64decode(bundle["image/png"])),
                                  read_png(still_views.chart_png(mon.loss_chart)))


def test_a_comparisons_still_stacks_a_b_and_their_difference_grey_past_the_shorter_run():
    from rnnwidgets.widgets.compare import Compare
    from tests.test_widgets_compare import lstm_trace

    h = np.linspace(-1, 1, 2 * 8 * 2, dtype=np.float32).reshape(2, 8, 2)
    hb = h[:, :5].copy()
    hb[0, 3, 1] += 0.5
    view = Compare(lstm_trace(h, h, [8, 8]), lstm_trace(hb, hb, [5, 5]))
    image = _bundle_png(view)
    band = still.MIN_HEIGHT // 2                      # 2 units: 30 rows each, 8 steps of 50 columns
    assert image.shape == (3 * band + 2 * still_views.GAP, 400, 3)
    a, b, d = (image[i * (band + still_views.GAP):i * (band + still_views.GAP) + band] for i in range(3))
    scale = colour_scale("h", np.concatenate([h[0], hb[0]]))
    np.testing.assert_array_equal(a[::30, ::50], still.colours(h[0].T, scale["scale"], scale["vmin"], scale["vmax"]))
    assert (b[:, 250:] == still.ABSENT).all() and (d[:, 250:] == still.ABSENT).all()
    np.testing.assert_array_equal(d[30, 150], still.colours(np.array(-0.5), "diverging", -0.5, 0.5))
    assert (d[0, :250] == 255).all()                  # unit 0 is the same in both runs
    assert (image[band:band + still_views.GAP] == 255).all()


def test_a_dynamics_still_draws_the_trajectory_and_the_fixed_points():
    import torch

    import rnnwidgets as rw
    from rnnwidgets.widgets.dynamics_view import DynamicsView

    torch.manual_seed(0)
    gru = torch.nn.GRU(2, 4, batch_first=True)
    dyn = rw.dynamics(gru, torch.randn(2, 12, 2), k=3)
    fps = rw.fixed_points(gru, layer="gru.l0", states=dyn, n_init=16, adam_steps=50)
    image = _bundle_png(DynamicsView(dyn, fps))
    assert image.shape == (still_views.CHART_HEIGHT, still_views.CHART_WIDTH, 3)
    assert _count(image, still_views._rgb(still_views.SERIES[0])) > 200      # the trajectory
    stable = int(fps.stable.sum())
    unstable = len(fps) - stable
    assert (_count(image, still_views._rgb(still_views.SERIES[2])) > 0) == (stable > 0)
    assert (_count(image, still_views._rgb(still_views.SERIES[1])) > 0) == (unstable > 0)


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
    assert image.shape[0] == rows * 24 // units * units + (rows - 1) * still_views.GAP
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


def test_every_still_is_opaque_on_its_own_white_page_where_its_marks_keep_3_to_1():
    """A dark page (GitHub's or nbviewer's dark theme) shows the still as a white card: no alpha
    channel, no transparent colour (read_png accepts only 8-bit RGB and the chunks IHDR, IDAT,
    IEND), white around the plot, and each mark 3:1 or more against that white."""
    import struct

    def luminance(rgb):
        s = np.asarray(rgb, dtype=float) / 255
        return float(np.array([0.2126, 0.7152, 0.0722]) @ np.where(s <= 0.04045, s / 12.92, ((s + 0.055) / 1.055) ** 2.4))

    def contrast_on_white(rgb):
        return 1.05 / (luminance(rgb) + 0.05)

    data = still_views.lines_png([0, 1, 2, 3], [[1.0, 3.0, 2.0, 4.0], [2.0, 2.5, 3.0, 3.5]],
                                 [{"colour": 0}, {"colour": 1, "dash": True}], y_log=False, rules=[2.2],
                                 dots=[(1.0, 3.0, 2, True), (2.0, 2.0, 1, False)])
    assert struct.unpack(">B", data[25:26]) == (2,)          # IHDR's colour type: RGB, no alpha
    image = read_png(data)
    margin = still_views.MARGIN - 5                           # (a dot at the frame reaches 4 px past it)
    for edge in (image[:margin], image[-margin:], image[:, :margin], image[:, -margin:]):
        assert (edge == 255).all()                            # the still's own page, white
    guides = {tuple(still_views.FRAME), tuple(still_views.GRID), (255, 255, 255)}
    drawn = {tuple(int(v) for v in c) for c in np.unique(image.reshape(-1, 3), axis=0)} - guides
    assert drawn >= {still_views._rgb(c) for c in still_views.SERIES[:3]} | {(211, 47, 47)}
    weak = {c: round(contrast_on_white(c), 2) for c in drawn if contrast_on_white(c) < 3}
    assert not weak, f"marks under 3:1 on the still's white: {weak}"
    for colour in still_views.SERIES:                         # every series colour a still may draw
        assert contrast_on_white(still_views._rgb(colour)) >= 3, colour
    # a heatmap's still is opaque too: its diverging centre the page's white, the rest the map's colours
    heatmap = read_png(still.heatmap_png(np.linspace(-1, 1, 12, dtype=np.float32).reshape(6, 2), "diverging", -1, 1))
    assert heatmap.shape[2] == 3
