"""What an Explorer shows and the rules its selection follows: values from the browser or from
Python are clamped into range or refused with a sentence, and an unknown layer or quantity never
reaches the display path (the payload, the window replies, the still image)."""
import numpy as np
import pytest
import traitlets

from rnnwidgets.tracedata import LayerTrace, Trace
from rnnwidgets.widgets.explorer import Explorer
from rnnwidgets.widgets.explorer_state import ExplorerState


def two_kinds(steps=40):
    rng = np.random.default_rng(1)
    a = lambda units: rng.standard_normal((1, steps, units))  # noqa: E731
    s = lambda units: rng.random((1, steps, units))  # noqa: E731
    lstm = LayerTrace("lstm.l0", "lstm", states={"h": a(4), "c": a(4)},
                      gates={"input": s(4), "forget": s(4), "cell": a(4), "output": s(4)})
    gru = LayerTrace("gru.l0", "gru", states={"h": a(3)}, gates={"reset": s(3), "update": s(3), "new": a(3)})
    return Trace(layers={"lstm.l0": lstm, "gru.l0": gru}, lengths=[steps])


@pytest.mark.parametrize("budget", [None, 100], ids=["whole", "windowed"])
def test_a_layer_picked_in_the_browser_that_lacks_the_quantity_shows_its_first(budget):
    ex = Explorer(two_kinds(), **({} if budget is None else {"budget": budget}))
    ex.select(layer="lstm.l0", quantity="forget", unit=3)
    ex.view.layer = "gru.l0"                             # as the browser's layer selector sends it
    assert (ex.view.quantity, ex.view.unit) == ("h", 2)  # gru.l0 has no forget gate and 3 units
    assert "image/png" in ex._repr_mimebundle_()         # the still image draws what is shown
    if budget is not None:
        assert ex.view.index["lod"]["overview"]["quantity"] == "h"
    ex.view.quantity = "update"
    assert ex.view.quantity == "update"


def test_values_from_the_browser_are_clamped_or_refused():
    ex = Explorer(two_kinds())
    view = ex.view
    view.t = 99
    assert view.t == 39                                  # a stale scrub past the end: the last step
    view.t = -5
    assert view.t == 0
    view.unit = 17
    assert view.unit == 2                             # gru.l0 has 3 units
    with pytest.raises(traitlets.TraitError, match=r"layer: expected one of \['lstm.l0', 'gru.l0'\], got 'nope'"):
        view.layer = "nope"
    with pytest.raises(traitlets.TraitError, match=r"quantity: expected one of \['h', 'reset', 'update', 'new'\]"):
        view.quantity = "c"                              # view.layer is gru.l0 (the last forward layer)
    assert (view.layer, view.quantity) == ("gru.l0", "h")
    view.brush = [35, 80]
    assert list(view.brush) == [35, 40]
    for bad in ([5, 5], [9, 3], [1, 2, 3], [50, 60]):
        with pytest.raises(traitlets.TraitError, match="brush: expected"):
            view.brush = bad
    view.brush = []
    for bad in (float("nan"), float("inf")):
        with pytest.raises(traitlets.TraitError, match="threshold: expected a finite number"):
            view.threshold = bad
    view.highlight = [0, 2, 5, -1]
    assert list(view.highlight) == [0, 2]                # gru.l0 has units 0..2


def test_a_new_trace_keeps_only_the_selection_that_fits():
    ex = Explorer(two_kinds())
    ex.select(layer="lstm.l0", quantity="forget", unit=3, t=30)
    ex.view.brush, ex.view.highlight = [20, 35], [1, 3]
    short = two_kinds(steps=25)
    del short.layers["lstm.l0"].gates["forget"]
    ex.set_trace(short)
    v = ex.view
    shown = (v.layer, v.quantity, v.unit, v.t, list(v.brush), list(v.highlight))
    assert shown == ("lstm.l0", "h", 3, 24, [20, 25], [1, 3])
    tiny = Trace(layers={"rnn.l0": LayerTrace("rnn.l0", "rnn", states={"h": np.zeros((1, 10, 2))})}, lengths=[10])
    ex.set_trace(tiny)
    assert (v.layer, v.quantity, v.unit, v.t, list(v.brush), list(v.highlight)) == ("rnn.l0", "h", 1, 9, [], [1])


def test_window_requests_are_checked():
    ex = Explorer(two_kinds(), budget=100)
    sent = []
    ex.view.send = lambda msg, buffers=None: sent.append((msg, buffers))
    ex._on_view_message(ex.view, {"type": "window", "start": 10_000}, [])
    held = ex.state.held
    assert sent[-1][0] == {"type": "window", "t0": 40 - held, "held": held}   # clamped into the sequence
    for bad in ("3", 2.5, None, True):
        with pytest.raises(ValueError, match="window request: expected an integer start step"):
            ex._on_view_message(ex.view, {"type": "window", "start": bad}, [])
    with pytest.raises(ValueError, match="travels whole"):
        ExplorerState(two_kinds()).window_reply(0, 0)


def test_the_state_says_what_was_expected():
    state = ExplorerState(two_kinds())
    assert state.layer_or_default("nope") == "gru.l0" and state.shown_quantity("lstm.l0", "nope") == "h"
    assert state.units("lstm.l0", "c") == 4 and state.units("gru.l0", "forget") == 3
    with pytest.raises(ValueError, match="unit: expected 0 <= unit < 4, got 4"):
        state.check_unit("lstm.l0", "h", 4)
    with pytest.raises(ValueError, match="t: expected 0 <= t < 40, got 40"):
        state.check_t(40)
    with pytest.raises(TypeError, match="expects an rnnwidgets.Trace"):
        ExplorerState("trace")
