"""What if, in JupyterLab Light and Dark: with rw.explore(model, ids), the box in the Explorer's bar
clamps the selected unit over the steps (from t to the end here), the live model re-runs, and the
comparison of before and after, predictions included, opens under the Explorer's view. Exported
without a kernel, the box says that a live model is needed."""
from pathlib import Path

import pytest
from e2e_support import (
    explorer_made_here,
    in_each_theme,
    kernel_execute,
    open_explorer_notebook,
    open_offline,
    token_model_cell,
    wait_for_ink,
    wait_for_text,
)

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).parent / "artifacts"
MODEL = token_model_cell("LSTM", 12)


def test_clamping_a_unit_opens_the_comparison_of_before_and_after(page, jupyter_server):
    widget = open_explorer_notebook(page, jupyter_server, "what_if.ipynb", MODEL)
    text = widget.locator(".rw-whatif-text")
    assert wait_for_text(text, lambda s: s.startswith("unit 0 of rnn.l0 h, steps [0, 15)")) == "unit 0 of rnn.l0 h, steps [0, 15)"
    widget.locator(".rw-whatif-op").select_option("value")
    widget.locator(".rw-whatif-value").fill("3")
    widget.locator(".rw-whatif-run").click()
    said = wait_for_text(text, lambda s: "compared below" in s or "could not" in s, timeout=60)
    assert said == "unit 0 of rnn.l0 h, steps [0, 15): before and after compared below", said
    compare = page.locator(".rw-explorer-box .rw-compare")
    compare.wait_for(state="visible", timeout=30_000)
    wait_for_ink(compare.locator(".rw-cmp-panel-diff .rw-heatmap"), min_distinct=3)
    for side in ("a", "b"):   # both runs' predictions at t, side by side
        assert wait_for_text(compare.locator(f".rw-cmp-at-{side} .rw-predictions"), lambda s: len(s) > 3)
    assert kernel_execute(page, "print(explorer.what_if.comparison.first_divergence())").strip() == "0"
    assert kernel_execute(page, "print(explorer.what_if.comparison.b.layers['rnn.l0'].h[0, :, 0].min())").strip() \
        == "3.0"

    ARTIFACTS.mkdir(exist_ok=True)
    box = page.locator(".rw-explorer-box").first
    in_each_theme(page, lambda theme: box.screenshot(path=str(ARTIFACTS / f"what-if-{theme}.png")))


def test_without_a_kernel_the_box_says_a_live_model_is_needed(page, tmp_path):
    explorer = explorer_made_here(MODEL)                      # the model and Explorer above, in this process
    blocked = open_offline(page, explorer.save_html(tmp_path / "what_if.html"))
    root = page.locator(".rw-explorer").first
    wait_for_ink(root.locator(".rw-heatmap"), min_distinct=10)
    root.locator(".rw-whatif-run").click()
    text = wait_for_text(root.locator(".rw-whatif-text"), lambda s: "live model" in s, timeout=30)
    assert text.startswith("clamp and patch re-run the model: they need a live model in a running kernel"), text
    ARTIFACTS.mkdir(exist_ok=True)
    root.screenshot(path=str(ARTIFACTS / "what-if-no-kernel.png"))
    assert blocked == []
