"""The gradient views' canvas grid in a real JupyterLab: rw.explore(..., loss=...) draws the layers x
time grid of ‖∂L/∂h_t‖ under the heatmaps, and a key in the Explorer moves both cursors in the
browser while the kernel is busy."""
import math
import time

import pytest
from e2e_support import HOLD_KERNEL_JS, open_in_lab, wait_for_change, wait_for_ink, write_notebook

pytestmark = pytest.mark.e2e

STEPS = 40
EXPLORE_WITH_LOSS = f"""\
import torch, rnnwidgets as rw
torch.manual_seed(0)
model = torch.nn.LSTM(input_size=3, hidden_size=8, num_layers=2, batch_first=True)
explorer = rw.explore(model, torch.randn(1, {STEPS}, 3), loss="last")
explorer"""

GRID = ".rw-gradient-flow .rw-grid"
# The x of every drawn pixel on a canvas's middle row (the cursor's column edges), and its width.
DRAWN_XS_JS = """(c) => {
    const d = c.getContext('2d').getImageData(0, Math.floor(c.height / 2), c.width, 1).data;
    const xs = [];
    for (let x = 0; x < c.width; x++) if (d[4 * x + 3] > 0) xs.push(x);
    return {xs, width: c.width};
}"""


def test_explore_with_a_loss_draws_the_gradient_grid_and_keys_move_its_cursor(jupyter_server, lab):
    page = lab
    write_notebook(jupyter_server.root / "gradient_views.ipynb", EXPLORE_WITH_LOSS)
    explorer = open_in_lab(page, "gradient_views.ipynb")
    grid = page.locator(GRID).first
    grid.wait_for(state="visible", timeout=30_000)

    image = grid.locator(".rw-heatmap")
    ink = wait_for_ink(image, min_distinct=10)
    assert (ink["width"], ink["height"]) == (STEPS, 4), ink      # full resolution: one column per step
    assert ink["inked"] == ink["width"] * ink["height"] and ink["distinct"] >= 10, ink
    labels = grid.locator(".rw-grid-row-label").all_inner_texts()
    assert labels == ["lstm.l0 h", "lstm.l1 h", "lstm.l0 c", "lstm.l1 c"], labels

    grid_cursor = grid.locator(".rw-cursor")
    explorer_cursor = explorer.locator(".rw-cursor")
    pixels = lambda cursor: cursor.evaluate("c => c.toDataURL()")  # noqa: E731
    assert grid_cursor.evaluate(DRAWN_XS_JS)["xs"], "no cursor drawn on the grid at step 0"

    page.evaluate(HOLD_KERNEL_JS)
    try:
        before = (pixels(explorer_cursor), pixels(grid_cursor))
        explorer.focus()
        page.keyboard.press("ArrowRight")
        moved_explorer, _ = wait_for_change(lambda: pixels(explorer_cursor), before[0])
        moved_grid, _ = wait_for_change(lambda: pixels(grid_cursor), before[1])
        assert moved_explorer != before[0], "ArrowRight did not move the Explorer's cursor"
        assert moved_grid != before[1], "ArrowRight did not move the gradient grid's cursor"
        assert explorer.locator(".rw-step").inner_text().startswith("step 1 /")
        drawn = grid_cursor.evaluate(DRAWN_XS_JS)
        x0, x1 = (math.floor(k * drawn["width"] / STEPS) for k in (1, 2))   # step 1's column: [x0, x1)
        # a dark line and its light halo just outside each edge (2 device pixels at most)
        assert x0 - 2 <= min(drawn["xs"]) < x0 and x1 <= max(drawn["xs"]) <= x1 + 1, (drawn, x0, x1)
    finally:
        page.evaluate("() => window.rwReleaseKernel()")

    image.hover()
    readout = grid.locator(".rw-grid-readout")
    deadline = time.monotonic() + 5
    while "step t" not in readout.inner_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert readout.inner_text().startswith("lstm.l"), readout.inner_text()   # row · column · value
