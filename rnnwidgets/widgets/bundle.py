"""The front-end bundle (js/src built by esbuild), carried once however many views show it.

anywidget stores each view's ``_esm`` in that view's own state, so four views of a notebook
would store the bundle four times. Here the bundle is the ``code`` of one shared model
(``Bundle``, one per kernel), and each view's ``_esm`` is ``LOADER``: a few lines that import
that model's code once per page and hand it the view. A saved notebook or an exported page
then holds the bundle once, and still needs nothing but itself.
"""
from __future__ import annotations

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
  if (!loaded.has(id)) {
    loaded.set(id, model.widget_manager.get_model(id).then(async (shared) => {
      const url = URL.createObjectURL(new Blob([shared.get("code")], { type: "text/javascript" }));
      try { return (await import(/* webpackIgnore: true */ url)).default; } finally { URL.revokeObjectURL(url); }
    }));
  }
  return loaded.get(id);
}
export default { async render(props) { return (await bundle(props.model)).render(props); } };
"""


def check_bundle() -> None:
    if not BUNDLE.exists():
        raise FileNotFoundError(f"the front-end bundle {BUNDLE} is missing: build it with "
                                "`bash scripts/setup.sh` (or `npm install && npm run build`)")


class Bundle(widgets.Widget):
    """A plain widget model holding the bundle's text, shared by every view."""

    code = traitlets.Unicode("").tag(sync=True)


_shared: list = []  # the kernel's Bundle (at most one)


def shared_bundle() -> Bundle:
    """The kernel's Bundle: made on first use, and anew when it was closed or the file changed."""
    check_bundle()
    code = BUNDLE.read_text(encoding="utf-8")
    if not _shared or _shared[0].comm is None or _shared[0].code != code:
        _shared[:] = [Bundle(code=code)]
    return _shared[0]


class BundledView(anywidget.AnyWidget):
    """An anywidget view whose code is the shared bundle's; ``_view`` says which view it is."""

    _esm = LOADER
    _bundle = traitlets.Instance(Bundle).tag(sync=True, **widgets.widget_serialization)

    @traitlets.default("_bundle")
    def _default_bundle(self) -> Bundle:
        return shared_bundle()
