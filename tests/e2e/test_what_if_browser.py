"""What if, in JupyterLab Light and Dark: with rw.explore(model, ids, patch_from=...), the box in the
Explorer's bar clamps the selected unit over the steps (from t to the end here), the live model
re-runs, and the comparison of before and after, headed by the edit, predictions included, opens
beside the Explorer's view on a 1400x900 page and under it at 900 px wide; its × closes it. The
box's source menu lists the batch's element and the Trace given as patch_from, and patches from
it. Exported without a kernel, the box says that a live model is needed."""
from pathlib import Path

import pytest
from e2e_support import (
    block_network,
    kernel_execute,
    open_in_lab,
    token_model_cell,
    wait_for_ink,
    wait_for_text,
    write_notebook,
)
from test_explorer_look_browser import TEXTS_JS, contrast, in_both_themes, overlaps

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).parent / "artifacts"
MODEL = token_model_cell(
    "LSTM", 12, ', patch_from={"deep": deep}',
    before_explore='deep = rw.trace(model, torch.tensor([[vocab.index(c) for c in "((((((((a))))))))"]]))\n')


def test_clamping_a_unit_opens_the_comparison_of_before_and_after_beside_the_explorer(lab, jupyter_server):
    page = lab
    page.set_viewport_size({"width": 1400, "height": 900})
    write_notebook(jupyter_server.root / "what_if.ipynb", MODEL)
    widget = open_in_lab(page, "what_if.ipynb")
    wait_for_ink(widget.locator(".rw-heatmap"), min_distinct=10)
    text = widget.locator(".rw-whatif-text")
    assert wait_for_text(text, lambda s: s.startswith("unit 0 of rnn.l0 h, steps [0, 15)")) == "unit 0 of rnn.l0 h, steps [0, 15)"
    widget.locator(".rw-whatif-op").select_option("value")
    widget.locator(".rw-whatif-value").fill("3")
    widget.locator(".rw-whatif-run").click()
    said = wait_for_text(text, lambda s: s.endswith("compared") or "could not" in s, timeout=60)
    assert said == "unit 0 of rnn.l0 h, steps [0, 15): before and after compared", said
    compare = page.locator(".rw-explorer-box .rw-compare")
    compare.wait_for(state="visible", timeout=30_000)
    wait_for_ink(compare.locator(".rw-cmp-panel-diff .rw-heatmap"), min_distinct=3)
    heading = compare.locator(".rw-cmp-heading-text").inner_text()
    assert heading.startswith("What if unit 0 of rnn.l0 h were clamped to 3 at steps [0, 15): the best prediction "
                              "changes at "), heading
    for side in ("a", "b"):   # both runs' predictions at t, side by side
        assert wait_for_text(compare.locator(f".rw-cmp-at-{side} .rw-predictions"), lambda s: len(s) > 3)
    assert kernel_execute(page, "print(explorer.what_if.comparison.first_divergence())").strip() == "0"
    assert kernel_execute(page, "print(explorer.what_if.comparison.b.layers['rnn.l0'].h[0, :, 0].min())").strip() \
        == "3.0"

    view, panel = page.locator(".rw-explorer-box > .rw-whatif-main"), page.locator(".rw-explorer-box > .rw-whatif-panel")
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page.set_viewport_size({"width": 1400, "height": 900})
        page.wait_for_timeout(500)   # laid out at the new width
        v, c = view.bounding_box(), panel.bounding_box()
        assert c["x"] >= v["x"] + v["width"] and abs(c["y"] - v["y"]) < 2, f"at 1400 px not beside: view {v}, comparison {c}"
        _pictures(page, "1400")
        _fits(page, compare, "the comparison at 1400 px")
        _fits(page, widget, "the Explorer at 1400 px")
        page.set_viewport_size({"width": 900, "height": 900})
        page.wait_for_timeout(500)
        v, c = view.bounding_box(), panel.bounding_box()
        assert c["y"] >= v["y"] + v["height"] and abs(c["x"] - v["x"]) < 2, f"at 900 px not under: view {v}, comparison {c}"
        _pictures(page, "900")
        _fits(page, compare, "the comparison at 900 px")
        _fits(page, widget, "the Explorer at 900 px")
    finally:
        page.set_viewport_size({"width": 1400, "height": 900})

    # patch from the Trace given as patch_from, picked in the source menu beside the batch's element
    menu = widget.locator(".rw-whatif-source")
    widget.locator(".rw-whatif-op").select_option("patch")
    assert menu.is_visible() and [o.strip() for o in menu.locator("option").all_inner_texts()] == ["element 0", "deep"]
    menu.select_option(label="deep")
    widget.locator(".rw-whatif-run").click()
    said = wait_for_text(text, lambda s: (s.endswith("compared") and "re-running" not in s) or "could not" in s,
                         timeout=60)
    assert wait_for_text(compare.locator(".rw-cmp-heading-text"), lambda s: "'deep'" in s, timeout=30) \
        .startswith("What if unit 0 of rnn.l0 h were patched from 'deep' at steps [0, 15)")
    assert kernel_execute(page, "import numpy as np; print(np.array_equal(explorer.what_if.comparison.b.layers"
                                "['rnn.l0'].h[0, :, 0], deep.layers['rnn.l0'].h[0, :15, 0]))").strip() == "True"

    # the × closes it: the Explorer's view has its row to itself again, and the kernel let it go
    width = view.bounding_box()["width"]
    compare.locator(".rw-cmp-close").click()
    panel.wait_for(state="detached", timeout=30_000)
    page.wait_for_timeout(300)
    assert view.bounding_box()["width"] > width * 1.3, (width, view.bounding_box())
    assert kernel_execute(page, "print(explorer.what_if.comparison)").strip() == "None"


def _fits(page, locator, what):
    """Nothing of `locator`'s view reaches past its right edge (a scroll bar's worth of slack), as
    drawn: an element's box is cut at an ancestor that clips (overflow not visible, as an inline
    svg's is), so the cell drawing's unfilled bounds rectangle, clipped by its svg, is not counted."""
    over = locator.evaluate("""(root) => {
        const R = root.getBoundingClientRect();
        let worst = [0, ''];
        for (const e of root.querySelectorAll('*')) {
            const r = e.getBoundingClientRect();
            if (!r.width || getComputedStyle(e).display === 'none') continue;
            let right = r.right;
            for (let a = e.parentElement; a && a !== root; a = a.parentElement)
                if (getComputedStyle(a).overflowX !== 'visible') right = Math.min(right, a.getBoundingClientRect().right);
            if (right - R.right > worst[0])
                worst = [right - R.right, String(e.className?.baseVal ?? e.className) + ' ' + (e.textContent || '').slice(0, 40)];
        }
        return worst;
    }""")
    assert over[0] <= 1, f"{what}: {over[1]!r} reaches {over[0]:.0f} px past its right edge"


def _pictures(page, width: str):
    """The Explorer's box (and the page) in Light and Dark at this width; in both, every label of
    the Explorer and of the comparison reads at 4.5:1 or more and none covers another."""
    box = page.locator(".rw-explorer-box").first

    def check(theme):
        if width == "900":   # the comparison is under the view: bring it on screen
            page.locator(".rw-explorer-box .rw-compare").evaluate("e => e.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(300)
            page.screenshot(path=str(ARTIFACTS / f"what-if-{width}-{theme}-page.png"))
        else:
            box.screenshot(path=str(ARTIFACTS / f"what-if-{width}-{theme}.png"))
            page.screenshot(path=str(ARTIFACTS / f"what-if-{width}-{theme}-page.png"))
        for name in (".rw-explorer", ".rw-compare"):
            texts = box.locator(name).first.evaluate(TEXTS_JS)
            assert len(texts) > 20, f"{name} at {width} px, {theme}: only {len(texts)} labels found"
            poor = [(t["text"], t["cls"], round(contrast(t["fg"], t["bg"]), 2)) for t in texts
                    if contrast(t["fg"], t["bg"]) < 4.5]
            assert not poor, f"{name} at {width} px, {theme}: labels under 4.5:1 contrast: {poor}"
            assert not overlaps(texts), f"{name} at {width} px, {theme}: labels over each other: {overlaps(texts)[:5]}"

    in_both_themes(page, check)


def test_without_a_kernel_the_box_says_a_live_model_is_needed(page, tmp_path):
    namespace: dict = {}
    exec(MODEL.rsplit("\n", 1)[0], namespace)                # the model and Explorer above, in this process
    path = namespace["explorer"].save_html(tmp_path / "what_if.html")
    blocked = block_network(page)
    page.goto(path.as_uri())
    root = page.locator(".rw-explorer").first
    wait_for_ink(root.locator(".rw-heatmap"), min_distinct=10)
    root.locator(".rw-whatif-run").click()
    text = wait_for_text(root.locator(".rw-whatif-text"), lambda s: "live model" in s, timeout=30)
    assert text.startswith("clamp and patch re-run the model: they need a live model in a running kernel"), text
    ARTIFACTS.mkdir(exist_ok=True)
    root.screenshot(path=str(ARTIFACTS / "what-if-no-kernel.png"))
    assert blocked == []
