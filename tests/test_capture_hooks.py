"""The parameter-gradient reader (rnnwidgets/capture/hooks.py): the model is left exactly as found,
its hooks are removed by ``detach`` even after an exception, and each report is the norm of the
gradient as accumulated. (tests/test_capture_live.py checks names, norms and a sparse gradient.)"""
from collections import Counter

import pytest
import torch
from model_state import assert_untouched, snapshot
from torch import nn

from rnnwidgets.capture.hooks import ParameterGradients, grad_norm


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 4, batch_first=True)
        self.norm = nn.BatchNorm1d(4)
        self.head = nn.Linear(4, 2)
        self.unused = nn.Linear(2, 2)          # never in the forward: never a gradient

    def forward(self, x):
        h = self.gru(x)[0][:, -1]
        return self.head(self.norm(h))


def loss_of(model, seed=0):
    torch.manual_seed(seed)
    return model(torch.randn(4, 5, 3)).pow(2).sum()


def no_hooks(model):
    return all(not p._post_accumulate_grad_hooks for p in model.parameters())


def test_attach_and_detach_leave_the_model_exactly_as_found():
    torch.manual_seed(0)
    model = Model()
    loss_of(model).backward()                  # gradients already there, which must stay the same tensors
    before = snapshot(model)
    grads = ParameterGradients(model)
    grads.norms()
    grads.attach(lambda index, norm: None)
    assert all(len(p._post_accumulate_grad_hooks) == 1 for p in model.parameters())
    grads.detach()
    grads.detach()                             # a second detach has nothing left to remove
    assert not grads.attached and no_hooks(model)
    assert_untouched(model, before)


def test_hooks_are_removed_after_a_report_raises_in_the_middle_of_a_backward_pass():
    model = Model()
    grads = ParameterGradients(model)
    calls = []

    def report(index, norm):
        calls.append(index)
        raise ValueError("report failed")

    grads.attach(report)
    with pytest.raises(ValueError, match="report failed"):
        loss_of(model).backward()
    assert calls and grads.attached            # still attached: the exception does not detach by itself
    grads.detach()
    assert no_hooks(model)
    calls.clear()
    model.zero_grad()
    loss_of(model).backward()                  # no report once detached
    assert calls == []


def test_each_report_is_the_norm_of_the_gradient_as_accumulated():
    torch.manual_seed(1)
    model = Model()
    named = dict(model.named_parameters())
    grads = ParameterGradients(model)
    assert grads.names == [n for n in named if not n.startswith("unused")] + ["unused.weight", "unused.bias"]
    used = [n for n in grads.names if not n.startswith("unused")]
    first = torch.autograd.grad(loss_of(model, 0), [named[n] for n in used])
    second = torch.autograd.grad(loss_of(model, 1), [named[n] for n in used])
    reports = []
    grads.attach(lambda index, norm: reports.append((grads.names[index], norm)))
    loss_of(model, 0).backward()
    loss_of(model, 1).backward()               # no zero_grad: the second pass adds to the first
    grads.detach()
    assert Counter(n for n, _ in reports) == {n: 2 for n in used}   # once a pass each; the unused ones never
    last = dict(reports[len(used):])
    for name, a, b in zip(used, first, second):
        assert last[name] == pytest.approx(float((a + b).double().norm()), rel=1e-6), name
        assert isinstance(last[name], float)
    norms, has = grads.norms()
    assert has.tolist() == [not n.startswith("unused") for n in grads.names]
    assert norms.dtype == "float64" and norms[~has].tolist() == [0.0, 0.0]
    assert norms[has].tolist() == [last[n] for n in used]   # the same reading, hooks or not


def test_a_parameter_shared_by_two_modules_is_one_parameter_with_one_hook():
    model = nn.Sequential(nn.Linear(3, 3, bias=False), nn.Tanh(), nn.Linear(3, 3, bias=False))
    model[2].weight = model[0].weight
    grads = ParameterGradients(model)
    reports = []
    grads.attach(lambda index, norm: reports.append(index))
    model(torch.randn(2, 3)).sum().backward()
    grads.detach()
    assert grads.names == ["0.weight"] and reports == [0]      # reported once, with both uses summed


def test_grad_norm_is_float64_and_exact_for_dense_gradients():
    grad = torch.tensor([[3.0, 0.0], [0.0, 4.0]])
    norm = grad_norm(grad)
    assert norm.dtype == torch.float64 and norm.shape == () and float(norm) == 5.0
    assert float(grad_norm(torch.zeros(3))) == 0.0
    assert float(grad_norm(torch.tensor([float("nan"), 1.0]))) != float(grad_norm(torch.ones(2)))
    assert float(grad_norm(torch.tensor([float("inf"), 1.0]))) == float("inf")


def test_the_norm_of_a_large_gradient_of_finite_elements_is_finite():
    grad = torch.full((100,), 1e4, dtype=torch.float16)       # every element finite, the norm 1e5 > 65504
    assert float(grad_norm(grad)) == pytest.approx(1e5)
    assert float(grad_norm(torch.full((4,), 1e20))) == pytest.approx(2e20)   # float32 squares would overflow


def test_an_attach_that_fails_midway_leaves_no_hook():
    model = nn.Linear(3, 2)
    grads = ParameterGradients(model)

    def refuse(hook):
        raise RuntimeError("no hook here")

    model.bias.register_post_accumulate_grad_hook = refuse
    with pytest.raises(RuntimeError, match="no hook here"):
        grads.attach(lambda index, norm: None)
    assert not grads.attached and not model.weight._post_accumulate_grad_hooks
