"""Select-and-match in a real JupyterLab: brush steps by dragging over the heatmap, move the
threshold (the live count follows), find matches and open one in the Explorer; clicking a
co-cluster marks its units' rows on the Explorer's heatmap."""
import time

import pytest
from e2e_support import (
    kernel_sees,
    open_in_lab,
    planted_dataset_lines,
    wait_for_ink,
    wait_for_text,
    write_notebook,
)

pytestmark = pytest.mark.e2e

# Units 0 and 1 are on (0.6) exactly at each "(", unit 2 never: the matches of "((" are known.
# A token that is markup must show as text.
PLANTED = """\
import numpy as np, ipywidgets as widgets, rnnwidgets as rw
from rnnwidgets.dataset import DatasetTrace
from rnnwidgets.widgets.patterns import MatchPanel
""" + planted_dataset_lines('[["a", "(", "(", "b", "<img src=x onerror=alert(1)>"], list("((a("), list("b(a(((")]') + """\
explorer = rw.explore(ds.sequence(0))
panel = MatchPanel(explorer, ds, context=2)
widgets.VBox([explorer, panel])"""


def drag(page, canvas, steps: int, first: int, last: int):
    """Press at step `first`'s column of the heatmap, move to step `last`'s, release."""
    box = canvas.bounding_box()
    x = lambda t: box["x"] + (t + 0.5) * box["width"] / steps  # noqa: E731
    y = box["y"] + box["height"] / 2
    page.mouse.move(x(first), y)
    page.mouse.down()
    page.mouse.move(x(last), y, steps=4)
    page.mouse.up()


def set_threshold(slider, value: float):
    slider.evaluate("(s, v) => { s.value = String(v); s.dispatchEvent(new Event('input', {bubbles: true})); }", value)


def test_brush_threshold_and_open_a_match(jupyter_server, lab):
    page = lab
    write_notebook(jupyter_server.root / "patterns_small.ipynb", PLANTED)
    explorer = open_in_lab(page, "patterns_small.ipynb")
    heatmap = explorer.locator(".rw-heatmap")
    wait_for_ink(heatmap, min_distinct=2)
    count = explorer.locator(".rw-select-count")
    brush = explorer.locator(".rw-brush")
    assert brush.is_hidden() and "drag over the heatmap" in count.inner_text()

    drag(page, heatmap, steps=5, first=1, last=2)  # "((" of the first sequence
    text = wait_for_text(count, lambda s: s.startswith("2 units"))
    assert text == "2 units on over steps [1, 3) and off around: 0, 1", text
    assert brush.is_visible()
    assert explorer.locator(".rw-step").inner_text().startswith("step 0 /"), "the drag's click moved the step"
    assert kernel_sees(page, "list(explorer.view.brush)", "[1, 3]") == "[1, 3]"

    slider = explorer.locator(".rw-threshold")
    set_threshold(slider, 0.7)
    assert wait_for_text(count, lambda s: s.startswith("0 units")).startswith("0 units on over steps [1, 3)")
    set_threshold(slider, 0.0)
    assert wait_for_text(count, lambda s: s.startswith("2 units")).startswith("2 units")
    assert kernel_sees(page, "round(explorer.view.threshold, 3)", "0.0") == "0.0"

    page.get_by_role("button", name="find matches").click()
    rows = page.locator(".rw-match")
    rows.first.wait_for(state="visible", timeout=20_000)
    # every run of "(", by score: the two of the selection's length 2 (1), then of length 3 (2/3), then
    # of length 1 (1/2), each by position
    snippets = [r.locator(".rw-match-tokens").inner_text().replace("\n", "") for r in rows.all()]
    assert snippets == ["a((b<img␣src=x␣onerror=alert(1)>", "((a(", "(a(((", "(a(", "b(a("], snippets  # context 2
    scores = [r.locator(".rw-match-meta").inner_text().split()[-1] for r in rows.all()]
    assert scores == ["1.00", "1.00", "0.67", "0.50", "0.50"], scores
    assert page.locator(".rw-matches img").count() == 0
    heatmaps = page.locator(".rw-match-heatmap")
    assert wait_for_ink(heatmaps.first, min_distinct=2)["inked"] > 0

    rows.nth(2).click()  # "(((" of "b(a((("
    opened = "explorer.trace.meta['dataset_sequence'], list(explorer.view.brush)"
    assert kernel_sees(page, opened, "2 [3, 6]") == "2 [3, 6]"
    assert wait_for_text(explorer.locator(".rw-step"), lambda s: s.startswith("step 3 /")).startswith("step 3 /")
    want = "2 units on over steps [3, 6)"
    assert wait_for_text(count, lambda s: s.startswith(want)).startswith(want)
    assert rows.nth(2).get_attribute("aria-selected") == "true"   # the list shows which match is open


COCLUSTERS = PLANTED.replace("widgets.VBox([explorer, panel])", """\
from rnnwidgets.widgets.patterns import CoClusterView
clusters = CoClusterView(ds, explorer, n_clusters=2)
print("cluster of units 0, 1:", clusters.unit_clusters[clusters.units.index(0)])
widgets.VBox([explorer, clusters])""")
# The cursor overlay's pixels in heatmap.ROW_MARK's colour, per overlay row: the marked units' rows.
MARKED_ROWS_JS = """(c) => {
    const {data} = c.getContext('2d').getImageData(0, 0, c.width, c.height);
    const rows = [];
    for (let y = 0; y < c.height; y++) {
        let n = 0;
        for (let x = 0; x < c.width; x++) {
            const i = 4 * (y * c.width + x);
            if (data[i] === 0 && data[i + 1] === 230 && data[i + 2] === 118 && data[i + 3] === 255) n++;
        }
        rows.push(n);
    }
    return rows;
}"""


def test_clicking_a_cocluster_marks_its_units_rows_on_the_explorer_heatmap(jupyter_server, lab):
    page = lab
    write_notebook(jupyter_server.root / "coclusters_small.ipynb", COCLUSTERS)
    explorer = open_in_lab(page, "coclusters_small.ipynb")
    wait_for_ink(explorer.locator(".rw-heatmap"), min_distinct=2)
    printed = page.locator(".jp-OutputArea-output", has_text="cluster of units 0, 1:").first.inner_text()
    cluster = int(printed.split(":")[-1])
    cursor = explorer.locator(".rw-cursor")
    assert sum(cursor.evaluate(MARKED_ROWS_JS)) == 0, "rows marked before any cluster was chosen"

    page.locator(f".rw-cluster[data-cluster='{cluster}']").click()
    deadline = time.monotonic() + 10
    marked = cursor.evaluate(MARKED_ROWS_JS)
    while sum(marked) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        marked = cursor.evaluate(MARKED_ROWS_JS)
    # units 0 and 1 (rows 0 and 1 of 3): marked at both ends; unit 2's row not at all
    third = len(marked) // 3
    assert all(n > 0 for n in marked[1:2 * third - 1]), marked
    assert not any(marked[2 * third + 1:]), marked
    assert kernel_sees(page, "explorer.view.highlight", "[0, 1]") == "[0, 1]"
