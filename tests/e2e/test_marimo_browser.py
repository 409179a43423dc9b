"""The Explorer in marimo: it draws, scrubs in the browser, and follows Python both ways.

marimo shows anywidget views (not other ipywidgets), so a notebook wraps the Explorer's view with
``mo.ui.anywidget``; there the view carries the bundle as its own code (rnnwidgets/widgets/bundle.py).
A marimo server (`marimo edit`, or `marimo run` for an app, headless, with a token) serves a
notebook written to a temp folder; pages open in the Chromium of the other browser tests
(conftest.py's `browser` and `page`).
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ARTIFACTS, _free_port
from e2e_support import wait_for_change, wait_for_ink, wait_for_text

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


class MarimoServer:
    """`marimo edit` (or `run`: `mode`) of one notebook on loopback, headless, behind a random token."""

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
            env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, cwd=notebook.parent)

    @property
    def page_url(self) -> str:
        return f"{self.url}/?access_token={self.token}"

    def wait_ready(self, timeout: float = START_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"marimo exited early; see {self.log_path}:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"marimo did not answer within {timeout}s; see {self.log_path}")

    def stop(self):
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._log.close()


def _serve(tmp_path_factory, mode: str):
    base = tmp_path_factory.mktemp(f"marimo-{mode}")
    notebook = base / "explorer_marimo.py"
    notebook.write_text(NOTEBOOK, encoding="utf-8")
    server = MarimoServer(mode, notebook, base / "home", base / "server.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def marimo_server(tmp_path_factory):
    yield from _serve(tmp_path_factory, "edit")


@pytest.fixture(scope="module")
def marimo_app(tmp_path_factory):
    yield from _serve(tmp_path_factory, "run")


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


def test_explorer_draws_scrubs_and_follows_python_in_marimo(marimo_server, page):
    page.goto(marimo_server.page_url)
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
