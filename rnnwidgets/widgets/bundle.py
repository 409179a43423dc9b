"""The front-end bundle (js/src built by esbuild), carried once however many views show it.

anywidget stores each view's ``_esm`` in that view's own state, so four views of a notebook
would store the bundle four times. Here the bundle is the ``code`` of one shared model
(``Bundle``, one per kernel), and each view's ``_esm`` is ``LOADER``: a few lines that import
that model's code once per page (from the moment a view's model opens, so the import overlaps
the kernel's work on the payload) and hand it the view. A saved notebook or an exported page
then holds the bundle once, and still needs nothing but itself.

marimo is the exception: there each widget's comm belongs to one browser session and to the cell
that made it (closed when that cell runs again), and marimo's pages import a widget's code only
from its ``_esm``, never from another model's state. So in a marimo kernel each view carries the
bundle as its own ``_esm`` (marimo serves it to the page as a file, keyed by its hash) and no
``Bundle`` is made.
"""
from __future__ import annotations

import sys
from pathlib import Path

import anywidget
import ipywidgets as widgets
import traitlets

BUNDLE = Path(__file__).resolve().parent.parent / "static" / "widget.js"

LOADER = """\
// rnnwidgets: the views' code is the "code" of one shared model; import it once per page.
const loaded = (globalThis.__rnnwidgets_bundles ??= new Map());
function bundle(model) {
  const id = String(model.get("_bundle")).replace(/^IPY_MODEL_/, "");
  if (typeof model.widget_manager?.get_model !== "function") {
    throw new Error("rnnwidgets: this front end gives widgets no widget manager to share the views' code; "
      + "JupyterLab, Notebook 7, VS Code, Colab and marimo do");
  }
  if (!loaded.has(id)) {
    loaded.set(id, model.widget_manager.get_model(id).then(async (shared) => {
      const url = URL.createObjectURL(new Blob([shared.get("code")], { type: "text/javascript" }));
      try { return (await import(/* webpackIgnore: true */ url)).default; } finally { URL.revokeObjectURL(url); }
    }));
  }
  return loaded.get(id);
}
export default {
  // the import starts as the model opens, while the kernel still makes the payload; render waits for it
  initialize({ model }) { if (model.get("_bundle")) bundle(model).catch(() => {}); },
  async render(props) { return (await bundle(props.model)).render(props); },
};
"""


def check_bundle() -> None:
    if not BUNDLE.exists():
        raise FileNotFoundError(f"the front-end bundle {BUNDLE} is missing: build it with "
                                "`bash scripts/setup.sh` (or `npm install && npm run build`)")


class Bundle(widgets.Widget):
    """A plain widget model holding the bundle's text, shared by every view."""

    code = traitlets.Unicode("").tag(sync=True)


_shared: list = []  # the kernel's Bundle (at most one)
_read: dict = {}    # the bundle's text, keyed by (path, mtime_ns, size) of the file it was read from


def bundle_code() -> str:
    """The bundle's text, read again only when the file changed (its path, mtime or size): every
    view asks, and reading 134 kB cost each view about 2 ms."""
    check_bundle()
    stat = BUNDLE.stat()
    key = (str(BUNDLE), stat.st_mtime_ns, stat.st_size)
    if key not in _read:
        _read.clear()
        _read[key] = BUNDLE.read_text(encoding="utf-8")
    return _read[key]


def shared_bundle() -> Bundle:
    """The kernel's Bundle: made on first use, and anew when it was closed or the file changed."""
    code = bundle_code()
    if not _shared or _shared[0].comm is None or _shared[0].code != code:   # the same str: an identity check
        _shared[:] = [Bundle(code=code)]
    return _shared[0]


def in_marimo() -> bool:
    """Whether this code runs in a marimo notebook's kernel (marimo is imported there already)."""
    marimo = sys.modules.get("marimo")
    return marimo is not None and marimo.running_in_notebook()


class BundledView(anywidget.AnyWidget):
    """An anywidget view whose code is the shared bundle's; ``_view`` says which view it is.

    In a marimo kernel the view carries the bundle itself as its ``_esm`` and ``_bundle`` is None
    (see the module's docstring)."""

    _esm = LOADER
    _bundle = traitlets.Instance(Bundle, allow_none=True).tag(sync=True, **widgets.widget_serialization)

    def __init__(self, *args, **kwargs):
        if in_marimo():  # decided before the comm opens: marimo reads _esm from the open message
            kwargs.update(_esm=bundle_code(), _bundle=None)
        super().__init__(*args, **kwargs)

    @traitlets.default("_bundle")
    def _default_bundle(self) -> Bundle:
        return shared_bundle()
