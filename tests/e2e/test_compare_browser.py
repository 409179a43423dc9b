"""rw.compare in a real JupyterLab, Light and Dark: what is drawn, measured.

Two runs of a character model, B changed at one step and shorter: the three heatmaps' columns
line up, the divergence marker sits on the column the kernel's analysis names, B's missing steps
are hatched from its end, no label covers another and the text reads; τ and the filter redraw in
the page; and with the kernel shut down the arrow keys still move the cursor, each step's work
timed (printed: the figure the README quotes)."""
import statistics
import sys
from pathlib import Path

import pytest
from conftest import ARTIFACTS, REPO
from e2e_support import (
    block_network,
    canvas_ink,
    close_notebooks,
    kernel_execute,
    kernel_sees,
    open_in_lab,
    wait_for_change,
    wait_for_ink,
    wait_for_text,
    write_notebook,
)
from test_explorer_look_browser import TEXTS_JS, contrast, in_both_themes, overlaps

sys.path.insert(0, str(REPO / "benchmarks"))
from browser import SCRUB_PROBE  # noqa: E402  (the benchmark's timing of one scrub frame)

pytestmark = pytest.mark.e2e

A_TEXT = "(()(()))((()))()"   # 16 steps
B_TEXT = "(()((())(()"        # 11 steps: the same up to step 4, then different
NOTEBOOK = f"""\
import torch, rnnwidgets as rw
torch.manual_seed(0)
vocab = ["(", ")"]

class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(2, 4)
        self.lstm = torch.nn.LSTM(4, 12, batch_first=True)
        self.head = torch.nn.Linear(12, 2)
    def forward(self, ids):
        return self.head(self.lstm(self.embed(ids))[0])

model = Model()
ids = lambda s: torch.tensor([[vocab.index(c) for c in s]])
cmp = rw.compare(model, ids({A_TEXT!r}), ids({B_TEXT!r}), tokens=[list({A_TEXT!r})], tokens_b=[list({B_TEXT!r})],
                 names=("nested", "edited"), decode=vocab)
cmp"""


@pytest.fixture(scope="module")
def compared(lab_page, jupyter_server):
    write_notebook(jupyter_server.root / "compare.ipynb", NOTEBOOK)
    page = lab_page
    page.set_viewport_size({"width": 1400, "height": 1400})
    open_in_lab(page, "compare.ipynb", widget_selector=".rw-compare")
    for side in ("a", "b", "diff"):
        wait_for_ink(page.locator(f".rw-cmp-panel-{side} .rw-heatmap"), min_distinct=10)
    page.wait_for_timeout(500)   # the panels sized, the axes drawn
    page.first = int(kernel_execute(page, "print(cmp.first_divergence())"))
    page.differing = eval(kernel_execute(page, "print(cmp.differing_units())"))  # noqa: S307 (a list the kernel printed)
    yield page
    close_notebooks(page)


# SCRUB_PROBE, its key listeners taken off again by window.rwRemoveScrubProbe(): the Lab page is
# shared with the tests after this module, whose keys must not force a layout each.
PROBE_REMOVABLY = f"""() => {{
    const added = [], add = window.addEventListener;
    window.addEventListener = function (...args) {{ added.push(args); return add.apply(this, args); }};
    try {{ ({SCRUB_PROBE})(); }} finally {{ window.addEventListener = add; }}
    window.rwRemoveScrubProbe = () => {{ for (const args of added) window.removeEventListener(...args); }};
}}"""


def boxes(page):
    return {side: page.locator(f".rw-cmp-panel-{side} .rw-heatmap").bounding_box() for side in ("a", "b", "diff")}


def test_columns_marker_and_unmatched_steps_line_up_and_every_label_reads(compared):
    page = compared
    steps, first = len(A_TEXT), page.first
    assert 0 < first <= 5, first   # the inputs differ from step 5 on; h may already differ there

    def check(theme):
        b = boxes(page)
        for side in ("b", "diff"):   # one time axis: the same left edge and width
            assert abs(b[side]["x"] - b["a"]["x"]) <= 1 and abs(b[side]["width"] - b["a"]["width"]) <= 1, b
        column = b["a"]["width"] / steps
        for side in ("a", "b", "diff"):
            marker = page.locator(f".rw-cmp-panel-{side} .rw-cmp-marker").bounding_box()
            assert marker is not None, f"{theme}: no divergence marker on {side}"
            assert abs(marker["x"] - (b[side]["x"] + first * column)) <= 1.5, (theme, side, marker, first)
            assert abs(marker["width"] - column) <= 1.5, (theme, side, marker)
        for side, end in (("b", len(B_TEXT)), ("diff", len(B_TEXT))):
            hatch = page.locator(f".rw-cmp-panel-{side} .rw-cmp-unmatched")
            box = hatch.bounding_box()
            assert box is not None and abs(box["x"] - (b[side]["x"] + end * column)) <= 1.5, (theme, side, box)
            assert abs(box["x"] + box["width"] - (b[side]["x"] + b[side]["width"])) <= 1.5
        assert not page.locator(".rw-cmp-panel-a .rw-cmp-unmatched").is_visible(), "A has every step"
        # the step ticks centred on their columns
        for tick in page.locator(".rw-compare .rw-step-axis .rw-tick").all():
            t, tb = int(tick.inner_text()), tick.bounding_box()
            assert abs(tb["x"] + tb["width"] / 2 - (b["a"]["x"] + (t + 0.5) * column)) <= 1.5, (t, tb)
        texts = page.locator(".rw-compare").evaluate(TEXTS_JS)
        assert any("first divergence: step" in x["text"] for x in texts)
        assert not overlaps(texts), f"{theme}: labels drawn over each other: {overlaps(texts)}"
        faint = [(x["text"], round(contrast(x["fg"], x["bg"]), 2)) for x in texts
                 if x["cls"] != "rw-token-text" and contrast(x["fg"], x["bg"]) < 4.5]
        assert not faint, f"{theme}: text under 4.5:1 contrast: {faint}"
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator(".rw-compare").screenshot(path=str(ARTIFACTS / f"compare-{theme}.png"))

    in_both_themes(page, check)


def test_tau_and_the_filter_redraw_in_the_page(compared):
    page = compared
    root = page.locator(".rw-compare")
    heat = root.locator(".rw-cmp-panel-diff .rw-heatmap")
    units = heat.evaluate("c => c.height")
    root.locator(".rw-differing").check()
    assert wait_for_change(lambda: heat.evaluate("c => c.height"), units)[0] == len(page.differing)
    rows = [int(t.inner_text()) for t in root.locator(".rw-cmp-panel-diff .rw-row-axis .rw-tick").all()]
    assert set(rows) <= set(page.differing) and rows[0] == page.differing[0], rows
    root.locator(".rw-differing").uncheck()
    tau = root.locator(".rw-tau")
    tau.fill("1000")
    tau.dispatch_event("change")
    divergence = root.locator(".rw-divergence")
    assert "no unit differs" in wait_for_text(divergence, lambda s: "no unit differs" in s)
    assert not root.locator(".rw-cmp-panel-a .rw-cmp-marker").is_visible()
    # the page redraws first; τ reaches the kernel once ipywidgets sends it (polled, as kernel_sees says)
    assert kernel_sees(page, "cmp.tau, cmp.first_divergence()", "1000.0 None") == "1000.0 None"
    tau.fill("0.001")
    tau.dispatch_event("change")
    assert wait_for_text(divergence, lambda s: f"step {page.first}" in s)


def test_the_cursor_moves_with_the_arrow_keys_with_the_kernel_shut_down(compared, jupyter_server):
    page = compared
    kernel = page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.id")
    jupyter_server.api("DELETE", f"/api/kernels/{kernel}")
    page.wait_for_function("""() => { const k = window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel;
                                      return !k || k.status === 'dead' || k.connectionStatus !== 'connected'; }""",
                           timeout=30_000)
    root = page.locator(".rw-compare")
    step, cursor = root.locator(".rw-step"), root.locator(".rw-cmp-panel-diff .rw-cursor")
    at_b = root.locator(".rw-cmp-at-b .rw-token-at")
    root.focus()
    page.keyboard.press("Home")
    assert wait_for_text(step, lambda s: s.startswith("step 0 /")).startswith("step 0 /")
    for t in range(1, len(A_TEXT)):
        before = cursor.evaluate("c => c.toDataURL()")
        page.keyboard.press("ArrowRight")
        assert wait_for_text(step, lambda s, t=t: s.startswith(f"step {t} /")).startswith(f"step {t} /")
        assert wait_for_change(lambda: cursor.evaluate("c => c.toDataURL()"), before)[0] != before
        expected = f"input {B_TEXT[t]}" if t < len(B_TEXT) else f"no step {t}: the run has {len(B_TEXT)}"
        assert at_b.inner_text() == expected, (t, at_b.inner_text())
    assert canvas_ink(cursor)["inked"] > 0
    root.screenshot(path=str(ARTIFACTS / "compare-no-kernel.png"))
    # the work of one step, as benchmarks/browser.py times the Explorer's: sweeps back and forth
    page.evaluate(PROBE_REMOVABLY)
    try:
        for key in (["ArrowLeft"] * (len(A_TEXT) - 1) + ["ArrowRight"] * (len(A_TEXT) - 1)) * 2:
            page.keyboard.press(key)
            page.wait_for_timeout(20)   # one press per frame, as a held key repeats
        page.wait_for_timeout(200)
        times = sorted(page.evaluate("() => window.scrubTimes"))
    finally:
        page.evaluate("() => window.rwRemoveScrubProbe()")
    assert len(times) >= 4 * (len(A_TEXT) - 1) - 2, len(times)
    median, p95 = statistics.median(times), times[int(0.95 * (len(times) - 1))]
    print(f"\ncompare: one step's work (key -> three cursors, token strips, text at t, frame): "
          f"median {median:.1f} ms, p95 {p95:.1f} ms over {len(times)} steps (target <= 16 ms)")


def test_save_html_opens_offline_and_scrubs(tmp_path, browser):
    """The exported file: drawn and scrubbed with no server at all."""
    import subprocess

    page_path = tmp_path / "compare.html"
    code = NOTEBOOK.rsplit("\n", 1)[0] + f"\ncmp.save_html({str(page_path)!r})"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(REPO), timeout=300)
    context = browser.new_context(viewport={"width": 1400, "height": 1200})
    page = context.new_page()
    blocked = block_network(page)
    try:
        page.goto(Path(page_path).as_uri())
        root = page.locator(".rw-compare")
        root.wait_for(state="visible", timeout=60_000)
        assert wait_for_ink(root.locator(".rw-cmp-panel-diff .rw-heatmap"), min_distinct=5)["inked"] > 0
        root.focus()
        page.keyboard.press("End")
        last = len(A_TEXT) - 1
        assert wait_for_text(root.locator(".rw-step"), lambda s: s.startswith(f"step {last} /")).startswith(f"step {last} /")
        assert not blocked, f"the page asked the network for {blocked}"
    finally:
        context.close()
