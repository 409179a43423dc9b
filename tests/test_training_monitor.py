"""``rw.TrainingMonitor`` on a live model (rnnwidgets/training_monitor.py): the torch-facing side.
The view reaches the model through one LiveModel; its hooks go when training ends, even by an
exception; its probe is traced from inside a backward pass without touching the model.
(tests/test_widgets_monitor.py checks the charts, the throttle and the recorded norms.)"""
import numpy as np
import pytest
import torch
from model_state import assert_untouched, snapshot
from torch import nn

import rnnwidgets as rw
from rnnwidgets import training_monitor
from rnnwidgets.capture import trace
from rnnwidgets.capture.live import LiveModel
from rnnwidgets.gradients_analysis import step_norms
from rnnwidgets.widgets import monitor


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, batch_first=True, bidirectional=True)
        self.norm = nn.BatchNorm1d(8)          # a forward in training mode would move its statistics
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        h = self.lstm(x)[0]
        return self.head(self.norm(h.transpose(1, 2)).transpose(1, 2))


def still_clock():
    return 0.0


def backward(model, seed):
    torch.manual_seed(seed)
    loss = model(torch.randn(2, 5, 3)).pow(2).mean()
    loss.backward()
    return loss


def no_hooks(model):
    return all(not p._post_accumulate_grad_hooks for p in model.parameters())


def test_the_monitor_reaches_the_model_through_one_live_object():
    model = Model()
    mon = rw.TrainingMonitor(model, clock=still_clock)
    assert rw.TrainingMonitor is training_monitor.TrainingMonitor
    assert isinstance(mon, monitor.TrainingMonitor) and rw.TrainingMonitor.__doc__.startswith(monitor.TrainingMonitor.__doc__)
    assert isinstance(mon.live, LiveModel) and mon.live.model is model and mon.model is model
    assert mon.gradients.names == [n for n, _ in model.named_parameters()]
    with pytest.raises(TypeError, match=r"^TrainingMonitor: expected a torch.nn.Module, got Tensor$"):
        rw.TrainingMonitor(torch.zeros(3))


def test_the_charts_name_layers_as_a_trace_of_the_same_model_does():
    model = nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    mon = rw.TrainingMonitor(model, clock=still_clock)
    assert mon.layers == list(trace(model, torch.randn(1, 3, 3)).layers)
    assert mon.layers == ["gru.l0", "gru.l0.reverse", "gru.l1", "gru.l1.reverse"]


def test_an_attached_probe_is_traced_from_inside_the_backward_pass_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model, x = Model().train(), torch.randn(2, 6, 3)
    reference = Model().train()
    reference.load_state_dict(model.state_dict())
    mon = rw.TrainingMonitor(model, probe=x, every=2, clock=still_clock).attach()
    for seed in range(3):
        model.zero_grad()
        reference.zero_grad()
        backward(model, seed)
        backward(reference, seed)               # the same training, no monitor
        if seed == 1:
            assert mon.snapshot is not None and mon.snapshot[0] == 2   # taken at the second backward pass
    mon.finish()
    assert no_hooks(model) and mon.steps == 3
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        assert torch.equal(p, q) and torch.equal(p.grad, q.grad), name
    for key, buffer in reference.norm.named_buffers():  # the probe's forward moved no statistic
        assert torch.equal(getattr(model.norm, key), buffer), key
    assert model.training and model.norm.training
    probe = trace(model, x, loss="last")        # inputs alone: the loss is the last step's output
    _, norms = mon.snapshot
    assert list(norms) == ["lstm.l0", "lstm.l0.reverse"]
    for name, got in norms.items():
        np.testing.assert_allclose(got, step_norms(probe.layers[name].grads["h"], probe.lengths), rtol=1e-5)


def test_the_hooks_go_when_training_ends_with_an_exception():
    torch.manual_seed(1)
    model, x = Model().train(), torch.randn(2, 6, 3)
    backward(model, 0)
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="training stopped"):
        with rw.TrainingMonitor(model, probe=(x, lambda out: out[:, -1].sum()), every=1,
                                clock=still_clock) as mon:
            mon.step(1.0)                       # reads the gradients and traces the probe
            mon.attach()
            raise RuntimeError("training stopped")
    assert mon.snapshot is not None and mon.steps == 1
    assert no_hooks(model) and not mon.gradients.attached
    assert_untouched(model, before)


def test_a_probe_that_fails_inside_the_backward_pass_leaves_no_hook_once_training_ends():
    model = Model()
    bad = torch.randn(2, 6, 5)                  # 5 features where the model takes 3
    with pytest.raises(ValueError, match=r"rw.trace: lstm expected .* with 3 features, got shape \(2, 6, 5\)"):
        with rw.TrainingMonitor(model, probe=bad, every=1, clock=still_clock).attach():
            backward(model, 0)                  # the probe is traced when this pass's last gradient lands
    assert no_hooks(model)
