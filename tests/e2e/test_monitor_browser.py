"""The TrainingMonitor and GradientFlow in a real JupyterLab: charts draw and update while a
training loop blocks the kernel, and the final state arrives when the cell ends."""
import re
import time

import pytest
from e2e_support import canvas_ink, open_notebook, wait_for_ink, write_notebook

pytestmark = pytest.mark.e2e

TRAIN_AT_MOST_S = 90
STOP_FILE = "stop-training"   # the test creates it once it has seen enough: the kernel is busy until then
TRAINING = f"""\
import os, time, torch, rnnwidgets as rw
torch.manual_seed(0)
model = torch.nn.LSTM(3, 8, num_layers=2, batch_first=True)
x = torch.randn(4, 20, 3)
mon = rw.TrainingMonitor(model, probe=(x, "last"), clip=0.5, every=10)
display(mon)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
end = time.monotonic() + {TRAIN_AT_MOST_S}
while time.monotonic() < end and not os.path.exists("{STOP_FILE}"):
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

STATUS = ".rw-monitor .widget-label"
LOSS_LINE = ".rw-monitor .rw-chart >> nth=0 >> path.rw-chart-series"
LAYER_GRID = ".rw-monitor .rw-grid .rw-heatmap"     # layers x training steps, our canvas


def _drawn_lines(figure) -> int:
    """Line paths in a chart long enough to be data (20 steps)."""
    paths = figure.locator("path.rw-chart-series").evaluate_all("ps => ps.map(p => p.getAttribute('d') || '')")
    return sum(len(d) > 100 for d in paths)


def _step_shown(page) -> int:
    found = re.match(r"step (\d+)", page.locator(STATUS).first.inner_text())
    return int(found.group(1)) if found else 0


def test_monitor_updates_while_training_blocks_the_kernel(jupyter_server, lab):
    page = lab
    write_notebook(jupyter_server.root / "monitor.ipynb", TRAINING, FLOW)
    open_notebook(page, "monitor.ipynb", 90_000)
    # not awaited: the command's promise settles only when every cell has run
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    page.locator(".rw-monitor").first.wait_for(state="visible", timeout=90_000)

    # until the test creates the stop file, the training cell is running: no "trained" output yet
    seen_steps, seen_paths, seen_grids = set(), set(), set()
    deadline = time.monotonic() + TRAIN_AT_MOST_S - 30
    while time.monotonic() < deadline and (len(seen_steps - {0}) < 3 or max(seen_steps) <= 12):
        seen_steps.add(_step_shown(page))
        line = page.locator(LOSS_LINE)
        if line.count():
            seen_paths.add(line.first.get_attribute("d"))
        seen_grids.add(page.locator(LAYER_GRID).first.evaluate("c => `${c.width}:${c.toDataURL()}`"))
        time.sleep(0.3)
    assert page.locator(".jp-OutputArea-output", has_text="trained").count() == 0, f"ended too soon: {seen_steps}"
    assert len(seen_steps - {0}) >= 3, f"the monitor did not update while the loop ran: {seen_steps}"
    assert len(seen_paths) >= 3, "the loss line was not redrawn during training"
    assert len(seen_grids) >= 3, "the per-layer grid was not redrawn during training"

    (jupyter_server.root / STOP_FILE).touch()
    output = page.locator(".jp-OutputArea-output", has_text="trained").first
    output.wait_for(timeout=60_000)
    trained = int(re.search(r"trained (\d+) steps", output.inner_text()).group(1))
    page.wait_for_function(f"() => /^step {trained} /.test(document.querySelector('{STATUS}').innerText)",
                           timeout=10_000)   # the throttle's held-back last state is sent when the cell ends

    # loss, gradient norm (+ clip line and markers), probe snapshot (our charts) and the per-layer grid drew
    figures = page.locator(".rw-monitor .rw-chart")
    assert figures.count() == 3
    assert page.locator(".rw-monitor .rw-chart-rule").count() == 1          # the clipping threshold
    grid = page.locator(".rw-monitor .rw-grid").first
    ink = canvas_ink(grid.locator(".rw-heatmap"))
    assert ink["height"] == 2 and ink["width"] >= 3 and ink["inked"] == ink["width"] * ink["height"], ink
    assert grid.locator(".rw-grid-row-label").all_inner_texts() == ["lstm.l0", "lstm.l1"]
    points = page.locator(LOSS_LINE).first.get_attribute("d").count("L") + 1
    assert points >= min(trained, 3)
    snapshot = page.locator(".rw-monitor .rw-chart").nth(2)
    assert "after training step" in snapshot.inner_text() and "lstm.l1" in snapshot.inner_text()
    assert _drawn_lines(snapshot) >= 2          # lstm.l0 and lstm.l1 through the 20 probe steps

    flow = page.locator(".rw-gradient-flow").first
    flow.wait_for(state="visible", timeout=60_000)
    assert "lstm.l1:" in flow.inner_text()
    assert _drawn_lines(flow.locator(".rw-chart").first) >= 4   # h of both layers, c (dashed) of both
    ink = wait_for_ink(flow.locator(".rw-grid .rw-heatmap"), min_distinct=10)
    assert (ink["width"], ink["height"]) == (20, 4) and ink["inked"] == 80, ink   # layers' h and c x 20 steps
