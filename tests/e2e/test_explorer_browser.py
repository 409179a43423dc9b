"""The Explorer in a real JupyterLab and Notebook 7: it draws, and scrubbing needs no kernel."""
import pytest

from e2e_support import (COUNT_KERNEL_SENDS_JS, HOLD_KERNEL_JS, LAB_OUTPUT, assert_keys_drive_the_explorer,
                         cursor_pixels, focus_slider, kernel_sees, open_and_run, wait_for_change, wait_for_ink,
                         wait_for_kernel_idle, write_notebook)

pytestmark = pytest.mark.e2e

SMALL_LSTM = """\
import torch, rnnwidgets as rw
torch.manual_seed(0)
model = torch.nn.LSTM(input_size=3, hidden_size=12, batch_first=True)
explorer = rw.explore(model, torch.randn(1, 30, 3))
explorer"""

def test_explorer_draws_and_scrubs_with_no_kernel_reply(jupyter_server, page):
    write_notebook(jupyter_server.root / "explorer_small.ipynb", SMALL_LSTM)
    open_and_run(page, jupyter_server.lab_url("explorer_small.ipynb"))

    ink = wait_for_ink(page.locator(".rw-explorer .rw-heatmap").first, min_distinct=20)
    assert ink["inked"] == ink["width"] * ink["height"] and ink["distinct"] >= 20, ink  # 12 units x 30 steps

    page.evaluate(HOLD_KERNEL_JS)  # from here the page gets nothing from the kernel until released
    before = cursor_pixels(page)
    focus_slider(page, LAB_OUTPUT)
    page.keyboard.press("ArrowRight")
    after, _ = wait_for_change(lambda: cursor_pixels(page), before)
    try:
        assert after != before, "the cursor did not move after ArrowRight with every kernel message held back"
        assert page.locator(f"{LAB_OUTPUT} .rw-slider").first.input_value() == "1"
    finally:
        page.evaluate("() => window.rwReleaseKernel()")


def test_a_scrub_tells_the_kernel_its_step_once_it_rests(jupyter_server, page):
    # Each widget message costs JupyterLab a frame or more in replies, so a scrub sends none per step.
    write_notebook(jupyter_server.root / "explorer_quiet.ipynb", SMALL_LSTM)
    open_and_run(page, jupyter_server.lab_url("explorer_quiet.ipynb"))
    wait_for_ink(page.locator(".rw-explorer .rw-heatmap").first, min_distinct=20)
    wait_for_kernel_idle(page)
    page.evaluate(COUNT_KERNEL_SENDS_JS)
    focus_slider(page, LAB_OUTPUT)
    for _ in range(20):
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(20)
    assert page.locator(f"{LAB_OUTPUT} .rw-step").first.inner_text().startswith("step 20 /")
    page.wait_for_timeout(600)  # the scrub rests
    sends = page.evaluate("() => window.rwSends")
    assert 1 <= sends <= 2, f"{sends} messages to the kernel for a scrub of 20 steps"  # (one more at most a second)
    assert kernel_sees(page, "explorer.view.t", "20") == "20"


def test_explorer_draws_and_keys_drive_it_in_notebook7(jupyter_server, page):
    write_notebook(jupyter_server.root / "explorer_nb7.ipynb", SMALL_LSTM.replace("torch.randn(1, 30, 3))",
                                                                                  "torch.randn(1, 30, 3), interval=300)"))
    open_and_run(page, jupyter_server.notebook7_url("explorer_nb7.ipynb"))
    heatmap = page.locator(".rw-explorer .rw-heatmap").first
    ink = wait_for_ink(heatmap, min_distinct=20)
    assert ink["inked"] == ink["width"] * ink["height"] and ink["distinct"] >= 20, ink
    # Notebook 7 binds ArrowRight, space, Home and End in command mode; the Explorer's box tells
    # Lumino to leave keys pressed inside it to the Explorer and its slider.
    assert_keys_drive_the_explorer(page, page.locator(".rw-explorer-box").first, steps=30)
