"""rw.trace leaves the model exactly as it found it, also when something raises half-way:
parameters bit for bit, .grad fields, training flags, requires_grad flags, forward, hooks."""
import pytest
import torch
from torch import nn

from rnnwidgets.capture import trace

HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
              "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called",
              "_state_dict_hooks", "_load_state_dict_pre_hooks")


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


def snapshot(model: nn.Module) -> dict:
    return {
        "params": {n: p.detach().clone() for n, p in model.named_parameters()},
        "grads": {n: (None if p.grad is None else (p.grad, p.grad.detach().clone()))
                  for n, p in model.named_parameters()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "training": {n: m.training for n, m in model.named_modules()},
        "forward": {n: m.__dict__.get("forward") for n, m in model.named_modules()},
        "hooks": {n: {d: list(getattr(m, d, {}).items()) for d in HOOK_DICTS} for n, m in model.named_modules()},
        "global_hooks": [len(getattr(nn.modules.module, d)) for d in dir(nn.modules.module) if d.startswith("_global_")
                         and isinstance(getattr(nn.modules.module, d), dict)],
        "grad_enabled": torch.is_grad_enabled(),
    }


def assert_untouched(model: nn.Module, before: dict):
    after = snapshot(model)
    for name, value in before["params"].items():
        p = after["params"][name]
        assert p.dtype == value.dtype and torch.equal(p.view(torch.uint8), value.view(torch.uint8)), name
    for name, grad in before["grads"].items():
        p = dict(model.named_parameters())[name]
        if grad is None:
            assert p.grad is None, f"{name}.grad appeared"
        else:
            assert p.grad is grad[0] and torch.equal(p.grad, grad[1]), f"{name}.grad changed"
    for key in ("requires_grad", "training", "forward", "hooks", "global_hooks", "grad_enabled"):
        assert after[key] == before[key], key


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
