"""The Explorer in a real JupyterLab and Notebook 7: it draws, and scrubbing needs no kernel."""
import time

import pytest

from e2e_support import (LAB_OUTPUT, assert_keys_drive_the_explorer, cursor_pixels, focus_slider, open_and_run,
                         wait_for_change, wait_for_ink, write_notebook)

pytestmark = pytest.mark.e2e

SMALL_LSTM = """\
import torch, rnnwidgets as rw
torch.manual_seed(0)
model = torch.nn.LSTM(input_size=3, hidden_size=12, batch_first=True)
explorer = rw.explore(model, torch.randn(1, 30, 3))
explorer"""

# Busies the kernel: comm messages queue behind this request, so nothing the kernel could send
# can repaint the page while it sleeps.
BUSY_KERNEL_JS = """() => {
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    kernel.requestExecute({code: 'import time; time.sleep(30)', silent: true, store_history: false});
}"""
KERNEL_STATUS_JS = "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status"
INTERRUPT_JS = "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.interrupt()"


def _kernel_frames(page) -> list:
    """A list that collects (time, payload size) of every frame the page receives from kernels."""
    frames = []

    def on_websocket(ws):
        if "/api/kernels/" in ws.url:
            ws.on("framereceived", lambda payload: frames.append((time.monotonic(), len(payload))))

    page.on("websocket", on_websocket)
    return frames


def test_explorer_draws_and_scrubs_with_the_kernel_busy(jupyter_server, page):
    write_notebook(jupyter_server.root / "explorer_small.ipynb", SMALL_LSTM)
    frames = _kernel_frames(page)
    open_and_run(page, jupyter_server.lab_url("explorer_small.ipynb"))

    ink = wait_for_ink(page.locator(".rw-explorer .rw-heatmap").first, min_distinct=20)
    assert ink["inked"] == ink["width"] * ink["height"] and ink["distinct"] >= 20, ink  # 12 units x 30 steps

    page.evaluate(BUSY_KERNEL_JS)
    page.wait_for_function(f"() => ({KERNEL_STATUS_JS})() === 'busy'", timeout=10_000)
    time.sleep(0.5)  # let the busy status frame itself arrive
    before = cursor_pixels(page)
    frames_before = len(frames)
    focus_slider(page, LAB_OUTPUT)
    page.keyboard.press("ArrowRight")
    after, _ = wait_for_change(lambda: cursor_pixels(page), before)
    try:
        assert after != before, "the cursor did not move after ArrowRight"
        assert len(frames) == frames_before, "a kernel message arrived between the key press and the repaint"
        assert page.evaluate(KERNEL_STATUS_JS) == "busy", "the kernel finished sleeping: the test proves nothing"
        assert page.locator(f"{LAB_OUTPUT} .widget-readout").first.inner_text().strip() == "1"
    finally:
        page.evaluate(INTERRUPT_JS)


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
