"""The views that are ipywidgets boxes in Jupyter, shown in marimo.

marimo draws anywidget views (``mo.ui.anywidget``) but no other ipywidgets: no boxes, labels,
dropdowns or buttons. ``MarimoDisplay`` gives such a view marimo's display protocol
(``_display_``), so a cell that ends with ``rw.gradient_flow(...)``, a ``TrainingMonitor`` or a
``MatchPanel`` shows it there: its boxes become ``mo.vstack`` / ``mo.hstack``, its anywidget views
(charts, grids, the step control, the match list) are shown as they are (the step control moves
the charts' cursors in the page, as in Jupyter), a ``Label`` or ``HTML`` becomes a ``TextView``
that follows its value (a monitor's status as training runs), a ``Dropdown`` a ``mo.ui.dropdown``
and a ``Button`` a ``mo.ui.button`` that set the ipywidget's value or click it in the kernel.

Nothing here imports marimo until a marimo cell displays a view.
"""
from __future__ import annotations

import html
from typing import Any

import anywidget
import ipywidgets as widgets
import traitlets

from .bundle import BundledView


class TextView(BundledView):
    """A Label's or HTML's value, drawn by our front end (js/src/text.ts); ``html``: the value is
    HTML (built by our code with every datum escaped, as for ``widgets.HTML``), else plain text."""

    _view = traitlets.Unicode("text").tag(sync=True)
    value = traitlets.Unicode("").tag(sync=True)
    html = traitlets.Bool(False).tag(sync=True)


def mirror(source: widgets.Widget) -> tuple[TextView, traitlets.dlink]:
    """A TextView showing ``source``'s (a Label's or an HTML's) value, now and as it changes
    (until the link returned is unlinked)."""
    view = TextView(value=source.value, html=isinstance(source, widgets.HTML))
    return view, traitlets.dlink((source, "value"), (view, "value"))


def _on_change(source: widgets.Widget, name: str):
    def set_value(value):
        setattr(source, name, value)
    return set_value


def marimo_element(widget: widgets.Widget, kept: list) -> Any:
    """``widget`` as marimo shows it. ``kept`` receives the marimo elements, mirrors and links made:
    marimo calls an element's ``on_change`` only while something holds the element."""
    import marimo as mo

    element: Any
    if isinstance(widget, anywidget.AnyWidget):
        element = mo.ui.anywidget(widget)
    elif isinstance(widget, widgets.Box):
        items = [marimo_element(child, kept) for child in widget.children
                 if child.layout.display != "none"]
        box = (mo.hstack(items, justify="start", align="center", gap=0.75) if isinstance(widget, widgets.HBox)
               else mo.vstack(items, gap=0.5))
        classes = " ".join(html.escape(c, quote=True) for c in widget._dom_classes)
        # the box's classes (rw-gradient-flow, rw-monitor) stay on the page for tests and user styles
        return mo.Html(f'<div class="{classes}">{box.text}</div>') if classes else box
    elif isinstance(widget, (widgets.Label, widgets.HTML)):
        view, link = mirror(widget)
        kept += [view, link]
        element = mo.ui.anywidget(view)
    elif isinstance(widget, widgets.Dropdown):
        options = {str(label): value for label, value in zip(widget._options_labels, widget._options_values)}
        element = mo.ui.dropdown(options=options, value=widget.label, label=widget.description,
                                 on_change=_on_change(widget, "value"))
    elif isinstance(widget, widgets.Button):
        element = mo.ui.button(label=widget.description, on_click=lambda _value: widget.click())
    else:
        raise TypeError(f"marimo: expected our views, boxes, labels, dropdowns or buttons, "
                        f"got a {type(widget).__name__}, which marimo cannot show")
    kept.append(element)
    return element


class MarimoDisplay:
    """Mixin for a view that is an ipywidgets box: marimo shows it through ``_display_``.

    Each display makes its own marimo elements and mirrors (marimo closes a widget's comm when
    the cell that made it runs again); the last display's are kept alive by the view."""

    def _display_(self) -> Any:
        for old in getattr(self, "_marimo_kept", []):
            if isinstance(old, traitlets.dlink):  # the last display's mirrors stop following
                old.unlink()
        kept: list = []
        element = marimo_element(self, kept)
        self._marimo_kept = kept
        return element
