"""Offline sharing: widgets as HTML that renders with no kernel and no network.

Both ways out inline the same scripts into the page: require.js, the widget manager
(`@jupyter-widgets/html-manager`'s ``embed-amd.js``), both copied into ``static/vendor/`` by
``npm run build``, and every widget module the state names (anywidget, bqplot, ...) from the
nbextensions installed with its Python package, each as a named AMD module so the manager finds
it with require.js before it would try a CDN. Our own bundle travels inside the widget state as
anywidget's ``_esm``.

- ``save_html(widget, path)``: one self-contained file for one widget (the Explorer's
  ``save_html`` method).
- ``OfflineHTMLExporter``: ``jupyter nbconvert --to rnnwidgets.widgets.export.OfflineHTMLExporter
  nb.ipynb`` renders a notebook saved with its widget state like ``--to html``, offline.
"""
from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

from jinja2 import DictLoader
from nbconvert.exporters import HTMLExporter
from traitlets import default

from ..fileio import write_text

VENDOR = Path(__file__).resolve().parent.parent / "static" / "vendor"
STATE_MIME = "application/vnd.jupyter.widget-state+json"
VIEW_MIME = "application/vnd.jupyter.widget-view+json"
BUILT_IN_PREFIX = "@jupyter-widgets/"  # base, controls, output: defined by embed-amd.js itself
ICON_FONT = "fa-solid-900.woff2"  # the Play button's icons


def _vendor_text(name: str) -> str:
    path = VENDOR / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: it is copied from node_modules by `npm run build` "
                                "(bash scripts/setup.sh runs it)")
    return path.read_text(encoding="utf-8")


def _module_source(name: str) -> str:
    """A widget module's AMD build, as installed with its Python package (share/jupyter/nbextensions)."""
    from jupyter_core.paths import jupyter_path

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


def _json_script(mime: str, data) -> str:
    """JSON in a <script type=mime>; <, > and & escaped so no value (a token) can end the element."""
    text = json.dumps(data, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="{mime}">{text}</script>'


def widget_modules(state: dict) -> list:
    """The front-end modules a widget-manager state needs that embed-amd.js does not define."""
    names = set()
    for model in state["state"].values():
        names.add(model["model_module"])
        names.add(model["state"].get("_view_module") or model["model_module"])
    return sorted(n for n in names if n and not n.startswith(BUILT_IN_PREFIX))


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


def save_html(widget, path, title: str = "rnnwidgets") -> Path:
    """Write one self-contained HTML file showing ``widget``; it opens offline, with no kernel.

    Usable as a method: ``save_html = export.save_html`` in a widget class body.
    """
    from ipywidgets.embed import embed_data

    data = embed_data(views=[widget], drop_defaults=False, state=widget_state(widget))
    manager_state = data["manager_state"]
    page = "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        offline_scripts(manager_state),
        _json_script(STATE_MIME, manager_state),
        "</head>", "<body>",
        *(_json_script(VIEW_MIME, view) for view in data["view_specs"]),
        icon_font_style(),
        "</body>", "</html>", ""])
    return write_text(path, page)  # encoded whole first, then renamed over the target


# nbconvert's lab template with its CDN script loading replaced by the inlined scripts.
OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{{ resources.rnnwidgets_offline_scripts }}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Last of the preprocessors: with --execute the widget state exists only once the
        # notebook has run.
        self.register_preprocessor(offline_widget_resources)


def offline_widget_resources(nb, resources):
    """The scripts and icon font that render the notebook's saved widgets, for the template."""
    state = nb.metadata.get("widgets", {}).get(STATE_MIME)
    resources["rnnwidgets_offline_scripts"] = offline_scripts(state) if state else ""
    resources["rnnwidgets_icon_font"] = icon_font_style() if state else ""
    return nb, resources
