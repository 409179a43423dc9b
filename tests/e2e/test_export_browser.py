"""Exported pages in Chromium, with the network off: light or dark as the reader prefers (or as
chosen when the page was written), every label readable in both; and a figure beside an exported
notebook shows while nothing else outside the page loads. Screenshots: artifacts/export-*.png."""
import base64
import re

import numpy as np
import pytest
from conftest import ARTIFACTS, REPO
from e2e_support import block_network, canvas_rgb, wait_for_ink
from test_explorer_look_browser import TEXTS_JS, contrast

pytestmark = pytest.mark.e2e

PAGE_BACKGROUND = {"light": (255, 255, 255), "dark": (17, 17, 17)}   # JupyterLab Light's white, Dark's #111


def series_colours(theme: str) -> list:
    source = (REPO / "js" / "src" / "colormap.ts").read_text(encoding="utf-8")
    block = re.search(r"export const SERIES_COLOURS = \{(.*?)\};", source, re.S).group(1)
    return re.findall(r'"(#[0-9a-f]{6})"', re.search(rf"{theme}: \[(.*?)\]", block).group(1))


@pytest.fixture(scope="module")
def explorer():
    import torch

    import rnnwidgets as rw

    torch.manual_seed(0)
    return rw.explore(torch.nn.LSTM(3, 10, batch_first=True), torch.randn(1, 24, 3),
                      tokens=[[f"t{t}" for t in range(24)]])


@pytest.fixture(scope="module")
def pages(explorer, tmp_path_factory):
    """The same Explorer as save_html writes it (following the reader, and pinned dark) and as
    `jupyter nbconvert --to rnnwidgets_html` does (following the reader, and with
    --HTMLExporter.theme=dark); the notebook has a figure beside it."""
    import nbformat
    from traitlets.config import Config

    from rnnwidgets.widgets import export

    folder = tmp_path_factory.mktemp("exported")
    (folder / "fig.png").write_bytes(base64.b64decode(explorer._repr_mimebundle_()["image/png"]))
    nb = nbformat.v4.new_notebook()
    view = {"version_major": 2, "version_minor": 0, "model_id": explorer.model_id}
    nb.cells = [nbformat.v4.new_markdown_cell("# Exported\n\n![the heatmap](fig.png)"),
                nbformat.v4.new_code_cell("explorer", outputs=[nbformat.v4.new_output(
                    "display_data", data={export.VIEW_MIME: view, "text/plain": "Explorer"})])]
    nb.metadata["widgets"] = {export.STATE_MIME: {"version_major": 2, "version_minor": 0,
                                                  "state": export.widget_state(explorer)}}
    out = {"save_html": export.save_html(explorer, folder / "saved.html"),
           "save_html-dark": export.save_html(explorer, folder / "saved-dark.html", theme="dark")}
    for name, config in (("nbconvert", {}), ("nbconvert-dark", {"HTMLExporter": {"theme": "dark"}})):
        text, _ = export.OfflineHTMLExporter(config=Config(config)).from_notebook_node(nb)
        out[name] = folder / f"{name}.html"
        out[name].write_text(text, encoding="utf-8")
    return out


LOOK_JS = """() => {
    const root = document.querySelector('.rw-explorer');
    const look = getComputedStyle(root);
    return {light: document.body.dataset.jpThemeLight, page: getComputedStyle(document.body).backgroundColor,
            background: look.getPropertyValue('--jp-layout-color0').trim(),
            series0: look.getPropertyValue('--rw-series-0').trim(), text: look.color};
}"""


def rgb(css: str) -> tuple:
    return tuple(int(v) for v in re.findall(r"\d+", css)[:3])


def open_page(browser, path, scheme):
    """A new page preferring `scheme`, the network off, `path` open and its Explorer drawn."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, color_scheme=scheme)
    page = context.new_page()
    blocked = block_network(page)
    page.goto(path.as_uri())
    heatmap = page.locator(".rw-explorer .rw-heatmap").first
    heatmap.wait_for(state="visible", timeout=60_000)
    wait_for_ink(heatmap, min_distinct=20)
    page.wait_for_timeout(500)   # every panel painted at its width
    return context, page, blocked


def check_look(page, theme, where):
    """The page and its Explorer in `theme`: its background, the views' series colours, the heatmap
    centred on the page's background, and every label at 4.5:1 against what is behind it."""
    look = page.evaluate(LOOK_JS)
    assert look["light"] == ("true" if theme == "light" else "false"), (where, look)
    assert rgb(look["page"]) == PAGE_BACKGROUND[theme], (where, look)
    assert look["series0"] == series_colours(theme)[0], (where, look)
    texts = page.locator(".rw-explorer").first.evaluate(TEXTS_JS)
    assert len(texts) > 20, where
    poor = [(t["text"], t["cls"], round(contrast(t["fg"], t["bg"]), 2)) for t in texts if contrast(t["fg"], t["bg"]) < 4.5]
    assert poor == [], (where, theme, poor)
    # the diverging heatmap of h is centred on the page's background: its median cell is near it
    pixels = canvas_rgb(page.locator(".rw-explorer .rw-heatmap").first).reshape(-1, 3).astype(float)
    luminance = float(np.median(pixels @ [0.2126, 0.7152, 0.0722])) / 255
    assert (luminance > 0.6) if theme == "light" else (luminance < 0.4), (where, theme, luminance)


@pytest.mark.parametrize("name", ["save_html", "nbconvert"])
def test_exported_page_follows_the_readers_light_or_dark_preference(browser, pages, name):
    for scheme in ("light", "dark"):
        context, page, blocked = open_page(browser, pages[name], scheme)
        try:
            check_look(page, scheme, f"{name} preferring {scheme}")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"export-{name}-{scheme}.png"), full_page=name == "save_html")
            assert blocked == []
        finally:
            context.close()


def test_exported_page_changes_with_the_readers_preference(browser, pages):
    """The reader switches to dark with the page open: the colours and the canvases follow."""
    context, page, _ = open_page(browser, pages["save_html"], "light")
    try:
        before = canvas_rgb(page.locator(".rw-explorer .rw-heatmap").first)
        page.emulate_media(color_scheme="dark")
        page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=10_000)
        page.wait_for_timeout(500)   # the views repainted
        check_look(page, "dark", "save_html switched to dark")
        assert not np.array_equal(canvas_rgb(page.locator(".rw-explorer .rw-heatmap").first), before)
    finally:
        context.close()


@pytest.mark.parametrize("name", ["save_html-dark", "nbconvert-dark"])
def test_a_page_written_dark_stays_dark_for_a_light_reader(browser, pages, name):
    context, page, blocked = open_page(browser, pages[name], "light")
    try:
        check_look(page, "dark", f"{name} preferring light")
        page.screenshot(path=str(ARTIFACTS / f"export-{name}-for-light-reader.png"))
        assert blocked == []
    finally:
        context.close()


def test_a_figure_beside_an_exported_notebook_shows(browser, pages):
    """`![](fig.png)` next to the page shows, and the image is the file (the policy lets images come
    from the page's own origin); a script or stylesheet beside the page is still refused."""
    folder = pages["nbconvert"].parent
    (folder / "beside.js").write_text("window.__beside = 1;")
    (folder / "beside.css").write_text("body { outline: 9px solid red; }")
    text = pages["nbconvert"].read_text(encoding="utf-8")
    hostile = folder / "with-scripts.html"
    hostile.write_text(text.replace("<main>", '<main><script src="beside.js"></script><link rel="stylesheet" '
                                    'href="beside.css"><img id="far" src="https://img.example.invalid/x.png">', 1),
                       encoding="utf-8")
    context, page, blocked = open_page(browser, hostile, "light")
    try:
        size = page.evaluate("""async () => {
            const img = document.querySelector('img[alt="the heatmap"]');
            await img.decode();
            return [img.naturalWidth, img.naturalHeight];
        }""")
        from rnnwidgets.widgets.still import MIN_HEIGHT, MIN_WIDTH

        assert size[0] >= MIN_WIDTH and size[1] >= MIN_HEIGHT, size
        assert page.evaluate("() => window.__beside") is None
        assert page.evaluate("() => getComputedStyle(document.body).outlineStyle") == "none"
        assert page.evaluate("() => document.getElementById('far').naturalWidth") == 0
        assert blocked == []   # the server image refused by the policy, before any request
    finally:
        context.close()


def test_an_exported_page_of_gradient_views_reads_in_both_schemes(browser, tmp_path):
    """An Explorer with its gradient views (charts drawn by bqplot): every label on the page reads
    at 4.5:1 in light and in dark."""
    import torch

    import rnnwidgets as rw
    from rnnwidgets.widgets import export

    torch.manual_seed(0)
    shown = rw.explore(torch.nn.GRU(3, 4), torch.randn(6, 1, 3), loss="last")
    path = export.save_html(shown, tmp_path / "gradients.html")
    for scheme in ("light", "dark"):
        context, page, blocked = open_page(browser, path, scheme)
        try:
            page.get_by_text("step t").first.wait_for(timeout=30_000)
            page.wait_for_timeout(500)
            texts = page.locator("body").evaluate(TEXTS_JS)
            assert len(texts) > 60 and any(t["text"] == "step t" for t in texts), len(texts)
            poor = [(t["text"], t["cls"], round(contrast(t["fg"], t["bg"]), 2)) for t in texts
                    if contrast(t["fg"], t["bg"]) < 4.5]
            assert poor == [], (scheme, poor)
            assert rgb(page.evaluate("() => getComputedStyle(document.body).backgroundColor")) == PAGE_BACKGROUND[scheme]
            page.screenshot(path=str(ARTIFACTS / f"export-gradients-{scheme}.png"), full_page=True)
            assert blocked == []
        finally:
            context.close()
