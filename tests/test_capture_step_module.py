"""Step modules driven over a sequence: exact tracks, gradients through time, untouched model, errors."""
import copy
import warnings

import numpy as np
import pytest
import torch
from model_state import assert_untouched, snapshot
from torch import nn

from rnnwidgets.capture.recording import record
from rnnwidgets.capture.step_module import trace_step_module


class RNN(nn.Module):
    """The seed's step module, as written there: the acceptance case."""

    def __init__(self, input_size, hidden_size, output_size):
        super(RNN, self).__init__()
        self.hidden_size = hidden_size
        self.i2h = nn.Linear(input_size + hidden_size, hidden_size)
        self.i2o = nn.Linear(input_size + hidden_size, output_size)

    def forward(self, input, hidden):
        combined = torch.cat((input, hidden), 1)
        hidden = self.i2h(combined)
        output = self.i2o(combined)
        return output, hidden


class TutorialRNN(RNN):
    """The tutorial's variant: a softmax on the output and initHidden() with no batch argument."""

    def __init__(self, *sizes):
        super().__init__(*sizes)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, input, hidden):
        output, hidden = super().forward(input, hidden)
        return self.softmax(output), hidden

    def initHidden(self):
        return torch.zeros(1, self.hidden_size)


class LSTMStep(nn.Module):
    """A step module around a cell with a (h, c) state, an init_hidden(batch) and an rw.record."""

    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(3, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x, state):
        h, c = self.cell(x, state)
        record("gap", (h - c).abs().mean(1, keepdim=True))
        return self.head(h), (h, c)

    def init_hidden(self, batch):
        return (torch.full((batch, 4), 0.1), torch.full((batch, 4), -0.1))


def reference_run(model, steps, hidden):
    """The step module called by hand, with each submodule's output computed directly."""
    combined, outputs, hiddens = [], [], []
    with torch.no_grad():
        for x in steps:
            combined.append(torch.cat((x, hidden), 1))
            output, hidden = model(x, hidden)
            outputs.append(output)
            hiddens.append(hidden)
    return combined, outputs, hiddens


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_seed_class_tracks_are_exact(dtype):
    torch.manual_seed(0)
    model = RNN(5, 8, 3).to(dtype)
    xs = torch.randn(6, 2, 5, dtype=dtype)
    h0 = torch.randn(2, 8, dtype=dtype)
    combined, outputs, hiddens = reference_run(model, xs, h0)
    tr = trace_step_module(model, xs, hidden=h0)
    assert list(tr.layers) == ["rnn"]
    lt = tr.layers["rnn"]
    assert lt.kind == "custom" and set(lt.tracks) == {"i2h", "i2o", "output"} and set(lt.states) == {"h"}
    assert lt.meta["hidden_size"] == 8 and tr.lengths.tolist() == [6, 6]
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    with torch.no_grad():
        i2h = torch.stack([model.i2h(c) for c in combined], 1).float().numpy()
        i2o = torch.stack([model.i2o(c) for c in combined], 1).float().numpy()
    np.testing.assert_allclose(lt.tracks["i2h"], i2h, atol=tol, rtol=0)
    np.testing.assert_allclose(lt.tracks["i2o"], i2o, atol=tol, rtol=0)
    np.testing.assert_allclose(lt.h, torch.stack(hiddens, 1).float().numpy(), atol=tol, rtol=0)
    np.testing.assert_allclose(tr.outputs, torch.stack(outputs, 1).float().numpy(), atol=tol, rtol=0)
    np.testing.assert_array_equal(lt.tracks["output"], tr.outputs)
    np.testing.assert_array_equal(tr.inputs, xs.transpose(0, 1).float().numpy())
    assert tr.outputs.dtype == np.float32
    assert list(lt.initial) == ["h"] and lt.initial["h"].dtype == np.float32
    np.testing.assert_array_equal(lt.initial["h"], h0.float().numpy())
    # the first step, recomputed by the module from the initial state, is the recorded one
    with torch.no_grad():
        _, first = model(xs[0], torch.from_numpy(lt.initial["h"]).to(dtype))
    np.testing.assert_allclose(lt.h[:, 0], first.float().numpy(), atol=1e-5, rtol=0)


def test_inputs_as_a_list_of_steps_or_one_tensor_agree():
    torch.manual_seed(1)
    model = RNN(4, 6, 2)
    xs = torch.randn(5, 1, 4)
    as_tensor = trace_step_module(model, xs)
    as_list = trace_step_module(model, [x for x in xs])
    as_vectors = trace_step_module(model, [x[0] for x in xs])
    as_2d = trace_step_module(model, xs[:, 0])
    for other in (as_list, as_vectors, as_2d):
        np.testing.assert_array_equal(other.first.h, as_tensor.first.h)
        np.testing.assert_array_equal(other.outputs, as_tensor.outputs)
    # the default initial state is zeros of hidden_size
    _, _, hiddens = reference_run(model, xs, torch.zeros(1, 6))
    np.testing.assert_allclose(as_tensor.first.h, torch.stack(hiddens, 1).numpy(), atol=1e-6)


def test_initial_state_from_initHidden_and_init_hidden():
    torch.manual_seed(2)
    model = TutorialRNN(4, 6, 3)
    xs = torch.randn(4, 3, 4)
    tr = trace_step_module(model, xs)                      # initHidden() is batch 1: repeated over the batch
    _, _, hiddens = reference_run(model, xs, torch.zeros(3, 6))
    np.testing.assert_allclose(tr.first.h, torch.stack(hiddens, 1).numpy(), atol=1e-6)
    assert set(tr.first.tracks) == {"i2h", "i2o", "softmax", "output"}
    np.testing.assert_array_equal(tr.first.initial["h"], np.zeros((3, 6), np.float32))

    step = LSTMStep()
    xs = torch.randn(3, 2, 3)
    tr = trace_step_module(step, xs)                        # init_hidden(batch) -> (h, c)
    state = step.init_hidden(2)
    hs, cs = [], []
    with torch.no_grad():
        for x in xs:
            _, state = step(x, state)
            hs.append(state[0])
            cs.append(state[1])
    lt = tr.first
    assert lt.name == "lstmstep" and set(lt.states) == {"h", "c"}
    assert set(lt.tracks) == {"cell.0", "cell.1", "head", "gap", "output"}
    assert list(tr.layers) == ["lstmstep", "cell"] and set(tr.layers["cell"].gates) == {"input", "forget", "cell",
                                                                                         "output"}
    np.testing.assert_array_equal(tr.layers["cell"].h, lt.h)
    np.testing.assert_allclose(lt.h, torch.stack(hs, 1).numpy(), atol=1e-6)
    np.testing.assert_allclose(lt.states["c"], torch.stack(cs, 1).numpy(), atol=1e-6)
    np.testing.assert_allclose(lt.tracks["gap"][:, :, 0], torch.stack([(h - c).abs().mean(1) for h, c in zip(hs, cs)],
                                                                      1).numpy(), atol=1e-6)
    # both parts of the (h, c) from init_hidden, for the step module and for the cell inside it
    for layer in ("lstmstep", "cell"):
        initial = tr.layers[layer].initial
        assert list(initial) == ["h", "c"], layer
        np.testing.assert_array_equal(initial["h"], np.full((2, 4), 0.1, np.float32))
        np.testing.assert_array_equal(initial["c"], np.full((2, 4), -0.1, np.float32))


def unrolled_reference(model, xs, h0, loss):
    """dL/dh_t and parameter gradients from .backward() on an unrolled copy of the model."""
    copy_ = copy.deepcopy(model)
    for p in copy_.parameters():
        p.grad = None
    hidden, hs, outs = h0.clone().requires_grad_(True), [], []
    for x in xs:
        out, hidden = copy_(x, hidden)
        hidden.retain_grad()
        hs.append(hidden)
        outs.append(out)
    loss(torch.stack(outs)).backward()
    grads = torch.stack([h.grad if h.grad is not None else torch.zeros_like(h) for h in hs], 1)
    return grads, {n: p.grad for n, p in copy_.named_parameters()}


@pytest.mark.parametrize("loss", ["last", "callable"])
def test_gradients_through_time_match_an_unrolled_reference(loss):
    torch.manual_seed(3)
    model = RNN(3, 5, 2).double()
    xs = torch.randn(7, 2, 3, dtype=torch.float64)
    h0 = torch.randn(2, 5, dtype=torch.float64)
    target = torch.tensor([0, 1])
    fn = ((lambda out: out[-1].sum()) if loss == "last" else
          (lambda out: nn.functional.cross_entropy(out.mean(0), target) + out[2].pow(2).sum()))
    ref_h, ref_params = unrolled_reference(model, xs, h0, fn)
    tr = trace_step_module(model, xs, hidden=h0, loss=loss if loss == "last" else fn)
    lt = tr.first
    assert set(lt.grads) == {"h"}
    np.testing.assert_array_equal(lt.initial["h"], h0.float().numpy())   # the given state, not a copy's grad
    np.testing.assert_allclose(lt.grads["h"], ref_h.float().numpy(), atol=1e-10, rtol=0)
    assert np.abs(lt.grads["h"][:, :-2]).max() > 0       # the gradient reaches early steps through time
    assert set(tr.param_grads) == {n for n, _ in model.named_parameters()}
    for name, g in ref_params.items():
        stats = tr.param_grads[name]
        assert stats["norm"] == pytest.approx(g.norm().item(), abs=1e-10)
        assert stats["mean_abs"] == pytest.approx(g.abs().mean().item(), abs=1e-10)
        assert stats["max_abs"] == pytest.approx(g.abs().max().item(), abs=1e-10)


def test_gradients_of_an_lstm_state_and_a_frozen_model():
    torch.manual_seed(4)
    step = LSTMStep()
    xs = torch.randn(4, 1, 3)
    tr = trace_step_module(step, xs, loss="last")
    # reference: dL/dc_t by hand through an unrolled copy
    copy_ = copy.deepcopy(step)
    state = tuple(s.clone().requires_grad_(True) for s in step.init_hidden(1))
    cs, outs = [], []
    for x in xs:
        out, state = copy_(x, state)
        state[1].retain_grad()
        cs.append(state[1])
        outs.append(out)
    outs[-1].sum().backward()
    ref_c = torch.stack([c.grad if c.grad is not None else torch.zeros_like(c) for c in cs], 1)
    np.testing.assert_allclose(tr.first.grads["c"], ref_c.numpy(), atol=1e-6)

    for p in step.parameters():
        p.requires_grad_(False)
    frozen = trace_step_module(step, xs, loss="last")     # gradients still flow through the states
    np.testing.assert_allclose(frozen.first.grads["c"], ref_c.numpy(), atol=1e-6)
    assert frozen.param_grads == {}


class Dropping(RNN):
    """Dropout on the output, and a failure at a chosen step."""

    def __init__(self, fail_at=None):
        super().__init__(3, 4, 2)
        self.drop = nn.Dropout(0.5)
        self.calls, self.fail_at = 0, fail_at

    def forward(self, input, hidden):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("failed half-way")
        output, hidden = super().forward(input, hidden)
        return self.drop(output), hidden


def prepared(model):
    model.train()
    model.i2o.eval()
    model.i2h.bias.requires_grad_(False)
    model(torch.randn(1, 3), torch.zeros(1, 4))[0].sum().backward()
    return model


@pytest.mark.parametrize("loss", [None, "last"])
def test_the_model_is_left_untouched(loss):
    model = prepared(Dropping())
    before = snapshot(model)
    tr = trace_step_module(model, torch.randn(5, 2, 3), loss=loss)
    assert_untouched(model, before)
    # the model's own mode while tracing: in training mode its dropout applies
    assert tr.meta["training"] is True
    assert not np.array_equal(tr.outputs, tr.first.tracks["i2o"])


def test_dropout_follows_the_models_own_training_flag():
    model = prepared(Dropping()).eval()
    tr = trace_step_module(model, torch.randn(5, 2, 3))
    assert tr.meta["training"] is False
    np.testing.assert_array_equal(tr.outputs, tr.first.tracks["i2o"])   # eval: no dropout


@pytest.mark.parametrize("loss", [None, "last"])
def test_the_model_is_left_untouched_when_it_raises_half_way(loss):
    model = prepared(Dropping(fail_at=4))
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="failed half-way"):
        trace_step_module(model, torch.randn(5, 2, 3), loss=loss)
    assert_untouched(model, before)
    assert record("after", torch.ones(2)) is None


def test_errors_say_what_was_expected():
    model = RNN(3, 4, 2)
    with pytest.raises(ValueError, match="sequence is empty"):
        trace_step_module(model, [])
    with pytest.raises(ValueError, match="\\(time, batch, features\\).*shape \\(2, 3, 4, 5\\)"):
        trace_step_module(model, torch.randn(2, 3, 4, 5))
    with pytest.raises(ValueError, match="inputs\\[1\\]: expected a \\(batch, features\\)"):
        trace_step_module(model, [torch.randn(1, 3), torch.randn(1, 1, 3)])
    with pytest.raises(ValueError, match="same \\(batch, features\\) shape"):
        trace_step_module(model, [torch.randn(1, 3), torch.randn(2, 3)])
    bad = torch.randn(3, 1, 3)
    bad[2, 0, 1] = float("nan")
    with pytest.raises(ValueError, match="inputs\\[2\\]: expected finite values"):
        trace_step_module(model, bad)
    with pytest.raises(ValueError, match="loss: expected a callable"):
        trace_step_module(model, torch.randn(3, 1, 3), loss="mean")
    with pytest.raises(ValueError, match="loss: expected a scalar"):
        trace_step_module(model, torch.randn(3, 1, 3), loss=lambda out: out)
    with pytest.raises(ValueError, match="tokens"):
        trace_step_module(model, torch.randn(3, 1, 3), tokens=["a", "b"])

    class NoSize(nn.Module):
        def forward(self, x, h):
            return x, h

    with pytest.raises(ValueError, match="pass hidden=.*hidden_size"):
        trace_step_module(NoSize(), torch.randn(3, 1, 3))

    class OneResult(nn.Module):
        hidden_size = 3

        def forward(self, x, h):
            return x + h

    with pytest.raises(TypeError, match="must return \\(output, hidden\\), got Tensor"):
        trace_step_module(OneResult(), torch.randn(3, 1, 3))


def test_tokens_and_non_finite_values_from_the_model():
    class Exploding(RNN):
        def forward(self, input, hidden):
            output, hidden = super().forward(input, hidden)
            return output, hidden * 1e30

    tr = trace_step_module(RNN(3, 4, 2), torch.randn(3, 1, 3), tokens=["a", "b", "c"])
    assert tr.tokens == [["a", "b", "c"]]
    found = "\\['exploding.h', 'exploding.i2h', 'exploding.i2o', 'exploding.output'\\]"
    with pytest.warns(UserWarning, match=f"non-finite values \\(NaN or inf\\) in {found}"):
        tr = trace_step_module(Exploding(3, 4, 2), torch.randn(4, 1, 3))
    assert not np.isfinite(tr.first.h).all()


def test_a_float64_model_gives_a_float32_trace_and_float32_inputs_are_cast():
    model = RNN(3, 4, 2).double()
    tr = trace_step_module(model, torch.randn(3, 2, 3))          # float32 inputs into a float64 model
    assert tr.first.h.dtype == np.float32 and tr.outputs.dtype == np.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trace_step_module(model, torch.randn(3, 2, 3, dtype=torch.float64))


def test_trace_drives_the_seed_class_as_a_step_module():
    from rnnwidgets.capture import trace

    torch.manual_seed(5)
    model = RNN(4, 6, 3)
    xs = torch.randn(5, 2, 4)
    tr = trace(model, xs, tokens=[list("abcde"), list("fghij")], loss="last")
    direct = trace_step_module(model, xs, loss="last")
    assert list(tr.layers) == ["rnn"] and tr.tokens[1] == list("fghij")
    for key in ("i2h", "i2o", "output"):
        np.testing.assert_array_equal(tr.first.tracks[key], direct.first.tracks[key])
    np.testing.assert_array_equal(tr.first.grads["h"], direct.first.grads["h"])


class GRUStep(nn.Module):
    """A step module around a fused nn.GRU run one step at a time: hidden (layers, batch, units)."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x, hidden):
        out, hidden = self.gru(x.unsqueeze(0), hidden)
        return self.head(out[0]), hidden

    def init_hidden(self, batch):
        return torch.zeros(1, batch, 4)


def test_a_layered_hidden_state_is_recorded_per_batch_element():
    torch.manual_seed(8)
    model = GRUStep()
    xs = torch.randn(5, 3, 3)
    tr = trace_step_module(model, xs, loss="last")
    with torch.no_grad():
        ref = model.gru(xs)[0]                       # the same GRU run over the whole sequence
    np.testing.assert_allclose(tr.first.h, ref.transpose(0, 1).numpy(), atol=1e-6)
    assert tr.first.grads["h"].shape == (3, 5, 4)
    assert tr.first.initial["h"].shape == (3, 4) and not tr.first.initial["h"].any()
    h0 = torch.randn(1, 3, 4)                         # (layers, batch, units): one row per batch element
    given = trace_step_module(model, xs, hidden=h0)
    np.testing.assert_array_equal(given.first.initial["h"], h0[0].numpy())
    with torch.no_grad():
        np.testing.assert_allclose(given.first.h, model.gru(xs, h0)[0].transpose(0, 1).numpy(), atol=1e-6)


class RecordsItsOwnH(RNN):
    """A step module whose rw.record("h", ...) is its h: not the hidden it is handed."""

    def forward(self, input, hidden):
        output, hidden = super().forward(input, hidden)
        record("h", hidden.tanh())
        return output, hidden


def test_a_recorded_h_has_no_initial_state_but_the_others_keep_theirs():
    tr = trace_step_module(RecordsItsOwnH(3, 4, 2), torch.randn(3, 2, 3), hidden=torch.ones(2, 4))
    assert tr.first.initial == {}

    class RecordsItsOwnC(LSTMStep):
        def forward(self, x, state):
            record("c", state[1])
            return super().forward(x, state)

    tr = trace_step_module(RecordsItsOwnC(), torch.randn(3, 2, 3))
    assert list(tr.first.initial) == ["h"]


class SharedStart(nn.Module):
    """A step module whose first hidden is one (units,) vector shared by the whole batch, and
    which returns (batch, units) states: no tensor passed in is a per-element initial state."""

    hidden_size = 4

    def __init__(self):
        super().__init__()
        self.i2h = nn.Linear(3 + 4, 4)

    def forward(self, x, hidden):
        hidden = hidden.expand(x.shape[0], -1)
        return x.sum(1, keepdim=True), torch.tanh(self.i2h(torch.cat([x, hidden], 1)))


def test_no_initial_state_where_no_hidden_passed_in_is_one_per_element():
    model = SharedStart()
    tr = trace_step_module(model, torch.randn(3, 2, 3), hidden=torch.ones(4))
    assert set(tr.first.states) == {"h"} and tr.first.initial == {}
    from rnnwidgets.capture.recording import recording
    with recording(GRUStep()) as rec:                # the user's own loop, starting from no hidden
        hidden = None
        for x in torch.randn(3, 2, 3):
            _, hidden = rec.model(x, hidden)
    assert rec.trace.first.h.shape == (2, 3, 4) and rec.trace.first.initial == {}


def test_a_bfloat16_model_gives_a_float32_trace():
    model = RNN(3, 4, 2).to(torch.bfloat16)
    tr = trace_step_module(model, torch.randn(3, 2, 3), loss="last")
    assert tr.first.h.dtype == np.float32 and tr.first.grads["h"].dtype == np.float32
    assert np.isfinite(tr.first.grads["h"]).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_model_in_eval_mode_gets_gradients_and_stays_on_its_device():
    torch.manual_seed(9)
    model = GRUStep().eval()
    xs = torch.randn(5, 2, 3)
    on_cpu = trace_step_module(model, xs, loss="last")
    model.cuda()
    before = snapshot(model)
    on_gpu = trace_step_module(model, xs, loss="last")    # cuDNN refuses RNN backward in eval mode
    assert_untouched(model, before)
    assert next(model.parameters()).is_cuda
    np.testing.assert_allclose(on_gpu.first.h, on_cpu.first.h, atol=1e-5)
    np.testing.assert_allclose(on_gpu.first.grads["h"], on_cpu.first.grads["h"], atol=1e-5)
    for name, stats in on_cpu.param_grads.items():
        assert on_gpu.param_grads[name]["norm"] == pytest.approx(stats["norm"], abs=1e-5)


def test_a_step_module_in_the_users_own_loop_is_recorded_the_same_way():
    from rnnwidgets.capture.recording import recording

    torch.manual_seed(10)
    model = TutorialRNN(4, 6, 3)
    line = torch.randn(5, 1, 4)
    with recording(model, tokens=list("hello")) as rec:
        hidden = model.initHidden()                  # the classic char-RNN loop, as users write it
        for i in range(line.size()[0]):
            output, hidden = model(line[i], hidden)
    driven = trace_step_module(model, line, tokens=list("hello"))
    assert list(rec.trace.layers) == ["tutorialrnn"] and rec.trace.tokens == [list("hello")]
    for key in ("i2h", "i2o", "softmax", "output"):
        np.testing.assert_array_equal(rec.trace.first.tracks[key], driven.first.tracks[key])
    np.testing.assert_array_equal(rec.trace.first.h, driven.first.h)
    np.testing.assert_array_equal(rec.trace.outputs, driven.outputs)
    np.testing.assert_array_equal(rec.trace.first.initial["h"], np.zeros((1, 6), np.float32))   # initHidden()
    np.testing.assert_array_equal(driven.first.initial["h"], rec.trace.first.initial["h"])
    np.testing.assert_array_equal(rec.trace.inputs, line.transpose(0, 1).numpy())
