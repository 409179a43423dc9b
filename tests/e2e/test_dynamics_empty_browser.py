"""The Explorer's dynamics panel on a layer with no steps in its window, in JupyterLab Light and
Dark: instead of empty plots it shows one sentence, as text, saying why (the encoder ends at step 4;
the window is steps 6–9, and layers= left the encoder out of the trace)."""
from pathlib import Path

import pytest
from e2e_support import in_each_theme, open_in_lab, wait_for_ink, write_notebook
from test_attribution_browser import CONTRAST_JS  # WCAG contrast of an element's text on its background

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).parent / "artifacts"
SENTENCE = ("encoder.l0 has no steps in the window shown (steps 6–9): it runs 5 steps, 0–4, so there is nothing "
            "of it to draw here.")
EXPLORE_WINDOW = """\
import torch, rnnwidgets as rw
from torch import nn

class EncoderDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = nn.GRU(3, 4, batch_first=True), nn.GRU(3, 4, batch_first=True)

    def forward(self, source, target):
        return self.decoder(target, self.encoder(source)[1])[0]

torch.manual_seed(3)
explorer = rw.explore(EncoderDecoder(), torch.randn(1, 5, 3), kwargs={"target": torch.randn(1, 10, 3)},
                      steps=slice(6, 10), layers=["decoder"], dynamics=True)
explorer.dynamics.layer = "encoder.l0"   # the layer layers= left out: none of its steps is in 6-9
explorer"""

def test_a_layer_with_no_steps_in_the_window_shows_why_in_each_theme(lab, jupyter_server):
    page = lab
    write_notebook(jupyter_server.root / "dynamics_empty.ipynb", EXPLORE_WINDOW)
    widget = open_in_lab(page, "dynamics_empty.ipynb")
    wait_for_ink(widget.locator(".rw-heatmap"), min_distinct=2)      # the Explorer itself drew the decoder
    panel = page.locator(".rw-dyn").first
    empty = panel.locator(".rw-dyn-empty")
    empty.wait_for(state="visible", timeout=30_000)
    assert empty.inner_text() == SENTENCE
    assert empty.evaluate("e => e.children.length") == 0                # text, never HTML
    for part in (".rw-dyn-row", ".rw-dyn-aligned-row", ".rw-dyn-readout", ".rw-dyn-legend", ".rw-dyn-slider"):
        assert not panel.locator(part).is_visible(), part               # no empty plots around it
    assert panel.locator(".rw-dyn-title").inner_text().startswith("encoder.l0")
    ARTIFACTS.mkdir(exist_ok=True)

    def check(theme):
        assert empty.evaluate(CONTRAST_JS) >= 4.5, theme
        panel.screenshot(path=str(ARTIFACTS / f"dynamics-empty-{theme}.png"))
        page.locator(".rw-explorer-box").first.screenshot(path=str(ARTIFACTS / f"dynamics-empty-explorer-{theme}.png"))
    in_each_theme(page, check)
