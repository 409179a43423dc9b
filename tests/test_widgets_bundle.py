"""The front-end bundle travels once: every view's _esm is a small loader of one shared model's code."""
import os

import numpy as np

from rnnwidgets.tracedata import LayerTrace, Trace
from rnnwidgets.widgets import bundle
from rnnwidgets.widgets.bundle import BUNDLE, LOADER, shared_bundle
from rnnwidgets.widgets.explorer import Explorer
from rnnwidgets.widgets.export import widget_state
from rnnwidgets.widgets.grid import HeatmapGrid


def trace_with_gradients():
    rng = np.random.default_rng(0)
    h = rng.standard_normal((1, 6, 3))
    return Trace(layers={"rnn.l0": LayerTrace("rnn.l0", "rnn", states={"h": h}, grads={"h": h})}, lengths=[6])


def test_views_share_one_bundle_and_a_saved_state_holds_it_once():
    explorer = Explorer(trace_with_gradients())           # with its gradient view's canvas grid
    grid = HeatmapGrid(np.ones((2, 3)))
    code = BUNDLE.read_text(encoding="utf-8")
    assert explorer.view._esm == LOADER == grid._esm and code not in LOADER
    assert explorer.view._bundle is explorer.gradients.heat._bundle is grid._bundle is shared_bundle()
    assert shared_bundle().code == code
    state = widget_state(explorer)
    texts = [value for model in state.values() for value in model["state"].values() if isinstance(value, str)]
    assert sum(code in text for text in texts) == 1
    views = [m for m in state.values() if m["model_name"] == "AnyModel"]
    # the Explorer's view, and its gradient view's step control, charts and grid
    assert len(views) == 2 + len(explorer.gradients.cursor_views) == 5
    assert {m["state"]["_bundle"] for m in views} == {"IPY_MODEL_" + shared_bundle().model_id}


def test_a_closed_or_rebuilt_bundle_is_made_anew(monkeypatch, tmp_path):
    first = shared_bundle()
    first.close()
    second = shared_bundle()
    assert second is not first and second.comm is not None
    rebuilt = tmp_path / "widget.js"
    rebuilt.write_text("export default {render() {}};", encoding="utf-8")
    monkeypatch.setattr(bundle, "BUNDLE", rebuilt)
    assert shared_bundle() is not second and shared_bundle().code == rebuilt.read_text()


def test_the_bundle_file_is_read_again_only_when_it_changed(monkeypatch, tmp_path):
    """Each view asks for the bundle: an unchanged file (path, mtime, size) is not read again, and
    a bundle rebuilt in place (npm run build while the kernel runs) is picked up, even at the same size."""
    built = tmp_path / "widget.js"
    built.write_text("export default {render() {}};", encoding="utf-8")
    monkeypatch.setattr(bundle, "BUNDLE", built)
    reads = []
    read_text = type(built).read_text
    monkeypatch.setattr(type(built), "read_text", lambda self, *a, **k: reads.append(self) or read_text(self, *a, **k))
    first = shared_bundle()
    for _ in range(5):
        assert shared_bundle() is first and HeatmapGrid(np.ones((2, 3)))._bundle is first
    assert reads == [built]
    built.write_text("export default {render() { return 1; }};", encoding="utf-8")   # rebuilt: a new size
    second = shared_bundle()
    assert second is not first and second.code == built.read_text() and len(reads) == 3
    stat = built.stat()
    built.write_text("export default {render() { return 2; }};", encoding="utf-8")   # the same size, a later mtime
    os.utime(built, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    third = shared_bundle()
    assert third is not second and "return 2" in third.code
    assert shared_bundle() is third


def test_in_a_marimo_kernel_each_view_carries_the_bundle_as_its_own_code(monkeypatch):
    # marimo binds a comm to one session and one cell, and imports code only from a view's _esm
    # (tests/e2e/test_marimo_browser.py runs it there); elsewhere the loader and one Bundle stay.
    monkeypatch.setattr(bundle, "in_marimo", lambda: True)
    explorer = Explorer(trace_with_gradients())
    code = BUNDLE.read_text(encoding="utf-8")
    assert explorer.view._esm == code and explorer.view._bundle is None
    assert explorer.view.get_state()["_bundle"] is None
    assert explorer.gradients.heat._esm == code and explorer.gradients.heat._bundle is None
    monkeypatch.setattr(bundle, "in_marimo", lambda: False)
    assert HeatmapGrid(np.ones((2, 3)))._esm == LOADER


def test_plain_python_is_not_a_marimo_kernel_even_with_marimo_imported():
    import marimo  # noqa: F401  (installed with the test extra)

    assert not bundle.in_marimo()
