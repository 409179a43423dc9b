"""The Explorer's widget state, with no front end: the payload's layout, the controls and re-tracing."""
import numpy as np
import pytest
import torch
import traitlets
from torch import nn

import rnnwidgets as rw
from rnnwidgets import explore
from rnnwidgets.capture import trace
from rnnwidgets.tracedata import LayerTrace, Trace
from rnnwidgets.widgets.explorer import BUNDLE, Explorer
from rnnwidgets.widgets.payload import build_payload, top_predictions, trace_scales, window_payload

LSTM_QUANTITIES = ["h", "c", "input", "forget", "cell", "output"]


class CharModel(nn.Module):
    """Embedding -> LSTM -> a head over the vocabulary: the shape of the tutorials' models."""

    def __init__(self, vocab=5, units=6):
        super().__init__()
        self.emb = nn.Embedding(vocab, 4)
        self.lstm = nn.LSTM(4, units, batch_first=True)
        self.head = nn.Linear(units, vocab)

    def forward(self, ids):
        return self.head(self.lstm(self.emb(ids))[0])


def arrays_of(view):
    """Every array of the view's payload, as numpy (time, units), by (layer, quantity)."""
    floats = np.frombuffer(view.buffer, dtype="<f4")
    return {(layer["name"], q["name"]): floats[q["offset"]:q["offset"] + q["steps"] * q["units"]]
            .reshape(q["steps"], q["units"])
            for layer in view.index["layers"] for q in layer["quantities"]}


@pytest.fixture
def lstm():
    torch.manual_seed(0)
    return nn.LSTM(4, 8, num_layers=2, batch_first=True)


def test_small_lstm_payload_is_one_float32_buffer_of_every_layer_and_quantity(lstm):
    x = torch.randn(2, 5, 4)
    ex = rw.explore(lstm, x)
    view = ex.view
    assert isinstance(ex, Explorer) and isinstance(view.buffer, bytes)
    assert [layer["name"] for layer in view.index["layers"]] == ["lstm.l0", "lstm.l1"]
    assert all([q["name"] for q in layer["quantities"]] == LSTM_QUANTITIES for layer in view.index["layers"])
    # float32 x (layers x quantities x steps x units + the numeric input features: steps x 4
    # + each layer's initial h and c: 2 x units)
    assert len(view.buffer) == 4 * (2 * len(LSTM_QUANTITIES) * 5 * 8 + 5 * 4 + 2 * 2 * 8)
    assert view.index["inputs"]["offset"] == 2 * len(LSTM_QUANTITIES) * 5 * 8
    floats = np.frombuffer(view.buffer, dtype="<f4")
    for layer in view.index["layers"]:  # the state each layer started from, for the cell view at t = 0
        assert set(layer["initial"]) == {"h", "c"}
        for name, offset in layer["initial"].items():
            np.testing.assert_array_equal(floats[offset:offset + 8], ex.trace.layers[layer["name"]].initial[name][0])
    assert view.index["steps"] == 5 and view.index["length"] == 5
    assert view.index["predictions"] is None  # a bare LSTM's output is its h, not a head's scores
    assert view.layer == "lstm.l1" and view.quantity == "h"  # the last layer's hidden state first
    tr = ex.trace
    for (layer, name), array in arrays_of(view).items():
        assert array.shape == (5, 8)
        np.testing.assert_array_equal(array, tr.layers[layer].quantities()[name][0])
    # the hidden state shown is the module's own output
    out, _ = lstm(x)
    np.testing.assert_allclose(arrays_of(view)[("lstm.l1", "h")], out[0].detach().numpy(), rtol=0, atol=1e-6)


def test_batch_selector_resends_that_element(lstm):
    x = torch.randn(3, 5, 4)
    ex = rw.explore(lstm, x)
    assert ex.batch.options == (("0 (length 5)", 0), ("1 (length 5)", 1), ("2 (length 5)", 2))
    ex.batch.value = 2
    np.testing.assert_array_equal(arrays_of(ex.view)[("lstm.l0", "forget")], ex.trace.layers["lstm.l0"].gates["forget"][2])



def test_padding_length_and_tokens_per_element():
    rng = np.random.default_rng(0)
    h = rng.standard_normal((2, 4, 3))
    tr = Trace(layers={"rnn.l0": LayerTrace("rnn.l0", "rnn", states={"h": h})}, lengths=[4, 2],
               tokens=[list("abcd"), ["<b>", "x"]])
    ex = explore(tr)
    assert ex.view.index["length"] == 4 and ex.view.tokens == list("abcd")
    ex.batch.value = 1
    assert ex.view.index["length"] == 2 and ex.view.tokens == ["<b>", "x"]
    np.testing.assert_array_equal(arrays_of(ex.view)[("rnn.l0", "h")], h[1].astype(np.float32))


def test_numeric_inputs_travel_when_there_are_no_tokens():
    h = np.zeros((1, 3, 2))
    inputs = np.arange(6, dtype=np.float32).reshape(1, 3, 2)
    tr = Trace(layers={"rnn.l0": LayerTrace("rnn.l0", "rnn", states={"h": h})}, lengths=[3], inputs=inputs)
    index, buffer = build_payload(tr)
    entry = index["inputs"]
    floats = np.frombuffer(buffer, dtype="<f4")
    np.testing.assert_array_equal(floats[entry["offset"]:entry["offset"] + 6].reshape(3, 2), inputs[0])
    assert entry["vmax"] == 5.0


def test_top_predictions_match_torch_softmax_and_label_the_classes():
    torch.manual_seed(1)
    model = CharModel()
    ids = torch.tensor([[0, 1, 2, 3, 4]])
    ex = rw.explore(model, ids, tokens=list("abcde"), decode=list("vwxyz"))
    p = ex.view.index["predictions"]
    floats = np.frombuffer(ex.view.buffer, dtype="<f4")
    steps, k = 5, p["k"]
    top_ids = floats[p["ids"]:p["ids"] + steps * k].reshape(steps, k).astype(int)
    top_probs = floats[p["probs"]:p["probs"] + steps * k].reshape(steps, k)
    probs, classes = torch.softmax(model(ids)[0], dim=-1).topk(k, dim=-1)
    np.testing.assert_allclose(top_probs, probs.detach().numpy(), atol=1e-6)
    assert [[p["labels"][i] for i in row] for row in top_ids] == [["vwxyz"[c] for c in row] for row in classes.tolist()]


def test_top_predictions_with_a_decode_function_and_few_classes():
    ids, probs, labels = top_predictions(np.array([[0.0, 2.0], [1.0, 1.0]]), lambda i: f"<{i}>", k=5)
    assert ids.shape == (2, 2) and labels == ["<0>", "<1>"]
    np.testing.assert_allclose(probs[:, 0], [np.exp(2) / (1 + np.exp(2)), 0.5], rtol=1e-6)
    assert [labels[int(i)] for i in ids[1]] == ["<0>", "<1>"]  # ties keep class order


def test_the_play_controls_are_the_views_own(lstm):
    ex = rw.explore(lstm, torch.randn(1, 7, 4), interval=40)
    # Play, the slider and the speed are drawn by the view (js/src/transport.ts), so a scrub
    # never waits on the kernel: the view holds the speed and the step range comes with the data.
    assert ex.view.interval == 40 and ex.view.playing is False and ex.view.index["steps"] == 7
    assert list(ex.children) == [ex.batch, ex.view]
    assert ex.batch.layout.display == "none"  # one element: nothing to choose
    assert ex.view._bundle.code == BUNDLE.read_text()  # the views' code, shared (widgets/bundle.py)


def test_update_retraces_and_keeps_the_selection(lstm):
    ex = rw.explore(lstm, torch.randn(1, 9, 4))
    ex.view.layer, ex.view.quantity, ex.view.unit = "lstm.l0", "forget", 3
    ex.view.t = 8  # what the browser saves back once a scrub rests
    x = torch.randn(1, 4, 4)
    new = ex.update(x)
    assert ex.trace is new and ex.view.index["steps"] == 4
    assert (ex.view.layer, ex.view.quantity, ex.view.unit) == ("lstm.l0", "forget", 3)
    assert ex.view.index["steps"] == 4 and ex.view.t == 3
    np.testing.assert_array_equal(arrays_of(ex.view)[("lstm.l0", "forget")], trace(lstm, x).layers["lstm.l0"].gates["forget"][0])
    ex.model = nn.LSTM(4, 2, batch_first=True)  # a smaller model: the selected unit is clamped
    ex.update(x)
    assert (ex.view.layer, ex.view.unit) == ("lstm.l0", 1)


def test_text_box_reruns_the_model_on_new_text():
    torch.manual_seed(2)
    model = CharModel(vocab=3)
    vocab = "abc"

    def encode(text):
        return torch.tensor([[vocab.index(ch) for ch in text]])

    ex = rw.explore(model, text="abca", encode=encode, decode=list(vocab))
    assert ex.view.tokens == list("abca") and ex.view.index["steps"] == 4
    assert ex.text_problem.layout.display == "none"   # nothing to say: no empty row under the box
    ex.text.value = "cc"  # no event loop outside a kernel: re-traced at once
    assert ex.view.tokens == ["c", "c"] and ex.view.index["steps"] == 2
    np.testing.assert_array_equal(arrays_of(ex.view)[("lstm.l0", "h")], trace(model, encode("cc")).layers["lstm.l0"].h[0])
    ex.text.value = "cx"  # not in the vocabulary: said beside the box, the last view kept
    assert ex.text_problem.value == "not run: ValueError: substring not found"
    assert ex.text_problem.layout.display == "" and ex.view.tokens == ["c", "c"]
    ex.text.value = "a"
    assert ex.text_problem.value == "" and ex.view.tokens == ["a"] and ex.text_problem.layout.display == "none"


def test_bad_calls_say_what_was_expected(lstm):
    tr = trace(lstm, torch.randn(1, 3, 4))
    with pytest.raises(TypeError, match="expects an rnnwidgets.Trace"):
        Explorer(lstm)
    with pytest.raises(ValueError, match="nothing to re-run"):
        explore(tr).update(torch.randn(1, 3, 4))
    with pytest.raises(IndexError, match="out of range"):
        build_payload(tr, batch=1)


def test_display_carries_a_still_image_and_saves_offline_html(lstm, tmp_path):
    ex = rw.explore(lstm, torch.randn(1, 5, 4))
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and bundle["image/png"]
    page = ex.save_html(tmp_path / "x.html").read_text()
    assert ex.view.model_id in page


# ---- long sequences: a window of steps plus an overview --------------------------------------
def long_trace(steps=50, units=4):
    rng = np.random.default_rng(3)
    states = {"h": rng.standard_normal((2, steps, units)), "c": rng.standard_normal((2, steps, units))}
    return Trace(layers={"lstm.l0": LayerTrace("lstm.l0", "lstm", states=states)}, lengths=[steps, steps - 10])


def test_a_sequence_over_budget_travels_as_a_window_and_an_overview(monkeypatch):
    tr = long_trace()
    monkeypatch.setattr("rnnwidgets.widgets.payload.WINDOW_BUDGET", 80)  # 8 values per step: 10 steps
    ex = Explorer(tr, budget=100)
    index = ex.view.index
    lod = index["lod"]
    assert (lod["t0"], lod["held"], lod["floats"]) == (0, 10, 80)
    assert lod["overview"]["layer"] == "lstm.l0" and lod["overview"]["quantity"] == "h"
    h = index["layers"][0]["quantities"][0]
    assert (h["t0"], h["steps"]) == (0, 10)
    overview = lod["overview"]
    assert len(ex.view.buffer) == 4 * (80 + 2 * overview["columns"] * overview["units"])
    floats = np.frombuffer(ex.view.buffer, dtype="<f4")
    np.testing.assert_array_equal(floats[overview["max"]:overview["max"] + 50 * 4].reshape(50, 4), tr.layers["lstm.l0"].h[0])
    ex.view.quantity = "c"  # another quantity: its overview is sent
    assert ex.view.index["lod"]["overview"]["quantity"] == "c"


def test_initial_states_travel_once_outside_the_windows(monkeypatch):
    tr = long_trace()
    tr.layers["lstm.l0"].initial = {"h": np.full((2, 4), 0.5, np.float32), "c": np.full((2, 4), -0.25, np.float32)}
    monkeypatch.setattr("rnnwidgets.widgets.payload.WINDOW_BUDGET", 80)
    ex = Explorer(tr, budget=100)
    floats = np.frombuffer(ex.view.buffer, dtype="<f4")
    offsets = ex.view.index["layers"][0]["initial"]
    assert min(offsets.values()) >= ex.view.index["lod"]["floats"]  # after the window: a window reply replaces only that
    np.testing.assert_array_equal(floats[offsets["c"]:offsets["c"] + 4], [-0.25] * 4)
    assert len(window_payload(tr, 0, (20, 10), trace_scales(tr))) == 4 * ex.view.index["lod"]["floats"]


def test_the_browser_gets_the_window_it_asks_for(monkeypatch):
    tr = long_trace()
    monkeypatch.setattr("rnnwidgets.widgets.payload.WINDOW_BUDGET", 80)
    ex = Explorer(tr, budget=100)
    ex.batch.value = 1
    sent = []
    monkeypatch.setattr(ex.view, "send", lambda content, buffers=None: sent.append((content, buffers)))
    ex._on_view_message(ex.view, {"type": "window", "start": 45}, [])
    content, (data,) = sent[0]
    assert content == {"type": "window", "t0": 40, "held": 10}  # kept inside the sequence
    floats = np.frombuffer(data, dtype="<f4")
    np.testing.assert_array_equal(floats[:40].reshape(10, 4), tr.layers["lstm.l0"].h[1, 40:50])
    np.testing.assert_array_equal(floats[40:].reshape(10, 4), tr.layers["lstm.l0"].states["c"][1, 40:50])


def test_a_window_starts_around_the_current_step_after_an_update(monkeypatch):
    tr = long_trace()
    monkeypatch.setattr("rnnwidgets.widgets.payload.WINDOW_BUDGET", 80)
    ex = Explorer(tr, budget=100)
    ex.view.t = 30
    ex.set_trace(long_trace(steps=60))
    assert ex.view.index["lod"]["t0"] == 25 and ex.view.t == 30


def test_select_points_the_view_and_checks_what_it_is_given(lstm):
    ex = rw.explore(lstm, torch.randn(1, 6, 4))
    sent = []
    ex.view.send = lambda content, buffers=None: sent.append(content)
    ex.select(layer="lstm.l0", quantity="forget", unit=7, t=4)
    assert (ex.view.layer, ex.view.quantity, ex.view.unit, ex.view.t) == ("lstm.l0", "forget", 7, 4)
    ex.select(t=4)  # view.t is 4 already, but the page may show a step it has not saved yet
    assert sent == [{"type": "step", "t": 4}] * 2
    with pytest.raises(ValueError, match="unit: expected 0 <= unit < 8"):
        ex.select(unit=8)
    with pytest.raises(ValueError, match="layer: expected one of"):
        ex.select(layer="gru.l0")
    with pytest.raises(ValueError, match="quantity: expected one of"):
        ex.select(quantity="reset")
    with pytest.raises(ValueError, match="t: expected 0 <= t < 6"):
        ex.select(t=6)


def test_select_of_layer_and_quantity_on_a_long_sequence_builds_and_sends_the_payload_once(monkeypatch):
    rng = np.random.default_rng(5)
    states = lambda: {"h": rng.standard_normal((1, 50, 4)), "c": rng.standard_normal((1, 50, 4))}  # noqa: E731
    tr = Trace(layers={name: LayerTrace(name, "lstm", states=states()) for name in ("lstm.l0", "lstm.l1")}, lengths=[50])
    monkeypatch.setattr("rnnwidgets.widgets.payload.WINDOW_BUDGET", 80)
    ex = Explorer(tr, budget=100)
    assert (ex.view.layer, ex.view.quantity) == ("lstm.l1", "h")
    builds, sends = [], []
    build = rw.widgets.explorer_state.build_payload
    monkeypatch.setattr("rnnwidgets.widgets.explorer_state.build_payload", lambda *a, **k: builds.append(a) or build(*a, **k))
    monkeypatch.setattr(ex.view, "_send", lambda msg, buffers=None: sends.append((msg, buffers)))
    ex.select(layer="lstm.l0", quantity="c", unit=2)
    assert len(builds) == 1 and len(sends) == 1
    msg, buffers = sends[0]
    assert {"layer", "quantity", "unit", "index"} <= set(msg["state"]) and len(buffers) == 1  # one message, one buffer
    overview = ex.view.index["lod"]["overview"]
    assert (overview["layer"], overview["quantity"]) == ("lstm.l0", "c")
    floats = np.frombuffer(ex.view.buffer, dtype="<f4")
    np.testing.assert_array_equal(floats[overview["max"]:overview["max"] + 50 * 4].reshape(50, 4), tr.layers["lstm.l0"].states["c"][0])
    ex.select(unit=3)  # the overview does not depend on the unit
    assert len(builds) == 1
    ex.view.quantity = "h"  # as the browser's selector does: its overview is sent
    assert len(builds) == 2 and ex.view.index["lod"]["overview"]["quantity"] == "h"


def test_text_box_debounces_typing_in_a_running_kernel_loop(monkeypatch):
    import asyncio

    monkeypatch.setattr("rnnwidgets.widgets.explorer.TEXT_DEBOUNCE_S", 0.05)
    torch.manual_seed(2)
    vocab = "abc"
    ex = rw.explore(CharModel(vocab=3), text="a", encode=lambda s: torch.tensor([[vocab.index(c) for c in s]]))
    runs = []
    update = ex.update
    monkeypatch.setattr(ex, "update", lambda *args, **kw: runs.append(args) or update(*args, **kw))

    async def type_fast():
        for text in ("ab", "abc", "abca"):
            ex.text.value = text
        assert runs == [] and ex.view.tokens == ["a"]  # nothing re-run while typing
        await asyncio.sleep(0.2)

    asyncio.run(type_fast())
    assert len(runs) == 1 and ex.view.tokens == list("abca")


def test_gru_and_bidirectional_layers_get_their_own_quantities_and_scales():
    torch.manual_seed(4)
    ex = rw.explore(nn.GRU(3, 5, num_layers=2, bidirectional=True, batch_first=True), torch.randn(1, 4, 3))
    layers = {layer["name"]: layer for layer in ex.view.index["layers"]}
    assert sorted(layers) == ["gru.l0", "gru.l0.reverse", "gru.l1", "gru.l1.reverse"]
    assert ex.view.layer == "gru.l1"  # the last layer's forward direction
    scales = {q["name"]: q["scale"] for q in layers["gru.l1.reverse"]["quantities"]}
    assert scales == {"h": "diverging", "reset": "sequential", "update": "sequential", "new": "diverging"}


def test_play_speed_is_bounded_to_a_frame_or_slower(lstm):
    x = torch.randn(1, 3, 4)
    ex = rw.explore(lstm, x, interval=16)
    assert ex.view.interval == 16
    with pytest.raises(traitlets.TraitError, match=r"interval: expected milliseconds per step in \[16, 5000\], got 6000"):
        ex.view.interval = 6000
    with pytest.raises(ValueError, match=r"interval: expected milliseconds per step in \[16, 5000\], got 5"):
        rw.explore(lstm, x, interval=5)


def test_the_unit_range_follows_the_selected_quantity_with_proj_size():
    torch.manual_seed(6)
    ex = rw.explore(nn.LSTM(3, 8, proj_size=4, batch_first=True), torch.randn(1, 5, 3))
    ex.select(quantity="c", unit=6)  # the cell state has hidden_size units
    assert (ex.view.quantity, ex.view.unit) == ("c", 6)
    with pytest.raises(ValueError, match="unit: expected 0 <= unit < 4"):
        ex.select(quantity="h", unit=6)  # h has proj_size
    ex.set_trace(ex.trace, quantity="h")
    assert ex.view.unit == 3  # clamped to h's width


def test_explore_with_a_loss_shows_the_gradient_flow_linked_to_the_step():
    torch.manual_seed(0)
    model = nn.LSTM(3, 4, num_layers=2)
    ex = rw.explore(model, torch.randn(6, 1, 3), loss="last")
    gf = ex.gradients
    assert isinstance(gf, rw.GradientFlow) and ex.children[-1] is gf
    assert gf.steps.layout.display == "none"
    assert set(gf.norms) == {"lstm.l0", "lstm.l1"}
    link = ex._gradients_link
    assert (link.source, link.target) == ((gf.steps, "t"), (ex.view, "t"))
    assert ex.view.followers == [gf.time_chart, gf.heat, gf.gate_chart]  # every cursor follows a scrub live, in the browser
    # re-tracing keeps one gradient view, for the new run
    ex.update(torch.randn(9, 1, 3))
    assert sum(isinstance(c, rw.GradientFlow) for c in ex.children) == 1 and ex.gradients is not gf
    assert ex.gradients.steps.steps == 9 and ex.view.followers == ex.gradients.cursor_views


def test_explore_without_a_loss_has_no_gradient_view():
    ex = rw.explore(nn.GRU(2, 3), torch.randn(4, 1, 2))
    assert ex.gradients is None and not any(isinstance(c, rw.GradientFlow) for c in ex.children)
