"""What if, in JupyterLab Light and Dark: with rw.explore(model, ids), the box in the Explorer's bar
clamps the selected unit over the steps (from t to the end here), the live model re-runs, and the
comparison of before and after, predictions included, opens under the Explorer's view. Exported
without a kernel, the box says that a live model is needed."""
from pathlib import Path

import pytest
from e2e_support import block_network, kernel_execute, open_and_run, wait_for_ink, wait_for_text, write_notebook

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).parent / "artifacts"
MODEL = """\
import torch, torch.nn as nn, rnnwidgets as rw
torch.manual_seed(0)
class Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.rnn, self.head = nn.Embedding(4, 8), nn.LSTM(8, 12, batch_first=True), nn.Linear(12, 4)
    def forward(self, ids):
        return self.head(self.rnn(self.emb(ids))[0])
vocab = list("()ab")
text = "(a(b(ab)a)(b))a"
ids = torch.tensor([[vocab.index(c) for c in text]])
explorer = rw.explore(Tokens().eval(), ids, tokens=[list(text)], decode=vocab)
explorer"""


def test_clamping_a_unit_opens_the_comparison_of_before_and_after(page, jupyter_server):
    write_notebook(jupyter_server.root / "what_if.ipynb", MODEL)
    widget = open_and_run(page, jupyter_server.lab_url("what_if.ipynb"))
    wait_for_ink(widget.locator(".rw-heatmap"), min_distinct=10)
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
    try:
        for theme, light in (("JupyterLab Light", "true"), ("JupyterLab Dark", "false")):
            _set_theme(page, theme, light)
            page.wait_for_timeout(300)   # the theme's CSS applied
            box.screenshot(path=str(ARTIFACTS / f"what-if-{theme.split()[1].lower()}.png"))
    finally:   # the theme is a user setting of the shared server: the tests after this one run in Light
        _set_theme(page, "JupyterLab Light", "true")


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


def _set_theme(page, theme: str, light: str):
    page.evaluate(f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{theme}'}})")
    page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'", timeout=30_000)
