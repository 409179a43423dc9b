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
