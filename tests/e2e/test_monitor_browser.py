"""The TrainingMonitor and GradientFlow in a real JupyterLab: charts draw and update while a
training loop blocks the kernel, and the final state arrives when the cell ends."""
import re
import time

import pytest

from e2e_support import open_and_run, write_notebook

pytestmark = pytest.mark.e2e

TRAIN_FOR_S = 6
TRAINING = f"""\
import time, torch, rnnwidgets as rw
torch.manual_seed(0)
model = torch.nn.LSTM(3, 8, num_layers=2, batch_first=True)
x = torch.randn(4, 20, 3)
mon = rw.TrainingMonitor(model, probe=(x, "last"), clip=0.5, every=25)
display(mon)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
end = time.monotonic() + {TRAIN_FOR_S}
while time.monotonic() < end:
    optimizer.zero_grad()
    loss = model(x)[0].pow(2).mean()
    loss.backward()
    mon.step(loss)
    optimizer.step()
    time.sleep(0.005)
print("trained", mon.steps, "steps")"""
FLOW = """\
flow = rw.gradient_flow(model, x, loss="last")
flow"""

KERNEL_STATUS_JS = "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status"
STATUS = ".rw-monitor .widget-label"
LOSS_LINE = ".rw-monitor .bqplot >> nth=0 >> path.line"


def _step_shown(page) -> int:
    found = re.match(r"step (\d+)", page.locator(STATUS).first.inner_text())
    return int(found.group(1)) if found else 0


def test_monitor_updates_while_training_blocks_the_kernel(jupyter_server, page):
    write_notebook(jupyter_server.root / "monitor.ipynb", TRAINING, FLOW)
    open_and_run(page, jupyter_server.lab_url("monitor.ipynb"), widget_selector=".rw-monitor")

    seen_steps, seen_paths = set(), set()
    deadline = time.monotonic() + TRAIN_FOR_S + 30
    while time.monotonic() < deadline and page.evaluate(KERNEL_STATUS_JS) == "busy" and len(seen_steps) < 4:
        seen_steps.add(_step_shown(page))
        line = page.locator(LOSS_LINE).first
        if line.count():
            seen_paths.add(line.get_attribute("d"))
        time.sleep(0.3)
    assert page.evaluate(KERNEL_STATUS_JS) == "busy", "training ended before the test saw it run"
    assert len(seen_steps - {0}) >= 3, f"the monitor did not update while the kernel was busy: {seen_steps}"
    assert len(seen_paths) >= 2, "the loss line was not redrawn during training"

    output = page.locator(".jp-OutputArea-output", has_text="trained").first
    output.wait_for(timeout=(TRAIN_FOR_S + 60) * 1000)
    trained = int(re.search(r"trained (\d+) steps", output.inner_text()).group(1))
    page.wait_for_function(f"() => /^step {trained} /.test(document.querySelector('{STATUS}').innerText)",
                           timeout=10_000)   # the throttle's held-back last state is sent when the cell ends

    # loss, gradient norm (+ clip line and markers), per-layer heatmap, probe snapshot: every chart drew
    figures = page.locator(".rw-monitor .bqplot")
    assert figures.count() == 4
    points = page.locator(LOSS_LINE).first.get_attribute("d").count("L") + 1
    assert points >= min(trained, 3)
    assert page.locator(".rw-monitor .bqplot >> nth=3 >> path.line").count() == 2   # lstm.l0, lstm.l1 snapshot

    flow = page.locator(".rw-gradient-flow").first
    flow.wait_for(state="visible", timeout=60_000)
    assert "lstm.l1:" in flow.inner_text()
    paths = flow.locator(".bqplot >> nth=0 >> path.line")
    assert paths.count() >= 2 and all(len(paths.nth(i).get_attribute("d") or "") > 20 for i in range(2))
