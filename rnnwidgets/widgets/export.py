"""Offline sharing: widgets as HTML that renders with no kernel and no network.

Both ways out inline the same scripts into the page: require.js, the widget manager
(`@jupyter-widgets/html-manager`'s ``embed-amd.js``), both copied into ``static/vendor/`` by
``npm run build``, and every widget module the state names (anywidget, bqplot, ...) from the
nbextensions installed with its Python package, each as a named AMD module so the manager finds
it with require.js before it would try a CDN. Our own bundle travels inside the widget state as
anywidget's ``_esm``.

- ``save_html(widget, path)``: one self-contained file for one widget (the Explorer's
  ``save_html`` method).
- ``OfflineHTMLExporter``: ``jupyter nbconvert --to rnnwidgets_html nb.ipynb`` renders a
  notebook saved with its widget state like ``--to html``, offline (without MathJax or mermaid:
  math and diagrams stay as their source text, which needs no network).

Both pages carry a Content-Security-Policy (``OFFLINE_CSP``) that lets them load nothing but what
they hold, images from their own origin excepted (a markdown cell's ``![](fig.png)``), so no saved
state or notebook HTML can make them reach a server, or run a script or read a style from outside
the page.

Both follow the reader's light or dark preference (``prefers-color-scheme``) unless a theme is
chosen when the page is written (``theme="dark"``; nbconvert's ``--HTMLExporter.theme=dark``): the
page carries JupyterLab's Light and Dark variables, which every view reads, and a few lines of
script that mark ``<body>`` as JupyterLab does, so the views' canvases repaint when it changes.

Every file is written whole beside its target and renamed over it (``fileio.atomic_write``): the
exporter swaps nbconvert's ``FilesWriter`` for ``AtomicFilesWriter`` when ``jupyter nbconvert`` runs it.

The saved widget state is data, never a path to follow: module names are looked up in a fixed
list (``SHIPPED_MODULES``), models of any other module are left out of the page, and every JSON
script element has its ``<``, ``>`` and ``&`` escaped so no value can end or confuse it.
"""
from __future__ import annotations

import base64
import glob
import html
import json
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Optional

from jinja2 import DictLoader
from nbconvert.exporters import HTMLExporter
from nbconvert.writers import FilesWriter
from traitlets import default

from ..fileio import check_replaceable, write_bytes, write_text
from .payload import first_step, floats_per_step

VENDOR = Path(__file__).resolve().parent.parent / "static" / "vendor"
STATE_MIME = "application/vnd.jupyter.widget-state+json"
VIEW_MIME = "application/vnd.jupyter.widget-view+json"
BUILT_IN_MODULES = ("@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/output")  # in embed-amd.js
SHIPPED_MODULES = ("anywidget", "bqplot", "bqscales")  # installed with our dependencies, inlined from nbextensions
ICON_FONT = "fa-solid-900.woff2"  # the Play button's icons
# The page may load nothing but what it holds: inline scripts and styles, and data: or blob: URLs
# (anywidget imports its inline module from a blob:); images alone may also come from the page's
# own origin, so a markdown cell's ![](fig.png) beside an exported notebook shows. Whatever else
# the saved state or a notebook's own HTML names (a CDN script, an image on a server, a stylesheet
# or script on this machine), the browser refuses it.
OFFLINE_CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval' data: blob:; "
               "style-src 'unsafe-inline' data: blob:; img-src 'self' data: blob:; font-src data:; "
               "media-src data: blob:; "
               "connect-src data: blob:; worker-src data: blob:; base-uri 'none'; form-action 'none'")
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{OFFLINE_CSP}">'


def _vendor_text(name: str) -> str:
    path = VENDOR / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: it is copied from node_modules by `npm run build` "
                                "(bash scripts/setup.sh runs it)")
    return path.read_text(encoding="utf-8")


def _module_source(name: str) -> str:
    """A widget module's AMD build, as installed with its Python package (share/jupyter/nbextensions);
    only for the modules we ship, so no name can lead to another file."""
    from jupyter_core.paths import jupyter_path

    if name not in SHIPPED_MODULES:
        raise LookupError(f"widget module {name!r}: expected one of the modules rnnwidgets ships {SHIPPED_MODULES}")

    for base in jupyter_path("nbextensions"):
        path = Path(base) / name / "index.js"
        if path.exists():
            return path.read_text(encoding="utf-8")
    raise LookupError(f"widget module {name!r}: no nbextensions/{name}/index.js in {jupyter_path('nbextensions')}; "
                      f"is its Python package installed in this environment?")


def _named_amd(name: str, source: str) -> str:
    """Give an anonymous AMD module (one ``define([deps], ...)``) its name, so it can sit inline."""
    anonymous = re.compile(r"\bdefine\(\s*\[")
    if len(anonymous.findall(source)) != 1:
        raise ValueError(f"widget module {name!r}: expected exactly one anonymous define([...]) in its AMD build")
    return anonymous.sub(lambda _: f"define({json.dumps(name)}, [", source, count=1)


def _script(source: str) -> str:
    """JavaScript as an inline <script>: without source-map comments (nothing to fetch), and with
    the two sequences that would end or confuse an HTML script element escaped; both only occur
    inside strings, regexes or comments, where the escaped form means the same."""
    source = re.sub(r"^//# sourceMappingURL=.*$", "", source, flags=re.MULTILINE)
    source = re.sub(r"</(script)", r"<\\/\1", source, flags=re.IGNORECASE).replace("<!--", "<\\x21--")
    return f"<script>{source}</script>"


def _escape_json(text: str) -> str:
    """JSON text with <, > and & as \\u escapes: the same data, and no value (a token) can end or
    confuse the HTML script element it sits in (``</script>``, ``<!--<script>``)."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _json_script(mime: str, data) -> str:
    """JSON in a <script type=mime>, escaped by ``_escape_json``."""
    return f'<script type="{mime}">{_escape_json(json.dumps(data, separators=(",", ":")))}</script>'


def _model_modules(model) -> Optional[set]:
    """The modules one saved widget model names (model and view), or None when it is not a model."""
    if not isinstance(model, dict) or not isinstance(model.get("state"), dict):
        return None
    names = {model.get("model_module"), model["state"].get("_view_module") or model.get("model_module")}
    return names if all(isinstance(n, str) for n in names) else None


def shipped_state(state: dict, where: str) -> dict:
    """A widget-manager state with only the models whose modules are built in or ones we ship; the
    others (an unknown library, a name that is a path) are left out, with a warning naming them."""
    models = state.get("state") if isinstance(state, dict) else None
    models = models if isinstance(models, dict) else {}
    allowed = set(BUILT_IN_MODULES) | set(SHIPPED_MODULES)
    kept = {mid: m for mid, m in models.items() if (_model_modules(m) or {None}) <= allowed}
    left_out = sorted({repr(n) for mid, m in models.items() if mid not in kept
                       for n in (_model_modules(m) or {"(not a widget model)"}) - allowed})
    if left_out:
        warnings.warn(f"{where}: {len(models) - len(kept)} saved widget model(s) left out of the page, as their "
                      f"module is not one rnnwidgets ships ({', '.join(left_out)}); expected one of "
                      f"{', '.join(SHIPPED_MODULES + BUILT_IN_MODULES)}", stacklevel=3)
    return {**(state if isinstance(state, dict) else {}), "state": kept}


def widget_modules(state: dict) -> list:
    """The front-end modules a widget-manager state needs that embed-amd.js does not define (of the
    modules we ship: ``shipped_state`` leaves out the others)."""
    names = set()
    for model in state["state"].values():
        names |= _model_modules(model) or set()
    return sorted(n for n in names if n in SHIPPED_MODULES)


def offline_scripts(state: dict) -> str:
    """The <script> elements that render a widget-manager state with no network."""
    modules = [_script(_named_amd(name, _module_source(name))) for name in widget_modules(state)]
    return "\n".join([_script(_vendor_text("require.js")), *modules, _script(_vendor_text("embed-amd.js"))])


def icon_font_style() -> str:
    """The icon font the widget manager's CSS would fetch from beside embed-amd.js, as a data URL.
    It goes last in <body>, after the manager's own @font-face rules, so this one wins."""
    path = VENDOR / ICON_FONT
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: it is copied from node_modules by `npm run build`")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return ('<style>@font-face{font-family:"Font Awesome 5 Free";font-style:normal;font-weight:900;'
            f'font-display:block;src:url(data:font/woff2;base64,{data}) format("woff2")}}</style>')


# ---- light and dark ----------------------------------------------------------------------------

THEMES = ("auto", "light", "dark")   # "auto": the reader's prefers-color-scheme, as it changes
DARK_QUERY = "(prefers-color-scheme: dark)"
# Marks <body> as JupyterLab does (the views' dark series colours key on data-jp-theme-light, and
# their canvases repaint when it changes) from the reader's preference, now and when it changes.
# It sits first in <body>, so the mark is there before any view renders.
THEME_SCRIPT = ("<script>(function () { var q = window.matchMedia(" + json.dumps(DARK_QUERY) + "); "
                "function mark() { var b = document.body; "
                "b.setAttribute('data-jp-theme-light', q.matches ? 'false' : 'true'); "
                "b.setAttribute('data-jp-theme-name', q.matches ? 'JupyterLab Dark' : 'JupyterLab Light'); } "
                "mark(); q.addEventListener('change', mark); })();</script>")
BODY_MARKS = {"light": 'data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light"',
              "dark": 'data-jp-theme-light="false" data-jp-theme-name="JupyterLab Dark"'}


def check_theme(theme, who: str) -> str:
    if theme not in THEMES:
        raise ValueError(f"{who}: theme {theme!r}: expected 'auto' (follow the reader's light or dark "
                         f"preference), 'light' or 'dark'")
    return theme


def lab_theme_variables(name: str) -> str:
    """JupyterLab's Light or Dark theme variables (``--jp-*``, the declarations of the one ``:root``
    rule of the stylesheet nbconvert's lab template ships), which every view reads its colours from;
    ``name`` "material": the palette (``--md-*``) both themes name their colours from."""
    from jupyter_core.paths import jupyter_path

    file, first = ("index.css", "--md-red-50:") if name == "material" else (f"theme-{name}.css", "")
    for base in jupyter_path("nbconvert", "templates"):
        path = Path(base) / "lab" / "static" / file
        if path.exists():
            rules = [r for r in re.findall(r"^:root\s*\{(.*?)^\}", path.read_text(encoding="utf-8"), re.M | re.S)
                     if first in r]
            if len(rules) != 1 or "<" in rules[0] or "{" in rules[0] or "}" in rules[0]:
                raise ValueError(f"{path}: expected one :root {{...}} rule of CSS variables" +
                                 (f" with {first}" if first else ""))
            return rules[0]
    raise FileNotFoundError(f"no lab/static/{file} in {jupyter_path('nbconvert', 'templates')}: it is installed "
                            f"with nbconvert")


def theme_style(theme: str) -> str:
    """A <style> with JupyterLab's variables for ``theme`` (and the palette they name): Light, Dark,
    or Light with Dark where the reader prefers dark ("auto"). In an nbconvert page it comes after
    the template's own theme stylesheet, so its rules are the ones that hold."""
    def rule(name):
        return f":root {{ color-scheme: {name};{lab_theme_variables(name)}}}"

    palette = f":root {{{lab_theme_variables('material')}}}"
    if theme == "auto":
        return f"<style>\n{palette}\n{rule('light')}\n@media {DARK_QUERY} {{\n{rule('dark')}\n}}\n</style>"
    return f"<style>\n{palette}\n{rule(theme)}\n</style>"


def widget_state(widget) -> dict:
    """The state of a widget and everything it shows, with defaults kept (an anywidget's ``_esm``
    is a default), plus the jslinks between those widgets: nothing refers to a link, but a scrub
    in the saved page moves the views only through them."""
    from ipywidgets.embed import dependency_state
    from ipywidgets.widgets.widget import _instances
    from ipywidgets.widgets.widget_link import Link

    state = dependency_state(widget, drop_defaults=False)
    links = [w for w in list(_instances.values()) if isinstance(w, Link)
             and w.source[0].model_id in state and w.target[0].model_id in state]
    if links:
        state.update(dependency_state(links, drop_defaults=False))
    return state


def save_html(widget, path, title: str = "rnnwidgets", theme: str = "auto") -> Path:
    """Write one self-contained HTML file showing ``widget``; it opens offline, with no kernel.

    ``theme``: "auto" (the page is light or dark as its reader prefers, and follows a change),
    "light" or "dark" (always that one).

    The page is written beside ``path`` and renamed over it once whole; an existing file is
    replaced only when it is an HTML page, never a folder, a trace or another kind of file.

    Usable as a method: ``save_html = export.save_html`` in a widget class body. An Explorer
    whose batch element is over its budget holds a window of steps (plus an overview), and the
    page keeps only that window: a warning says which steps were kept and the budget that
    keeps them all.
    """
    from ipywidgets.embed import embed_data

    check_theme(theme, "save_html")
    check_replaceable(path, "save_html", (b"<!doctype html", b"<html"), "an HTML page")
    for note in windows_kept(widget):
        warnings.warn(f"save_html: {note}", stacklevel=3)

    data = embed_data(views=[widget], drop_defaults=False, state=widget_state(widget))
    manager_state = shipped_state(data["manager_state"], "save_html")
    page = "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', CSP_META,
        f"<title>{html.escape(title)}</title>",
        theme_style(theme),
        "<style>body { background: var(--jp-layout-color0); color: var(--jp-ui-font-color1); }</style>",
        offline_scripts(manager_state),
        _json_script(STATE_MIME, manager_state),
        "</head>", f"<body {BODY_MARKS['light' if theme == 'auto' else theme]}>",
        *([THEME_SCRIPT] if theme == "auto" else []),
        *(_json_script(VIEW_MIME, view) for view in data["view_specs"]),
        icon_font_style(),
        "</body>", "</html>", ""])
    return write_text(path, page)  # encoded whole first, then renamed over the target


def windows_kept(widget) -> list:
    """For each Explorer in ``widget`` (itself or inside it) that holds a window of its steps,
    a sentence saying what a saved page of it keeps and how to keep every step."""
    from .explorer_state import ExplorerState

    notes, seen, todo = [], set(), [widget]
    while todo:
        w = todo.pop()
        if id(w) in seen:
            continue
        seen.add(id(w))
        todo.extend(getattr(w, "children", ()) or ())
        state = getattr(w, "state", None)
        lod = (getattr(getattr(w, "view", None), "index", None) or {}).get("lod")
        if not isinstance(state, ExplorerState) or state.held is None or not lod:
            continue
        trace = state.trace
        needed = floats_per_step(trace) * trace.steps
        t0, held = int(lod["t0"]), int(lod["held"])
        if held >= trace.steps:   # one window holds every step: nothing is left out
            continue
        # numbered as the model numbers them: a window of steps (rw.trace(steps=...)) starts at its first
        first = first_step(trace)
        traced = f", steps {first}–{first + trace.steps - 1}" if first else ""
        overview = lod["overview"]
        element = w.batch.value if getattr(w, "batch", None) is not None else 0
        notes.append(f"the Explorer's batch element {element} holds {needed:,} float32 values, over its budget of "
                     f"{state.budget:,}, so the page keeps steps {first + t0}–{first + t0 + held - 1} "
                     f"({held:,} of {trace.steps:,}{traced}) "
                     f"in full and of the rest only an overview of {overview['layer']} {overview['quantity']}; "
                     f"to keep every step, build it with rw.explore(..., budget={needed}) before saving, or "
                     f"explore a shorter stretch of the sequence")
    return notes


# nbconvert's lab template with its CDN script loading replaced by the inlined scripts, the
# offline policy ahead of every script, and neither MathJax nor mermaid (both load from a CDN:
# math stays as TeX source, a diagram as its mermaid source); the theme's variables after the
# template's own stylesheet, and with "auto" the script marking <body> first in it.
OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}
{{ resources.rnnwidgets_csp }}{{ resources.rnnwidgets_offline_scripts }}
{%- endblock html_head_js -%}
{%- block html_head_css -%}{{ resources.rnnwidgets_theme_style }}{%- endblock html_head_css -%}
{%- block body_header -%}{{ super() }}{{ resources.rnnwidgets_theme_script }}{%- endblock body_header -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block footer -%}{{ super() }}{{ resources.rnnwidgets_icon_font }}{%- endblock footer -%}
"""


class OfflineHTMLExporter(HTMLExporter):
    """HTML whose widgets render offline: ``--to html`` with every script inlined."""

    export_from_notebook = "HTML with offline widgets"

    @default("extra_loaders")
    def _default_extra_loaders(self):
        return [DictLoader({"rnnwidgets_offline.html.j2": OFFLINE_TEMPLATE})]

    @default("template_file")
    def _default_template_file(self):
        return "rnnwidgets_offline.html.j2"

    @default("theme")
    def _default_theme(self):
        return "auto"   # the reader's light or dark preference; --HTMLExporter.theme=dark pins one

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        use_atomic_writer()
        # Last of the preprocessors: with --execute the widget state exists only once the
        # notebook has run.
        self.register_preprocessor(offline_widget_resources)

    def _init_resources(self, resources):
        resources = super()._init_resources(resources)
        theme = resources["theme"]
        if theme in THEMES:   # (any other name is a JupyterLab theme extension, styled by nbconvert alone)
            resources["rnnwidgets_theme"] = theme
            resources["rnnwidgets_theme_style"] = theme_style(theme)
            if theme == "auto":   # the template's stylesheet and <body> marks: Light, until the script runs
                resources["theme"] = "light"
        return resources

    def default_filters(self):
        # the template puts the widget state and views in script elements through this filter,
        # which escapes only "/" in nbconvert: a "<!--<script>" in a value would break the page
        for name, function in super().default_filters():
            yield name, (_escape_json if name == "escape_html_script" else function)


def offline_widget_resources(nb, resources):
    """The saved widget state cut to the modules we ship, and the scripts and icon font that
    render it, for the template."""
    widgets = nb.metadata.get("widgets", {})
    state = widgets.get(STATE_MIME)
    if state:
        state = widgets[STATE_MIME] = shipped_state(state, "OfflineHTMLExporter")
    resources["rnnwidgets_csp"] = CSP_META
    resources["rnnwidgets_offline_scripts"] = offline_scripts(state) if state else ""
    resources["rnnwidgets_icon_font"] = icon_font_style() if state else ""
    # (a page without widgets has no script: its colours follow the reader through CSS alone)
    resources["rnnwidgets_theme_script"] = THEME_SCRIPT if state and resources.get("rnnwidgets_theme") == "auto" else ""
    return nb, resources


# ---- writing -----------------------------------------------------------------------------------

class AtomicFilesWriter(FilesWriter):
    """nbconvert's ``FilesWriter`` with every file (the page, extracted outputs and attachments,
    copied ``files``) written whole beside its target and renamed over it: an interrupted export
    leaves the previous file as it was. The page replaces only an HTML page (or an empty file)."""

    def _write_items(self, items, build_dir):
        for filename, data in items:
            dest = os.path.join(build_dir, filename)
            if os.path.dirname(dest):
                self._makedir(os.path.dirname(dest))
            self.log.debug("Writing %i bytes to %s", len(data), dest)
            write_bytes(dest, data)

    def write(self, output, resources, notebook_name=None, **kw):
        """``FilesWriter.write``, each file written atomically."""
        if notebook_name is None:
            raise TypeError("notebook_name")
        extension = resources.get("output_extension", None)
        resource_path = resources.get("metadata", {}).get("path", "")
        relpath = self.relpath or resource_path
        build_directory = self.build_directory or resource_path
        for kind in ("outputs", "attachments"):
            items = resources.get(kind, {}).items()
            if items:
                self._write_items(items, build_directory)
        if build_directory:
            for pattern in self.files:
                for source in glob.glob(pattern):
                    dest = os.path.join(build_directory, os.path.relpath(source, relpath) if relpath else source)
                    if os.path.normpath(dest) != os.path.normpath(source):
                        self._write_items([(os.path.relpath(dest, build_directory), Path(source).read_bytes())],
                                          build_directory)
        dest_path = Path(build_directory) / (notebook_name + extension if extension is not None else notebook_name)
        check_replaceable(dest_path, "nbconvert", (b"<!doctype html", b"<html"), "an HTML page")
        data = output.encode("utf-8") if isinstance(output, str) else output   # encoded whole first
        self.log.info("Writing %i bytes to %s", len(data), dest_path)
        write_bytes(dest_path, data)
        return dest_path


def use_atomic_writer() -> None:
    """Within ``jupyter nbconvert`` (the running ``NbConvertApp``), have its plain ``FilesWriter``
    replaced by ``AtomicFilesWriter``, with the same configuration. The app makes its writer before
    its exporter, and writes with it after the export, so the swap is in time. (Looked up, never
    imported: importing nbconvertapp makes every exporter once, this one included.)"""
    app_class = getattr(sys.modules.get("nbconvert.nbconvertapp"), "NbConvertApp", None)
    if app_class is not None and app_class.initialized():
        app = app_class.instance()
        if type(app.writer) is FilesWriter:
            app.writer = AtomicFilesWriter(parent=app)
