"""rw.DynamicsView in a real JupyterLab: its three canvases draw, and the step slider moves the
readout in the browser and reaches the kernel's ``t`` once it rests."""
import pytest
from e2e_support import kernel_sees, open_and_run, wait_for_ink, wait_for_text, write_notebook

pytestmark = pytest.mark.e2e

STEPS = 30
SHOW_DYNAMICS = f"""\
import numpy as np, torch, rnnwidgets as rw
torch.manual_seed(0)
rnn = torch.nn.RNN(2, 6, batch_first=True)
dyn = rw.dynamics(rnn, torch.randn(1, {STEPS}, 2), k=3)
fps = rw.fixed_points(rnn, layer="rnn.l0", states=dyn, n_init=8, adam_steps=20)
view = rw.DynamicsView(dyn, fps)
view"""


def test_dynamics_view_draws_and_its_slider_moves_the_step(jupyter_server, page):
    write_notebook(jupyter_server.root / "dynamics.ipynb", SHOW_DYNAMICS)
    view = open_and_run(page, jupyter_server.lab_url("dynamics.ipynb"), widget_selector=".rw-dyn")
    for name in ("plane", "spectrum", "eigen"):
        ink = wait_for_ink(view.locator(f".rw-dyn-{name}"), min_distinct=2)
        assert ink["inked"] > 50, (name, ink)
    readout = view.locator(".rw-dyn-readout")
    assert readout.inner_text().startswith("step 0 ·")
    plane_pixels = lambda: view.locator(".rw-dyn-plane").evaluate("c => c.toDataURL()")  # noqa: E731
    before = plane_pixels()
    view.locator(".rw-dyn-slider").fill("3")          # sets the value and fires input, as a drag does
    assert wait_for_text(readout, lambda s: s.startswith("step 3 ·")).startswith("step 3 ·")
    assert "nearest fixed point" in readout.inner_text()
    assert plane_pixels() != before, "the current step's marker did not move on the PCA plane"
    assert kernel_sees(page, "view.t", "3") == "3"


EXPLORE_DYNAMICS = f"""\
import torch, rnnwidgets as rw
torch.manual_seed(0)
lstm = torch.nn.LSTM(3, 8, batch_first=True)
explorer = rw.explore(lstm, torch.randn(1, {STEPS}, 3), dynamics=True)
explorer"""

# the x (page pixels) of the spectrum's step cursor: the accent line is alone on the canvas's top rows
CURSOR_X = """c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, 4).data, xs = [];
  for (let x = 0; x < c.width; x++) if (d[(2 * c.width + x) * 4 + 3] > 0) xs.push(x);
  const box = c.getBoundingClientRect();
  return xs.length ? box.left + (xs[0] + xs[xs.length - 1] + 1) / 2 * box.width / c.width : null;
}"""


def _set_theme(page, theme: str, light: str):
    page.evaluate(f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{theme}'}})")
    page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'", timeout=30_000)


def test_dynamics_panel_in_the_explorer_follows_the_cursor_under_the_heatmap_columns(jupyter_server, page):
    from conftest import ARTIFACTS
    write_notebook(jupyter_server.root / "explore_dynamics.ipynb", EXPLORE_DYNAMICS)
    open_and_run(page, jupyter_server.lab_url("explore_dynamics.ipynb"), widget_selector=".rw-explorer-box .rw-dyn")
    box = page.locator(".rw-explorer-box").first
    panel, heatmap = box.locator(".rw-dyn"), box.locator(".rw-heatmap")
    spectrum = panel.locator(".rw-dyn-spectrum")
    page.wait_for_function("() => document.querySelector('.rw-explorer-box .rw-dyn.rw-dyn-aligned')", timeout=30_000)
    assert wait_for_ink(spectrum, min_distinct=2)["inked"] > 50
    assert not panel.locator(".rw-dyn-slider").is_visible(), "the Explorer's slider drives the panel"

    def column_centre(t):   # the heatmap's column t, measured on its box
        b = heatmap.bounding_box()
        return b["x"] + (t + 0.5) / STEPS * b["width"]

    def check_aligned(t):
        hb, sb = heatmap.bounding_box(), spectrum.bounding_box()
        assert abs(hb["x"] - sb["x"]) <= 1 and abs(hb["width"] - sb["width"]) <= 1, (hb, sb)
        x = spectrum.evaluate(CURSOR_X)
        for _ in range(100):   # the follower redraws on its own frame: a loaded machine may need a while
            if x is not None and abs(x - column_centre(t)) <= 1.5:
                break
            page.wait_for_timeout(100)
            x = spectrum.evaluate(CURSOR_X)
        assert x is not None and abs(x - column_centre(t)) <= 1.5, (t, x, column_centre(t))

    try:
        for theme, light in (("JupyterLab Light", "true"), ("JupyterLab Dark", "false")):
            _set_theme(page, theme, light)
            for t in (0, 7, STEPS - 1):
                box.locator(".rw-slider").first.fill(str(t))
                readout = panel.locator(".rw-dyn-readout")
                assert wait_for_text(readout, lambda s, t=t: s.startswith(f"step {t} ·")).startswith(f"step {t} ·")
                assert "σ_min" in readout.inner_text()
                page.wait_for_timeout(100)     # the follower's redraw
                check_aligned(t)
            ARTIFACTS.mkdir(exist_ok=True)
            viewport = page.viewport_size
            page.set_viewport_size({"width": viewport["width"], "height": 2400})   # the whole Explorer in view
            try:
                page.wait_for_timeout(300)
                check_aligned(STEPS - 1)
                box.screenshot(path=str(ARTIFACTS / f"explorer-dynamics-{theme.split()[1].lower()}.png"))
            finally:
                page.set_viewport_size(viewport)
        assert kernel_sees(page, "explorer.dynamics.t", str(STEPS - 1)) == str(STEPS - 1)
    finally:   # the theme is a user setting of the shared server: the tests after this one run in Light
        _set_theme(page, "JupyterLab Light", "true")
