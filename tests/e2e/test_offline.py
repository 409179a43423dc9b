"""Shared Explorers keep working with no kernel and no network: the self-contained HTML file, a
notebook saved with its widget state, the nbconvert export, and the still image."""
import base64
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ARTIFACTS
from e2e_support import (
    LAB_OUTPUT,
    block_network,
    cursor_pixels,
    focus_slider,
    open_in_lab,
    open_notebook,
    wait_for_change,
    wait_for_ink,
)

pytestmark = pytest.mark.e2e

XSS_TOKEN = '<img src=x onerror="window.__xss=1">'
TUTORIAL = "01_quickstart.ipynb"


@pytest.fixture(scope="module")
def explorer():
    import torch

    import rnnwidgets as rw

    torch.manual_seed(0)
    tokens = [[XSS_TOKEN if t == 3 else f"t{t}" for t in range(24)]]
    return rw.explore(torch.nn.LSTM(3, 10, batch_first=True), torch.randn(1, 24, 3), tokens=tokens)


def _token_at_cursor(page, t: int) -> str:
    """Click step t's column header: the token strip then shows its whole token at the cursor
    (the headers themselves may cut a long token to its column)."""
    page.locator(f'.rw-explorer .rw-token[data-t="{t}"]').first.click()
    full = page.locator(".rw-explorer .rw-token-full").first
    page.locator(".rw-explorer .rw-step").first.filter(has_text=f"step {t} /").wait_for()
    return full.inner_text()


def _assert_drawn_and_scrubs(page, scope=""):
    """The first Explorer on the page has painted its heatmap, and the slider moves its cursor."""
    heatmap = page.locator(".rw-explorer .rw-heatmap").first
    heatmap.wait_for(state="visible", timeout=60_000)
    ink = wait_for_ink(heatmap, min_distinct=20)
    assert ink["inked"] == ink["width"] * ink["height"] and ink["distinct"] >= 20, ink
    before = cursor_pixels(page)
    focus_slider(page, scope)
    page.keyboard.press("ArrowRight")
    after, _ = wait_for_change(lambda: cursor_pixels(page), before)
    assert after != before, "the cursor did not move after ArrowRight"


def test_saved_html_opens_offline_scrubs_and_plays(explorer, page, tmp_path):
    path = explorer.save_html(tmp_path / "explorer.html")
    blocked = block_network(page)
    page.goto(path.as_uri())
    _assert_drawn_and_scrubs(page)
    # the state bars and unit lines, painted once their column's width is known (resize observer)
    for canvas in (".rw-bars canvas", ".rw-units canvas"):
        assert wait_for_ink(page.locator(canvas).first)["distinct"] >= 2, f"{canvas} was not painted in the saved page"

    before = cursor_pixels(page)
    page.locator(".rw-play").first.click()  # Play
    after, _ = wait_for_change(lambda: cursor_pixels(page), before)
    assert after != before, "Play did not move the cursor"

    page.locator(".rw-play").first.click()  # pause
    # shown as text (the token strip draws spaces as a visible "␣"; the whole token at the cursor)...
    assert "<img\u2423src=x\u2423onerror" in _token_at_cursor(page, 3)
    assert page.locator('img[src="x"]').count() == 0
    assert page.evaluate("() => window.__xss") is None  # ...and never run
    assert blocked == []


def test_still_png_decodes_in_the_browser_to_the_heatmap(explorer, page):
    from rnnwidgets.widgets import still

    data = explorer._repr_mimebundle_()["image/png"]
    page.set_content(f'<img id="still" src="data:image/png;base64,{data}">')
    pixels = page.evaluate("""async () => {
        const img = document.getElementById('still');
        await img.decode();
        const canvas = Object.assign(document.createElement('canvas'), {width: img.naturalWidth, height: img.naturalHeight});
        const ctx = canvas.getContext('2d');
        ctx.drawImage(img, 0, 0);
        return {w: canvas.width, h: canvas.height, data: Array.from(ctx.getImageData(0, 0, canvas.width, canvas.height).data)};
    }""")
    image = np.array(pixels["data"], np.uint8).reshape(pixels["h"], pixels["w"], 4)
    from rnnwidgets.ranges import colour_scale

    states = explorer.trace.layers[explorer.view.layer].states["h"]
    h = states[0]  # (time 24, units 10)
    scale = colour_scale("h", states)      # the limits the live view and the still share
    sy, sx = pixels["h"] // h.shape[1], pixels["w"] // h.shape[0]
    assert np.array_equal(image[::sy, ::sx, :3], still.colours(h.T, scale["scale"], scale["vmin"], scale["vmax"]))
    assert (image[..., 3] == 255).all()
    assert base64.b64decode(data)[:4] == b"\x89PNG"


def test_tutorial_saved_with_state_reopens_without_kernel_and_exports_offline(jupyter_server, lab, page, tmp_path):
    # Run the tutorial in JupyterLab and save it: the widget state goes into the file (saveState).
    page, offline = lab, page
    open_in_lab(page, TUTORIAL)
    wait_for_ink(page.locator(".rw-explorer .rw-heatmap").first, min_distinct=20)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    saved = jupyter_server.root / TUTORIAL
    state = json.loads(saved.read_text())["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]
    assert any(m["model_name"] == "AnyModel" for m in state["state"].values())

    # Shut its kernel down, close it and open it again: Lab starts a fresh kernel, which never ran a
    # cell, and a new widget manager, so the Explorer it shows comes from the saved state alone;
    # then shut that kernel down too and scrub.
    old_kernels = {k["id"] for k in jupyter_server.api("GET", "/api/kernels")}
    for session in jupyter_server.api("GET", "/api/sessions"):
        jupyter_server.api("DELETE", f"/api/sessions/{session['id']}")
    open_notebook(page, TUTORIAL)   # closes the tutorial first: its Explorer's views go with it
    assert not old_kernels & {k["id"] for k in jupyter_server.api("GET", "/api/kernels")}
    wait_for_ink(page.locator(".rw-explorer .rw-heatmap").first, min_distinct=20)
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
    assert jupyter_server.api("GET", "/api/kernels") == []
    _assert_drawn_and_scrubs(page, LAB_OUTPUT)

    # The documented nbconvert option renders the saved notebook's Explorer with the network off.
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to",
                    "rnnwidgets.widgets.export.OfflineHTMLExporter", str(saved), "--output-dir", str(tmp_path)],
                   check=True, capture_output=True, timeout=120)
    blocked = block_network(offline)
    offline.goto((tmp_path / "01_quickstart.html").as_uri())
    _assert_drawn_and_scrubs(offline)
    assert blocked == []  # not a widget module, not MathJax


def test_export_of_hostile_saved_state_renders_offline_as_data(page, tmp_path):
    """Saved widget state holding a `<!--<script>` token and a model whose module is a path on this
    machine: the exported page still draws the Explorer, shows the token as text, inlines no file
    and asks the network for nothing."""
    import nbformat
    import torch

    import rnnwidgets as rw
    from rnnwidgets.widgets import export

    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "index.js").write_text('define([], function () { window.__secret = 1; return {}; });')
    torch.manual_seed(0)
    tokens = [["<!--<script>" if t == 2 else f"t{t}" for t in range(24)]]
    shown = rw.explore(torch.nn.LSTM(3, 10, batch_first=True), torch.randn(1, 24, 3), tokens=tokens)
    nb = nbformat.v4.new_notebook()
    view = {"version_major": 2, "version_minor": 0, "model_id": shown.model_id}
    nb.cells = [nbformat.v4.new_code_cell("shown", outputs=[nbformat.v4.new_output(
        "display_data", data={export.VIEW_MIME: view, "text/plain": "Explorer"})])]
    state = export.widget_state(shown)
    state["hostile"] = {"model_name": "AnyModel", "model_module": str(secret), "model_module_version": "*",
                        "state": {"_view_module": str(secret)}}
    nb.metadata["widgets"] = {export.STATE_MIME: {"version_major": 2, "version_minor": 0, "state": state}}
    with pytest.warns(UserWarning, match="left out of the page"):
        text, _ = export.OfflineHTMLExporter().from_notebook_node(nb)
    (tmp_path / "hostile.html").write_text(text, encoding="utf-8")

    blocked = block_network(page)
    page.goto((tmp_path / "hostile.html").as_uri())
    _assert_drawn_and_scrubs(page)
    assert _token_at_cursor(page, 2) == "<!--<script>"
    assert page.evaluate("() => window.__secret") is None
    assert blocked == []


def test_export_of_a_hostile_notebook_loads_nothing_from_outside_the_page(page, tmp_path):
    """A notebook whose cells name a CDN, a server and a file on this machine (an image, a script, a
    stylesheet, a mermaid diagram, whose renderer nbconvert loads from a CDN) and whose saved state
    holds an anywidget with its module at a URL: the exported page draws the Explorer and asks
    for nothing outside itself but the image beside it (images alone may come from the page's own
    origin: a figure next to an exported notebook shows)."""
    import nbformat
    import torch

    import rnnwidgets as rw
    from rnnwidgets.widgets import export

    torch.manual_seed(0)
    shown = rw.explore(torch.nn.LSTM(3, 10, batch_first=True), torch.randn(1, 24, 3))
    (tmp_path / "local.png").write_bytes(base64.b64decode(shown._repr_mimebundle_()["image/png"]))
    outside = ["https://cdn.example.invalid/x.js", "https://img.example.invalid/x.png", "local.png",
               (tmp_path / "local.png").as_uri(), "https://css.example.invalid/x.css", "https://esm.example.invalid/m.js"]
    nb = nbformat.v4.new_notebook()
    view = {"version_major": 2, "version_minor": 0, "model_id": shown.model_id}
    evil = {"version_major": 2, "version_minor": 0, "model_id": "evil-anywidget"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(f'<img src="{outside[1]}"> <img src="{outside[2]}"> <img src="{outside[3]}">\n\n'
                                      "```mermaid\ngraph TD; A-->B;\n```\n\n$x^2$"),
        nbformat.v4.new_code_cell("shown", outputs=[
            nbformat.v4.new_output("display_data", data={export.VIEW_MIME: view, "text/plain": "Explorer"}),
            nbformat.v4.new_output("display_data", data={"text/html": f'<script src="{outside[0]}"></script>'
                                                                      f'<link rel="stylesheet" href="{outside[4]}">'}),
            nbformat.v4.new_output("display_data", data={export.VIEW_MIME: evil, "text/plain": "evil"})])]
    state = export.widget_state(shown)
    state["evil-anywidget"] = {"model_name": "AnyModel", "model_module": "anywidget", "model_module_version": "*",
                               "state": {"_view_module": "anywidget", "_view_name": "AnyView",
                                         "_model_module": "anywidget", "_model_name": "AnyModel",
                                         "_esm": outside[5], "_css": outside[4]}}
    nb.metadata["widgets"] = {export.STATE_MIME: {"version_major": 2, "version_minor": 0, "state": state}}
    text, _ = export.OfflineHTMLExporter().from_notebook_node(nb)
    assert "cdnjs" not in text and export.OFFLINE_CSP in text
    assert text.index('http-equiv="Content-Security-Policy"') < text.index("<script")   # ahead of every script
    (tmp_path / "hostile.html").write_text(text, encoding="utf-8")

    requests, refused = [], []
    page.on("requestfinished", lambda r: requests.append(r.url))   # a request the policy refused never finishes
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    blocked = block_network(page)
    page.goto((tmp_path / "hostile.html").as_uri())
    _assert_drawn_and_scrubs(page)
    page.wait_for_timeout(500)
    assert blocked == []
    beside = (tmp_path / "local.png").as_uri()   # named twice: relative, and as its file: URL
    assert [u for u in requests if not u.startswith(("data:", "blob:"))] == [(tmp_path / "hostile.html").as_uri(),
                                                                             beside]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "offline-hostile-notebook.png"), full_page=True)
    tried = {re.search(r"Loading the \w+ '([^']*)'", m)[1] for m in refused}   # what the page tried, refused
    assert set(outside) - {"local.png", beside} <= tried and beside not in tried
    # and besides those only the widget manager's own icon fonts beside the page, which the inlined
    # data: font replaces (the Play button keeps its icons)
    assert all(u in outside or (u.startswith(tmp_path.as_uri()) and u.endswith((".woff2", ".woff", ".ttf")))
               for u in tried), tried


def test_a_hostile_trace_files_page_shows_its_text_as_text_and_asks_for_nothing(page, tmp_path):
    """A trace file whose names, tokens and meta are script, markup, file and javascript: URLs, RTL
    overrides and NULs, with values that are not finite: opened and saved as a page, it draws,
    shows each token as the text it is, runs none of it and asks the network for nothing."""
    from test_widgets_export import HOSTILE_NAMES, hostile_trace_file

    import rnnwidgets as rw

    trace = rw.Trace.load(hostile_trace_file(tmp_path))
    path = rw.explore(trace).save_html(tmp_path / "hostile-trace.html", title=HOSTILE_NAMES[0])
    blocked = block_network(page)
    page.goto(path.as_uri())
    _assert_drawn_and_scrubs(page)
    for t in (0, 1, 5, 7):   # (a space shows as ␣, so a token's spaces can be seen)
        assert _token_at_cursor(page, t) == HOSTILE_NAMES[t].replace(" ", "\u2423")
    assert page.evaluate("() => [window.__xss, Object.prototype.polluted, document.images.length]") == [None, None, 0]
    assert page.title() == HOSTILE_NAMES[0] and blocked == []
