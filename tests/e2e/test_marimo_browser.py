"""The Explorer in marimo: it draws, scrubs in the browser, and follows Python both ways.

marimo shows anywidget views (not other ipywidgets), so a notebook wraps the Explorer's view with
``mo.ui.anywidget``; there the view carries the bundle as its own code (rnnwidgets/widgets/bundle.py).
Two marimo servers (headless, each with a token) serve notebooks written to a temp folder: one
`marimo edit` of the folder holds both editor notebooks (a page opens one with ``?file=``, in a
kernel of its own), and `marimo run` serves the Explorer notebook as an app. Both start together
as the module's first test needs one, so the second starts while the first test runs. Pages open
in the Chromium of the other browser tests (conftest.py's `browser` and `page`).
"""
from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import ARTIFACTS, ServerProcess, _free_port
from e2e_support import planted_dataset_lines, wait_for_change, wait_for_ink, wait_for_text

pytestmark = pytest.mark.e2e

# The user's marimo settings: run the notebook's cells as it opens (marimo edit waits for a click
# by default), and save nothing back to it.
USER_CONFIG = """\
[runtime]
auto_instantiate = true

[save]
autosave = "off"
"""
START_TIMEOUT_S = 240  # a cold start on a busy 2-core machine: marimo's server, then torch in its kernel

# A two-layer LSTM; a number box sets the step from Python (explorer.select), and a text cell
# shows the step the kernel last heard from the view (marimo re-runs it when the view's state
# changes in the browser).
NOTEBOOK = '''\
import marimo

app = marimo.App(width="full")


@app.cell
def _():
    import marimo as mo
    import torch
    import rnnwidgets as rw

    torch.manual_seed(0)
    model = torch.nn.LSTM(input_size=3, hidden_size=12, num_layers=2, batch_first=True)
    explorer = rw.explore(model, torch.randn(1, 30, 3), interval=300)
    return explorer, mo


@app.cell
def _(explorer, mo):
    view = mo.ui.anywidget(explorer.view)
    view
    return (view,)


@app.cell
def _(mo):
    step = mo.ui.number(start=0, stop=29, value=0, label="step from Python")
    step
    return (step,)


@app.cell
def _(explorer, step):
    _ = explorer.select(t=step.value)
    return


@app.cell
def _(mo, view):
    mo.md(f"kernel step {view.value['t']} of layer {view.value['layer']}")
    return
'''


# The views that are ipywidgets boxes in Jupyter, each the last expression of its cell (their
# ``_display_`` lays them out with marimo's elements): a gradient flow; a Match panel under the
# Explorer it opens matches in (units 0 and 1 on exactly at each "(", the steps of "((" brushed
# from Python); a training monitor fed by a loop that a button starts, slowly enough to be seen.
VIEWS_NOTEBOOK = """\
import marimo

app = marimo.App(width="full")


@app.cell
def _():
    import time
    import marimo as mo
    import numpy as np
    import torch
    import rnnwidgets as rw
    from rnnwidgets.dataset import DatasetTrace

    torch.manual_seed(0)
    model = torch.nn.LSTM(input_size=3, hidden_size=8, num_layers=2, batch_first=True)
    return DatasetTrace, mo, model, np, rw, time, torch


@app.cell
def _(model, rw, torch):
    flow = rw.gradient_flow(model, torch.randn(1, 20, 3), loss="last")
    flow
    return


@app.cell
def _(DatasetTrace, np, rw):
""" + textwrap.indent(planted_dataset_lines('[["a", "(", "(", "b", "c"], list("((a("), list("b(a(((")]'), "    ") + """\
    explorer = rw.explore(ds.sequence(0))
    explorer.view.brush = [1, 3]
    explorer.view.threshold = 0.0
    return ds, explorer


@app.cell
def _(explorer, mo):
    mo.ui.anywidget(explorer.view)
    return


@app.cell
def _(ds, explorer, rw):
    panel = rw.MatchPanel(explorer, ds, context=2)
    panel
    return


@app.cell
def _(model, rw):
    monitor = rw.TrainingMonitor(model, interval=0.05)
    monitor
    return (monitor,)


@app.cell
def _(mo):
    train = mo.ui.run_button(label="train 30 steps")
    train
    return (train,)


@app.cell
def _(mo, model, monitor, time, torch, train):
    mo.stop(not train.value)
    _opt = torch.optim.SGD(model.parameters(), lr=0.05)
    _x = torch.randn(4, 10, 3)
    with monitor:
        for _ in range(30):
            _opt.zero_grad()
            _loss = model(_x)[0].pow(2).mean()
            _loss.backward()
            monitor.step(_loss)
            _opt.step()
            time.sleep(0.1)
    mo.md("trained")
    return
"""


class MarimoServer(ServerProcess):
    """`marimo edit` (or `run`: `mode`) of a notebook or a folder of them (`notebook`) on loopback,
    headless, behind a random token."""

    def __init__(self, mode: str, notebook: Path, home: Path, log_path: Path):
        self.token = secrets.token_hex(16)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, MARIMO_SKIP_UPDATE_CHECK="1")
        for var, name in {"HOME": "home", "XDG_CONFIG_HOME": "config", "XDG_CACHE_HOME": "cache",
                          "XDG_STATE_HOME": "state", "XDG_DATA_HOME": "data"}.items():
            (home / name).mkdir(parents=True, exist_ok=True)
            env[var] = str(home / name)
        (home / "config" / "marimo").mkdir()
        (home / "config" / "marimo" / "marimo.toml").write_text(USER_CONFIG, encoding="utf-8")
        # the kernel imports this checkout's rnnwidgets, as the Jupyter tests' kernels do
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[2]),
                                                        env.get("PYTHONPATH")) if p)
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "marimo", "-y", mode, "--headless", "--host", "127.0.0.1",
             "--port", str(self.port), "--token-password", self.token, "--no-sandbox", str(notebook)],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            cwd=notebook if notebook.is_dir() else notebook.parent)

    @property
    def page_url(self) -> str:
        return f"{self.url}/?access_token={self.token}"

    def file_url(self, name: str) -> str:
        """The page of the served folder's notebook `name`."""
        return f"{self.url}/?file={name}&access_token={self.token}"

    def wait_ready(self, timeout: float = START_TIMEOUT_S):
        self.wait_answers(f"{self.url}/health", "marimo", timeout)


@pytest.fixture(scope="module")
def marimo_servers(tmp_path_factory):
    """`marimo edit` of a folder with the Explorer notebook (explorer_marimo.py) and the views
    notebook (views_marimo.py), and `marimo run` of the Explorer notebook, both started now; each
    test waits for the one it opens."""
    base = tmp_path_factory.mktemp("marimo")
    folder = base / "notebooks"
    folder.mkdir()
    (folder / "explorer_marimo.py").write_text(NOTEBOOK, encoding="utf-8")
    (folder / "views_marimo.py").write_text(VIEWS_NOTEBOOK, encoding="utf-8")
    app = base / "app" / "explorer_marimo.py"
    app.parent.mkdir()
    app.write_text(NOTEBOOK, encoding="utf-8")
    servers = {}
    try:
        servers["edit"] = MarimoServer("edit", folder, base / "home-edit", base / "edit.log")
        servers["run"] = MarimoServer("run", app, base / "home-run", base / "run.log")
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture
def marimo_edit(marimo_servers):
    marimo_servers["edit"].wait_ready()
    return marimo_servers["edit"]


@pytest.fixture
def marimo_app(marimo_servers):
    marimo_servers["run"].wait_ready()
    return marimo_servers["run"]


def _painted_explorer(page):
    """The page's first Explorer, once it has painted its heatmap (12 units x 30 steps)."""
    explorer = page.locator(".rw-explorer").first
    explorer.wait_for(state="visible", timeout=START_TIMEOUT_S * 1000)  # the cells run as the page opens
    ink = wait_for_ink(explorer.locator(".rw-heatmap").first, min_distinct=20)
    assert ink["inked"] == ink["width"] * ink["height"] and ink["distinct"] >= 20, ink
    return explorer


def _focused(locator) -> bool:
    """Whether the element has the keyboard focus (marimo draws widgets inside shadow roots,
    where document.activeElement is the shadow's host)."""
    return locator.evaluate("e => e.getRootNode().activeElement === e")


def test_explorer_draws_scrubs_and_follows_python_in_marimo(marimo_edit, page):
    page.goto(marimo_edit.file_url("explorer_marimo.py"))
    explorer = _painted_explorer(page)
    step = explorer.locator(".rw-step")
    assert step.inner_text().startswith("step 0 / 29"), step.inner_text()
    kernel = page.locator("[id^='output-']", has_text="kernel step").first  # the cell's output, not its source
    assert wait_for_text(kernel, lambda s: s.startswith("kernel step 0 of layer lstm.l1")).startswith(
        "kernel step 0 of layer lstm.l1"), kernel.inner_text()  # the last layer is shown first

    # Scrubbing: keys pressed in the view step it in the browser; marimo's editor leaves them alone.
    cursor = explorer.locator(".rw-cursor").first
    pixels = lambda: cursor.evaluate("c => c.toDataURL()")  # noqa: E731
    explorer.focus()
    assert _focused(explorer), "the Explorer did not take the focus"
    for n in (1, 2, 3):
        before = pixels()
        page.keyboard.press("ArrowRight")
        text = f"step {n} / 29"
        assert wait_for_text(step, lambda s, text=text: s.startswith(text)).startswith(text), step.inner_text()
        assert wait_for_change(pixels, before)[0] != before, "ArrowRight did not move the drawn cursor"
    assert _focused(explorer), "a marimo shortcut took the focus from the Explorer"
    # ...and the kernel hears the step once the scrub rests (marimo re-runs the cell reading it)
    heard = wait_for_text(kernel, lambda s: s.startswith("kernel step 3 "), timeout=60)
    assert heard.startswith("kernel step 3 of layer lstm.l1"), heard

    # Python moves the view: the number box's cell calls explorer.select(t=...).
    box = page.locator("marimo-number input").first
    box.fill("17")
    box.press("Enter")
    shown = wait_for_text(step, lambda s: s.startswith("step 17 / 29"), timeout=60)
    assert shown.startswith("step 17 / 29"), shown
    assert explorer.locator(".rw-slider").first.input_value() == "17"

    # Play is the view's own (marimo has no ipywidgets Play): it steps on, and pauses.
    play = explorer.locator(".rw-play").first
    play.click()
    playing = wait_for_text(step, lambda s: not s.startswith("step 17 /"))
    assert not playing.startswith("step 17 /"), "Play did not move the step"
    play.click()
    time.sleep(0.7)  # a step already on its way may still land
    paused = step.inner_text()
    time.sleep(1.0)  # more than three Play intervals
    assert step.inner_text() == paused, f"Play did not pause: {paused} then {step.inner_text()}"

    ARTIFACTS.mkdir(exist_ok=True)  # the cell's output as a student sees it
    page.locator("[id^='output-']", has=page.locator(".rw-explorer")).first.screenshot(
        path=str(ARTIFACTS / "marimo-explorer.png"))


def test_every_viewer_of_a_marimo_app_sees_the_explorer(marimo_app, browser, page):
    # `marimo run` gives each viewer a session of its own in one process: a view's code must
    # reach each viewer's page, whoever opened the app first.
    page.goto(marimo_app.page_url)
    _painted_explorer(page)
    second = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        other = second.new_page()
        other.goto(marimo_app.page_url)
        explorer = _painted_explorer(other)
        explorer.focus()
        other.keyboard.press("ArrowRight")
        step = explorer.locator(".rw-step")
        assert wait_for_text(step, lambda s: s.startswith("step 1 / 29")).startswith("step 1 / 29"), step.inner_text()
    finally:
        second.close()


def _output_of(page, selector: str):
    """The cell output (not its source) holding ``selector``."""
    return page.locator("[id^='output-']", has=page.locator(selector)).first


def test_gradient_flow_match_panel_and_monitor_in_marimo(marimo_edit, page):
    page.goto(marimo_edit.file_url("views_marimo.py"))
    ARTIFACTS.mkdir(exist_ok=True)

    # GradientFlow: drawn (lines, the layers x steps grid), and a key in its step control moves
    # the charts' cursors in the page.
    flow = page.locator(".rw-gradient-flow").first
    flow.wait_for(state="visible", timeout=START_TIMEOUT_S * 1000)
    grid = flow.locator(".rw-grid .rw-heatmap").first
    ink = wait_for_ink(grid, min_distinct=10)
    assert ink["inked"] > 0 and ink["distinct"] >= 10, ink
    assert flow.locator(".rw-chart").first.locator("path.rw-chart-series").count() >= 4  # h and c, 2 layers
    assert "lstm.l0" in flow.locator(".rw-text").first.inner_text()          # the verdicts, as text
    steps = flow.locator(".rw-steps").first
    step = steps.locator(".rw-step")
    assert step.inner_text().startswith("step 0 / 19"), step.inner_text()
    cursor = flow.locator(".rw-chart-cursor").first
    grid_cursor = flow.locator(".rw-grid .rw-cursor").first
    pixels = lambda: grid_cursor.evaluate("c => c.toDataURL()")  # noqa: E731
    steps.focus()
    assert _focused(steps), "the step control did not take the focus"
    for n in (1, 2):
        before = (cursor.get_attribute("x1"), pixels())
        page.keyboard.press("ArrowRight")
        text = f"step {n} / 19"
        assert wait_for_text(step, lambda s, text=text: s.startswith(text)).startswith(text), step.inner_text()
        assert wait_for_change(lambda: cursor.get_attribute("x1"), before[0])[0] != before[0], \
            "ArrowRight did not move the chart's cursor"
        assert wait_for_change(pixels, before[1])[0] != before[1], "ArrowRight did not move the grid's cursor"
    assert _focused(steps), "a marimo shortcut took the focus from the step control"
    _output_of(page, ".rw-gradient-flow").screenshot(path=str(ARTIFACTS / "marimo-gradient-flow.png"))

    # MatchPanel: its button searches in the kernel, the rows come, a click marks one and opens
    # its sequence in the Explorer (a kernel round trip: the Explorer's step count changes).
    page.get_by_role("button", name="find matches").click()
    rows = page.locator(".rw-match")
    rows.first.wait_for(state="visible", timeout=60_000)
    assert rows.count() == 5, rows.count()
    status = page.locator(".rw-text", has_text="best matches").first
    assert status.inner_text().startswith("5 best matches of units [0, 1]"), status.inner_text()
    assert wait_for_ink(page.locator(".rw-match-heatmap").first, min_distinct=2)["inked"] > 0
    explorer_step = page.locator(".rw-explorer .rw-step").first
    assert explorer_step.inner_text().startswith("step 0 / 4"), explorer_step.inner_text()
    rows.nth(2).click()  # "(((" of "b(a((("
    assert "rw-match-selected" in (rows.nth(2).get_attribute("class") or "")
    opened = wait_for_text(explorer_step, lambda s: s.startswith("step 3 / 5"), timeout=60)
    assert opened.startswith("step 3 / 5"), opened   # its sequence, at the match's first step
    assert [r.get_attribute("class").count("rw-match-selected") for r in rows.all()] == [0, 0, 1, 0, 0]
    _output_of(page, ".rw-matches").screenshot(path=str(ARTIFACTS / "marimo-match-panel.png"))

    # TrainingMonitor: waits for steps, then follows the loop as it logs (several step counts seen
    # before the loop ends), and keeps the final state.
    monitor = page.locator(".rw-monitor").first
    monitor_status = monitor.locator(".rw-text").first
    assert monitor_status.inner_text() == "no step recorded yet", monitor_status.inner_text()
    page.get_by_role("button", name="train 30 steps").click()
    seen = set()
    trained = page.locator("[id^='output-']", has_text="trained")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not trained.count():
        found = re.match(r"step (\d+)", monitor_status.inner_text())
        if found:
            seen.add(int(found[1]))
        time.sleep(0.05)
    assert trained.count(), f"the loop did not finish; steps seen {sorted(seen)}"
    final = wait_for_text(monitor_status, lambda s: s.startswith("step 30 "))
    assert final.startswith("step 30 · loss "), final
    assert len([s for s in seen if 0 < s < 30]) >= 3, f"the monitor did not follow the loop: {sorted(seen)}"
    loss_line = monitor.locator(".rw-chart").first.locator("path.rw-chart-series").first
    assert loss_line.get_attribute("d").count("L") + 1 == 30
    assert wait_for_ink(monitor.locator(".rw-grid .rw-heatmap").first)["inked"] > 0
    _output_of(page, ".rw-monitor").screenshot(path=str(ARTIFACTS / "marimo-monitor.png"))
