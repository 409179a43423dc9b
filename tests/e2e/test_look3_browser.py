"""What a student opening the views met at a 1000 px and a 600 px cell, in JupyterLab Light and
Dark, measured on one Lab page: a long run's step axis (its "0" touched the title: "step0"), a
one-step run's unit line (nothing drawn), the match panel's status in a narrow cell (cut off) and
the colour bar of a gradient grid whose every value is 0 (it read 0.001 to 1).
Pictures: artifacts/look3-<view>-<width>-<theme>.png."""
import pytest
from conftest import ARTIFACTS
from e2e_support import close_notebooks, in_each_theme, open_in_lab, wait_for_ink, write_notebook
from test_explorer_look_browser import TEXTS_JS, contrast
from test_patterns_browser import PLANTED

pytestmark = pytest.mark.e2e

MODELS = """\
import numpy as np, torch, rnnwidgets as rw
from IPython.display import display
torch.manual_seed(0)
display(rw.explore(torch.nn.LSTM(3, 32, batch_first=True), torch.randn(1, 2500, 3)))
display(rw.explore(torch.nn.LSTM(3, 1, batch_first=True), torch.randn(1, 1, 3), tokens=[["("]]))
gru = torch.nn.GRU(3, 4, batch_first=True)
display(rw.gradient_flow(gru, torch.randn(1, 6, 3), loss=lambda out: out[0].sum() * 0.0, lr=0.1))"""
# the planted dataset's Explorer and match panel, a search made that finds no unit to match
MATCHES = PLANTED.replace("widgets.VBox([explorer, panel])", """\
display(widgets.VBox([explorer, panel]))
explorer.view.brush = [0, 1]
try:
    panel.find()
except ValueError:
    pass""")
assert "panel.find()" in MATCHES

# The gap between an axis title and the first label of the step axis beside it, and how far any
# label of that axis leaves the axis's box: [[gap, out_left, out_right], ...] per step axis.
STEP_AXES_JS = """(root) => [...root.querySelectorAll('.rw-step-axis')].map((axis) => {
    const title = axis.previousElementSibling.getBoundingClientRect();
    const box = axis.getBoundingClientRect();
    const labels = [...axis.querySelectorAll('.rw-tick')].map((t) => t.getBoundingClientRect());
    return [labels[0].left - title.right, Math.max(...labels.map((r) => box.left - r.left)),
            Math.max(...labels.map((r) => r.right - box.right))];
})"""


# The opaque pixels of a canvas: how many, their mean x, the colour of the middle one, the width.
DOT_JS = """(c) => {
    const {data} = c.getContext('2d').getImageData(0, 0, c.width, c.height);
    const xs = [], at = [];
    for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 200) { xs.push((i / 4) % c.width); at.push(i); }
    const mid = at[at.length >> 1] ?? 0;
    return {count: xs.length, x: xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length),
            rgb: [data[mid], data[mid + 1], data[mid + 2]], width: c.width};
}"""


@pytest.fixture(scope="module")
def look(lab_page, jupyter_server):
    write_notebook(jupyter_server.root / "look3.ipynb", MODELS, MATCHES)
    page = lab_page
    page.set_viewport_size({"width": 1400, "height": 900})
    open_in_lab(page, "look3.ipynb", widget_selector=".rw-matches", timeout=300_000)
    page.wait_for_function("() => document.querySelectorAll('.rw-explorer').length >= 3", timeout=120_000)
    page.locator(".rw-gradient-flow .rw-grid .rw-heatmap").first.wait_for(timeout=60_000)
    page.locator(".jp-OutputArea-output:has(.rw-matches)").get_by_text("units: expected").first.wait_for(timeout=60_000)
    yield page
    page.evaluate("() => document.getElementById('rw-look3-width')?.remove()")   # the page is shared
    close_notebooks(page)


def _cell_width(page, width):
    page.evaluate("""(w) => {
        let s = document.getElementById('rw-look3-width');
        if (!s) { s = document.createElement('style'); s.id = 'rw-look3-width'; document.head.append(s); }
        s.textContent = `.jp-OutputArea-output { max-width: ${w}px !important; }`;
    }""", width)
    page.wait_for_timeout(800)   # the views re-laid out at their new width (ResizeObserver)


def _picture(locator, name):
    ARTIFACTS.mkdir(exist_ok=True)
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=str(ARTIFACTS / f"look3-{name}.png"))


@pytest.mark.parametrize("width", [1000, 600])
def test_a_long_runs_step_labels_stay_clear_of_the_step_title(look, width):
    """Step 0 of a 2,500-step run sits at the plot's left edge; its label was centred there, half
    of it in the 4 px between the axis and its title, 1 px from "step" ("step0"). Every label of
    the heatmap's and the unit lines' step axes now stays inside its axis, 3 px or more from the title."""
    page = look
    _cell_width(page, width)
    explorer = page.locator(".rw-explorer").first
    wait_for_ink(explorer.locator(".rw-heatmap"), min_distinct=10)

    def check(theme):
        axes = explorer.evaluate(STEP_AXES_JS)
        assert len(axes) == 2, axes
        for gap, out_left, out_right in axes:
            assert gap >= 3, f"{theme} {width}px: the first step label is {gap:.1f} px from the title"
            assert out_left <= 0.5 and out_right <= 0.5, f"{theme} {width}px: a label leaves its axis {axes}"
        _picture(explorer.locator(".rw-plot"), f"long-{width}-{theme}")

    in_each_theme(page, check)


@pytest.mark.parametrize("width", [1000, 600])
def test_a_one_step_runs_unit_line_is_a_dot_on_its_step(look, width):
    """The unit lines of a one-step, one-unit run drew nothing (a polyline of one point): the
    value is now a dot over the step's tick, in the selected unit's colour, at 3:1 or more against
    the background in both themes."""
    page = look
    _cell_width(page, width)
    explorer = page.locator(".rw-explorer").nth(1)
    lines = explorer.locator(".rw-units-lines")

    def check(theme):
        wait_for_ink(lines, min_distinct=1, timeout=5)
        dot = lines.evaluate(DOT_JS)
        assert dot["count"] >= 12, f"{theme} {width}px: the one step's value is not drawn ({dot['count']} px)"
        canvas_box, tick = lines.bounding_box(), explorer.locator(".rw-section-lines .rw-step-axis .rw-tick").first
        scale = canvas_box["width"] / dot["width"]
        tb = tick.bounding_box()
        assert abs(canvas_box["x"] + dot["x"] * scale - (tb["x"] + tb["width"] / 2)) < 3, "the dot is not over step 0"
        ink = dot["rgb"]
        bg = explorer.evaluate("""(e) => { for (let x = e; x; x = x.parentElement) {
            const c = getComputedStyle(x).backgroundColor.match(/[\\d.]+/g);
            if (c && (c.length < 4 || Number(c[3]) === 1)) return c.slice(0, 3).map(Number); } return [255, 255, 255]; }""")
        assert contrast(ink, bg) >= 3, f"{theme}: the dot {ink} on {bg} is {contrast(ink, bg):.2f}:1"
        _picture(explorer.locator(".rw-section-lines"), f"one-step-lines-{width}-{theme}")

    in_each_theme(page, check)


@pytest.mark.parametrize("width", [1000, 600])
def test_the_match_panels_status_and_button_read_whole_in_a_narrow_cell(look, width):
    """At 600 px the panel's "find matches" button read "find mat..." and its status line (here:
    why no unit could be matched) was cut off at the cell's edge; both are now shown whole, the
    status wrapping under or beside the button, inside the cell."""
    page = look
    _cell_width(page, width)
    panel = page.locator(".jp-OutputArea-output:has(.rw-matches)").first
    button = panel.locator("button", has_text="find matches")
    status = panel.get_by_text("units: expected").first

    def check(theme):
        cell = panel.bounding_box()
        for name, el in (("button", button), ("status", status)):
            cut = el.evaluate("e => [e.scrollWidth - e.clientWidth, e.scrollHeight - e.clientHeight]")
            assert cut[0] <= 1 and cut[1] <= 1, f"{theme} {width}px: the {name} is cut off by {cut} px"
            box = el.bounding_box()
            assert box["x"] + box["width"] <= cell["x"] + cell["width"] + 0.5, f"{theme} {width}px: the {name} leaves the cell"
        assert "no unit is on over the range and off around it at this threshold" in status.inner_text()
        _picture(button.locator("xpath=../.."), f"match-status-{width}-{theme}")

    in_each_theme(page, check)


@pytest.mark.parametrize("width", [1000, 600])
def test_an_all_zero_gradient_grid_says_so_instead_of_a_colour_bar(look, width):
    """Every gradient 0 (a loss that ignores the model): the line chart said "nothing to draw on a
    log axis", but the grid under it showed a colour bar from 0.001 to 1.000, values it does not
    hold, and the update/weight chart empty rows. The grid now says every value is 0, readable
    (4.5:1) inside the cell, in both themes, and each update row says its update is 0."""
    page = look
    _cell_width(page, width)
    flow = page.locator(".rw-gradient-flow").first
    grid = flow.locator(".rw-grid").first

    def check(theme):
        assert not grid.locator(".rw-legend").is_visible(), f"{theme}: a colour bar for a grid of zeros"
        said = grid.locator(".rw-grid-zeros")
        assert said.inner_text().startswith("every value is 0"), said.inner_text()
        text = said.evaluate(TEXTS_JS)
        assert text and all(contrast(t["fg"], t["bg"]) >= 4.5 for t in text), (theme, text)
        cell = page.locator(".jp-OutputArea-output:has(.rw-gradient-flow)").first.bounding_box()
        box = said.bounding_box()
        assert box["x"] + box["width"] <= cell["x"] + cell["width"] + 0.5, f"{theme} {width}px: the words leave the cell"
        # the update/weight chart's rows had no bar and no words: each now says why
        update = flow.locator(".rw-chart", has_text="update / weight").first
        notes = update.locator(".rw-chart-flag").all_inner_texts()
        assert len(notes) == 4 and set(notes) == {"zero update: its gradient is 0"}, notes
        _picture(grid, f"zero-grid-{width}-{theme}")
        _picture(update, f"zero-update-{width}-{theme}")

    in_each_theme(page, check)
