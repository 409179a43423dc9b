"""The live model behind the views (capture/live.py) and the parameter gradients it reads (capture/hooks.py)."""
import numpy as np
import pytest
import torch
from torch import nn

from rnnwidgets.capture import trace
from rnnwidgets.capture.hooks import ParameterGradients, grad_norm
from rnnwidgets.capture.live import LiveModel


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, batch_first=True)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.lstm(x)[0])


def test_a_live_model_retraces_with_its_keywords_unless_overridden():
    torch.manual_seed(0)
    model, x = nn.LSTM(3, 4, batch_first=True), torch.randn(2, 5, 3)
    h0 = (torch.randn(1, 2, 4), torch.randn(1, 2, 4))
    live = LiveModel(model, hidden=h0)
    np.testing.assert_array_equal(live.trace(x).layers["lstm.l0"].h, trace(model, x, hidden=h0).layers["lstm.l0"].h)
    np.testing.assert_array_equal(live.trace(x, hidden=None).layers["lstm.l0"].h, trace(model, x).layers["lstm.l0"].h)
    assert live.trace(x, tokens=[list("abcde")] * 2).tokens[1] == list("abcde")
    assert live.name == "lstm" and LiveModel(Model()).name == "model"
    with pytest.raises(TypeError, match="explore: expected a torch.nn.Module, got str"):
        LiveModel("model", "explore")


def test_weight_norms_and_learning_rates_come_from_the_model_and_its_optimizer():
    model = Model()
    live = LiveModel(model)
    norms = live.weight_norms()
    assert norms["head.weight"] == pytest.approx(float(model.head.weight.detach().double().norm()))
    opt = torch.optim.SGD([{"params": model.lstm.parameters(), "lr": 0.1}, {"params": model.head.parameters()}], lr=0.5)
    rates = live.learning_rates(opt)
    assert rates["lstm.weight_ih_l0"] == 0.1 and rates["head.bias"] == 0.5 and len(rates) == len(norms)


def test_parameter_gradients_are_read_and_reported_without_being_changed():
    model = Model()
    model.head.bias.requires_grad_(False)
    grads = ParameterGradients(model)
    assert "head.bias" not in grads.names and len(grads.names) == 5
    norms, has = grads.norms()
    assert not has.any() and not norms.any()
    reports = []
    grads.attach(lambda index, norm: reports.append((index, norm)))
    grads.attach(lambda index, norm: reports.append("twice"))       # attached once only
    assert grads.attached
    model(torch.randn(2, 5, 3)).pow(2).sum().backward()
    before = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    norms, has = grads.norms()
    assert has.all() and sorted(i for i, _ in reports) == list(range(5))
    named = dict(model.named_parameters())
    for i, name in enumerate(grads.names):
        assert norms[i] == pytest.approx(float(named[name].grad.double().norm()))
        assert dict(reports)[i] == pytest.approx(norms[i])
    assert all(torch.equal(a, p.grad) for a, p in zip(before, [p for p in model.parameters() if p.grad is not None]))
    grads.detach()
    assert not grads.attached and all(not p._post_accumulate_grad_hooks for p in model.parameters())


def test_grad_norm_of_a_sparse_gradient():
    grad = torch.sparse_coo_tensor([[0, 0, 2]], torch.tensor([[1.0, 2.0], [2.0, 0.0], [3.0, 4.0]]), (3, 2))
    assert float(grad_norm(grad)) == pytest.approx(float(grad.to_dense().norm()))


def test_attribution_goes_through_the_live_models_own_keywords():
    """The hidden state a view's live model was given reaches its attributions too."""
    from rnnwidgets.capture.attribution import attribution

    torch.manual_seed(2)
    model, x = Model().eval(), torch.randn(2, 5, 3)
    h0 = (torch.randn(1, 2, 4), torch.randn(1, 2, 4))

    class WithState(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, x, hidden):
            return self.inner.head(self.inner.lstm(x, hidden)[0])
    given = LiveModel(WithState(), hidden=h0).attribution(x, 3, target=1)
    np.testing.assert_allclose(given, attribution(WithState(), x, t=3, target=1, hidden=h0), rtol=1e-6)
    assert not np.allclose(given, LiveModel(WithState()).attribution(x, 3, target=1))   # zeros: another answer


def test_edited_is_the_trace_with_one_more_edit():
    from rnnwidgets import clamp

    torch.manual_seed(0)
    lstm, x = torch.nn.LSTM(3, 5, batch_first=True), torch.randn(2, 6, 3)
    first = clamp("lstm.l0", "h", [0], None, 0.5)
    model = LiveModel(lstm, edits=[first])
    got = model.edited(x, "lstm.l0", "c", [2], range(1, 4), value=-1.0)
    want = trace(lstm, x, edits=[first, clamp("lstm.l0", "c", [2], range(1, 4), -1.0)])
    np.testing.assert_array_equal(got.layers["lstm.l0"].states["c"], want.layers["lstm.l0"].states["c"])
    assert len(got.meta["edits"]) == 2
