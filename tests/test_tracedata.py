"""The Trace data model: validation with clear errors, and a lossless save/load."""
import numpy as np
import pytest

from rnnwidgets import LayerTrace, Trace


def full_trace():
    rng = np.random.default_rng(0)
    arr = lambda units: rng.normal(size=(2, 4, units))  # noqa: E731
    lstm = LayerTrace("enc.lstm.l0", "lstm", states={"h": arr(3), "c": arr(3)},
                      gates={g: arr(3) for g in ("input", "forget", "cell", "output")},
                      grads={"h": arr(3)}, meta={"layer": 0, "direction": "forward"})
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
        for group in ("states", "gates", "tracks", "grads"):
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
