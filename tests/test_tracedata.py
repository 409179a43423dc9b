"""The Trace data model: validation with clear errors, and a lossless save/load."""
import json

import numpy as np
import pytest

from rnnwidgets import LayerTrace, Trace


def full_trace():
    rng = np.random.default_rng(0)
    arr = lambda units: rng.normal(size=(2, 4, units))  # noqa: E731
    lstm = LayerTrace("enc.lstm.l0", "lstm", states={"h": arr(3), "c": arr(3)},
                      gates={g: arr(3) for g in ("input", "forget", "cell", "output")},
                      grads={"h": arr(3)}, meta={"layer": 0, "direction": "forward"},
                      initial={"h": rng.normal(size=(2, 3)), "c": rng.normal(size=(2, 3))})
    custom = LayerTrace("rnn", "custom", states={"h": arr(5)}, tracks={"i2h": arr(5), "i2o": arr(2)})
    return Trace(layers={lstm.name: lstm, custom.name: custom}, lengths=[4, 2], outputs=arr(7), inputs=arr(1),
                 tokens=[list("ab<c"), ["<img src=x onerror=alert(1)>", "é"]],
                 param_grads={"w": {"norm": 1.5, "mean_abs": 0.1, "max_abs": 0.9}}, meta={"note": "x"})


def test_save_and_load_give_back_every_array_and_field(tmp_path):
    tr = full_trace()
    back = Trace.load(tr.save(tmp_path / "t.npz"))
    assert list(back.layers) == list(tr.layers)
    for name, lt in tr.layers.items():
        other = back.layers[name]
        assert (other.kind, other.meta) == (lt.kind, lt.meta)
        for group in ("states", "gates", "tracks", "grads", "initial"):
            assert list(getattr(other, group)) == list(getattr(lt, group))
            for key, value in getattr(lt, group).items():
                np.testing.assert_array_equal(getattr(other, group)[key], value)
                assert getattr(other, group)[key].dtype == np.float32
    np.testing.assert_array_equal(back.outputs, tr.outputs)
    np.testing.assert_array_equal(back.inputs, tr.inputs)
    np.testing.assert_array_equal(back.lengths, [4, 2])
    assert back.tokens == tr.tokens and back.param_grads == tr.param_grads and back.meta == tr.meta
    assert (back.batch, back.steps) == (2, 4)


def test_arrays_are_float32_batch_time_units():
    tr = full_trace()
    assert tr.layers["rnn"].tracks["i2o"].dtype == np.float32
    assert tr.first.units == 3
    assert tr.first.initial["c"].dtype == np.float32 and tr.first.initial["c"].shape == (2, 3)
    assert tr.layers["rnn"].initial == {}


def test_initial_states_are_as_wide_as_their_state():
    """An LSTM with a projection: h is proj_size wide, c hidden_size."""
    lt = LayerTrace("lstm.l0", "lstm", states={"h": np.zeros((3, 4, 2)), "c": np.zeros((3, 4, 5))},
                    initial={"h": np.ones((3, 2), dtype=np.float64), "c": np.ones((3, 5))})
    assert lt.initial["h"].shape == (3, 2) and lt.initial["c"].shape == (3, 5)
    assert lt.initial["h"].dtype == np.float32


def lstm_with_initial(**initial):
    return LayerTrace("lstm.l1.reverse", "lstm", states={"h": np.zeros((2, 4, 3)), "c": np.zeros((2, 4, 5))},
                      initial=initial)


@pytest.mark.parametrize("initial, message", [
    (dict(g=np.zeros((2, 3))), r"'lstm.l1.reverse': initial\['g'\]: expected a key of the layer's states \['c', 'h'\]"),
    (dict(h=np.zeros((2, 1, 3))), r"initial\['h'\]: expected a \(batch, units\) array of shape \(2, 3\).*"
                                  r"got shape \(2, 1, 3\)"),
    (dict(h=np.zeros(3)), r"initial\['h'\]: expected .* shape \(2, 3\)"),
    (dict(h=np.zeros((1, 3))), r"initial\['h'\]: expected .* shape \(2, 3\), the batch and width of states"),
    (dict(c=np.zeros((2, 3))), r"'lstm.l1.reverse': initial\['c'\]: expected .* shape \(2, 5\).*got shape \(2, 3\)"),
])
def test_a_wrong_initial_state_says_what_was_expected(initial, message):
    with pytest.raises(ValueError, match=message):
        lstm_with_initial(**initial)


def without_initial_states(path):
    """Rewrite a saved trace as the format was before initial states were kept: no "initial"
    in the header's layer entries, no initial arrays."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files if "/initial/" not in k}
    header = json.loads(bytes(arrays["header"]).decode("utf-8"))
    for entry in header["layers"]:
        del entry["initial"]
    arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    np.savez_compressed(path, **arrays)
    return path


def test_a_file_written_before_initial_states_still_loads(tmp_path):
    tr = full_trace()
    old = without_initial_states(tr.save(tmp_path / "old.npz"))
    with np.load(old) as data:
        assert not any("initial" in k for k in data.files)
    back = Trace.load(old)
    assert all(lt.initial == {} for lt in back.layers.values())
    np.testing.assert_array_equal(back.first.states["c"], tr.first.states["c"])
    assert back.first.meta == tr.first.meta


@pytest.mark.parametrize("make, message", [
    (lambda: LayerTrace("x", "transformer", states={"h": np.zeros((1, 2, 3))}), "kind must be one of"),
    (lambda: LayerTrace("x", "rnn", states={"h": np.zeros((2, 3))}), r"expected a \(batch, time, features\)"),
    (lambda: Trace(layers={}, lengths=[]), "at least one layer"),
    (lambda: Trace(layers={"x": LayerTrace("x", "rnn", states={"h": np.zeros((2, 3, 1))})}, lengths=[3]),
     r"lengths: expected shape \(2,\)"),
    (lambda: Trace(layers={"x": LayerTrace("x", "rnn", states={"h": np.zeros((1, 3, 1))})}, lengths=[3],
                   tokens=[["a", "b"]]), "expected 3 tokens"),
])
def test_bad_input_says_what_was_expected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_load_refuses_a_file_that_is_not_a_trace(tmp_path):
    np.savez(tmp_path / "other.npz", header=np.frombuffer(b'{"format": 99}', dtype=np.uint8))
    with pytest.raises(ValueError, match="not a rnnwidgets trace"):
        Trace.load(tmp_path / "other.npz")


def test_layer_direction_and_the_layer_shown_first_follow_the_names():
    from rnnwidgets.tracedata import last_forward_layer

    h = np.zeros((1, 2, 3), np.float32)
    assert LayerTrace("lstm.l1.reverse", "lstm", states={"h": h}).reverse
    assert not LayerTrace("lstm.l1", "lstm", states={"h": h}).reverse
    assert last_forward_layer(["lstm.l0", "lstm.l0.reverse", "lstm.l1", "lstm.l1.reverse"]) == "lstm.l1"
    assert last_forward_layer(["a.l0.reverse"]) == "a.l0.reverse"  # only reverse layers: the last one


def layer(name="x.l0", kind="rnn", batch=2, steps=4, units=3, **groups):
    groups.setdefault("states", {"h": np.zeros((batch, steps, units))})
    return LayerTrace(name, kind, **groups)


@pytest.mark.parametrize("lengths", [[-3, 4], [4, 99], [5, 0]])
def test_lengths_outside_the_steps_are_refused(lengths):
    with pytest.raises(ValueError, match=r"lengths: expected each in \[0, 4\]"):
        Trace(layers={"x.l0": layer()}, lengths=lengths)


@pytest.mark.parametrize("make, message", [
    (lambda: layer(gates={"update": np.zeros((2, 3, 3))}, kind="gru"),
     r"'x.l0': gates\['update'\]: expected \(batch, steps\) \(2, 4\) like x.l0.states\['h'\], got shape \(2, 3, 3\)"),
    (lambda: layer(tracks={"t": np.zeros((1, 4, 1))}), r"tracks\['t'\]: expected \(batch, steps\) \(2, 4\)"),
    (lambda: layer(grads={"h": np.zeros((2, 4, 2))}), r"grads\['h'\]: expected the shape of states\['h'\]"),
    (lambda: layer(kind="gru", gates={"reset": np.zeros((2, 4, 5))}), r"gates\['reset'\]: expected 3 units"),
    (lambda: layer(kind="lstm", states={"h": np.zeros((2, 4, 2)), "c": np.zeros((2, 4, 5))},
                   gates={"input": np.zeros((2, 4, 2))}), r"gates\['input'\]: expected 5 units"),
    (lambda: Trace(layers={"a": layer("a"), "b": layer("b", batch=3)}, lengths=[4, 4]),
     r"layers\['b'\]: expected batch 2 like the trace, got 3"),
    (lambda: Trace(layers={"a": layer("a")}, lengths=[4, 4], batch=3), r"layers\['a'\]: expected batch 3"),
    (lambda: Trace(layers={"a": LayerTrace("a", "custom")}, lengths=[]), r"layers\['a'\]: expected at least one"),
    (lambda: Trace(layers={"a": layer("a")}, lengths=[4, 4], outputs=np.zeros((1, 4, 2))),
     r"outputs: expected a \(batch, time, features\) array with batch 2 and at most 4 steps"),
    (lambda: Trace(layers={"a": layer("a")}, lengths=[4, 4], inputs=np.zeros((2, 5, 2))),
     r"inputs: expected .*at most 4"),
    (lambda: Trace(layers={"a": layer("a")}, lengths=[4.5, 4]), "lengths: expected whole numbers"),
])
def test_a_layer_or_trace_that_does_not_agree_with_itself_is_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_an_lstm_projection_keeps_its_gates_as_wide_as_c():
    lt = layer(kind="lstm", states={"h": np.zeros((2, 4, 2)), "c": np.zeros((2, 4, 5))},
               gates={"input": np.zeros((2, 4, 5))}, grads={"c": np.zeros((2, 4, 5))})
    assert (lt.batch, lt.steps, lt.units) == (2, 4, 2)


def test_layers_of_different_steps_count_lengths_along_the_longest():
    encoder, decoder = layer("enc.l0", steps=6), layer("dec.l0", steps=3)
    tr = Trace(layers={"enc.l0": encoder, "dec.l0": decoder}, lengths=[6, 5], tokens=[list("abcdef"), list("abcde")])
    assert (tr.batch, tr.steps) == (2, 6) and (encoder.steps, decoder.steps) == (6, 3)
    tr = Trace(layers={"dec.l0": decoder, "enc.l0": encoder}, lengths=[6, 6], batch=2)
    assert tr.steps == 6 and tr.first.steps == 3


def test_validate_catches_what_was_changed_after_construction():
    tr = Trace(layers={"a": layer("a")}, lengths=[4, 4])
    tr.lengths[0] = 7
    with pytest.raises(ValueError, match=r"lengths: expected each in \[0, 4\]"):
        tr.validate()
    tr.lengths[0] = 4
    tr.first.gates["cell"] = np.zeros((2, 4, 9))
    with pytest.raises(ValueError, match=r"gates\['cell'\]: expected 3 units"):
        tr.validate()
