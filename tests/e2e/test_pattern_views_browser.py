"""The pattern views of the patterns tutorial (notebooks/03_patterns.ipynb), as a student sees them
in JupyterLab Light and Dark at 1400x900, measured from the DOM and the pixels: its first Explorer
shows what its text describes (the stretch brushed, θ on the unit lines at its value, the gates,
the predictions and the LSTM's equations); the co-cluster matrix is labelled (unit ids, tokens),
has a legend and lines between its groups and fills the cell; the match list shows ranked scores
and half-open step ranges; clicking a match selects it and brings its Explorer into view with the
match brushed. Every label reads (contrast >= 4.5:1) and none overlaps another. Screenshots go
to artifacts/patterns-*.png."""
import re
import time

import pytest
from conftest import ARTIFACTS
from e2e_support import close_notebooks, kernel_execute, open_in_lab, wait_for_ink, wait_for_text
from test_explorer_look_browser import TEXTS_JS, contrast, in_both_themes, overlaps

pytestmark = pytest.mark.e2e

NOTEBOOK = "03_patterns.ipynb"


@pytest.fixture(scope="module")
def tutorial(lab_page, jupyter_server):
    """The patterns tutorial run top to bottom on a 1400x900 page."""
    page = lab_page
    page.set_viewport_size({"width": 1400, "height": 900})
    open_in_lab(page, NOTEBOOK, timeout=600_000)
    page.locator(".rw-coclusters").first.wait_for(state="visible", timeout=600_000)
    page.locator(".rw-match").first.wait_for(state="visible", timeout=60_000)
    wait_for_ink(page.locator(".rw-explorer .rw-heatmap").first, min_distinct=10, timeout=60)
    wait_for_ink(page.locator(".rw-cocluster-matrix").first, min_distinct=3, timeout=60)
    page.wait_for_timeout(800)  # the panels sized to their columns
    yield page
    close_notebooks(page)


def readable_and_apart(page, selector: str, theme: str, at_least: int):
    """Every text label of the first `selector` element reads and none covers another."""
    texts = page.locator(selector).first.evaluate(TEXTS_JS)
    assert len(texts) >= at_least, f"{theme}: only {len(texts)} labels in {selector}: {[t['text'] for t in texts]}"
    poor = [(t["text"], t["cls"], round(contrast(t["fg"], t["bg"]), 2)) for t in texts if contrast(t["fg"], t["bg"]) < 4.5]
    assert not poor, f"{theme}: labels of {selector} under 4.5:1 contrast: {poor}"
    assert not overlaps(texts), f"{theme}: labels of {selector} drawn over each other: {overlaps(texts)}"
    return texts


def test_the_first_explorer_shows_what_its_text_describes(tutorial):
    page = tutorial
    explorer = page.locator(".rw-explorer").first
    assert explorer.locator(".rw-quantity").input_value() == "c"
    count = explorer.locator(".rw-select-count").inner_text()
    assert re.fullmatch(r"1 unit on over steps \[25, 29\) and off around: \d+", count), count
    assert explorer.locator(".rw-brush").is_visible()
    # the same half-open range where the notebook prints it and in the DataFrame's first row
    printed = page.locator(".jp-OutputArea-output", has_text="at θ =").first.inner_text()
    assert "steps [25, 29)" in printed, printed
    row = "everything.query('sequence == @sequence and start == @begin')[['start', 'end']].values.tolist()"
    assert kernel_execute(page, f"print({row})").strip() == "[[25, 29]]"
    # the dataset's Explorer has every panel: gates, predictions, the LSTM's own equations
    options = explorer.locator(".rw-quantity option").all_inner_texts()
    assert {"input", "forget", "cell", "output"} <= {o.split()[0] for o in options}, options
    assert explorer.locator(".rw-predictions").inner_text().startswith("next: ")
    assert "f = σ(" in explorer.locator(".rw-cellview").inner_text()


def test_theta_is_drawn_on_the_unit_lines_at_its_value(tutorial):
    page = tutorial
    explorer = page.locator(".rw-explorer").first
    line = explorer.locator(".rw-units-plot .rw-threshold-line")
    assert line.is_visible()
    theta = float(kernel_execute(page, "print(explorer.view.threshold)"))
    assert line.inner_text() == f"θ = {theta:.3f}"
    plot = explorer.locator(".rw-units-plot").bounding_box()
    ticks = [float(t.replace("−", "-")) for t in explorer.locator(".rw-units-yaxis:not(.rw-units-yaxis-right) .rw-tick").all_inner_texts()]
    top, bottom = ticks[0], ticks[-1]   # the left axis (theta is drawn on it): the plot's top and bottom values
    want = plot["y"] + (top - theta) / (top - bottom) * (plot["height"] - 1)
    got = line.bounding_box()["y"]
    assert abs(got - want) <= 2, f"θ = {theta} drawn at y {got:.1f}, its value is at {want:.1f} (axis {top}..{bottom})"


def test_the_cocluster_matrix_is_labelled_with_a_legend_and_group_lines(tutorial):
    page = tutorial
    view = page.locator(".rw-coclusters").first
    view.scroll_into_view_if_needed()
    units = int(kernel_execute(page, "print(len(clusters.units))"))
    tokens = kernel_execute(page, "print(''.join(clusters.tokens))").strip()
    groups = kernel_execute(page, "print(len(set(clusters.unit_clusters)), len(set(clusters.token_clusters)))").split()
    output = page.locator(".jp-OutputArea-output:has(.rw-coclusters)").first.bounding_box()
    matrix = view.locator(".rw-cocluster-matrix").bounding_box()
    assert matrix["width"] >= 0.5 * output["width"], f"the matrix is {matrix['width']} px of a {output['width']} px cell"

    def check(theme):
        view.scroll_into_view_if_needed()
        matrix = view.locator(".rw-cocluster-matrix").bounding_box()
        readable_and_apart(page, ".rw-coclusters", theme, at_least=units + len(tokens) + 4)
        unit_labels = view.locator(".rw-cocluster-units .rw-tick").all_inner_texts()
        assert sorted(map(int, unit_labels)) == list(range(units)), unit_labels   # 16 rows: every one labelled
        assert "".join(view.locator(".rw-cocluster-tokens .rw-tick").all_inner_texts()) == tokens
        for label in view.locator(".rw-cocluster-units .rw-tick").all():   # each unit id beside its row
            box = label.bounding_box()
            assert matrix["y"] - 1 <= box["y"] + box["height"] / 2 <= matrix["y"] + matrix["height"] + 1
        legend = view.locator(".rw-legend").inner_text()
        assert "colour: mean change of c of lstm.l0 at the token" in legend and "scaled symmetrically" in legend, legend
        assert wait_for_ink(view.locator(".rw-legend canvas"), min_distinct=20)["inked"] > 0
        lines = view.locator(".rw-cocluster-separator")
        assert lines.count() == int(groups[0]) - 1 + int(groups[1]) - 1
        for k in range(lines.count()):
            box = lines.nth(k).bounding_box()
            assert box and max(box["width"], box["height"]) >= 0.99 * min(matrix["width"], matrix["height"])
        view.screenshot(path=str(ARTIFACTS / f"patterns-coclusters-{theme}.png"))

    ARTIFACTS.mkdir(exist_ok=True)
    in_both_themes(page, check)


def test_the_match_list_shows_ranked_scores_and_half_open_ranges(tutorial):
    page = tutorial
    matches = page.locator(".rw-matches").first
    matches.scroll_into_view_if_needed()
    metas = matches.locator(".rw-match-meta").all_inner_texts()
    scores = [float(m.split()[-1]) for m in metas]
    assert scores == sorted(scores, reverse=True) and scores[0] == 1.0, metas
    # the score ranks: the integer score of before gave every match of the tutorial 0 or -1
    spread = kernel_execute(page, "print(everything.score.nunique(), everything.score.min() < 0.5)").split()
    assert int(spread[0]) > 3 and spread[1] == "True", spread
    frame = kernel_execute(page, "print(frame[['sequence', 'start', 'end', 'score']].head(3).values.tolist())")
    for meta, (seq, start, end, score) in zip(metas, eval(frame)):  # noqa: S307 - our own kernel's numbers
        assert meta.split() == [f"#{int(seq)}", f"[{int(start)},", f"{int(end)})", f"{score:.2f}"], (meta, frame)
    assert "steps [start, end): end excluded" in matches.locator(".rw-match-explain").inner_text()

    def check(theme):
        readable_and_apart(page, ".rw-matches", theme, at_least=20)
        matches.screenshot(path=str(ARTIFACTS / f"patterns-matches-{theme}.png"))

    ARTIFACTS.mkdir(exist_ok=True)
    in_both_themes(page, check)


def _in_view(page, locator) -> bool:
    box = locator.bounding_box()
    return bool(box) and box["y"] >= 0 and box["y"] + box["height"] <= page.viewport_size["height"] + 1


def test_clicking_a_match_selects_it_and_brings_its_explorer_into_view(tutorial):
    page = tutorial
    rows = page.locator(".rw-match")
    row = rows.nth(3)
    row.scroll_into_view_if_needed()
    heatmap = page.locator(".rw-explorer .rw-heatmap").first
    assert not _in_view(page, heatmap), "the Explorer was in view before the click: the test shows nothing"
    meta = row.locator(".rw-match-meta").inner_text().split()
    sequence, start, end = int(meta[0][1:]), int(meta[1][1:-1]), int(meta[2][:-1])
    row.click()
    deadline = time.monotonic() + 10
    while not _in_view(page, heatmap) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _in_view(page, heatmap), f"the Explorer's heatmap is not in view after the click: {heatmap.bounding_box()}"
    explorer = page.locator(".rw-explorer").first
    count = explorer.locator(".rw-select-count")
    text = wait_for_text(count, lambda s: f"steps [{start}, {end})" in s)
    assert f"steps [{start}, {end})" in text, text
    assert explorer.locator(".rw-brush").is_visible() and _in_view(page, explorer.locator(".rw-brush"))
    opened = kernel_execute(page, "print(explorer.trace.meta['dataset_sequence'], panel.view.selected)").split()
    assert opened == [str(sequence), "3"], opened
    # the list keeps the match marked, here and after the kernel's answer redraws it
    assert page.locator(".rw-match-selected").count() == 1
    assert page.locator(".rw-match-selected").get_attribute("data-index") == "3"
    page.screenshot(path=str(ARTIFACTS / "patterns-match-opened.png"))
    # a cluster's click brings the Explorer into view too, its units marked
    page.locator(".rw-cluster").first.scroll_into_view_if_needed()
    assert not _in_view(page, heatmap)
    page.locator(".rw-cluster").first.click()
    deadline = time.monotonic() + 10
    while not _in_view(page, heatmap) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _in_view(page, heatmap)
    assert page.locator(".rw-cluster").first.get_attribute("aria-pressed") == "true"
