"""The Explorer in a real JupyterLab and Notebook 7: it draws, and scrubbing needs no kernel."""
import time

import pytest
from e2e_support import (
    COUNT_KERNEL_SENDS_JS,
    HOLD_KERNEL_JS,
    LAB_OUTPUT,
    assert_keys_drive_the_explorer,
    close_notebooks,
    cursor_pixels,
    focus_slider,
    kernel_execute,
    kernel_sees,
    open_and_run,
    open_in_lab,
    wait_for_change,
    wait_for_ink,
    wait_for_kernel_idle,
    wait_for_text,
    write_notebook,
)

pytestmark = pytest.mark.e2e

SMALL_LSTM = """\
import torch, rnnwidgets as rw
torch.manual_seed(0)
model = torch.nn.LSTM(input_size=3, hidden_size=12, batch_first=True)
explorer = rw.explore(model, torch.randn(1, 30, 3))
explorer"""


@pytest.fixture(scope="module")
def small_lstm_page(lab_page, jupyter_server):
    """SMALL_LSTM's Explorer in JupyterLab, opened once for the tests that scrub it (each starts it
    at step 0 with `at_step_0`)."""
    write_notebook(jupyter_server.root / "explorer_small.ipynb", SMALL_LSTM)
    page = lab_page
    page.set_viewport_size({"width": 1400, "height": 1000})
    open_in_lab(page, "explorer_small.ipynb")
    yield page
    close_notebooks(page)


def at_step_0(page):
    """The shared Explorer back at step 0 (set from Python, whatever a test before left), drawn,
    and the kernel idle with nothing more on its way from the view."""
    ink = wait_for_ink(page.locator(".rw-explorer .rw-heatmap").first, min_distinct=20)
    assert ink["inked"] == ink["width"] * ink["height"] and ink["distinct"] >= 20, ink  # 12 units x 30 steps
    page.wait_for_timeout(600)  # longer than a scrub's rest: a save of an earlier scrub has been sent
    wait_for_kernel_idle(page)
    kernel_execute(page, "explorer.select(t=0)")
    step = page.locator(f"{LAB_OUTPUT} .rw-step").first
    assert wait_for_text(step, lambda s: s.startswith("step 0 /")).startswith("step 0 /"), step.inner_text()
    assert kernel_sees(page, "explorer.view.t", "0") == "0"
    wait_for_kernel_idle(page)


def test_explorer_draws_and_scrubs_with_no_kernel_reply(small_lstm_page):
    page = small_lstm_page
    at_step_0(page)

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


def test_a_scrub_tells_the_kernel_its_step_once_it_rests(small_lstm_page):
    # Each widget message costs JupyterLab a frame or more in replies, so a scrub sends none per step.
    page = small_lstm_page
    at_step_0(page)
    page.evaluate(COUNT_KERNEL_SENDS_JS)
    focus_slider(page, LAB_OUTPUT)
    started = time.monotonic()
    for _ in range(20):
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(20)
    scrubbed_for = time.monotonic() - started
    assert page.locator(f"{LAB_OUTPUT} .rw-step").first.inner_text().startswith("step 20 /")
    page.wait_for_timeout(600)  # the scrub rests
    sends = page.evaluate("() => window.rwSends")
    # one when it rests, and while it goes one more per second (SAVE_EVERY_MS): a slow machine's
    # 20 key presses may take several seconds, never one message per step
    allowed = 2 + int(scrubbed_for)
    assert allowed < 20, f"20 key presses took {scrubbed_for:.1f} s: too slow to tell saves per step apart"
    assert 1 <= sends <= allowed, f"{sends} messages to the kernel for a scrub of 20 steps in {scrubbed_for:.1f} s"
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


BIDIRECTIONAL = """\
import torch, rnnwidgets as rw
from torch.nn.utils.rnn import pack_padded_sequence
torch.manual_seed(3)
model = torch.nn.LSTM(input_size=3, hidden_size=4, bidirectional=True, batch_first=True)
h0, c0 = torch.randn(2, 2, 4), torch.randn(2, 2, 4)  # (directions, batch, units): not zeros
x = pack_padded_sequence(torch.randn(2, 9, 3), [9, 6], batch_first=True)
explorer = rw.explore(model, x, hidden=(h0, c0), batch=1)
explorer"""


def _cell_state_line(page) -> list[float]:
    """The numbers of the cell view's c_t line: f, c_before, i, g, f·c_before, i·g, c_t."""
    import re

    line = next(t for t in page.locator(".rw-cellview .rw-eq").all_inner_texts() if t.startswith("cₜ ="))
    return [float(m) for m in re.findall(r"(?<!\d)-?\d+\.\d+", line.replace("−", "-"))]


def test_cell_view_of_a_reverse_layer_reads_the_next_step_and_the_initial_state(jupyter_server, lab):
    # A reverse layer runs from its element's last step back to step 0: the state before step t is
    # step t+1's, and at the last valid step it is the given initial state (c0 of that direction).
    page = lab
    write_notebook(jupyter_server.root / "explorer_bidirectional.ipynb", BIDIRECTIONAL)
    open_in_lab(page, "explorer_bidirectional.ipynb")
    step = page.locator(".rw-explorer .rw-step").first
    for t, before in ((2, "explorer.trace.layers['lstm.l0.reverse'].states['c'][1, 3, 1]"),
                      (5, "c0[1, 1, 1].item()")):  # element 1 has 6 valid steps: 5 is its reverse layer's first
        kernel_execute(page, f"explorer.select(layer='lstm.l0.reverse', quantity='c', unit=1, t={t})")
        assert wait_for_text(step, lambda s, t=t: s.startswith(f"step {t} /")).startswith(f"step {t} /")
        expected = float(kernel_execute(page, f"print(float({before}))"))
        c_t = float(kernel_execute(page, f"print(float(explorer.trace.layers['lstm.l0.reverse'].states['c'][1, {t}, 1]))"))
        f, c_before, i, g, *_, shown = _cell_state_line(page)
        assert c_before == pytest.approx(expected, abs=5e-4), (t, c_before, expected)
        assert shown == pytest.approx(c_t, abs=5e-4) and f * c_before + i * g == pytest.approx(c_t, abs=5e-3)
    equations = "\n".join(page.locator(".rw-cellview .rw-eq").all_inner_texts())
    assert "cₜ₊₁ = " in equations and "(initial state)" in equations and "ₜ₋₁" not in equations
