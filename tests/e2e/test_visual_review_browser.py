"""Degenerate inputs and narrow cells, measured in JupyterLab Light and Dark.

Views made from inputs a student meets by mistake or at the start: a gradient flow over one step
of one unit, one whose loss is NaN (every gradient NaN) and one whose loss ignores the model (every
gradient 0), a training monitor before its first step, a dynamics view of one step of one unit and
one of a zero-variance run, two comparisons (one-step runs; identical zero inputs) and the
co-clusters of a small planted dataset; each also squeezed into a 500 px cell. In both themes every label reads at 4.5:1 or more, none covers another or
leaves its view, nothing is drawn past the cell's right edge, and each degenerate chart says in
words what it cannot draw instead of drawing a broken one. Pictures:
artifacts/review-<view>[-500]-<theme>.png.
"""
import json

import pytest
from e2e_support import close_notebooks, in_each_theme, open_in_lab, write_notebook
from test_explorer_look_browser import TEXTS_JS, contrast, overlaps
from test_patterns_browser import PLANTED
from test_visual_language_browser import CLIPPED_JS, _save, tall_page

pytestmark = pytest.mark.e2e

MODELS = """\
import numpy as np, torch, rnnwidgets as rw
torch.manual_seed(0)
class Net(torch.nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn, self.head = rnn, torch.nn.Linear(rnn.hidden_size, 1)
    def forward(self, x):
        return self.head(self.rnn(x)[0])
rnn = torch.nn.RNN(2, 3, batch_first=True)"""
CELLS = {
    "flow-one": 'rw.gradient_flow(Net(torch.nn.RNN(3, 1, batch_first=True)), torch.randn(2, 1, 3), '
                'loss=lambda out: out[:, -1].sum(), lr=0.1)',
    "flow-nan": 'rw.gradient_flow(Net(torch.nn.GRU(3, 4, batch_first=True)), torch.randn(2, 6, 3), '
                'loss=lambda out: out.sum() * float("nan"), lr=0.1)',
    "flow-zero": 'rw.gradient_flow(Net(torch.nn.LSTM(3, 4, batch_first=True)), torch.randn(2, 6, 3), '
                 'loss=lambda out: out.sum() * 0.0, lr=0.1)',
    "monitor-empty": 'rw.TrainingMonitor(Net(torch.nn.LSTM(3, 4, batch_first=True)))',
    "dyn-one": 'rw.DynamicsView(rw.dynamics(torch.nn.RNN(2, 1, batch_first=True), torch.randn(1, 1, 2), k=1))',
    "dyn-flat": 'rw.DynamicsView(rw.dynamics(rnn, torch.zeros(1, 5, 2), k=2))',
    "compare-one": 'rw.compare(rnn, torch.randn(1, 1, 2), torch.randn(1, 1, 2))',
    "compare-flat": 'rw.compare(rnn, torch.zeros(1, 4, 2), torch.zeros(1, 4, 2))',
    "coclusters": 'from rnnwidgets.widgets.patterns import CoClusterView\nCoClusterView(ds, explorer, n_clusters=2)',
}
ROOTS = ".rw-gradient-flow, .rw-monitor, .rw-dyn, .rw-compare, .rw-coclusters"
PLANTED_SETUP = PLANTED.rsplit("\n", 1)[0]   # its dataset `ds` and Explorer, not shown

# Elements drawn past the right edge of their output cell: (tag, class, px past it).
OVERFLOW_JS = """(view) => {
    const cell = view.closest('.jp-OutputArea-output') || view.parentElement;
    const right = cell.getBoundingClientRect().right, out = [];
    for (const el of [view, ...view.querySelectorAll('*')]) {
        const r = el.getBoundingClientRect();
        if (r.width < 1 || r.height < 1) continue;
        let hidden = false;   // inside a scroller or clipper of the view itself: not drawn past it
        for (let e = el.parentElement; e && e !== cell; e = e.parentElement) {
            const s = getComputedStyle(e);
            if (s.overflowX !== 'visible' && e.getBoundingClientRect().right <= right + 0.5) { hidden = true; break; }
        }
        if (!hidden && r.right > right + 0.5) out.push([el.tagName, el.getAttribute('class'), Math.round(r.right - right)]);
    }
    return out;
}"""


def measure(view) -> list:
    """What is wrong with one view as drawn: weak contrast, overlapping, clipped, overflowing."""
    problems = []
    texts = view.evaluate(TEXTS_JS)
    poor = [(t["text"], t["cls"], round(contrast(t["fg"], t["bg"]), 2)) for t in texts
            if contrast(t["fg"], t["bg"]) < 4.5]
    if poor:
        problems.append(f"under 4.5:1: {poor[:8]}")
    if overlaps(texts):
        problems.append(f"over each other: {overlaps(texts)[:8]}")
    clipped = view.evaluate(CLIPPED_JS)
    if clipped:
        problems.append(f"clipped: {clipped[:8]}")
    over = view.evaluate(OVERFLOW_JS)
    if over:
        problems.append(f"past the cell's right edge: {over[:8]}")
    return problems


@pytest.fixture(scope="module")
def review(lab_page, jupyter_server):
    write_notebook(jupyter_server.root / "visual_review.ipynb", MODELS, PLANTED_SETUP, *CELLS.values())
    page = lab_page
    page.set_viewport_size({"width": 1400, "height": 900})
    open_in_lab(page, "visual_review.ipynb", widget_selector=".rw-coclusters", timeout=300_000)
    page.wait_for_function(f"(n) => document.querySelectorAll('{ROOTS}').length >= n", arg=len(CELLS), timeout=120_000)
    page.wait_for_timeout(1500)
    yield page
    close_notebooks(page)


def _views(page):
    roots = page.locator(ROOTS)
    assert roots.count() == len(CELLS), f"{roots.count()} views drawn of {len(CELLS)}"
    return dict(zip(CELLS, [roots.nth(i) for i in range(roots.count())]))


def _narrow(page, width):
    """Every output cell at most `width` px wide (None: as JupyterLab lays it out)."""
    page.evaluate("""(w) => {
        let s = document.getElementById('rw-review-narrow');
        if (!s) { s = document.createElement('style'); s.id = 'rw-review-narrow'; document.head.append(s); }
        s.textContent = w ? `.jp-OutputArea-output { max-width: ${w}px !important; }` : '';
    }""", width)
    page.wait_for_timeout(800)   # the charts re-laid out at their new width (ResizeObserver)


@pytest.mark.parametrize("width", [None, 500])
def test_degenerate_views_read_in_both_themes_and_fit_a_narrow_cell(review, width):
    """No label under 4.5:1, over another, clipped, or past the cell's right edge (the dynamics
    view's slider was 2 px past it)."""
    page = review
    _narrow(page, width)
    report = {}

    def check(theme):
        views = _views(page)
        for name, view in views.items():
            view.scroll_into_view_if_needed()
            problems = measure(view)
            if problems:
                report[f"{name} ({theme}, {width or 'full'} px)"] = problems
        with tall_page(page):
            for name, view in views.items():
                _save(view, f"review-{name}{'-' + str(width) if width else ''}", None, theme, page)

    try:
        in_each_theme(page, check)
    finally:
        _narrow(page, None)
    assert not report, json.dumps(report, indent=1, ensure_ascii=False)


# Pixels of a canvas in a region painted (nearly) in a CSS colour: {colour, count}.
INK_OF_JS = """(canvas, [css, x0, y0, x1, y1]) => {
    const probe = document.createElement('canvas').getContext('2d');
    probe.fillStyle = css; probe.fillRect(0, 0, 1, 1);
    const want = probe.getImageData(0, 0, 1, 1).data;
    const {data} = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    let count = 0;
    for (let y = Math.max(0, y0); y < Math.min(canvas.height, y1); y++) {
        for (let x = Math.max(0, x0); x < Math.min(canvas.width, x1); x++) {
            const i = 4 * (y * canvas.width + x);
            if (data[i + 3] > 100 && [0, 1, 2].every((k) => Math.abs(data[i + k] - want[k]) < 48)) count++;
        }
    }
    return {colour: Array.from(want.slice(0, 3)), count};
}"""
# a theme variable's value at an element (the label ink the dynamics views draw with)
VAR_JS = "(el, [name, fallback]) => getComputedStyle(el).getPropertyValue(name).trim() || fallback"
# the dynamics view's running exponent: the fourth series colour of the theme (colormap.ts SERIES_COLOURS)
EXPONENT_COLOUR = {"light": "#b8609a", "dark": "#d98cb9"}


@pytest.mark.parametrize("width", [None, 500])
def test_one_step_and_nan_charts_say_or_draw_what_there_is(review, width):
    """A one-step gradient flow draws its point as a dot over the one step tick (no tick at a step
    that does not exist) and its grid names that step once, under its middle (not "0 … 0"); a NaN or a zero gradient says why its line chart is empty instead of
    "no data yet"; the comparison of one-step runs says "1 step"."""
    page = review
    _narrow(page, width)
    try:
        def check(theme):
            views = _views(page)
            chart = views["flow-one"].locator(".rw-chart").first
            plot = chart.locator(".rw-chart-plot").bounding_box()
            dots = chart.locator("circle.rw-chart-dot")
            assert dots.count() == 1, f"{theme}: {dots.count()} dots for one step"
            dot = dots.bounding_box()
            assert dot["width"] >= 6 and plot["x"] < dot["x"] and dot["x"] + dot["width"] < plot["x"] + plot["width"], \
                (theme, dot, plot)
            ticks = chart.locator('.rw-chart-tick[data-axis="x"]')
            assert ticks.all_text_contents() == ["0"], ticks.all_text_contents()
            tick = ticks.first.bounding_box()
            assert abs((tick["x"] + tick["width"] / 2) - (dot["x"] + dot["width"] / 2)) < 2, "the dot is not over its step"
            axis = views["flow-one"].locator(".rw-grid-axis").first
            names = axis.locator("span").all_inner_texts()
            assert names == ["step t 0"], f"{theme}: the one-step grid's axis reads {names}"
            grid, said = views["flow-one"].locator(".rw-grid .rw-heatmap").first.bounding_box(), axis.locator("span").bounding_box()
            assert abs((said["x"] + said["width"] / 2) - (grid["x"] + grid["width"] / 2)) < 4, (said, grid)
            for name, why in (("flow-nan", "nothing to draw: every value is NaN or infinite"),
                              ("flow-zero", "nothing to draw on a log axis: every value is 0")):
                empty = views[name].locator(".rw-chart-empty").first
                assert why in empty.inner_text(), (name, empty.inner_text())
            verdict = views["flow-nan"].inner_text()
            assert "is NaN over the first 1 step and over the last 1" in verdict, verdict[:300]
            titles = views["compare-one"].locator(".rw-cmp-title").all_inner_texts()
            assert titles[:2] == ["A: h of rnn.l0, 1 step", "B: h of rnn.l0, 1 step"], titles

        in_each_theme(page, check)
    finally:
        _narrow(page, None)


@pytest.mark.parametrize("width", [None, 500])
def test_the_dynamics_views_canvases_keep_their_size_and_label_their_step_axis(review, width):
    """Each canvas of the dynamics view is shown at most at the size it is drawn at (a flex column
    stretched the eigenvalue disc from 160 to about 650 px, blurred), narrowed to a 500 px cell; the
    spectrum labels its step axis (the tick "0" under step 0) and draws a one-step run's values as
    dots, and the eigenvalue plot names its axes (Re, Im), in the theme's colours."""
    page = review
    _narrow(page, width)
    try:
        def check(theme):
            views = _views(page)
            for name in ("dyn-one", "dyn-flat"):
                root = views[name]
                outer = views[name].bounding_box()
                for cls in ("plane", "spectrum", "eigen"):
                    canvas = views[name].locator(f".rw-dyn-{cls}")
                    drawn = canvas.evaluate("c => [c.width, c.height]")
                    box = canvas.bounding_box()
                    assert box["width"] <= drawn[0] + 0.5 and box["height"] <= drawn[1] + 0.5, \
                        f"{theme} {name}: .rw-dyn-{cls} drawn {drawn} shown {box['width']:.0f}x{box['height']:.0f}"
                    assert box["x"] + box["width"] <= outer["x"] + outer["width"] + 0.5, (name, cls, box, outer)
                    assert abs(box["width"] / box["height"] - drawn[0] / drawn[1]) < 0.02, (name, cls, "distorted")
                spectrum = views[name].locator(".rw-dyn-spectrum")
                h = spectrum.evaluate("c => c.height")
                fg = root.evaluate(VAR_JS, ["--jp-ui-font-color1", "#222"])
                label = spectrum.evaluate(INK_OF_JS, [fg, 34, h - 13, 48, h])   # "0" under step 0 (x = 40)
                assert label["count"] >= 3, f"{theme} {name}: no step label under step 0 {label}"
                eigen = views[name].locator(".rw-dyn-eigen")
                size = eigen.evaluate("c => c.width")
                for axis_name, region in (("Im", [size // 2 - 18, 3, size // 2 - 2, 16]),
                                          ("Re", [size - 17, size // 2 + 3, size, size // 2 + 15])):
                    ink = eigen.evaluate(INK_OF_JS, [fg, *region])
                    assert ink["count"] >= 4, f"{theme} {name}: the eigenvalue plot's {axis_name} axis is not named {ink}"
            spectrum = views["dyn-one"].locator(".rw-dyn-spectrum")
            h = spectrum.evaluate("c => c.height")
            exponent = EXPONENT_COLOUR[theme]
            dot = spectrum.evaluate(INK_OF_JS, [exponent, 36, 6, 45, h - 18])
            assert dot["count"] >= 4, f"{theme}: the one step's running exponent is not drawn {dot}"

        in_each_theme(page, check)
    finally:
        _narrow(page, None)


@pytest.mark.parametrize("width", [None, 500])
def test_a_colour_bar_keeps_its_ends_on_its_line(review, width):
    """The co-clusters' legend wraps in a narrow cell, but the bar's two end values and the NaN
    swatch stay beside the bar (at 500 px "0.900" fell to the next line, away from its end)."""
    page = review
    _narrow(page, width)
    try:
        def check(theme):
            legend = _views(page)["coclusters"].locator(".rw-legend").first
            boxes = legend.evaluate("""(l) => {
                const bar = l.querySelector('canvas');
                return [bar.previousElementSibling, bar, bar.nextElementSibling].map((e) => {
                    const r = e.getBoundingClientRect(); return [r.left, r.right, (r.top + r.bottom) / 2];
                });
            }""")
            (lo_left, lo_right, lo_y), (bar_left, bar_right, bar_y), (hi_left, _, hi_y) = boxes
            assert abs(lo_y - bar_y) < 3 and abs(hi_y - bar_y) < 3, f"{theme}: not on the bar's line {boxes}"
            assert lo_right <= bar_left and bar_right <= hi_left, f"{theme}: ends not either side of the bar {boxes}"

        in_each_theme(page, check)
    finally:
        _narrow(page, None)
