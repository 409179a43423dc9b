"""Page helpers for the browser tests: notebooks to open, running them, reading canvases."""
from __future__ import annotations

import time
from pathlib import Path

# JavaScript: how much of a canvas is drawn. "inked" counts pixels that are neither transparent
# nor white; "distinct" counts colours, so a heatmap (many) differs from a filled box (one).
CANVAS_INK_JS = """(canvas) => {
    const ctx = canvas.getContext('2d');
    const {data} = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let inked = 0; const colours = new Set();
    for (let i = 0; i < data.length; i += 4) {
        const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
        if (a === 0 || (r === 255 && g === 255 && b === 255)) continue;
        inked++;
        if (colours.size < 4096) colours.add((r << 16) | (g << 8) | b);
    }
    return {width: canvas.width, height: canvas.height, inked, distinct: colours.size};
}"""


def write_notebook(path: Path, *sources: str):
    """A notebook of code cells with the given sources, for a test to open."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def wait_for_kernel_idle(page, timeout=60_000):
    """Until the current notebook's kernel has started and is idle."""
    page.wait_for_function(
        """() => {
            const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
            return kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
        }""", timeout=timeout)


def run_all_cells(page):
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


def open_and_run(page, url: str, widget_selector: str = ".rw-explorer", timeout=90_000):
    """Open a notebook page, run every cell once its kernel is idle, and wait for the widget."""
    page.goto(url)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=timeout)
    wait_for_kernel_idle(page, timeout)
    run_all_cells(page)
    widget = page.locator(widget_selector).first
    widget.wait_for(state="visible", timeout=timeout)
    return widget


def canvas_ink(locator) -> dict:
    """How much a canvas has drawn (see CANVAS_INK_JS)."""
    return locator.evaluate(CANVAS_INK_JS)


def wait_for_ink(locator, min_distinct=2, timeout=30.0) -> dict:
    """Poll until the canvas has drawn at least `min_distinct` colours; returns the last reading."""
    deadline = time.monotonic() + timeout
    ink = canvas_ink(locator)
    while ink["distinct"] < min_distinct and time.monotonic() < deadline:
        time.sleep(0.1)
        ink = canvas_ink(locator)
    return ink


# The Explorer's output in JupyterLab / Notebook 7: its controls (ipywidgets) and canvas view
# (.rw-explorer) share one output element. An exported page holds one Explorer: scope "".
LAB_OUTPUT = ".jp-OutputArea-output:has(.rw-explorer)"


def cursor_pixels(page) -> str:
    """The first Explorer's cursor overlay as a data URL: it changes when the cursor moves."""
    return page.locator(".rw-explorer .rw-cursor").first.evaluate("c => c.toDataURL()")


def focus_slider(page, scope: str = ""):
    """Give the step slider's handle the keyboard focus, as a user's click would."""
    handle = page.locator(f"{scope} .noUi-handle".strip()).first
    handle.focus()
    assert handle.evaluate("h => h === document.activeElement"), "the slider handle did not take the focus"


def wait_for_change(read, before, timeout=5.0):
    """Poll `read()` until it differs from `before`; returns (value, seconds waited)."""
    start = time.monotonic()
    value = read()
    while value == before and time.monotonic() - start < timeout:
        time.sleep(0.02)
        value = read()
    return value, time.monotonic() - start


def block_network(page) -> list:
    """Abort every request that would leave the machine's files; returns the list of their URLs."""
    blocked = []

    def route(r):
        if r.request.url.startswith(("file:", "data:", "blob:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return blocked
