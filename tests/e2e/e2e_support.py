"""Page helpers for the browser tests: notebooks to open, running them, reading canvases."""
from __future__ import annotations

import time
from pathlib import Path

# JavaScript: how much of a canvas is drawn. "inked" counts pixels that are painted (not
# transparent): a diverging map draws 0 in the page's background colour, white on a light page;
# "distinct" counts colours, so a heatmap (many) differs from a filled box (one).
CANVAS_INK_JS = """(canvas) => {
    const ctx = canvas.getContext('2d');
    const {data} = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let inked = 0; const colours = new Set();
    for (let i = 0; i < data.length; i += 4) {
        const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
        if (a === 0) continue;
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


def wait_for_lab(page, timeout=120_000):
    """Until the JupyterLab app of a page just loaded has every plugin started and its layout restored."""
    page.wait_for_function("() => window.jupyterapp", timeout=timeout)
    page.evaluate("async () => { await window.jupyterapp.restored; }")


# Closes every document in JupyterLab's main area (the Launcher stays), nothing saved (autosave is
# off; what a test ran is its own), and any dialog left open dismissed; asks the server to shut
# each one's kernel down, and keeps the promise of that in window.rwShuttingDown: open_notebook
# waits for it once its own kernel is up, so the two overlap (a kernel with torch loaded takes
# 1-2 s to exit here) and no kernel of an earlier notebook outlives the next one's start.
CLOSE_NOTEBOOKS_JS = """() => {
    const shutdowns = [window.rwShuttingDown];
    for (const w of [...window.jupyterapp.shell.widgets('main')]) {
        if (!w.context) continue;
        const session = w.sessionContext.session;   // its request is sent now, whatever the widget does next
        if (session) shutdowns.push(session.shutdown().catch(() => { /* a test shut it down already */ }));
        w.context.model.dirty = false;   // no "Save your work?" dialog
        w.close();
    }
    for (const b of document.querySelectorAll('.jp-Dialog .jp-mod-reject')) b.click();
    window.rwShuttingDown = Promise.all(shutdowns);
}"""


def close_notebooks(page):
    """Close the notebooks open in a JupyterLab page, their kernels shutting down (CLOSE_NOTEBOOKS_JS)."""
    page.evaluate(CLOSE_NOTEBOOKS_JS)
    page.wait_for_function("() => ![...window.jupyterapp.shell.widgets('main')].some((w) => w.context)"
                           " && !document.querySelector('.jp-Dialog')", timeout=30_000)


def open_notebook(page, name: str, timeout=90_000):
    """Open notebook `name` (a path in the server's folder) in the JupyterLab page already loaded,
    after closing the one open before it, and wait until its own new kernel is idle and every
    earlier notebook's kernel has shut down: a new kernel's start, without the load of Lab's
    JavaScript that a fresh page costs (17-31 s in CI beside the other tests)."""
    close_notebooks(page)
    page.evaluate("async (path) => { await window.jupyterapp.commands.execute('docmanager:open', {path}); }", name)
    page.wait_for_function("""(path) => { const w = window.jupyterapp.shell.currentWidget;
                                          return w && w.context && w.context.path === path; }""",
                           arg=name, timeout=timeout)
    wait_for_kernel_idle(page, timeout)
    page.evaluate("async () => { await window.rwShuttingDown; }")


def open_in_lab(page, name: str, widget_selector: str = ".rw-explorer", timeout=90_000):
    """open_notebook, then run every cell and wait for the widget; returns it."""
    open_notebook(page, name, timeout)
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


# The Explorer's output in JupyterLab / Notebook 7: its batch selector (ipywidgets) and its view
# (.rw-explorer, with its own Play/slider row .rw-transport) share one output element. An exported page holds one Explorer: scope "".
LAB_OUTPUT = ".jp-OutputArea-output:has(.rw-explorer)"


def cursor_pixels(page) -> str:
    """The first Explorer's cursor overlay as a data URL: it changes when the cursor moves."""
    return page.locator(".rw-explorer .rw-cursor").first.evaluate("c => c.toDataURL()")


def focus_slider(page, scope: str = ""):
    """Give the step slider the keyboard focus, as a user's click would."""
    handle = page.locator(f"{scope} .rw-slider".strip()).first
    handle.focus()
    assert handle.evaluate("h => h === document.activeElement"), "the step slider did not take the focus"


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


# Runs code in the current notebook's kernel, as a cell would, without adding a cell; resolves
# to {stdout, error} once the kernel has answered (and so has sent every comm message it caused).
KERNEL_EXECUTE_JS = """async (code) => {
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    const future = kernel.requestExecute({code, store_history: false});
    let stdout = '', error = null;
    future.onIOPub = (msg) => {
        if (msg.header.msg_type === 'stream') stdout += msg.content.text;
        if (msg.header.msg_type === 'error') error = `${msg.content.ename}: ${msg.content.evalue}`;
    };
    await future.done;
    return {stdout, error};
}"""


def kernel_sees(page, expression: str, expected: str, timeout=10.0) -> str:
    """Poll the kernel until `expression` prints `expected` (ipywidgets holds back a widget's
    updates while earlier ones are unanswered, and the Explorer saves its step once a scrub
    rests, so one may land after a later request)."""
    deadline = time.monotonic() + timeout
    seen = kernel_execute(page, f"print({expression})").strip()
    while seen != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = kernel_execute(page, f"print({expression})").strip()
    return seen


def kernel_execute(page, code: str) -> str:
    """Run `code` in the open notebook's kernel; returns what it printed, raises what it raised."""
    result = page.evaluate(KERNEL_EXECUTE_JS, code)
    assert result["error"] is None, f"the kernel raised {result['error']} running:\n{code}"
    return result["stdout"]


# JavaScript: a canvas's pixels as [r, g, b] rows of width entries (alpha dropped).
CANVAS_RGB_JS = """(canvas) => {
    const {data} = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    const rows = [];
    for (let y = 0; y < canvas.height; y++) {
        const row = [];
        for (let x = 0; x < canvas.width; x++) {
            const i = 4 * (y * canvas.width + x);
            row.push([data[i], data[i + 1], data[i + 2]]);
        }
        rows.push(row);
    }
    return rows;
}"""


def canvas_rgb(locator):
    """A canvas's pixels as a (height, width, 3) uint8 array."""
    import numpy as np

    return np.array(locator.evaluate(CANVAS_RGB_JS), dtype=np.uint8).reshape(
        locator.evaluate("c => [c.height, c.width, 3]"))


def wait_for_text(locator, predicate, timeout=10.0) -> str:
    """Poll a locator's text until `predicate(text)` holds; returns the last text read."""
    deadline = time.monotonic() + timeout
    text = locator.inner_text()
    while not predicate(text) and time.monotonic() < deadline:
        time.sleep(0.05)
        text = locator.inner_text()
    return text


def assert_keys_drive_the_explorer(page, box, steps: int):
    """In an Explorer's box (its .rw-explorer-box locator; Play at >= 300 ms/step), with the view
    focused: ←/→ step, Home/End jump, space plays and pauses, each seen in the step text and the
    cursor's pixels; then, with the slider focused, its arrow key steps. Notebook shortcuts
    (ArrowRight, space, Home/End in Notebook 7 and JupyterLab) must not take these keys."""
    explorer = box.locator(".rw-explorer")
    step = explorer.locator(".rw-step")
    cursor = explorer.locator(".rw-cursor")
    pixels = lambda: cursor.evaluate("c => c.toDataURL()")  # noqa: E731
    last = steps - 1
    explorer.focus()
    at_start = pixels()
    for key, text in [("ArrowRight", f"step 1 / {last}"), ("ArrowLeft", f"step 0 / {last}"),
                      ("End", f"step {last} / {last}"), ("Home", f"step 0 / {last}")]:
        before = pixels()
        page.keyboard.press(key)
        assert wait_for_text(step, lambda s: s.startswith(text)).startswith(text), f"{key}: {step.inner_text()}"
        assert wait_for_change(pixels, before)[0] != before, f"{key} did not move the drawn cursor"
    assert pixels() == at_start, "back at step 0 the cursor is not drawn where it started"
    page.keyboard.press(" ")  # play
    playing = wait_for_text(step, lambda s: not s.startswith("step 0 /"))
    assert not playing.startswith("step 0 /"), "space did not start playing"
    page.keyboard.press(" ")  # pause
    time.sleep(0.5)  # a step already on its way may still land
    paused = step.inner_text()
    time.sleep(1.0)  # more than two Play intervals
    assert step.inner_text() == paused and not paused.startswith(f"step {last} /"), \
        f"space did not pause: {paused} then {step.inner_text()}"
    assert explorer.evaluate("e => e === document.activeElement"), "a shortcut took the focus from the Explorer"
    t = int(paused.split()[1])
    handle = box.locator(".rw-slider").first
    handle.focus()
    before = pixels()
    page.keyboard.press("ArrowRight")
    text = f"step {t + 1} / {last}"
    assert wait_for_text(step, lambda s: s.startswith(text)).startswith(text), "the slider's ArrowRight did not step"
    assert wait_for_change(pixels, before)[0] != before, "the slider's ArrowRight did not move the drawn cursor"
    assert handle.input_value() == str(t + 1)


# Holds back every message from the kernel (the page sees none until released): a cell sleeping
# in the kernel is not enough, since ipykernel still answers widget messages meanwhile (measured:
# a reply within 50 ms of the key press while `time.sleep(30)` ran).
# Counts the messages the page sends the kernel from here on (window.rwSends).
COUNT_KERNEL_SENDS_JS = """() => {
    const ws = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel._ws;
    const send = ws.send.bind(ws);
    window.rwSends = 0;
    ws.send = (data) => { window.rwSends++; return send(data); };
}"""

HOLD_KERNEL_JS = """() => {
    const ws = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel._ws;
    const deliver = ws.onmessage, held = [];
    ws.onmessage = (ev) => held.push(ev);
    window.rwReleaseKernel = () => { ws.onmessage = deliver; for (const ev of held) deliver.call(ws, ev); return held.length; };
}"""


def token_model_cell(rnn: str, hidden: int, explore_args: str = "", before_explore: str = "") -> str:
    """A notebook cell: a small token model (embedding of 4 tokens, one recurrent layer `rnn` of
    `hidden` units, e.g. "GRU", a linear head) over 15 bracket tokens, `model`, and its Explorer,
    shown; `before_explore` is code (lines ending in a newline) run just before the Explorer is made."""
    return f"""\
import torch, torch.nn as nn, rnnwidgets as rw
torch.manual_seed(0)
class Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.rnn, self.head = nn.Embedding(4, 8), nn.{rnn}(8, {hidden}, batch_first=True), nn.Linear({hidden}, 4)
    def forward(self, ids):
        return self.head(self.rnn(self.emb(ids))[0])
vocab = list("()ab")
text = "(a(b(ab)a)(b))a"
ids = torch.tensor([[vocab.index(c) for c in text]])
model = Tokens().eval()
{before_explore}explorer = rw.explore(model, ids, tokens=[list(text)], decode=vocab{explore_args})
explorer"""


def planted_dataset_lines(texts: str) -> str:
    """Code making `ds`, a DatasetTrace of the token lists `texts` (a Python literal) with one
    layer of 3 units: units 0 and 1 are on (0.6) exactly at each "(", unit 2 never, so the
    matches of "((" are known. Needs `np` and `DatasetTrace` imported."""
    return f"""\
texts = {texts}
tokens = [tok for text in texts for tok in text]
h = np.array([[0.6, 0.6, -0.5] if ch == "(" else [-0.9, -0.9, -0.5] for ch in tokens], dtype=np.float32)
vocab = sorted(set(tokens))
ds = DatasetTrace({{"rnn.l0": {{"h": h}}}}, {{"rnn.l0": "rnn"}}, np.cumsum([0] + [len(t) for t in texts]),
                  np.array([vocab.index(t) for t in tokens], dtype=np.int32), vocab)
"""


def open_explorer_notebook(lab, jupyter_server, name: str, cell: str):
    """Write `cell` as notebook `name`, open it in the JupyterLab page `lab`, run it, and wait until
    its Explorer's heatmap is drawn; returns the Explorer (.rw-explorer)."""
    write_notebook(jupyter_server.root / name, cell)
    widget = open_in_lab(lab, name)
    wait_for_ink(widget.locator(".rw-heatmap"), min_distinct=10)
    return widget


def explorer_made_here(cell: str):
    """Run a notebook cell that makes `explorer` and shows it, in this process (without the last
    line, which shows it); returns the Explorer."""
    namespace: dict = {}
    exec(cell.rsplit("\n", 1)[0], namespace)
    return namespace["explorer"]


def open_offline(page, path: Path) -> list:
    """Open a saved page with the network off; returns the list of the requests blocked."""
    blocked = block_network(page)
    page.goto(path.as_uri())
    return blocked


THEMES = (("JupyterLab Light", "true"), ("JupyterLab Dark", "false"))


def set_theme(page, theme: str, light: str):
    """Switch JupyterLab's theme and wait until the page says it is light (`light` "true") or dark."""
    page.evaluate(f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{theme}'}})")
    page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'", timeout=30_000)


def in_each_theme(page, check):
    """Call check(name) ("light", then "dark") with JupyterLab in that theme, its CSS applied; then
    back to Light, even when a check fails: the theme is a user setting of the shared server, and
    the tests after this one run in Light."""
    try:
        for theme, light in THEMES:
            set_theme(page, theme, light)
            page.wait_for_timeout(300)   # the theme's CSS applied
            check(theme.split()[1].lower())
    finally:
        set_theme(page, "JupyterLab Light", "true")


# JupyterLab Dark on the page: its theme's variables and attributes, as the theme sets them
DARK = """() => {
  const s = document.body.style;   // JupyterLab Dark's variables, as its theme sets them
  for (const [k, v] of [["--jp-layout-color0", "#111111"], ["--jp-layout-color1", "#212121"],
                        ["--jp-ui-font-color0", "rgba(255,255,255,1)"], ["--jp-ui-font-color1", "rgba(255,255,255,0.87)"],
                        ["--jp-ui-font-color2", "rgba(255,255,255,0.54)"], ["--jp-border-color1", "#616161"]])
    s.setProperty(k, v);
  s.background = "#111111";
  s.color = "rgba(255,255,255,0.87)";   // the text colour JupyterLab Dark gives an output area
  document.body.setAttribute("data-jp-theme-light", "false");
  document.body.setAttribute("data-jp-theme-name", "JupyterLab Dark");
}"""
