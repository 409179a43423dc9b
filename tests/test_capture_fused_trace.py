"""A fused-module trace's outputs and inputs: the model's output and float inputs laid out
(batch, time, features) from whatever layout the modules ran in, token ids left out."""
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from rnnwidgets.capture import trace
from rnnwidgets.capture.fused_trace import active_dropout, input_steps, output_steps, own_lengths


def layers(batch, steps, batch_first):
    return {"rnn.l0": (batch, steps, batch_first)}     # each layer's (batch, steps, batch_first), as merge_calls gives


def test_output_steps_from_each_layout_the_model_returns():
    x = torch.arange(2 * 3 * 5.0).reshape(2, 3, 5)              # (batch, time, features)
    assert torch.equal(output_steps(x, layers(2, 3, True), 2), x)
    assert torch.equal(output_steps((x.transpose(0, 1), "extra"), layers(2, 3, False), 2), x)
    assert torch.equal(output_steps(x.reshape(6, 5), layers(2, 3, True), 2), x)                      # .view(-1, n)
    assert torch.equal(output_steps(x.transpose(0, 1).reshape(6, 5), layers(2, 3, False), 2), x)
    assert torch.equal(output_steps(x[0], layers(1, 3, True), 1), x[:1])
    packed = pack_padded_sequence(x, [3, 2], batch_first=True)
    padded = output_steps((packed, None), layers(2, 3, True), 2)     # as nn.LSTM returns it
    assert torch.equal(padded[0], x[0]) and torch.equal(padded[1, :2], x[1, :2]) and (padded[1, 2] == 0).all()
    assert output_steps(x[:, :2], layers(2, 3, True), 2) is None         # another time axis
    assert output_steps(torch.zeros(2, 3, 5), layers(4, 3, True), 2) is None   # no layer of this batch
    assert output_steps("text", layers(2, 3, True), 2) is None and output_steps((), layers(2, 3, True), 2) is None


def test_input_steps_are_float_inputs_batch_major_and_none_for_token_ids():
    x = torch.arange(2 * 3 * 5.0).reshape(3, 2, 5)              # (time, batch, features)
    np.testing.assert_array_equal(input_steps(x, 3, 2, batch_first=False), x.transpose(0, 1).numpy())
    np.testing.assert_array_equal(input_steps(x.transpose(0, 1), 3, 2, batch_first=True), x.transpose(0, 1).numpy())
    np.testing.assert_array_equal(input_steps(x[:, 0], 3, 1, batch_first=False), x[:, :1].transpose(0, 1).numpy())
    assert input_steps(torch.zeros(3, 2, dtype=torch.int64), 3, 2, batch_first=False) is None
    assert input_steps(x, 4, 2, batch_first=False) is None and input_steps([x], 3, 2, batch_first=False) is None
    ids = pack_padded_sequence(torch.zeros(2, 3, dtype=torch.int64), [3, 1], batch_first=True)
    assert input_steps(ids, 3, 2, batch_first=True) is None
    assert input_steps(x.double(), 3, 2, batch_first=False).dtype == np.float32
    assert own_lengths({"lengths": torch.tensor([3, 1])}).tolist() == [3, 1]


def test_a_fused_trace_holds_the_models_output_and_inputs():
    torch.manual_seed(0)
    model = nn.GRU(3, 4)
    x = torch.randn(5, 2, 3)
    tr = trace(model, x)
    np.testing.assert_allclose(tr.outputs, model(x)[0].detach().transpose(0, 1).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(tr.inputs, x.transpose(0, 1).numpy())
    assert tr.meta["training"] is True and tr.lengths.tolist() == [5, 5]


def test_a_model_whose_recurrent_module_never_runs_gets_one_sentence():
    class Skips(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.head = nn.GRU(3, 4), nn.Linear(3, 2)

        def forward(self, x):
            return self.head(x)

    with pytest.raises(ValueError, match=r"^rw.trace: Skips contains recurrent modules but none of them ran in its "):
        trace(Skips(), torch.randn(5, 2, 3))


class _Dropped(nn.Module):
    """Embedding-free: an optional nn.Dropout before an LSTM of ``num_layers`` (``dropout`` between them)."""

    def __init__(self, p=0.0, num_layers=1, dropout=0.0):
        super().__init__()
        self.drop = nn.Dropout(p) if p is not None else nn.Identity()
        with warnings.catch_warnings():   # torch warns of dropout on a one-layer LSTM (it drops nothing)
            warnings.simplefilter("ignore")
            self.lstm = nn.LSTM(3, 4, num_layers=num_layers, dropout=dropout, batch_first=True)

    def forward(self, x):
        return self.lstm(self.drop(x))[0]


@pytest.mark.parametrize("model, train, expected", [
    (nn.LSTM(3, 4, batch_first=True), True, False),                   # a bare LSTM in train(): nothing drops
    (_Dropped(None, 2, 0.3), True, True),                             # dropout between two layers
    (_Dropped(None, 2, 0.3), False, False),                           # ... off in eval()
    (_Dropped(None, 1, 0.3), True, False),                            # one layer: nothing between layers
    (_Dropped(0.2), True, True),                                      # an nn.Dropout
    (_Dropped(0.0), True, False),                                     # ... of p = 0
])
def test_meta_says_whether_the_mode_the_model_ran_in_drops_values(model, train, expected):
    model.train(train)
    tr = trace(model, torch.randn(2, 5, 3))
    assert tr.meta["training"] is train and tr.meta["dropout"] is expected
    assert active_dropout(model) is expected and model.training is train   # the mode left as found


def test_a_recording_block_says_whether_dropout_was_on_too():
    from rnnwidgets.capture.recording import recording

    model = _Dropped(0.5).train()
    with recording(model) as rec:
        model(torch.randn(1, 4, 3))
    assert rec.trace.meta["training"] is True and rec.trace.meta["dropout"] is True
    model.eval()
    with recording(model) as rec:
        model(torch.randn(1, 4, 3))
    assert rec.trace.meta["dropout"] is False


class HeadAfterLSTM(nn.Module):
    """A 2-layer LSTM and a head that notes when it runs (and raises when told)."""

    def __init__(self, log: list, fail: bool = False):
        super().__init__()
        self.lstm, self.head, self.log, self.fail = nn.LSTM(3, 5, 2), nn.Linear(5, 2), log, fail

    def forward(self, x):
        out, _ = self.lstm(x)
        self.log.append("head")
        if self.fail:
            raise RuntimeError("the head failed")
        return self.head(out)


def test_a_plain_traces_arrays_are_made_as_each_layer_returns_and_equal_those_made_after(monkeypatch):
    """Each layer's arrays are started before the model goes on (from a GPU their host copies then
    overlap its next layer), a selection's too, and equal the arrays a window of every step makes
    after the forward."""
    from rnnwidgets.capture import fused_trace

    log: list = []
    made = fused_trace.layer_arrays
    monkeypatch.setattr(fused_trace, "layer_arrays", lambda d, *a, **k: log.append(d.name) or made(d, *a, **k))
    torch.manual_seed(0)
    model, x = HeadAfterLSTM(log), torch.randn(7, 2, 3)
    early = trace(model, x)
    assert log == ["lstm.l0", "lstm.l1", "head"]
    log.clear()
    after = trace(model, x, steps=slice(0, 7))       # a window of steps is cut after the forward
    assert log == ["head", "lstm.l0", "lstm.l1"]
    log.clear()
    states = trace(model, x, quantities=["h"], layers=["lstm.l1"])   # a selection whole in time: early too
    assert log == ["lstm.l1", "head"] and list(states.layers) == ["lstm.l1"]
    assert list(states.layers["lstm.l1"].quantities()) == ["h"]
    np.testing.assert_array_equal(states.layers["lstm.l1"].h, early.layers["lstm.l1"].h)
    for name, lt in early.layers.items():
        assert list(lt.quantities()) == list(after.layers[name].quantities())
        for key, value in lt.quantities().items():
            np.testing.assert_array_equal(value, after.layers[name].quantities()[key])
        np.testing.assert_array_equal(lt.initial["h"], after.layers[name].initial["h"])
    np.testing.assert_array_equal(early.outputs, after.outputs)


def test_an_error_making_the_early_arrays_is_raised_once_after_the_forward(monkeypatch):
    from rnnwidgets.capture import fused_trace

    def broken(*args, **kwargs):
        raise RuntimeError("no arrays")

    monkeypatch.setattr(fused_trace, "layer_arrays", broken)
    log: list = []
    with pytest.raises(RuntimeError, match="^no arrays$") as raised:
        trace(HeadAfterLSTM(log), torch.randn(4, 1, 3))
    assert log == ["head"] and fused_trace.forward_ran(raised.value)   # no step-by-step retry after it
    with pytest.raises(RuntimeError, match="the head failed"):        # the model's own error, as it is
        trace(HeadAfterLSTM(log, fail=True), torch.randn(4, 1, 3))


def test_with_a_loss_the_states_are_made_in_the_forward_and_the_gradients_after_the_backward(monkeypatch):
    """Under a loss each layer's states and gates are made as its kernel returns (their copies then
    overlap the backward pass) and its gradients through time after the backward: the same arrays
    and gradients as a window of every step, made after it; a selection of h keeps its gradient alone."""
    from rnnwidgets.capture import fused_trace

    log: list = []
    made = fused_trace.layer_arrays
    monkeypatch.setattr(fused_trace, "layer_arrays", lambda d, *a, **k: log.append(d.name) or made(d, *a, **k))
    torch.manual_seed(1)
    model, x = HeadAfterLSTM(log), torch.randn(6, 3, 3)
    loss = lambda out: out[-1].square().sum()  # noqa: E731
    early = trace(model, x, loss=loss)
    assert log == ["lstm.l0", "lstm.l1", "head"]
    log.clear()
    after = trace(model, x, loss=loss, steps=slice(0, 6))
    assert log == ["head", "lstm.l0", "lstm.l1"]
    log.clear()
    hs = trace(model, x, loss=loss, quantities=["h"])
    assert log == ["lstm.l0", "lstm.l1", "head"]
    for name, lt in hs.layers.items():      # the selection keeps h and its gradient alone
        assert list(lt.quantities()) == ["h"] and list(lt.grads) == ["h"]
        np.testing.assert_array_equal(lt.grads["h"], early.layers[name].grads["h"])
    for name, lt in early.layers.items():
        assert list(lt.grads) == ["h", "c"] and (lt.grads["h"] != 0).any()
        for group in ("states", "gates", "grads"):
            for key, value in getattr(lt, group).items():
                np.testing.assert_array_equal(value, getattr(after.layers[name], group)[key])
    assert early.param_grads == after.param_grads


def spied_gates(monkeypatch) -> list:
    """(keep_gates asked, gates given) of each fused_native.lstm call."""
    from rnnwidgets.capture import fused_native
    calls = []
    real = fused_native.lstm

    def spy(*args, **kwargs):
        found = real(*args, **kwargs)
        calls.append((args[5] if len(args) > 5 else True, found is not None and found[5] is not None))
        return found
    monkeypatch.setattr(fused_native, "lstm", spy)
    return calls


def lstm_case():
    torch.manual_seed(4)
    return nn.LSTM(6, 40, num_layers=2).eval(), torch.randn(70, 3, 6)


@pytest.mark.parametrize("ask, kept", [
    ({"quantities": ("h", "c")}, [False, False]),
    ({"quantities": ("c",), "layers": ["lstm.l1"]}, [False, False]),
    ({"layers": ["lstm.l1"]}, [False, True]),                      # l0 is not kept at all
    ({"quantities": ("h", "forget")}, [True, True]),
    ({"quantities": ("h", "c"), "loss": lambda out: out[0].square().mean()}, [True, True]),   # the backward reads them
])
def test_a_selection_without_gates_leaves_the_kernels_gates_in_its_workspace(monkeypatch, ask, kept):
    """An LSTM layer read from its kernel's workspace copies its gates out only where the selection
    keeps one (and nothing else needs them): at batch 32 that is 131 MB a layer it no longer
    writes. What it keeps is the full trace's, value for value."""
    model, x = lstm_case()
    full = trace(model, x, loss=ask.get("loss"))
    calls = spied_gates(monkeypatch)
    tr = trace(model, x, **ask)
    assert [k for k, _ in calls] == kept and [g for _, g in calls] == kept
    for name, lt in tr.layers.items():
        for key, value in lt.quantities().items():
            np.testing.assert_array_equal(value, full.layers[name].quantities()[key], err_msg=f"{name}.{key}")
        assert lt.quantities().keys() == {k for k in full.layers[name].quantities()
                                          if "quantities" not in ask or k in ask["quantities"]}


def test_cell_states_off_their_place_without_gates_fall_back_to_a_whole_layer(monkeypatch):
    """Without gates nothing can scan c again: a cell state that fails its check sends the layer
    the general way, which gives the same h and c."""
    from rnnwidgets.capture import fused_native
    model, x = lstm_case()
    full = trace(model, x)
    real = fused_native.cell_offset
    monkeypatch.setattr(fused_native, "cell_offset", lambda *a: real(*a) + 1)
    calls = spied_gates(monkeypatch)
    tr = trace(model, x, quantities=("h", "c"))
    assert calls == [(False, False), (False, False)]
    for name, lt in tr.layers.items():
        for key in ("h", "c"):
            np.testing.assert_allclose(lt.quantities()[key], full.layers[name].quantities()[key], rtol=0, atol=1e-6)
