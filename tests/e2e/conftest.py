"""Browser fixtures: one JupyterLab server and one headless Chromium shared by every e2e test, and
one JupyterLab page (`lab_page`, `lab`) that the tests open their notebooks in, one at a time.

Everything the server writes (config, runtime files, settings, the notebooks it runs) lives
under pytest's temp folder; see /work/shared/notes/browser-testing.md for why each setting is
here. The same server also serves Notebook 7's pages (/notebooks/...), so both front ends are
tested without a second start.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import BinaryIO

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 1000}

# JupyterLab user settings: every output stays in the DOM, no news pop-up, nothing written back
# unless a test saves.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                       "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    # an explicit save writes the widget state into the notebook, so it reopens drawn without a kernel
    "@jupyter-widgets/jupyterlab-manager/plugin.jupyterlab-settings": {"saveState": True},
}


def pytest_configure(config):
    """A SIGTERM (CI cancelling a job, scripts/test.sh stopping its background browser tests) stops
    the run as Ctrl-C does, so the session fixtures still stop JupyterLab (its own process group)
    and Chromium instead of leaving them running."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def pytest_collection_modifyitems(config, items):
    """Without Chromium, skip the browser tests before any server starts (in CI the browser
    fixture fails them instead: CI must run them)."""
    if Path(CHROMIUM).exists() or os.environ.get("CI") == "true":
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is not installed (apt-get install chromium); browser tests skipped")
    here = Path(__file__).parent
    for item in items:
        if "e2e" in item.keywords and here in Path(item.fspath).parents:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A server this session started in its own process group, logging to `log_path`: waiting
    until it answers, and stopping it (the whole group)."""

    process: subprocess.Popen
    log_path: Path
    _log: BinaryIO

    def wait_answers(self, url: str, name: str, timeout: float):
        """Poll `url` until it answers 200; raise with the log's tail if the server exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{name} exited early; see {self.log_path}:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{name} did not answer within {timeout}s; see {self.log_path}")

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


class JupyterServer(ServerProcess):
    """A running `jupyter lab` on loopback: its URLs, token, notebook folder and process."""

    def __init__(self, root: Path, env: dict, log_path: Path):
        self.root = root
        self.token = secrets.token_hex(16)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
             "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}", "--allow-root",
             f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
             "--JupyterNotebookApp.expose_app_in_browser=True", "--LabApp.extension_manager=readonly"],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self.log_path = log_path

    def wait_ready(self, timeout=60.0):
        self.wait_answers(f"{self.url}/api/status?token={self.token}", "jupyter lab", timeout)

    def api(self, method: str, path: str, body=None):
        """Call the server's REST API; returns the decoded JSON (or None)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}?token={self.token}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as r:
            text = r.read()
        return json.loads(text) if text else None

    def lab_url(self, notebook: str) -> str:
        return f"{self.url}/lab/tree/{notebook}?reset&token={self.token}"

    def notebook7_url(self, notebook: str) -> str:
        return f"{self.url}/notebooks/{notebook}?token={self.token}"


def _jupyter_env(base: Path) -> dict:
    """Environment with every Jupyter folder under `base`, the user settings written, and a
    kernelspec that runs this interpreter (the venv's python)."""
    env = dict(os.environ)
    folders = {"JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data", "JUPYTER_RUNTIME_DIR": "runtime",
               "IPYTHONDIR": "ipython", "JUPYTERLAB_SETTINGS_DIR": "lab-settings",
               "JUPYTERLAB_WORKSPACES_DIR": "lab-workspaces"}
    for var, name in folders.items():
        (base / name).mkdir(parents=True, exist_ok=True)
        env[var] = str(base / name)
    for rel, settings in LAB_SETTINGS.items():
        path = base / "lab-settings" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    kernel_dir = base / "data" / "kernels" / "python3"
    kernel_dir.mkdir(parents=True, exist_ok=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (rnnwidgets tests)", "language": "python"}))
    return env


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory):
    """JupyterLab serving a temp copy of notebooks/; tests may write more notebooks into .root."""
    base = tmp_path_factory.mktemp("jupyter")
    root = base / "notebooks"
    shutil.copytree(REPO / "notebooks", root)
    server = JupyterServer(root, _jupyter_env(base / "home"), base / "server.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, driven by Playwright; skipped without it unless in CI."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing; CI must run the browser tests (bash scripts/setup.sh --test installs it)")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); browser tests skipped")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _on_console(page, console: list):
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda err: console.append(f"pageerror: {err}"))


def _keep_failure(request, page, console: list):
    """When the test failed: its widget and the whole page screenshotted into artifacts/, and what
    the page's console said."""
    if getattr(request.node, "rep_call", None) is None or not request.node.rep_call.failed:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    name = request.node.name.replace("/", "_")
    try:
        widget = page.locator(".rw-explorer").first
        if widget.count():
            widget.screenshot(path=str(ARTIFACTS / f"{name}-widget.png"), timeout=5000)
        page.screenshot(path=str(ARTIFACTS / f"{name}-page.png"), timeout=5000)
    except Exception as err:  # a screenshot must never hide the test's own failure
        console.append(f"screenshot failed: {err}")
    (ARTIFACTS / f"{name}-console.txt").write_text("\n".join(console))


@pytest.fixture
def page(browser, request):
    """A fresh browser page (a saved file, Notebook 7, a second viewer); when the test fails its
    widget and the whole page are screenshotted into artifacts/."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    console: list = []
    _on_console(page, console)
    yield page
    _keep_failure(request, page, console)
    context.close()


@pytest.fixture(scope="session")
def lab_page(browser, jupyter_server):
    """One JupyterLab page for the session: the tests open their notebooks in it (open_in_lab, which
    first closes the notebook open before and has its kernel shut down) instead of loading Lab again
    (open_notebook says what each costs). Module fixtures that keep a notebook open for their tests
    take this and close it when done; a test of its own takes `lab`."""
    from e2e_support import wait_for_lab

    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.lab_console = []
    _on_console(page, page.lab_console)
    page.goto(f"{jupyter_server.url}/lab?reset&token={jupyter_server.token}")
    wait_for_lab(page)
    yield page
    context.close()


@pytest.fixture
def lab(lab_page, request):
    """The session's JupyterLab page at 1400x1000 for one test; afterwards its notebooks are closed
    (their kernels shutting down) and, when the test failed, the page is screenshotted into artifacts/."""
    from e2e_support import close_notebooks

    lab_page.set_viewport_size(VIEWPORT)
    lab_page.lab_console.clear()
    yield lab_page
    _keep_failure(request, lab_page, lab_page.lab_console)
    close_notebooks(lab_page)


@pytest.fixture(scope="session")
def quickstart(browser, jupyter_server):
    """The quickstart's Explorer (its trained model, showing c, its counting unit selected, as the
    tutorial's second Explorer does) on a 1400x900 page, and what COUNTER printed; one page for
    the session, so the tests of several modules that look at it train and open it once."""
    from e2e_support import kernel_execute, open_and_run, wait_for_ink, write_notebook
    from test_colour_limits_browser import COUNTER, QUICKSTART

    write_notebook(jupyter_server.root / "explorer_look.ipynb", QUICKSTART)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    open_and_run(page, jupyter_server.lab_url("explorer_look.ipynb"), timeout=300_000)
    wait_for_ink(page.locator(".rw-explorer .rw-heatmap").first, min_distinct=20, timeout=60)
    counter = kernel_execute(page, COUNTER).split()
    kernel_execute(page, f"explorer.select(unit={counter[0]}, t=30)")
    page.wait_for_timeout(800)  # the panels sized to their columns, the selection drawn
    page.quickstart_counter = counter
    yield page
    context.close()
