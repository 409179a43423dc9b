"""rw.trace leaves the model exactly as it found it, also when something raises half-way:
parameters bit for bit, .grad fields, training flags, requires_grad flags, forward, hooks."""
import numpy as np
import pytest
import torch
from torch import nn

from model_state import assert_untouched, snapshot
from rnnwidgets.capture import trace

class Model(nn.Module):
    """embedding -> 2-layer LSTM (dropout between layers) -> GRU -> linear; optionally raises
    after the recurrent modules ran."""

    def __init__(self, fail_after_rnn=False):
        super().__init__()
        self.embed = nn.Embedding(7, 3)
        self.lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5, batch_first=True)
        self.gru = nn.GRU(4, 4, batch_first=True)
        self.head = nn.Linear(4, 7)
        self.fail_after_rnn = fail_after_rnn

    def forward(self, ids):
        out = self.gru(self.lstm(self.embed(ids))[0])[0]
        if self.fail_after_rnn:
            raise RuntimeError("the model's own error after its RNN ran")
        return self.head(out)


def prepared(fail_after_rnn=False) -> nn.Module:
    """A model in training mode with some frozen parameters, some existing .grad and a user hook."""
    torch.manual_seed(0)
    model = Model(fail_after_rnn)
    model.train()
    model.embed.weight.requires_grad_(False)
    model.lstm.weight_hh_l1.grad = torch.randn_like(model.lstm.weight_hh_l1)
    model.head.bias.grad = torch.randn_like(model.head.bias)
    model.gru.register_forward_hook(lambda m, args, out: None)
    model.head.register_forward_pre_hook(lambda m, args: None)
    return model


IDS = torch.randint(0, 7, (2, 5))


@pytest.mark.parametrize("loss", [None, "last", lambda out: out.square().mean()])
def test_after_a_trace(loss):
    model = prepared()
    before = snapshot(model)
    tr = trace(model, IDS, loss=loss)
    assert list(tr.layers) == ["lstm.l0", "lstm.l1", "gru.l0"]
    assert_untouched(model, before)


def test_when_the_loss_raises():
    model = prepared()
    before = snapshot(model)

    def broken(out):
        raise KeyError("the user's loss failed")
    with pytest.raises(KeyError, match="the user's loss failed"):
        trace(model, IDS, loss=broken)
    assert_untouched(model, before)


def test_when_the_model_raises_after_its_rnn_ran():
    model = prepared(fail_after_rnn=True)
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="the model's own error"):
        trace(model, IDS, loss="last")
    assert_untouched(model, before)


def test_when_the_input_is_wrong_inside_a_recurrent_module():
    model = prepared()
    before = snapshot(model)
    with pytest.raises(ValueError, match="expected"):
        trace(model.lstm, torch.randn(2, 5, 9))   # 9 features, the LSTM takes 3
    with pytest.raises(ValueError, match="initial state"):
        trace(model.gru, torch.randn(2, 5, 4), hidden=torch.zeros(3))
    assert_untouched(model, before)


def test_a_users_own_instance_forward_is_restored_and_the_model_still_runs():
    model = prepared()
    stock = model.gru.forward
    calls = []

    def own_forward(*args, **kwargs):
        calls.append(1)
        return stock(*args, **kwargs)
    model.gru.forward = own_forward
    before = snapshot(model)
    trace(model, IDS)
    assert_untouched(model, before)
    assert model.gru.forward is own_forward
    model(IDS)
    assert calls == [1]


def test_user_hooks_still_run_during_the_trace():
    model = prepared()
    seen = []
    model.lstm.register_forward_hook(lambda m, args, out: seen.append(type(out[0]).__name__))
    before = snapshot(model)
    trace(model, IDS)
    assert seen == ["Tensor"]
    assert_untouched(model, before)


def test_training_mode_output_has_no_dropout_and_the_flag_stays():
    model = prepared()
    tr = trace(model, IDS)
    assert model.training and model.lstm.training
    model.eval()
    with torch.no_grad():
        want = model(IDS)
    model.train()
    assert (abs(tr.outputs - want.numpy()).max()) < 1e-6


@pytest.mark.parametrize("loss", [None, "last"])
def test_the_given_hidden_is_left_as_found_and_the_trace_keeps_its_own_copy(loss):
    model = prepared()
    before = snapshot(model.lstm)
    h0, c0 = torch.randn(2, 2, 4), torch.randn(2, 2, 4)
    kept = h0.clone(), c0.clone()
    tr = trace(model.lstm, torch.randn(2, 5, 3), hidden=(h0, c0), loss=loss)
    assert torch.equal(h0, kept[0]) and torch.equal(c0, kept[1]) and not h0.requires_grad
    assert not np.shares_memory(tr.layers["lstm.l0"].initial["h"], h0.numpy())
    tr.layers["lstm.l1"].initial["c"][:] = 0   # the trace's arrays are its own
    assert torch.equal(c0, kept[1])
    assert_untouched(model.lstm, before)
