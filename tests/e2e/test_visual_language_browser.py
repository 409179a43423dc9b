"""The visual language of every view, measured in JupyterLab Light and Dark, and the pictures of
docs/views.md taken from what the tests open.

One notebook shows each view as the tutorials do: the quickstart's Explorer (its counting unit
selected and compared with a saturated one; with it the cell view and the unit lines), the
gradient flow of three models, a training monitor after some steps, the match panel and the
co-clusters of a small planted dataset, and the dynamics view. In both themes every label of every
view reads at 4.5:1 or more, no two labels overlap, and none is clipped (its text inside its view
and, in a chart, inside its SVG); the selected unit's line has its own axis.

Pictures: each view cropped to its element, in artifacts/ (`<view>-<theme>.png`); with
RW_PICTURES=<folder> (scripts/docs_pictures.sh: docs/img) the Light ones are also written there,
reduced to 256 colours, for the docs.
"""
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import ARTIFACTS, REPO
from e2e_support import close_notebooks, kernel_execute, open_in_lab, wait_for_ink, write_notebook
from test_colour_limits_browser import COUNTER, QUICKSTART
from test_dynamics_browser import SHOW_DYNAMICS
from test_explorer_look_browser import TEXTS_JS, contrast, in_both_themes, overlaps
from test_gradient_charts_browser import FLOW, TRAIN
from test_patterns_browser import PLANTED

pytestmark = pytest.mark.e2e

MONITOR = 'mon = rw.TrainingMonitor(models["LSTM"], clip=1.0)\ndisplay(mon)\n' + TRAIN
# the planted dataset's Explorer as `pexplorer` (the quickstart's is `explorer`), its matches found
MATCHES = PLANTED.replace("explorer", "pexplorer").replace("widgets.VBox([pexplorer, panel])", """\
display(widgets.VBox([pexplorer, panel]))
pexplorer.view.brush = [1, 3]
panel.find()""")
assert "panel.find()" in MATCHES
COCLUSTERS = """\
from rnnwidgets.widgets.patterns import CoClusterView
clusters = CoClusterView(ds, pexplorer, n_clusters=2)
clusters"""

TALL = 2400   # px: the page's height for the pictures, every view whole on screen
# name: (the view's element, how much of it the picture shows: None for all of it, else a height)
VIEWS = {
    "explorer": (".rw-explorer", None),
    "unit-lines": (".rw-explorer .rw-section-lines", None),
    "cell-view": (".rw-explorer .rw-section-cell", None),
    "gradient-flow": (".rw-gradient-flow", 760),
    "monitor": (".rw-monitor", None),
    "match-panel": (".rw-matches", None),
    "co-clusters": (".rw-coclusters", None),
    "dynamics": (".rw-dyn", None),
}

# Text boxes that leave their view, or their SVG: (text, class, how far out on each side).
CLIPPED_JS = """(root) => {
    const R = root.getBoundingClientRect(), out = [];
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const el = node.parentElement;
        if (!node.textContent.trim() || !el || el.closest('style, option, title, select, script')) continue;
        const range = document.createRange();
        range.selectNodeContents(node);
        const r = range.getBoundingClientRect();
        if (r.width < 1 || r.height < 1) continue;
        const svg = el.closest('svg');
        for (const box of svg ? [R, svg.getBoundingClientRect()] : [R]) {
            const out_by = [box.left - r.left, r.right - box.right, box.top - r.top, r.bottom - box.bottom];
            if (Math.max(...out_by) > 0.5) { out.push([node.textContent.trim().slice(0, 30), el.getAttribute('class'), out_by.map(Math.round)]); break; }
        }
    }
    return out;
}"""


def _pictures() -> Path | None:
    folder = os.environ.get("RW_PICTURES")
    return (REPO / folder) if folder else None


@contextmanager
def tall_page(page):
    """The page 2400 px tall while the block runs (a tall view whole on screen), then as it was;
    inside one, another does nothing: one resize and re-layout for all the pictures of a theme."""
    viewport = page.viewport_size
    if viewport["height"] >= TALL:
        yield
        return
    page.set_viewport_size({"width": viewport["width"], "height": TALL})
    try:
        page.wait_for_timeout(300)
        yield
    finally:
        page.set_viewport_size(viewport)


def _save(locator, name: str, height: int | None, theme: str, page):
    """A picture of one view: in artifacts/, and (Light only) small in RW_PICTURES for the docs."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}-{theme}.png"
    with tall_page(page):
        locator.evaluate("e => e.scrollIntoView({block: 'start'})")
        box = locator.bounding_box()
        page.screenshot(path=str(path), clip={"x": box["x"], "y": box["y"], "width": box["width"],
                                              "height": min(height or box["height"], box["height"])})
    folder = _pictures()
    if folder is not None and theme == "light":
        from PIL import Image

        folder.mkdir(parents=True, exist_ok=True)
        # 256 colours by maximum coverage: a third of the size, every colour within 12 levels of the
        # screenshot's (median cut turned the NaN swatch's magenta red)
        image = Image.open(path).convert("RGB").quantize(colors=256, method=Image.Quantize.MAXCOVERAGE,
                                                         dither=Image.Dither.NONE)
        image.save(folder / f"{name}.png", optimize=True)


@pytest.fixture(scope="module")
def views(lab_page, jupyter_server):
    """Every view in one notebook on a 1400x900 page; the quickstart's counting unit selected after
    its most saturated one, so the unit lines compare the two."""
    write_notebook(jupyter_server.root / "visual_language.ipynb", QUICKSTART, FLOW, MONITOR, MATCHES, COCLUSTERS,
                   SHOW_DYNAMICS)
    page = lab_page
    page.set_viewport_size({"width": 1400, "height": 900})
    open_in_lab(page, "visual_language.ipynb", timeout=300_000)
    for selector in (".rw-dyn", ".rw-coclusters", ".rw-match", ".rw-monitor .rw-chart path.rw-chart-series"):
        page.locator(selector).first.wait_for(state="visible", timeout=300_000)
    # each chart of the gradient flow drawn (the messages of the cells after it may still be arriving)
    for chart in page.locator(".rw-gradient-flow .rw-chart").all():
        chart.locator("path.rw-chart-series, .rw-chart-bar").first.wait_for(state="visible", timeout=60_000)
    wait_for_ink(page.locator(".rw-explorer .rw-heatmap").first, min_distinct=20, timeout=60)
    counter = kernel_execute(page, COUNTER).split()
    saturated = kernel_execute(page, "print(int(np.abs(c).max(axis=0).argmax()))").strip()
    header = page.locator(".rw-explorer .rw-cellview-header").first
    for unit in (saturated, counter[0]):   # one after the other: the lines compare the two
        kernel_execute(page, f"explorer.select(unit={unit}, t=30)")
        page.wait_for_function("(u) => document.querySelector('.rw-explorer .rw-cellview-header').textContent"
                               ".includes(`unit ${u} `)", arg=unit, timeout=30_000)
    entries = page.locator(".rw-explorer").first.locator(".rw-units-entry")
    while entries.count() > 2:   # the unit selected at first (0) too: its × takes it off the lines
        before = entries.count()
        entries.last.locator("button").click()
        page.wait_for_function("(n) => document.querySelector('.rw-explorer').querySelectorAll('.rw-units-entry').length < n",
                               arg=before, timeout=10_000)
    assert entries.count() == 2, (saturated, counter, header.inner_text(), entries.all_inner_texts())
    page.wait_for_timeout(500)   # the panels drawn at their widths
    page.views_counter = counter
    page.views_saturated = int(saturated)
    yield page
    close_notebooks(page)


def test_every_view_reads_in_light_and_dark_with_no_label_overlapping_or_clipped(views):
    page = views

    def check(theme):
        problems = []
        for name, (selector, height) in VIEWS.items():
            view = page.locator(selector).first
            view.scroll_into_view_if_needed()
            texts = view.evaluate(TEXTS_JS)
            if len(texts) < 3:
                problems.append(f"{name}: only {len(texts)} labels found")
            poor = [(t["text"], t["cls"], round(contrast(t["fg"], t["bg"]), 2)) for t in texts
                    if contrast(t["fg"], t["bg"]) < 4.5]
            if poor:
                problems.append(f"{name}: under 4.5:1: {poor[:6]}")
            if overlaps(texts):
                problems.append(f"{name}: over each other: {overlaps(texts)[:6]}")
            clipped = view.evaluate(CLIPPED_JS)
            if clipped:
                problems.append(f"{name}: clipped (left, right, top, bottom overflow in px): {clipped[:6]}")
        with tall_page(page):
            for name, (selector, height) in VIEWS.items():
                _save(page.locator(selector).first, name, height, theme, page)
        assert not problems, f"{theme}:\n" + "\n".join(problems)

    in_both_themes(page, check)


def test_the_selected_units_line_has_its_own_axis(views):
    """The counting unit (c between about -0.2 and 3.7) beside a saturated unit: its line spans the
    plot's height on the left axis, which is labelled with its own range; the saturated unit is
    read on the right axis."""
    page = views
    unit, _, lo, hi, _ = page.views_counter
    lines = page.locator(".rw-explorer .rw-section-lines").first
    left = [float(t.replace("−", "-")) for t in
            lines.locator(".rw-units-yaxis:not(.rw-units-yaxis-right) .rw-tick").all_inner_texts()]
    right = [float(t.replace("−", "-")) for t in lines.locator(".rw-units-yaxis-right .rw-tick").all_inner_texts()]
    span = float(hi) - float(lo)
    assert len(left) == 3 and abs(left[0] - float(hi)) <= 0.1 * span and abs(left[2] - float(lo)) <= 0.1 * span, \
        f"the left axis {left} is not the counting unit's own range {lo}..{hi}"
    assert len(right) == 3 and right[0] - right[2] > 1.5 * span, f"the right axis {right} is not the saturated unit's"
    notes = lines.locator(".rw-units-entry").all_inner_texts()
    assert f"unit {unit}" in notes[0] and "left axis" in notes[0] and "right axis" in notes[1], notes
    # the selected unit's line (drawn last, series colour 0) reaches near the top and the bottom of the plot
    colour = lines.evaluate("e => getComputedStyle(e).getPropertyValue('--rw-series-0').trim()")
    rows = np.array(lines.locator(".rw-units-plot canvas.rw-units-lines").evaluate("""(c, hex) => {
        const want = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
        const {data} = c.getContext('2d').getImageData(0, 0, c.width, c.height), rows = [];
        for (let y = 0; y < c.height; y++) {
            let n = 0;
            for (let x = 0; x < c.width; x++) {
                const i = 4 * (y * c.width + x);
                if (data[i + 3] > 200 && want.every((v, k) => Math.abs(data[i + k] - v) < 24)) n++;
            }
            rows.push(n);
        }
        return rows;
    }""", colour))
    painted = np.flatnonzero(rows)
    assert painted.size and painted[-1] - painted[0] >= 0.8 * len(rows), \
        f"the selected unit's line covers rows {painted.min() if painted.size else None}..{painted.max() if painted.size else None} of {len(rows)}"
