"""An encoder over 7 source tokens and its decoder run for 10 steps, in one Explorer in JupyterLab:
picking the decoder puts the slider, the step text, the heatmap's columns and the token strip on
its 10 steps and target tokens, scrubbing reaches its step 9 (the kernel hears it), and going
back to the encoder puts them on its 7 steps and source tokens."""
import re
from pathlib import Path

import pytest
from e2e_support import DARK, focus_slider, kernel_sees, open_in_lab, wait_for_ink, wait_for_text, write_notebook

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).parent / "artifacts"
SEQ2SEQ = """\
import torch, torch.nn as nn, torch.nn.functional as F, rnnwidgets as rw
torch.manual_seed(0)
class Seq2Seq(nn.Module):   # the seq2seq tutorial's EncoderRNN + DecoderRNN, driven in one module
    def __init__(self):
        super().__init__()
        self.src_emb, self.tgt_emb = nn.Embedding(12, 8), nn.Embedding(11, 8)
        self.encoder, self.decoder = nn.GRU(8, 8, batch_first=True), nn.GRU(8, 8, batch_first=True)
        self.out = nn.Linear(8, 11)
    def forward(self, src):
        _, hidden = self.encoder(self.src_emb(src))
        token, outs = torch.zeros(src.shape[0], 1, dtype=torch.long), []
        for _ in range(10):
            out, hidden = self.decoder(F.relu(self.tgt_emb(token)), hidden)
            outs.append(self.out(out))
            token = outs[-1].argmax(-1)
        return torch.cat(outs, 1)
source = "the cat sat on the mat .".split()
target = "le chat était assis sur le tapis . <eos> <pad>".split()
explorer = rw.explore(Seq2Seq().eval(), torch.randint(0, 12, (1, 7)),
                      tokens={"encoder": source, "decoder": target})
explorer.select(layer="encoder.l0")
explorer"""


def test_each_layer_on_its_own_time_axis(lab, jupyter_server):
    page = lab
    write_notebook(jupyter_server.root / "time_axes.ipynb", SEQ2SEQ)
    widget = open_in_lab(page, "time_axes.ipynb")
    heatmap = widget.locator(".rw-heatmap")
    wait_for_ink(heatmap, min_distinct=10)
    slider, step, strip = widget.locator(".rw-slider"), widget.locator(".rw-step"), widget.locator(".rw-tokens")
    assert slider.get_attribute("max") == "6"
    assert heatmap.evaluate("c => c.width") == 7
    assert widget.locator(".rw-token").evaluate_all("ts => ts.filter(t => t.style.display !== 'none').length") == 7
    assert "mat" in strip.inner_text() and "tapis" not in strip.inner_text()

    widget.locator(".rw-layer").select_option("decoder.l0")
    assert wait_for_text(step, lambda s: s.startswith("step 0 / 9")).startswith("step 0 / 9"), step.inner_text()
    assert slider.get_attribute("max") == "9"
    assert heatmap.evaluate("c => c.width") == 10
    assert "tapis" in strip.inner_text() and "mat" not in strip.inner_text()
    focus_slider(page, ".rw-explorer")
    for _ in range(10):                     # one press past the decoder's last step stays on it
        page.keyboard.press("ArrowRight")
    assert wait_for_text(step, lambda s: s.startswith("step 9 / 9")).startswith("step 9 / 9"), step.inner_text()
    assert widget.locator(".rw-token-current").inner_text() == "<pad>"
    assert widget.locator(".rw-token-at").inner_text() == "<pad>"
    assert widget.locator(".rw-predictions").inner_text().startswith("next: ")   # the decoder's outputs
    assert kernel_sees(page, "explorer.view.layer, explorer.view.t", "decoder.l0 9") == "decoder.l0 9"
    ARTIFACTS.mkdir(exist_ok=True)
    widget.screenshot(path=str(ARTIFACTS / "time_axes_decoder_step9.png"))

    widget.locator(".rw-layer").select_option("encoder.l0")    # 7 steps: its last is shown
    assert wait_for_text(step, lambda s: s.startswith("step 6 / 6")).startswith("step 6 / 6"), step.inner_text()
    assert slider.get_attribute("max") == "6"
    assert widget.locator(".rw-token-current").inner_text() == "."
    assert widget.locator(".rw-predictions").inner_text() == ""   # not the encoder's steps
    assert kernel_sees(page, "explorer.view.layer, explorer.view.t", "encoder.l0 6") == "encoder.l0 6"


def test_a_trace_of_a_window_of_steps_labels_its_columns_with_the_models_own_steps(page, tmp_path):
    """rw.trace(steps=slice(120, 180)) opened in the Explorer (an exported file, no kernel): the
    step axes read 120 ... 179, not 0 ... 59, and so do the step text and the state bars' header
    (step 120 / 179 at the first step, 121 after a step); looked at in Light and Dark."""
    import torch

    import rnnwidgets as rw

    torch.manual_seed(0)
    model = torch.nn.LSTM(3, 16, batch_first=True)
    window = rw.trace(model, torch.randn(1, 300, 3), steps=slice(120, 180))
    path = rw.explore(window).save_html(tmp_path / "window.html")
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(path.as_uri())
    wait_for_ink(page.locator(".rw-heatmap").first, min_distinct=10)
    axes = page.locator(".rw-explorer .rw-step-axis")    # the heatmap's and the unit plot's
    axes.first.locator(".rw-tick").first.wait_for()
    assert axes.count() == 2
    for k in range(2):
        labels = [int(t) for t in axes.nth(k).locator(".rw-tick").all_inner_texts()]
        assert labels[0] == 120 and labels[-1] <= 179 and len(labels) >= 3, labels
        assert all(b > a for a, b in zip(labels, labels[1:])), str(labels)
    step_text = page.locator(".rw-explorer .rw-step").first
    assert step_text.inner_text().strip() == "step 120 / 179"
    page.locator(".rw-explorer .rw-slider").first.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('.rw-explorer .rw-step').textContent.trim() === 'step 121 / 179'")
    assert "at step 121" in page.locator(".rw-explorer").first.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(".rw-explorer").first.screenshot(path=str(ARTIFACTS / "window_steps_light.png"))
    page.evaluate(DARK)
    page.wait_for_timeout(300)
    page.locator(".rw-explorer").first.screenshot(path=str(ARTIFACTS / "window_steps_dark.png"))


def test_a_window_of_steps_gradient_views_say_the_models_own_steps(page, tmp_path):
    """rw.trace(steps=slice(120, 180), loss=...) in the Explorer (an exported file, no kernel): the
    gradient charts' x ticks, the grid's columns and hover readout and the verdict say 120 ... 179,
    and the charts' cursors sit on the tick of the Explorer's step; a GradientFlow of the same trace
    says "step 120 / 179" at its step control. Looked at in Light and Dark."""
    import torch

    import rnnwidgets as rw

    torch.manual_seed(0)
    model = torch.nn.LSTM(3, 16, batch_first=True)
    window = rw.trace(model, torch.randn(1, 300, 3), steps=slice(120, 180),
                      loss=lambda out: out[0][:, 170].sum())          # steps 171..179 are not read
    path = rw.explore(window).save_html(tmp_path / "window_gradients.html")
    page.set_viewport_size({"width": 1400, "height": 2400})
    page.goto(path.as_uri())
    flow = page.locator(".rw-gradient-flow").first
    charts = flow.locator('.rw-chart[data-kind="lines"]')
    charts.first.locator("path.rw-chart-series").first.wait_for(timeout=60_000)
    assert charts.count() == 2                                          # through time; by gate path
    for k in range(2):
        labels = [int(t) for t in charts.nth(k).locator('.rw-chart-tick[data-axis="x"]').all_text_contents()]
        assert labels[0] == 120 and 130 in labels and labels[-1] <= 179 and len(labels) >= 3, labels
        assert all(b > a for a, b in zip(labels, labels[1:])), labels
    verdict = flow.locator(".widget-html").first.inner_text()
    assert "(to step 170)" in verdict and "measured over steps 120–170" in verdict, verdict
    assert "steps 0–" not in verdict and not re.search(r"\bstep [0-9]{1,2}\b", verdict), verdict
    grid = flow.locator(".rw-grid")
    assert grid.locator(".rw-grid-axis").inner_text().split() == ["120", "step", "t", "179"]

    def cursor_on(chart, label: str) -> bool:   # the cursor's x is the x of the tick saying `label`
        tick = chart.locator('.rw-chart-tick[data-axis="x"]', has_text=re.compile(f"^{label}$"))
        return abs(float(chart.locator(".rw-chart-cursor").get_attribute("x1")) - float(tick.get_attribute("x"))) < 0.6

    assert cursor_on(charts.first, "120")
    page.locator(".rw-explorer .rw-slider").first.focus()
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('.rw-explorer .rw-step').textContent.trim() === 'step 130 / 179'")
    assert cursor_on(charts.first, "130") and cursor_on(charts.nth(1), "130")
    grid.scroll_into_view_if_needed()
    box = grid.locator(".rw-heatmap").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 10.5 / 60, box["y"] + 2)      # column 10: the model's step 130
    readout = grid.locator(".rw-grid-readout")
    page.wait_for_function("(el) => el.textContent !== ''", arg=readout.element_handle())
    assert " · step t 130 · " in readout.inner_text(), readout.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.wait_for_timeout(400)
        flow.screenshot(path=str(ARTIFACTS / f"window_gradients_{scheme}.png"))

    page.emulate_media(color_scheme="light")
    alone = rw.GradientFlow(window).save_html(tmp_path / "window_flow.html")   # its own step control
    page.goto(alone.as_uri())
    step = page.locator(".rw-gradient-flow .rw-steps .rw-step").first
    step.wait_for(timeout=60_000)
    assert step.inner_text().strip() == "step 120 / 179"
    page.locator(".rw-gradient-flow .rw-steps .rw-slider").first.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('.rw-steps .rw-step').textContent.trim() === 'step 121 / 179'")
    chart = page.locator('.rw-gradient-flow .rw-chart[data-kind="lines"]').first
    assert cursor_on(chart, "120") is False and chart.locator('.rw-chart-tick[data-axis="x"]').first.text_content() == "120"
    page.locator(".rw-gradient-flow").first.screenshot(path=str(ARTIFACTS / "window_flow_light.png"))


def test_a_window_of_steps_dynamics_panel_follows_the_models_own_steps(page, tmp_path):
    """rw.explore(model, x, steps=range(120, 180), dynamics=True) (an exported file, no kernel): the
    dynamics panel's spectrum spans the heatmap's 60 columns, and at the Explorer's step 120 + t its
    readout says step 120 + t with σ_max of rw.dynamics on the whole input at the model's step
    120 + t, its cursor on column t; looked at in Light and Dark (the step ticks 120 ... 170)."""
    import torch
    from test_dynamics_browser import _aligned_checker

    import rnnwidgets as rw

    torch.manual_seed(0)
    model = torch.nn.RNN(3, 8, batch_first=True)
    x = torch.randn(1, 300, 3)
    whole = rw.dynamics(model, x).layers["rnn.l0"].singular_values[0, :, 0]
    path = rw.explore(model, x, steps=range(120, 180), dynamics=True).save_html(tmp_path / "window_dynamics.html")
    page.set_viewport_size({"width": 1400, "height": 2400})
    page.goto(path.as_uri())
    box = page.locator(".rw-explorer-box").first
    page.wait_for_function("() => document.querySelector('.rw-explorer-box .rw-dyn.rw-dyn-aligned')", timeout=60_000)
    wait_for_ink(box.locator(".rw-dyn-spectrum"), min_distinct=2)
    check_aligned = _aligned_checker(page, box, 60)
    readout = box.locator(".rw-dyn-readout")

    def reads(step: int) -> str:
        text = wait_for_text(readout, lambda s: s.startswith(f"step {step} ·"))
        assert text.startswith(f"step {step} ·"), text
        sigma = float(re.search(r"σ_max (\S+)", text).group(1))
        assert abs(sigma - whole[step]) <= 5e-4 * abs(whole[step]), (step, sigma, whole[step])
        return text

    reads(120)
    check_aligned(0)
    legend = box.locator(".rw-dyn-legend").inner_text()
    assert legend.endswith("of the whole run (steps 0–299), shown here over steps 120–179"), legend
    page.locator(".rw-explorer .rw-slider").first.focus()
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('.rw-explorer .rw-step').textContent.trim() === 'step 130 / 179'")
    reads(130)
    check_aligned(10)
    page.keyboard.press("End")
    reads(179)
    check_aligned(59)
    ARTIFACTS.mkdir(exist_ok=True)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.wait_for_timeout(400)
        box.locator(".rw-dyn").screenshot(path=str(ARTIFACTS / f"window_dynamics_{scheme}.png"))
