"""The cell view of an LSTM traced without its gates (rw.trace_dataset(..., quantities=("h", "c")))
draws the LSTM's cell, the gates it has not recorded marked, in JupyterLab Light and Dark: its
labels read (contrast >= 4.5:1) and none overlaps another. Screenshots: artifacts/cellview-hc-*.png."""
import pytest
from conftest import ARTIFACTS
from e2e_support import open_in_lab, wait_for_ink, write_notebook
from test_explorer_look_browser import TEXTS_JS, contrast, in_both_themes, overlaps

pytestmark = pytest.mark.e2e

NOTEBOOK = """\
import torch
from torch import nn
import rnnwidgets as rw
torch.manual_seed(0)
lstm = nn.LSTM(3, 6, batch_first=True)
batches = [torch.randn(2, 20, 3) for _ in range(2)]
ds = rw.trace_dataset(lstm, batches, quantities=("h", "c"), progress=False)
explorer = rw.explore(ds.sequence(1))
explorer.select(unit=2, t=7)
explorer"""


def test_an_lstm_traced_with_h_and_c_gets_the_lstm_cell_drawing(lab, jupyter_server):
    page = lab
    write_notebook(jupyter_server.root / "cellview_kind.ipynb", NOTEBOOK)
    page.set_viewport_size({"width": 1400, "height": 900})
    open_in_lab(page, "cellview_kind.ipynb", timeout=120_000)
    wait_for_ink(page.locator(".rw-explorer .rw-heatmap").first, min_distinct=10, timeout=60)
    cell = page.locator(".rw-explorer .rw-cellview").first
    page.wait_for_function("() => document.querySelector('.rw-explorer .rw-cellview-header')?.textContent"
                           ".includes('unit 2 · step 7')", timeout=30_000)
    flows = cell.locator("svg path[data-flow]").evaluate_all("ps => ps.map(p => p.dataset.flow)")
    assert flows == ["carry", "write", "out"], f"not the LSTM's drawing: {flows}"
    dashed = cell.locator("svg path[stroke-dasharray]").evaluate_all("ps => ps.map(p => p.dataset.flow)")
    assert dashed == ["carry", "write"], dashed
    text = cell.inner_text()
    assert "f = σ(W_if xₜ + b_if + W_hf hₜ₋₁ + b_hf): not recorded" in text, text
    assert "gates not recorded: input, forget, cell, output" in text, text
    ARTIFACTS.mkdir(exist_ok=True)

    def check(theme):
        section = page.locator(".rw-explorer .rw-section-cell").first
        section.scroll_into_view_if_needed()
        texts = section.evaluate(TEXTS_JS)
        assert len(texts) >= 10, f"{theme}: only {len(texts)} labels: {[t['text'] for t in texts]}"
        poor = [(t["text"], t["cls"], round(contrast(t["fg"], t["bg"]), 2)) for t in texts
                if contrast(t["fg"], t["bg"]) < 4.5]
        assert not poor, f"{theme}: labels under 4.5:1: {poor}"
        assert not overlaps(texts), f"{theme}: labels over each other: {overlaps(texts)}"
        section.screenshot(path=str(ARTIFACTS / f"cellview-hc-{theme}.png"))
        page.locator(".rw-explorer").first.screenshot(path=str(ARTIFACTS / f"cellview-hc-explorer-{theme}.png"))

    in_both_themes(page, check)
