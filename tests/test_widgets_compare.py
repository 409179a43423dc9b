"""rw.Compare: the payload the browser draws A, B and A − B from, the selection's rules, and the
Python side of what the view shows (first divergence, differing units)."""
import numpy as np
import pytest
import traitlets

import rnnwidgets as rw
from rnnwidgets.comparison import TAU, Comparison
from rnnwidgets.tracedata import LayerTrace, Trace
from rnnwidgets.widgets.compare import Compare
from rnnwidgets.widgets.payload import compare_payload


def lstm_trace(h, c, lengths, outputs=None, tokens=None):
    gates = {g: np.full_like(h, 0.5) for g in ("input", "forget", "cell", "output")}
    layer = LayerTrace("lstm.l0", "lstm", states={"h": h, "c": c}, gates=gates)
    return Trace(layers={"lstm.l0": layer}, lengths=np.asarray(lengths), outputs=outputs, tokens=tokens)


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    h = rng.uniform(-1, 1, (2, 8, 3)).astype(np.float32)
    c = rng.uniform(-2, 2, (2, 8, 3)).astype(np.float32)
    out = rng.standard_normal((2, 8, 4)).astype(np.float32)
    a = lstm_trace(h, c, [8, 7], outputs=out, tokens=[list("abcdefgh"), list("abcdefg")])
    hb, cb, outb = h[:, :5].copy(), c[:, :5].copy(), out[:, :5].copy()
    hb[0, 3, 1] += 0.25
    outb[0, 3] = [9, 0, 0, 0]
    b = lstm_trace(hb, cb, [5, 5], outputs=outb, tokens=[list("abcXe"), list("abcde")])
    return a, b


def arrays(view, layer=0):
    floats = np.frombuffer(view.buffer, dtype="<f4")
    entry = view.index["layers"][layer]
    steps = entry["steps"]
    return {q["name"]: {k: floats[q[k]:q[k] + steps * q["units"]].reshape(steps, q["units"]) for k in ("a", "b", "diff")}
            for q in entry["quantities"]}, entry


def test_payload_holds_both_runs_aligned_at_their_start_and_their_difference(pair):
    a, b = pair
    view = Compare(a, b, names=("before", "after"), decode=list("wxyz"))
    got, entry = arrays(view)
    assert view.index["names"] == ["before", "after"]
    assert entry["steps"] == 8 and entry["lengths"] == [8, 5]
    assert [q["name"] for q in entry["quantities"]] == ["h", "c", "input", "forget", "cell", "output"]
    np.testing.assert_array_equal(got["h"]["a"], a.layers["lstm.l0"].states["h"][0])
    np.testing.assert_array_equal(got["h"]["b"][:5], b.layers["lstm.l0"].states["h"][0])
    assert not got["h"]["b"][5:].any()                      # past B's end: zeros, drawn as unmatched
    np.testing.assert_array_equal(got["c"]["diff"][:5], a.layers["lstm.l0"].states["c"][0, :5] - b.layers["lstm.l0"].states["c"][0])
    assert not got["c"]["diff"][5:].any()
    h = entry["quantities"][0]
    assert h["scale"] == "diverging" and h["vmin"] == -h["vmax"]   # one scale over both runs
    assert h["dmax"] == pytest.approx(0.25, abs=1e-6)
    assert entry["tokens"] == [list("abcdefgh"), list("abcXe")]
    pa, pb = view.index["predictions"]
    assert pa["steps"] == 8 and pb["steps"] == 5
    floats = np.frombuffer(view.buffer, dtype="<f4")
    top_b = floats[pb["ids"]:pb["ids"] + pb["steps"] * pb["k"]].reshape(5, pb["k"])
    assert pb["labels"][int(top_b[3, 0])] == "w"               # B's changed output at step 3


def test_a_shorter_element_sends_only_its_valid_steps(pair):
    a, b = pair
    view = Compare(a, b, batch=1)
    got, entry = arrays(view)
    assert entry["steps"] == 7 and entry["lengths"] == [7, 5]
    np.testing.assert_array_equal(got["h"]["a"], a.layers["lstm.l0"].states["h"][1, :7])
    assert entry["tokens"] == [list("abcdefg"), list("abcde")]


def test_what_the_marker_and_the_filter_show_follows_tau_and_the_selection(pair):
    a, b = pair
    view = Compare(a, b)
    assert view.layer == "lstm.l0" and view.quantity == "h"
    assert view.first_divergence() == 3 and view.differing_units() == [1]
    view.tau = 0.3
    assert view.first_divergence() is None and view.differing_units() == []
    view.quantity = "forget"
    view.tau = 0.0
    assert view.first_divergence() is None               # equal gates never diverge
    assert np.isnan(view.difference()[5:]).all()


def test_the_selection_is_clamped_or_refused_with_one_sentence(pair):
    a, b = pair
    view = Compare(a, b, t=100)
    assert view.t == 7
    view.unit = 9
    assert view.unit == 2
    with pytest.raises(traitlets.TraitError, match="layer: expected one of"):
        view.layer = "gru.l0"
    with pytest.raises(traitlets.TraitError, match="quantity: expected one of"):
        view.quantity = "reset"
    with pytest.raises(traitlets.TraitError, match="tau: expected a finite number >= 0"):
        view.tau = -1.0
    with pytest.raises(traitlets.TraitError, match=r"^interval: expected milliseconds per step in \[16, 5000\], got 1$"):
        view.interval = 1
    with pytest.raises(ValueError, match="layer: expected one of"):
        Compare(a, b, layer="gru.l0")
    assert Compare(a, b, quantity="nonsense").quantity == "h"   # a quantity the layer lacks: its first


def test_compare_payload_is_what_the_view_carries(pair):
    a, b = pair
    index, buffer = compare_payload(Comparison(a, b))
    view = Compare(a, b)
    assert view.index == index and view.buffer == buffer


def test_two_windows_of_the_same_steps_are_numbered_from_the_windows_start(pair):
    """Two traces of rw.trace(steps=slice(120, ...)): the view numbers their steps 120, 121, ...
    (js/src/compare.ts adds ``first_step``); windows from different starts are numbered from 0."""
    a, b = pair
    assert compare_payload(Comparison(a, b))[0]["first_step"] == 0

    def window(trace, start):
        return Trace(layers=trace.layers, lengths=trace.lengths, outputs=trace.outputs, tokens=trace.tokens,
                     meta={"selection": {"quantities": None, "layers": None, "steps": [start, start + 8]}})
    assert compare_payload(Comparison(window(a, 120), window(b, 120)))[0]["first_step"] == 120
    assert compare_payload(Comparison(window(a, 120), window(b, 100)))[0]["first_step"] == 0
    assert compare_payload(Comparison(window(a, 120), b))[0]["first_step"] == 0


def test_rw_compare_of_two_traces_builds_the_view(pair, tmp_path):
    a, b = pair
    view = rw.compare(a, b, tau=0.1)
    assert isinstance(view, rw.Compare) and view.tau == 0.1 and view.a is a and view.b is b
    assert rw.compare(a, b).tau == TAU   # tau=None: the comparison's default
    page = view.save_html(tmp_path / "cmp.html")
    assert "compare" in page.read_text(encoding="utf-8")


def test_over_its_budget_the_view_sends_the_shown_layer_and_the_next_one_when_picked():
    rng = np.random.default_rng(1)
    layers = {}
    for k in range(2):
        h = rng.uniform(-1, 1, (1, 6, 3)).astype(np.float32)
        layers[f"rnn.l{k}"] = LayerTrace(f"rnn.l{k}", "rnn", states={"h": h})
    a = Trace(layers=layers, lengths=np.array([6]))
    whole = Compare(a, a)
    assert [entry["name"] for entry in whole.index["layers"]] == ["rnn.l0", "rnn.l1"]
    view = Compare(a, a, budget=3 * 6 * 3)   # one layer's A, B and A - B
    assert [entry["name"] for entry in view.index["layers"]] == ["rnn.l1"]
    assert view.index["all_layers"] == ["rnn.l0", "rnn.l1"]
    view.layer = "rnn.l0"
    assert [entry["name"] for entry in view.index["layers"]] == ["rnn.l0"]
    got, _ = arrays(view)
    np.testing.assert_array_equal(got["h"]["a"], layers["rnn.l0"].states["h"][0])
