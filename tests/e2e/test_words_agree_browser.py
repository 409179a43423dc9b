"""Words that agree with the picture, in exported pages (no kernel), looked at in Light and Dark:
a window of steps (rw.trace(steps=slice(120, 180))) is numbered 120... in the inputs' title, the
selection count and the comparison too; a bare nn.LSTM traced in train() is "traced in training
mode" with no "(dropout on)"; a log chart's legend says "= 0" for a zero gradient; the dynamics
view of a one-unit layer offers no PC2/PC3 and labels its spectrum's axis at two ticks at least."""
import re
from pathlib import Path

import pytest
from e2e_support import DARK, block_network, wait_for_ink

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).parent / "artifacts"
# every text drawn on a canvas, kept in window.__drawn (the spectrum's axis labels are canvas text)
RECORD_CANVAS_TEXT = """
window.__drawn = [];
const fill = CanvasRenderingContext2D.prototype.fillText;
CanvasRenderingContext2D.prototype.fillText = function (text, x, y, ...rest) {
  window.__drawn.push({ canvas: this.canvas.className, text: String(text), x, y });
  return fill.call(this, text, x, y, ...rest);
};
"""


def shots(page, locator, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    locator.screenshot(path=str(ARTIFACTS / f"{name}_light.png"))
    page.evaluate(DARK)
    page.wait_for_timeout(300)
    locator.screenshot(path=str(ARTIFACTS / f"{name}_dark.png"))


def test_a_window_of_steps_is_numbered_as_the_model_numbers_it_in_every_text(page, tmp_path):
    import torch

    import rnnwidgets as rw

    torch.manual_seed(0)
    model = torch.nn.LSTM(3, 16, batch_first=True).train()   # a bare LSTM in train(): nothing dropped
    x = torch.randn(1, 300, 3)
    window = rw.trace(model, x, steps=slice(120, 180))
    assert window.meta["training"] is True and window.meta["dropout"] is False
    path = rw.explore(window).save_html(tmp_path / "window.html")
    blocked = block_network(page)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(path.as_uri())
    box = page.locator(".rw-explorer").first
    heatmap = box.locator(".rw-heatmap").first
    wait_for_ink(heatmap, min_distinct=10)
    info = box.locator(".rw-tokens-info")
    assert info.inner_text().strip() == "inputs: 3 features · colour: h[0] · step 120 of 120–179"
    box.locator(".rw-slider").first.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('.rw-tokens-info').textContent.includes('step 121 of')")
    caption = box.locator(".rw-heatmap-caption, .rw-caption").first.inner_text()
    assert "traced in training mode" in caption and "dropout" not in caption, caption
    # a drag over the heatmap selects steps: counted and named as the model numbers them
    r = heatmap.bounding_box()
    y = r["y"] + r["height"] / 2
    page.mouse.move(r["x"] + r["width"] * 10.5 / 60, y)
    page.mouse.down()
    page.mouse.move(r["x"] + r["width"] * 14.5 / 60, y, steps=4)
    page.mouse.up()
    count = box.locator(".rw-select-count").inner_text()
    assert re.search(r"over steps \[130, 135\)", count), count
    shots(page, box, "words_window_explorer")
    assert blocked == [], f"the page asked the network for {blocked}"


def test_a_comparison_of_two_windows_numbers_their_steps_from_the_windows_start(page, tmp_path):
    import torch

    import rnnwidgets as rw

    torch.manual_seed(0)
    model = torch.nn.GRU(3, 8, batch_first=True)
    x = torch.randn(1, 300, 3)
    a = rw.trace(model, x, steps=slice(120, 180))
    b = rw.trace(model, x, steps=slice(120, 180), edits=[rw.clamp("gru.l0", "h", [2], range(150, 160), 0.0)])
    path = rw.compare(a, b).save_html(tmp_path / "cmp.html")
    page.goto(path.as_uri())
    view = page.locator(".rw-compare").first
    wait_for_ink(view.locator(".rw-heatmap").first, min_distinct=10)
    assert "h first differs at step 150" in view.locator(".rw-divergence").inner_text()
    assert view.locator(".rw-cmp-flag").inner_text() == "▼ first divergence: step 150"
    assert view.locator(".rw-step").first.inner_text().strip() == "step 120 / 179"
    labels = [int(t) for t in view.locator(".rw-step-axis .rw-tick").all_inner_texts()]
    assert labels[0] == 120 and labels[-1] <= 179, labels
    shots(page, view, "words_window_compare")


def test_a_log_chart_says_zero_and_the_verdict_says_no_dropout_that_is_not_there(page, tmp_path):
    import torch

    import rnnwidgets as rw

    torch.manual_seed(0)
    model = torch.nn.LSTM(3, 6, batch_first=True).train()
    flow = rw.gradient_flow(model, torch.randn(1, 10, 3), loss=lambda out: out[0][:, 3].sum())   # no gradient past 3
    assert (flow.time_chart.y[:, 4:] == 0).all()
    path = flow.save_html(tmp_path / "flow.html")
    page.goto(path.as_uri())
    root = page.locator(".rw-gradient-flow").first
    chart = root.locator(".rw-chart").first
    chart.locator("path.rw-chart-series").first.wait_for(timeout=60_000)
    text = root.inner_text()
    assert "traced in training mode" in text and "dropout on" not in text
    page.locator(".rw-steps .rw-slider").first.focus()
    for _ in range(6):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('.rw-steps .rw-step').textContent.startsWith('step 6 /')")
    values = chart.locator(".rw-chart-value").all_inner_texts()
    assert values and all(v == "= 0" for v in values), values
    shots(page, root, "words_log_chart_zero")


@pytest.mark.parametrize("units", [1, 8])
def test_the_dynamics_of_a_layer_offers_only_its_components_and_labels_two_ticks(page, tmp_path, units):
    import torch

    import rnnwidgets as rw

    torch.manual_seed(0)
    rnn = torch.nn.RNN(2, units, batch_first=True)
    with torch.no_grad():   # W_hh = 0.8 I and small states: sigma near 0.8, within a decade of 1 (10⁰ alone before)
        rnn.weight_hh_l0.copy_(0.8 * torch.eye(units))
        rnn.bias_hh_l0.zero_()
        rnn.bias_ih_l0.zero_()
    dyn = rw.dynamics(rnn, torch.randn(1, 30, 2) * 0.1, k=1)
    sigma = dyn.layers["rnn.l0"].singular_values[0, :, 0]
    assert 0.5 < sigma.min() and sigma.max() <= 0.8 + 1e-6, sigma
    path = rw.DynamicsView(dyn).save_html(tmp_path / "dyn.html")
    page.add_init_script(RECORD_CANVAS_TEXT)
    page.goto(path.as_uri())
    view = page.locator(".rw-dyn").first
    wait_for_ink(view.locator(".rw-dyn-spectrum"), min_distinct=3)
    menu = view.locator(".rw-dyn-yaxis")
    options = menu.locator("option").all_inner_texts()
    drawn = page.evaluate("() => window.__drawn")
    plane = [d["text"] for d in drawn if d["canvas"] == "rw-dyn-plane"]
    if units == 1:
        assert options == [] and not menu.is_visible()
        assert "PC1 only: the layer has one unit" in plane and not any("PC2" in t for t in plane), plane
    else:
        assert options == ["PC2 upwards", "PC3 upwards"] and menu.is_visible()
    # the sigma axis' labels: every text of the spectrum above its bottom row, where "step" and the step labels sit
    spectrum = [d for d in drawn if d["canvas"] == "rw-dyn-spectrum"]
    step_row = max(d["y"] for d in spectrum)
    axis = {d["text"] for d in spectrum if d["y"] < step_row}
    assert len(axis) >= 2 and all(re.fullmatch(r"[0-9.]+|10[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+", t) for t in axis), axis
    shots(page, view, f"words_dynamics_{units}_units")
