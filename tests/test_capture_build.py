"""The one builder every capture path makes its Trace with: built once, validated whole."""
import numpy as np
import pytest
import torch
from models import LoopOfCell, StepCell
from torch import nn

from rnnwidgets.capture import record, recording, trace
from rnnwidgets.capture.build import TraceBuilder
from rnnwidgets.capture.finite import NonFiniteWarning


def test_build_makes_a_valid_trace_with_full_lengths_by_default():
    builder = TraceBuilder("rw.trace", "Model", "test")
    parts = builder.layer("m.l0", "rnn", meta={"module": "m"}, states={"h": np.ones((2, 5, 3))})
    parts["tracks"]["x"] = np.zeros((2, 5, 1))
    builder.tokens = list("abcde"), list("abcde")
    tr = builder.build()
    assert tr.lengths.tolist() == [5, 5] and tr.batch == 2 and tr.meta == {"source": "test", "model": "Model"}
    assert tr.tokens == [list("abcde")] * 2 and tr.first.tracks["x"].dtype == np.float32
    with pytest.raises(ValueError, match="two layers named 'm.l0'"):
        builder.layer("m.l0", "rnn")


def test_build_without_arrays_or_lengths_says_what_was_expected():
    builder = TraceBuilder("rw.trace", "Model", "test")
    with pytest.raises(ValueError, match="a Trace needs at least one layer"):
        builder.build()
    builder.layer("m.l0", "rnn")  # no lengths to default from: numpy's shape error before
    with pytest.raises(ValueError, match=r"layers\['m.l0'\]: expected at least one \(batch, time, units\) array"):
        builder.build()


def test_build_warns_once_naming_every_non_finite_quantity():
    builder = TraceBuilder("rw.recording", "Model", "test")
    builder.layer("a", "custom", states={"h": np.array([[[np.nan]]])}, tracks={"t": np.array([[[np.inf]]])})
    builder.layer("b", "custom", states={"h": np.zeros((1, 1, 1))})
    with pytest.warns(NonFiniteWarning, match=r"rw.recording: Model: non-finite values \(NaN or inf\) in "
                                             r"\['a.h', 'a.t'\]; the trace keeps them") as caught:
        builder.build()
    assert len(caught) == 1


@pytest.mark.parametrize("path", ["fused", "fused loss", "step module", "step module loss", "recording"])
def test_every_capture_path_builds_its_trace_once_through_the_builder(monkeypatch, path):
    built = []
    real = TraceBuilder.build

    def counted(self, *args, **kwargs):
        built.append(real(self, *args, **kwargs))
        return built[-1]
    monkeypatch.setattr(TraceBuilder, "build", counted)
    torch.manual_seed(0)
    xs = torch.randn(5, 2, 3)
    if path.startswith("fused"):
        tr = trace(nn.LSTM(3, 4, num_layers=2), xs, loss="last" if "loss" in path else None)
    elif path.startswith("step module"):
        step = StepCell(each=lambda h: record("norm", h.norm(dim=1, keepdim=True)))
        tr = trace(step, xs, loss="last" if "loss" in path else None)
        assert set(tr.first.tracks) >= {"output", "cell"} and "norm" in tr.first.tracks
        assert ("h" in tr.first.grads) == ("loss" in path) and bool(tr.param_grads) == ("loss" in path)
    else:
        with recording(LoopOfCell(each=lambda hx: record("c_norm", hx[1].norm(dim=1, keepdim=True)))) as rec:
            rec.model(xs)
        tr = rec.trace
        assert tr.layers["loopofcell"].tracks["c_norm"].shape == (2, 5, 1)
    assert len(built) == 1 and built[0] is tr


def test_module_labels_are_paths_and_the_model_its_class_name():
    from rnnwidgets.kinds import layer_name, module_label
    assert module_label("", "CharRNN") == "charrnn" and module_label("enc.lstm", "CharRNN") == "enc.lstm"
    tr = trace(nn.GRU(3, 4, bidirectional=True), torch.randn(5, 1, 3))
    assert list(tr.layers) == [layer_name(module_label("", "GRU"), 0), layer_name("gru", 0, reverse=True)]
