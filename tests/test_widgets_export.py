"""Offline sharing without a browser: the self-contained HTML file, the nbconvert exporter, and
the still PNG. (tests/e2e/test_offline.py opens the same files in Chromium with the network off.)"""
import base64
import json
import os
import re
import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

import rnnwidgets as rw
from rnnwidgets.widgets import export, payload, still

REPO = Path(__file__).resolve().parents[1]
XSS_TOKEN = "</script><img src=x onerror=\"window.__xss=1\">"


class Scripts(HTMLParser):
    """Every <script> (its attributes and text) and every other tag that could fetch something."""

    def __init__(self, text):
        super().__init__()
        self.scripts, self.fetching, self._open = [], [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self._open = [attrs, ""]
            self.scripts.append(self._open)
        elif tag in ("link", "img", "iframe") or "src" in attrs or "href" in attrs:
            self.fetching.append((tag, attrs))

    def handle_data(self, data):
        if self._open is not None:
            self._open[1] += data

    def handle_endtag(self, tag):
        if tag == "script":
            self._open = None


def decode_png(data: bytes) -> np.ndarray:
    """(height, width, 3) uint8 from an 8-bit RGB PNG; checks the signature and every chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(kind + body)
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, *_ = header
    assert (depth, colour) == (8, 2)
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + 3 * width)
    assert not rows[:, 0].any(), "only filter type 0 is decoded here"
    return rows[:, 1:].reshape(height, width, 3)


def hex_rgb(h):
    return tuple(int(h[i:i + 2], 16) for i in (1, 3, 5))


@pytest.fixture(scope="module")
def explorer():
    torch.manual_seed(0)
    model = torch.nn.LSTM(3, 6, batch_first=True)
    tokens = [[XSS_TOKEN if t == 2 else f"t{t}" for t in range(9)]]
    return rw.explore(model, torch.randn(1, 9, 3), tokens=tokens)


# ---- the self-contained file -----------------------------------------------------------------

def test_save_html_inlines_everything_and_fetches_nothing(explorer, tmp_path):
    path = export.save_html(explorer, tmp_path / "explorer.html", title="<run 1>")
    text = path.read_text(encoding="utf-8")
    page = Scripts(text)
    assert page.fetching == [] and all("src" not in attrs for attrs, _ in page.scripts)
    assert "<title>&lt;run 1&gt;</title>" in text
    code = "\n".join(body for attrs, body in page.scripts if "type" not in attrs)
    for name in ("@jupyter-widgets/base", "@jupyter-widgets/html-manager/dist/libembed-amd", "anywidget"):
        assert f'define("{name}"' in code, name
    assert "requirejs" in code and not re.search(r"^//# sourceMappingURL", code, re.M)


def test_save_html_state_carries_the_bundle_and_tokens_as_data(explorer, tmp_path):
    text = export.save_html(explorer, tmp_path / "explorer.html").read_text(encoding="utf-8")
    assert XSS_TOKEN not in text  # the token cannot leave its JSON string...
    assert "\\u003c/script\\u003e\\u003cimg src=x" in text  # ...where it is escaped
    scripts = {attrs.get("type"): body for attrs, body in Scripts(text).scripts if attrs.get("type")}
    state = json.loads(scripts[export.STATE_MIME])["state"]
    view = json.loads(scripts[export.VIEW_MIME])
    assert view["model_id"] == explorer.model_id and explorer.model_id in state
    anywidget = state[explorer.view.model_id]
    assert anywidget["model_name"] == "AnyModel" and anywidget["state"]["interval"] == 150  # Play's speed
    bundle = (REPO / "rnnwidgets" / "static" / "widget.js").read_text(encoding="utf-8")
    assert state[anywidget["state"]["_bundle"].removeprefix("IPY_MODEL_")]["state"]["code"] == bundle
    assert XSS_TOKEN in anywidget["state"]["tokens"]
    buffers = {tuple(b["path"]): base64.b64decode(b["data"]) for b in anywidget["buffers"]}
    assert buffers[("buffer",)] == explorer.view.buffer


def test_a_failing_save_html_leaves_the_previous_file(explorer, tmp_path):
    path = export.save_html(explorer, tmp_path / "explorer.html")
    before = path.read_bytes()
    with pytest.raises(UnicodeEncodeError):
        export.save_html(explorer, path, title="bad \ud800 title")  # a lone surrogate cannot be written as UTF-8
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["explorer.html"]


def test_save_html_state_carries_the_jslinks_between_its_widgets(tmp_path):
    torch.manual_seed(0)
    shown = rw.explore(torch.nn.GRU(3, 4), torch.randn(6, 1, 3), loss="last")  # its gradient view is jslinked
    text = export.save_html(shown, tmp_path / "linked.html").read_text(encoding="utf-8")
    scripts = {attrs.get("type"): body for attrs, body in Scripts(text).scripts if attrs.get("type")}
    state = json.loads(scripts[export.STATE_MIME])["state"]
    links = [m["state"] for m in state.values() if m["model_name"] == "LinkModel"]
    pairs = {(link["source"][0][10:], link["target"][0][10:]) for link in links}
    gf = shown.gradients
    assert (gf.steps.model_id, shown.view.model_id) in pairs
    # the charts follow the step control in the page: its followers travel in the state too
    followers = state[gf.steps.model_id]["state"]["followers"]
    assert followers == [f"IPY_MODEL_{w.model_id}" for w in (gf.time_chart, gf.heat, gf.gate_chart)]
    assert all(ref[10:] in state for ref in followers)
    assert all(ref.startswith("IPY_MODEL_") and ref[10:] in state for link in links
               for ref in (link["source"][0], link["target"][0]))


def test_widget_modules_are_the_non_builtin_ones():
    state = {"state": {
        "a": {"model_module": "@jupyter-widgets/controls", "state": {"_view_module": "@jupyter-widgets/controls"}},
        "b": {"model_module": "anywidget", "state": {"_view_module": "anywidget"}},
        "c": {"model_module": "bqplot", "state": {}},
        "d": {"model_module": "bqscales", "state": {"_view_module": None}}}}
    assert export.widget_modules(state) == ["anywidget", "bqplot", "bqscales"]


def test_named_amd_names_the_one_anonymous_define():
    source = '/* x */define(["@jupyter-widgets/base"],(e=>e));'
    assert export._named_amd("bqplot", source) == '/* x */define("bqplot", ["@jupyter-widgets/base"],(e=>e));'
    with pytest.raises(ValueError, match="exactly one anonymous define"):
        export._named_amd("twice", source + source)
    with pytest.raises(ValueError, match="exactly one anonymous define"):
        export._named_amd("none", "var x = 1;")


def test_real_widget_modules_are_named():
    for name in ("anywidget", "bqplot", "bqscales"):
        named = export._named_amd(name, export._module_source(name))
        assert named.count(f'define("{name}", [') == 1


def test_script_escapes_what_would_end_the_element():
    out = export._script('var s = "</script><!-- </SCRIPT>";\n//# sourceMappingURL=x.js.map')
    body = out[len("<script>"):-len("</script>")]
    assert "</script" not in body.lower() and "<!--" not in body and "sourceMappingURL" not in body
    assert body.startswith('var s = "<\\/script><\\x21-- <\\/SCRIPT>";')


def test_json_script_cannot_be_closed_by_a_value():
    out = export._json_script(export.VIEW_MIME, {"token": XSS_TOKEN, "amp": "&"})
    body = out[out.index(">") + 1:-len("</script>")]
    assert "<" not in body and ">" not in body and "&" not in body
    assert json.loads(body) == {"token": XSS_TOKEN, "amp": "&"}


def test_missing_vendor_files_say_how_to_build_them(explorer, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "VENDOR", tmp_path / "vendor")
    with pytest.raises(FileNotFoundError, match="npm run build"):
        export.save_html(explorer, tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()


def test_only_the_modules_we_ship_are_read(monkeypatch, tmp_path):
    with pytest.raises(LookupError, match="expected one of the modules rnnwidgets ships"):
        export._module_source("no-such-widgets")
    monkeypatch.setattr(export, "SHIPPED_MODULES", ("no-such-widgets",))
    with pytest.raises(LookupError, match="no nbextensions/no-such-widgets/index.js"):
        export._module_source("no-such-widgets")


# ---- nbconvert ---------------------------------------------------------------------------------

def _notebook_with_state(explorer):
    nb = nbformat.v4.new_notebook()
    view = {"version_major": 2, "version_minor": 0, "model_id": explorer.model_id}
    nb.cells = [nbformat.v4.new_code_cell("explorer", outputs=[nbformat.v4.new_output(
        "display_data", data={export.VIEW_MIME: view, "text/plain": "Explorer"})])]
    nb.metadata["widgets"] = {export.STATE_MIME: {"version_major": 2, "version_minor": 0,
                                                  "state": export.widget_state(explorer)}}
    return nb


def test_nbconvert_exporter_inlines_the_scripts(explorer):
    from nbconvert.exporters import get_exporter

    exporter_class = get_exporter("rnnwidgets.widgets.export.OfflineHTMLExporter")
    assert exporter_class is export.OfflineHTMLExporter
    assert get_exporter("rnnwidgets_html") is export.OfflineHTMLExporter  # the short name setup.py registers
    text, _ = exporter_class().from_notebook_node(_notebook_with_state(explorer))
    page = Scripts(text)
    # no script has a src: not a widget module, not the template's MathJax
    assert [attrs["src"] for attrs, _ in page.scripts if "src" in attrs] == []
    assert export.OfflineHTMLExporter().mathjax_url not in text
    assert "cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager" not in text  # the stock loader is gone
    code = "\n".join(body for attrs, body in page.scripts if attrs.get("type") in (None, "text/javascript"))
    assert 'define("anywidget", [' in code and 'define("@jupyter-widgets/base"' in code
    types = [attrs.get("type") for attrs, _ in page.scripts]
    assert types.count(export.STATE_MIME) == 1 and types.count(export.VIEW_MIME) == 1


def test_nbconvert_exporter_inlines_the_scripts_of_a_notebook_it_executes(tmp_path):
    # `--execute`: the widget state exists only after the run, so the scripts are chosen after it.
    from traitlets.config import Config

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import torch, rnnwidgets as rw\ntorch.manual_seed(0)\n"
        "rw.explore(torch.nn.GRU(2, 3), torch.randn(5, 1, 2))")]
    config = Config({"ExecutePreprocessor": {"enabled": True, "timeout": 120}})
    text, _ = export.OfflineHTMLExporter(config=config).from_notebook_node(nb, {"metadata": {"path": str(tmp_path)}})
    scripts = Scripts(text).scripts
    code = "\n".join(body for attrs, body in scripts if attrs.get("type") in (None, "text/javascript"))
    assert 'define("anywidget", [' in code and 'define("@jupyter-widgets/base"' in code
    state = json.loads(next(body for attrs, body in scripts if attrs.get("type") == export.STATE_MIME))["state"]
    assert "AnyModel" in {m["model_name"] for m in state.values()}


def test_nbconvert_exporter_without_widgets_is_plain_html():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# hello")]
    text, _ = export.OfflineHTMLExporter().from_notebook_node(nb)
    assert "hello" in text and "requirejs" not in text


# ---- the still image ---------------------------------------------------------------------------

def test_front_end_and_still_share_colour_anchors():
    source = (REPO / "js" / "src" / "colormap.ts").read_text(encoding="utf-8")
    def anchors(name):
        return re.findall(r'"(#[0-9a-f]{6})"', re.search(rf"const {name} = \[(.*?)\];", source, re.S).group(1))
    assert anchors("SEQUENTIAL") == still.ANCHORS["sequential"]
    # the diverging map on the default page: the background between the light theme's OKLCh ends
    background = re.search(r'DEFAULT_BACKGROUND = "(#[0-9a-f]{6})"', source).group(1)
    light = re.search(r"const DIVERGING: DivergingEnds = \{\s*light: \{ negative: \[(.*?)\], positive: \[(.*?)\]", source)
    ends = tuple(tuple(float(v) for v in side.split(",")) for side in light.groups())
    assert background == still.BACKGROUND and ends == still.DIVERGING_ENDS
    assert int(re.search(r"LUT_SIZE = (\d+)", source).group(1)) == still.LUT_SIZE
    assert hex_rgb(re.search(r'NON_FINITE = "(#[0-9a-f]{6})"', source).group(1)) == still.NON_FINITE


def test_still_png_shows_each_cell_in_its_colour():
    values = np.array([[-1.0, 0.0], [1.0, np.nan], [5.0, -0.5]], dtype=np.float32)  # (time 3, units 2)
    image = decode_png(still.heatmap_png(values, "diverging", -1.0, 1.0))
    height, width, _ = image.shape
    assert width >= still.MIN_WIDTH and height >= still.MIN_HEIGHT
    assert width % 3 == 0 and height % 2 == 0  # whole-pixel cells: 3 steps across, 2 units down
    cell = lambda unit, step: tuple(image[unit * height // 2 + 1, step * width // 3 + 1])  # noqa: E731
    lut = [tuple(c) for c in still._lut("diverging")]
    assert cell(0, 0) == lut[0] and cell(0, 1) == lut[-1]
    assert cell(0, 2) == lut[-1]  # 5.0 clamps to vmax
    assert cell(1, 0) == (255, 255, 255) == lut[128]  # 0 is the diverging centre, its own entry
    assert cell(1, 1) == still.NON_FINITE
    assert cell(1, 2) == tuple(still._lut("diverging")[64])  # -0.5 sits a quarter of the way up


def test_still_of_a_long_sequence_averages_blocks_of_steps():
    values = np.zeros((2500, 4))
    values[:3] = 1.0
    values[1200, 2] = np.inf
    image = decode_png(still.heatmap_png(values, "sequential", 0.0, 1.0))
    assert image.shape[1] == 834  # blocks of 3 steps
    first_block = image[0, 0]
    assert tuple(first_block) == hex_rgb(still.ANCHORS["sequential"][-1])
    assert tuple(image[2 * image.shape[0] // 4 + 1, 400]) == still.NON_FINITE
    assert tuple(image[2 * image.shape[0] // 4 + 1, 401]) == hex_rgb(still.ANCHORS["sequential"][0])


def spy_on_colours(monkeypatch) -> list:
    """The arrays still.colours is given, in order."""
    seen, colours = [], still.colours
    monkeypatch.setattr(still, "colours", lambda values, *args: seen.append(values) or colours(values, *args))
    return seen


def test_still_colours_block_means_of_a_float32_trace_at_the_images_width(monkeypatch):
    values = np.random.default_rng(1).standard_normal((2005, 3)).astype(np.float32)
    seen = spy_on_colours(monkeypatch)
    still.heatmap_png(values, "diverging", -2.0, 2.0)
    (coloured,) = seen
    assert coloured.shape == (3, 669)  # units x columns: 668 blocks of 3 steps and the last step alone
    starts = np.arange(0, 2005, 3)
    want = np.array([values[s:s + 3].astype(np.float64).mean(axis=0) for s in starts]).T
    np.testing.assert_allclose(coloured, want, rtol=0, atol=1e-6)


def test_still_of_a_long_trace_never_copies_it(monkeypatch):
    import tracemalloc

    values = np.random.default_rng(2).standard_normal((100_000, 64)).astype(np.float32)  # 25.6 MB
    seen = spy_on_colours(monkeypatch)
    tracemalloc.start()
    try:
        still.heatmap_png(values, "diverging", -3.0, 3.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen[0].shape[1] <= still.MAX_COLUMNS
    assert peak < values.nbytes / 4, f"{peak / 1e6:.1f} MB allocated for a {values.nbytes / 1e6:.1f} MB trace"


def test_still_png_rejects_what_is_not_a_heatmap():
    with pytest.raises(ValueError, match=r"\(time, units\)"):
        still.heatmap_png(np.zeros(5), "diverging", -1, 1)
    with pytest.raises(ValueError, match="scale"):
        still.heatmap_png(np.zeros((2, 2)), "rainbow", -1, 1)


def test_explorer_display_carries_a_still_of_its_heatmap(explorer):
    bundle = explorer._repr_mimebundle_()
    assert export.VIEW_MIME in bundle
    image = decode_png(base64.b64decode(bundle["image/png"]))
    h = explorer.trace.layers[explorer.view.layer].states["h"][0]  # (time 9, units 6)
    assert image.shape[1] % h.shape[0] == 0 and image.shape[0] % h.shape[1] == 0
    sy, sx = image.shape[0] // h.shape[1], image.shape[1] // h.shape[0]
    # the same robust limits as the live view's payload (values beyond them saturate)
    wire = payload.trace_scales(explorer.trace)[(explorer.view.layer, "h")]
    top = wire["vmax"]
    assert wire["vmin"] == -top and 0 < top <= float(np.abs(explorer.trace.layers[explorer.view.layer].h).max())
    expected = still.colours(h.T, "diverging", -top, top)
    assert np.array_equal(image[::sy, ::sx], expected)


# ---- hostile saved widget state ----------------------------------------------------------------

HOSTILE_TOKEN = "<!--<script>"
SECRET = "SECRET-FILE-CONTENT"


def hostile_notebook(tmp_path):
    """A notebook whose saved widget state holds an Explorer with a `<!--<script>` token, and models
    naming a file on this machine as their module: by absolute path and by `../` from nbextensions."""
    from jupyter_core.paths import jupyter_path

    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "index.js").write_text(f'define(["x"], function () {{ return "{SECRET}"; }});')
    torch.manual_seed(0)
    shown = rw.explore(torch.nn.GRU(3, 4, batch_first=True), torch.randn(1, 5, 3),
                       tokens=[["a", HOSTILE_TOKEN, "</script>", "&amp;", "b"]])
    nb = _notebook_with_state(shown)
    state = nb.metadata["widgets"][export.STATE_MIME]["state"]
    relative = os.path.relpath(secret, Path(jupyter_path("nbextensions")[0]))
    for i, name in enumerate([str(secret), relative, "@jupyter-widgets/../../secret"]):
        state[f"hostile{i}"] = {"model_name": "AnyModel", "model_module": name, "model_module_version": "*",
                                "state": {"_view_module": name}}
    state["not-a-model"] = ["just", "a", "list"]
    return nb, shown


def test_nbconvert_exporter_never_inlines_a_file_the_state_names(tmp_path):
    nb, shown = hostile_notebook(tmp_path)
    with pytest.warns(UserWarning, match=r"4 saved widget model\(s\) left out .*not one rnnwidgets ships"):
        text, _ = export.OfflineHTMLExporter().from_notebook_node(nb)
    assert SECRET not in text
    scripts = Scripts(text).scripts
    state = json.loads(next(body for attrs, body in scripts if attrs.get("type") == export.STATE_MIME))["state"]
    assert shown.model_id in state and not {"hostile0", "hostile1", "hostile2", "not-a-model"} & set(state)
    code = "\n".join(body for attrs, body in scripts if attrs.get("type") in (None, "text/javascript"))
    assert 'define("anywidget", [' in code


def test_nbconvert_exporter_escapes_every_json_script(tmp_path):
    nb, shown = hostile_notebook(tmp_path)
    nb.cells[0].outputs[0].data[export.VIEW_MIME]["note"] = HOSTILE_TOKEN + "</script>"
    with pytest.warns(UserWarning):
        text, _ = export.OfflineHTMLExporter().from_notebook_node(nb)
    json_scripts = [(attrs["type"], body) for attrs, body in Scripts(text).scripts
                    if attrs.get("type") in (export.STATE_MIME, export.VIEW_MIME)]
    assert sorted(t for t, _ in json_scripts) == [export.STATE_MIME, export.VIEW_MIME]
    for _, body in json_scripts:
        assert not set("<>&") & set(body)
    data = {t: json.loads(body) for t, body in json_scripts}
    assert data[export.VIEW_MIME]["note"] == HOSTILE_TOKEN + "</script>"
    assert data[export.STATE_MIME]["state"][shown.view.model_id]["state"]["tokens"] == [
        "a", HOSTILE_TOKEN, "</script>", "&amp;", "b"]


# ---- what a saved page may load, and what a save may replace ------------------------------------

def test_every_page_carries_a_policy_that_loads_nothing_from_outside_it(explorer, tmp_path):
    """Ahead of every script, a Content-Security-Policy allowing only what the page holds (inline
    code and styles, data: and blob: URLs); nbconvert's own CDN loaders (MathJax, mermaid) are gone.
    (tests/e2e/test_offline.py opens a hostile notebook's export in Chromium under it.)"""
    policy = dict(d.strip().split(" ", 1) for d in export.OFFLINE_CSP.split(";"))
    assert policy["default-src"] == "'none'" and "http" not in export.OFFLINE_CSP and "*" not in export.OFFLINE_CSP
    assert all(source in ("'unsafe-inline'", "'unsafe-eval'", "data:", "blob:", "'none'")
               for kind, sources in policy.items() if kind != "img-src" for source in sources.split())
    # images alone may come from the page's own origin (a figure beside an exported notebook)
    assert policy["img-src"] == "'self' data: blob:"
    assert policy["script-src"] == "'unsafe-inline' 'unsafe-eval' data: blob:"
    assert policy["style-src"] == "'unsafe-inline' data: blob:" and policy["connect-src"] == "data: blob:"
    assert policy["font-src"] == "data:" and policy["base-uri"] == "'none'"
    page = export.save_html(explorer, tmp_path / "explorer.html").read_text(encoding="utf-8")
    nb = _notebook_with_state(explorer)
    plain = nbformat.v4.new_notebook()   # and one without widgets
    for notebook in (nb, plain):
        notebook.cells.append(nbformat.v4.new_markdown_cell("```mermaid\ngraph TD; A-->B;\n```\n\n$x^2$"))
    exported = [export.OfflineHTMLExporter().from_notebook_node(notebook)[0] for notebook in (nb, plain)]
    assert "<script" not in exported[1]
    for text in (page, exported[0], exported[1] + "<script"):
        assert export.OFFLINE_CSP in text
        assert text.index('http-equiv="Content-Security-Policy"') < text.index("<script")
        assert not re.search(r"cdnjs|mermaid\.esm|mathjax/", text, re.I)


def test_save_html_never_replaces_a_folder_or_another_kind_of_file(explorer, tmp_path):
    folder = tmp_path / "dataset"
    folder.mkdir()
    (folder / "zarr.json").write_text("{}")
    with pytest.raises(IsADirectoryError, match="is a folder: expected the path of a file to write"):
        export.save_html(explorer, folder)
    trace_file = explorer.trace.save(tmp_path / "run.npz")
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    kept = {p: p.read_bytes() for p in (trace_file, notes, folder / "zarr.json")}
    for path in (trace_file, notes):
        with pytest.raises(FileExistsError, match=f"save_html: {re.escape(str(path))} exists and is not an HTML page"):
            export.save_html(explorer, path)
    assert {p: p.read_bytes() for p in kept} == kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset", "notes.txt", "run.npz"]   # nothing left beside
    page = tmp_path / "page.html"
    page.write_text("")   # an empty file holds nothing to lose
    export.save_html(explorer, page)
    export.save_html(explorer, page)   # and a page of ours is replaced
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_an_interrupt_inside_the_writer_leaves_the_previous_page(explorer, tmp_path, monkeypatch):
    from rnnwidgets import fileio

    path = export.save_html(explorer, tmp_path / "explorer.html")
    before = path.read_bytes()

    def interrupted(fd):   # the whole new page written to the temporary file, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export.save_html(explorer, path, title="another")
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["explorer.html"]


def test_nbconvert_export_keeps_a_relative_image_a_reference_beside_the_page(explorer, tmp_path):
    """`![](fig.png)` stays a relative reference (the policy lets the browser show it, the e2e test
    checks): the exporter never reads the file into the page, nor a file named by absolute path."""
    fig = tmp_path / "fig.png"
    fig.write_bytes(base64.b64decode(explorer._repr_mimebundle_()["image/png"]))
    nb = _notebook_with_state(explorer)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"![a figure](fig.png)\n\n![](<{fig}>)"))
    text, _ = export.OfflineHTMLExporter().from_notebook_node(nb, {"metadata": {"path": str(tmp_path)}})
    assert '<img alt="a figure" src="fig.png"' in text and f'src="{fig}"' in text
    assert base64.b64encode(fig.read_bytes()[:48]).decode() not in text


# ---- light and dark ----------------------------------------------------------------------------

def _dark_block(text):
    """The page's rule for the reader who prefers dark, or None."""
    found = re.search(r"@media \(prefers-color-scheme: dark\) \{\s*:root \{ color-scheme: dark;(.*?)\}\s*\}", text, re.S)
    return found and found.group(1)


def test_save_html_follows_the_readers_light_or_dark_preference(explorer, tmp_path):
    text = export.save_html(explorer, tmp_path / "auto.html").read_text(encoding="utf-8")
    light = re.search(r":root \{ color-scheme: light;(.*?)\}", text, re.S).group(1)
    dark = _dark_block(text)
    assert "--jp-layout-color0: white;" in light and "--jp-ui-font-color1: rgba(0, 0, 0, 0.87);" in light
    assert "--jp-layout-color0: #111;" in dark and "--jp-ui-font-color1: rgba(255, 255, 255, 0.87);" in dark
    assert text.index(":root { color-scheme: light;") < text.index("@media (prefers-color-scheme: dark)")
    # the script marking <body> comes first in it, before any view
    body = text[text.index("<body"):]
    assert body.startswith(f"<body {export.BODY_MARKS['light']}>\n{export.THEME_SCRIPT}\n")
    assert "window.matchMedia(\"(prefers-color-scheme: dark)\")" in export.THEME_SCRIPT


def test_save_html_with_a_chosen_theme_is_always_that_theme(explorer, tmp_path):
    text = export.save_html(explorer, tmp_path / "dark.html", theme="dark").read_text(encoding="utf-8")
    assert ":root { color-scheme: dark;" in text and "color-scheme: light" not in text
    assert _dark_block(text) is None and export.THEME_SCRIPT not in text
    assert f"<body {export.BODY_MARKS['dark']}>" in text
    light = export.save_html(explorer, tmp_path / "light.html", theme="light").read_text(encoding="utf-8")
    assert "color-scheme: dark" not in light and f"<body {export.BODY_MARKS['light']}>" in light
    with pytest.raises(ValueError, match=r"save_html: theme 'Dark': expected 'auto' \(follow the reader"):
        export.save_html(explorer, tmp_path / "x.html", theme="Dark")
    assert not (tmp_path / "x.html").exists()


def test_nbconvert_export_follows_the_reader_unless_a_theme_is_chosen(explorer):
    from traitlets.config import Config

    nb = _notebook_with_state(explorer)
    auto, _ = export.OfflineHTMLExporter().from_notebook_node(nb)
    assert "--jp-layout-color0: #111;" in _dark_block(auto)
    assert f"<body class=\"jp-Notebook\" {export.BODY_MARKS['light']}>\n<main>{export.THEME_SCRIPT}" in auto
    # after the template's own (Light) stylesheet, so its rules are the ones that hold
    assert auto.index("--jp-layout-color0: white") < auto.index(":root { color-scheme: light;")
    plain = nbformat.v4.new_notebook()
    plain.cells = [nbformat.v4.new_markdown_cell("# hello")]
    text, _ = export.OfflineHTMLExporter().from_notebook_node(plain)
    assert _dark_block(text) and "<script" not in text   # CSS alone: no widget to mark <body> for
    dark, _ = export.OfflineHTMLExporter(config=Config({"HTMLExporter": {"theme": "dark"}})).from_notebook_node(nb)
    assert _dark_block(dark) is None and export.THEME_SCRIPT not in dark
    assert ":root { color-scheme: dark;" in dark and f"{export.BODY_MARKS['dark']}>" in dark


# ---- every file written whole ------------------------------------------------------------------

def _run_nbconvert(argv):
    """`jupyter nbconvert argv`, in this process: the app, its writer and the exporter as the
    command makes them."""
    from nbconvert.nbconvertapp import NbConvertApp

    NbConvertApp.clear_instance()
    app = NbConvertApp.instance()
    try:
        app.initialize(argv=argv)
        app.start()
        return app
    finally:
        NbConvertApp.clear_instance()


def _disk_full_midway(monkeypatch):
    """Every file `fileio` opens to write takes half of what it is given, then fails (a full disk)."""
    from rnnwidgets import fileio

    fdopen = fileio.os.fdopen

    class HalfWritten:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            self._f.write(data[:len(data) // 2])
            self._f.flush()
            raise OSError(28, "No space left on device")

        def __getattr__(self, name):
            return getattr(self._f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self._f.__exit__(*exc)

    monkeypatch.setattr(fileio.os, "fdopen", lambda *a, **k: HalfWritten(fdopen(*a, **k)))


def test_jupyter_nbconvert_writes_the_page_whole_or_not_at_all(explorer, tmp_path, monkeypatch):
    folder = tmp_path / "site"
    folder.mkdir()
    nbformat.write(_notebook_with_state(explorer), folder / "nb.ipynb")
    argv = ["--to", "rnnwidgets_html", str(folder / "nb.ipynb"), "--log-level=ERROR"]
    app = _run_nbconvert(argv)
    assert type(app.writer) is export.AtomicFilesWriter
    page = folder / "nb.html"
    before = page.read_bytes()
    assert before.startswith(b"<!DOCTYPE html>") and export.OFFLINE_CSP.encode() in before

    _disk_full_midway(monkeypatch)
    with pytest.raises(OSError, match="No space left on device"):
        _run_nbconvert(argv + ["--HTMLExporter.theme=dark"])
    assert page.read_bytes() == before   # the previous page, whole
    assert sorted(p.name for p in folder.iterdir()) == ["nb.html", "nb.ipynb"]   # and nothing beside it


def test_atomic_writer_writes_outputs_and_copies_whole_and_replaces_only_a_page(tmp_path, monkeypatch):
    (tmp_path / "out").mkdir()
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    writer = export.AtomicFilesWriter(build_directory=str(tmp_path / "out"), files=[str(tmp_path / "data.csv")],
                                      relpath=str(tmp_path))
    resources = {"output_extension": ".html", "outputs": {"nb_files/fig.png": b"\x89PNG-1"}}
    assert writer.write("<!DOCTYPE html><p>1</p>", resources, notebook_name="nb") == tmp_path / "out" / "nb.html"
    out = {p.relative_to(tmp_path / "out").as_posix(): p.read_bytes() for p in (tmp_path / "out").rglob("*")
           if p.is_file()}
    assert out == {"nb.html": b"<!DOCTYPE html><p>1</p>", "nb_files/fig.png": b"\x89PNG-1", "data.csv": b"a,b\n1,2\n"}

    _disk_full_midway(monkeypatch)
    for resources_now in ({"output_extension": ".html", "outputs": {"nb_files/fig.png": b"\x89PNG-2"}},
                          {"output_extension": ".html"}):
        with pytest.raises(OSError, match="No space left"):
            writer.write("<!DOCTYPE html><p>2</p>", resources_now, notebook_name="nb")
    monkeypatch.undo()
    assert {p.relative_to(tmp_path / "out").as_posix(): p.read_bytes() for p in (tmp_path / "out").rglob("*")
            if p.is_file()} == out   # all of it as it was, and no temporary file left beside

    (tmp_path / "out" / "notes.html").write_text("my notes, not a page")
    with pytest.raises(FileExistsError, match="exists and is not an HTML page"):
        writer.write("<!DOCTYPE html>", {"output_extension": ".html"}, notebook_name="notes")
    assert (tmp_path / "out" / "notes.html").read_text() == "my notes, not a page"


def test_the_writer_is_swapped_only_inside_nbconvert_and_only_a_plain_one(explorer, tmp_path):
    from nbconvert.nbconvertapp import NbConvertApp
    from nbconvert.writers import StdoutWriter

    export.OfflineHTMLExporter()   # no app running: nothing to swap, nothing raised
    nbformat.write(_notebook_with_state(explorer), tmp_path / "nb.ipynb")
    app = _run_nbconvert(["--to", "rnnwidgets_html", "--stdout", str(tmp_path / "nb.ipynb"), "--log-level=ERROR"])
    assert type(app.writer) is StdoutWriter and not (tmp_path / "nb.html").exists()
    app = _run_nbconvert(["--to", "html", str(tmp_path / "nb.ipynb"), "--log-level=ERROR"])
    assert type(app.writer) is export.FilesWriter   # another exporter: nbconvert as it was
    assert not NbConvertApp.initialized()


def test_the_jupyter_nbconvert_command_writes_through_the_atomic_writer(tmp_path):
    """The command itself (its own process): the page it would write over is not a page, and the
    atomic writer, unlike nbconvert's, leaves it alone and says so."""
    import subprocess
    import sys

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# hello")]
    nbformat.write(nb, tmp_path / "nb.ipynb")
    (tmp_path / "nb.html").write_text("my notes")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "rnnwidgets_html",
                          str(tmp_path / "nb.ipynb")], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode != 0 and "exists and is not an HTML page" in run.stderr, run.stderr[-2000:]
    assert (tmp_path / "nb.html").read_text() == "my notes"
    (tmp_path / "nb.html").unlink()
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "rnnwidgets_html", str(tmp_path / "nb.ipynb")],
                   check=True, capture_output=True, timeout=120, env=env)
    assert (tmp_path / "nb.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nb.html", "nb.ipynb"]


# ---- a hostile trace file, exported ---------------------------------------------------------------

HOSTILE_NAMES = ["</script><script>window.__xss=2</script>", "<img src=x onerror=window.__xss=3>",
                 "javascript:window.__xss=4", "\u202eevil\u202c", "nul\0byte", "file:///etc/passwd",
                 "../../secret", "url(file:///etc/passwd)", "<!--<script>", "__proto__"]


def hostile_trace_file(tmp_path) -> Path:
    """A trace file whose every name, token and meta field is hostile text, and whose values are
    not all finite: what someone could hand a user to open."""
    from rnnwidgets import LayerTrace, Trace

    rng = np.random.default_rng(0)
    steps = len(HOSTILE_NAMES)
    h = rng.normal(size=(1, steps, 4)).astype(np.float32)
    h[0, 1, 1], h[0, 2, 2], h[0, 3, 3] = np.nan, np.inf, -np.inf
    gates = {g: h.copy() for g in ("input", "forget", "cell", "output")}
    lstm = LayerTrace(HOSTILE_NAMES[0] + ".l0", "lstm", states={"h": h, "c": h.copy()}, gates=gates,
                      tracks={name: h.copy() for name in HOSTILE_NAMES[1:]},
                      meta={name: name for name in HOSTILE_NAMES})
    g = rng.normal(size=(1, steps, 4)).astype(np.float32)
    g[0, 4, 0] = np.nan
    other = LayerTrace("__proto__", "gru", states={"h": g})
    trace = Trace(layers={lstm.name: lstm, other.name: other}, lengths=[steps], tokens=[HOSTILE_NAMES],
                  meta={"title": HOSTILE_NAMES[1], "src": "file:///etc/passwd", "href": "../../secret"})
    return trace.save(tmp_path / "hostile.npz")


@pytest.mark.parametrize("view", ["explore", "compare"])
def test_a_hostile_trace_file_exports_as_data_and_reads_no_file_it_names(tmp_path, monkeypatch, view):
    """Opened and exported, a hostile trace file's names, tokens and meta are data in escaped JSON:
    no element or attribute comes from them, the page's JSON is strict (a NaN is no JSON), and the
    exporter reads no file but its own scripts, styles and fonts."""
    import builtins
    import io

    trace = rw.Trace.load(hostile_trace_file(tmp_path))
    widget = rw.explore(trace) if view == "explore" else rw.compare(trace, trace)
    read, real_open = [], builtins.open

    def recording_open(file, *args, **kwargs):
        if not isinstance(file, int):   # (a descriptor: the page's own temporary file, opened by name first)
            read.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording_open)
    monkeypatch.setattr(io, "open", recording_open)
    path = widget.save_html(tmp_path / "page.html", title=HOSTILE_NAMES[0])
    monkeypatch.undo()
    text = path.read_text(encoding="utf-8")
    shipped = (str(export.VENDOR), "/nbextensions/", "/nbconvert/templates/", str(tmp_path / ".page.html."))
    assert [f for f in read if not any(s in f for s in shipped)] == []
    assert "root:x:0:0" not in text and "<title>&lt;/script&gt;&lt;script&gt;window.__xss=2&lt;/script&gt;</title>" in text
    page = Scripts(text)
    assert page.fetching == [] and all(set(attrs) <= {"type"} for attrs, _ in page.scripts)
    tags = set()

    class Tags(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.add(tag)
            assert not [k for k, _ in attrs if k.startswith("on") or k in ("src", "href", "srcdoc", "action")]

    Tags().feed(text)
    assert tags == {"html", "head", "meta", "title", "style", "script", "body"}

    def strict(constant):
        raise AssertionError(f"{constant} in the page's JSON")

    state = {}
    for attrs, body in page.scripts:
        if attrs.get("type") in (export.STATE_MIME, export.VIEW_MIME):
            assert not set("<>&") & set(body)
            state.update(json.loads(body, parse_constant=strict).get("state", {}))
    shown = json.dumps(state, ensure_ascii=False)
    for name in HOSTILE_NAMES:   # every hostile string reached the page, as JSON data
        assert json.dumps(name, ensure_ascii=False)[1:-1] in shown, name
