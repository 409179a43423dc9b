"""TrainingMonitor: what it records, how often it sends, and that it never changes a gradient."""
import math

import ipywidgets
import numpy as np
import pytest
import torch

from rnnwidgets import TrainingMonitor
from rnnwidgets.widgets.monitor import layer_of


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(3, 8, num_layers=2, batch_first=True)
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x):
        return self.head(self.lstm(x)[0])


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def backward(model, seed=0, scale=1.0):
    torch.manual_seed(seed)
    model.zero_grad()
    loss = model(torch.randn(4, 6, 3)).pow(2).mean() * scale
    loss.backward()
    return loss


def grads(model):
    return [p.grad.clone() for p in model.parameters()]


def test_layers_are_named_as_in_a_trace():
    assert layer_of("lstm.weight_ih_l1_reverse", "model") == "lstm.l1.reverse"
    assert layer_of("enc.rnn.bias_hh_l0", "model") == "enc.rnn.l0"
    assert layer_of("head.weight", "model") == "head"
    assert layer_of("weight_hh_l0", "lstm") == "lstm.l0"        # a bare nn.LSTM
    assert TrainingMonitor(Model()).layers == ["lstm.l0", "lstm.l1", "head"]


def test_step_records_loss_global_and_per_layer_norms_and_leaves_grad_bit_identical():
    torch.manual_seed(0)
    model = Model()
    mon = TrainingMonitor(model, clock=FakeClock())
    expected_global, expected_layers = [], []
    for i in range(5):
        loss = backward(model, seed=i)
        before = grads(model)
        mon.step(loss)
        after = grads(model)
        assert all(torch.equal(a, b) for a, b in zip(before, after))
        assert all(p.grad is not None for p in model.parameters())
        named = dict(model.named_parameters())
        per = {layer: math.sqrt(sum(float(named[n].grad.double().norm()) ** 2 for n in named
                                    if layer_of(n, "model") == layer)) for layer in mon.layers}
        expected_layers.append([per[layer] for layer in mon.layers])
        expected_global.append(math.sqrt(sum(v ** 2 for v in per.values())))
    mon.flush()
    np.testing.assert_allclose(mon.norm_chart.y[0], expected_global, rtol=1e-6)
    np.testing.assert_array_equal(mon.loss_chart.x, np.arange(5))
    np.testing.assert_allclose(mon.loss_chart.y[0, -1], float(loss.detach()), rtol=1e-6)
    grid = mon.heat                        # layers x steps, one float32 buffer: the norms themselves
    assert (grid.rows, grid.columns, grid.scale) == (len(mon.layers), 5, "log")
    assert len(grid.buffer) == grid.rows * grid.columns * 4 and list(grid.row_labels) == mon.layers
    np.testing.assert_allclose(grid.values, np.array(expected_layers).T, rtol=1e-6)
    assert (grid.column_start, grid.column_step) == (0.0, 1.0)
    assert grid.vmin == pytest.approx(np.min(expected_layers), rel=1e-6)
    assert grid.vmax == pytest.approx(np.max(expected_layers), rel=1e-6)
    assert mon.status.value.startswith("step 5 · loss")


def test_clipping_threshold_and_markers_at_the_steps_over_it():
    model = Model()
    mon = TrainingMonitor(model, clip=1.0, clock=FakeClock())
    scales = [0.001, 100.0, 0.001, 100.0, 100.0]
    norms = []
    for i, s in enumerate(scales):
        mon.step(backward(model, seed=i, scale=s))
        norms.append(mon.last_norm)
    mon.flush()
    over = [i for i, n in enumerate(norms) if n > 1.0]
    assert over == [1, 3, 4]
    marks = mon.norm_chart.y[mon.norm_chart.labels.index("clipped")]
    np.testing.assert_array_equal(mon.norm_chart.x[np.isfinite(marks)], over)
    assert mon.norm_chart.rules == [{"name": "clip 1", "value": 1.0}]
    assert mon.clipped == 3 and "on 3 steps" in mon.status.value


def test_sends_at_most_ten_times_a_second_with_few_messages(monkeypatch):
    model = Model()
    clock = FakeClock()
    mon = TrainingMonitor(model, clock=clock)
    sent = []
    monkeypatch.setattr(ipywidgets.Widget, "send_state", lambda self, key=None: sent.append(self))
    loss = backward(model)
    for _ in range(2000):                 # 2,000 steps in one second of (fake) wall-clock time
        mon.step(loss)
        clock.now += 0.0005
    assert 9 <= mon.pushes <= 11
    assert len(sent) <= 16 * mon.pushes   # hold_sync: one message per changed widget per send
    assert len(sent) < 1000               # the server's default iopub limit is 1,000 messages/s
    assert mon.steps == 2000


def test_the_final_state_is_sent_by_flush():
    model = Model()
    mon = TrainingMonitor(model, clock=FakeClock())    # the clock never moves: only step 1 is sent
    for i in range(3):
        mon.step(backward(model, seed=i))
    assert len(mon.norm_chart.x) == 1
    mon.finish()
    assert len(mon.norm_chart.x) == 3 and mon.status.value.startswith("step 3")


def test_the_final_state_is_sent_when_the_cell_finishes():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    model = Model()
    mon = TrainingMonitor(model, clock=FakeClock())
    shell.user_ns.update(mon=mon, model=model, backward=backward)
    result = shell.run_cell("for i in range(4):\n    mon.step(backward(model, seed=i))\n"
                            "sent_during_cell = len(mon.norm_chart.x)")
    result.raise_error()
    assert shell.user_ns["sent_during_cell"] == 1
    assert len(mon.norm_chart.x) == 4


def test_history_is_bounded_and_keeps_a_loss_spike():
    model = Model()
    mon = TrainingMonitor(model, max_points=100, clock=FakeClock())
    backward(model)
    for i in range(3000):
        mon.step(1000.0 if i == 1234 else 1.0 + 0.001 * (i % 7))
    mon.flush()
    assert mon.loss_chart.y.shape[1] <= 100 and mon.norm_chart.y.shape[1] <= 100
    assert 1000.0 in mon.loss_chart.y and mon.loss_chart.x[mon.loss_chart.y[0] == 1000.0][0] == 1234
    grid = mon.heat
    assert grid.columns <= 200 and len(grid.buffer) == grid.rows * grid.columns * 4
    assert grid.columns * grid.column_step >= 3000     # the columns cover every step


def test_attach_records_every_backward_and_detach_removes_the_hooks():
    model = Model()
    reference = TrainingMonitor(model, clock=FakeClock())
    mon = TrainingMonitor(model, clock=FakeClock()).attach()
    assert all(len(p._post_accumulate_grad_hooks) == 1 for p in model.parameters())
    for i in range(3):
        loss = backward(model, seed=i)
        before = grads(model)
        mon.step(loss)
        reference.step(loss)
        assert all(torch.equal(a, b) for a, b in zip(before, grads(model)))
    mon.finish()
    reference.flush()
    assert all(not p._post_accumulate_grad_hooks for p in model.parameters())
    assert mon.steps == 3
    np.testing.assert_allclose(mon.norm_chart.y, reference.norm_chart.y, rtol=1e-6)
    np.testing.assert_allclose(mon.loss_chart.y, reference.loss_chart.y)


def test_non_finite_gradient_shows_as_non_finite_norm():
    model = Model()
    mon = TrainingMonitor(model, clock=FakeClock())
    backward(model)
    model.head.bias.grad.fill_(float("nan"))
    mon.step(0.5)
    assert math.isnan(mon.last_norm)
    assert "grad norm nan" in mon.status.value


def test_bad_arguments_say_what_was_expected():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        TrainingMonitor("model")
    with pytest.raises(ValueError, match="every"):
        TrainingMonitor(Model(), every=0)
    with pytest.raises(ValueError, match="clip"):
        TrainingMonitor(Model(), clip=-1)


def test_probe_snapshot_every_n_steps_leaves_grad_bit_identical():
    from rnnwidgets.capture import trace
    from rnnwidgets.gradients_analysis import step_norms

    torch.manual_seed(0)
    model = Model()
    x = torch.randn(2, 10, 3)
    loss_fn = lambda out: out[:, -1].sum()          # noqa: E731
    mon = TrainingMonitor(model, probe=(x, loss_fn), every=2, clock=FakeClock())
    for i in range(4):
        loss = backward(model, seed=i)
        before = grads(model)
        mon.step(loss)
        assert all(torch.equal(a, b) for a, b in zip(before, grads(model)))
    mon.flush()
    assert mon.snapshot[0] == 4 and "after training step 4" in mon.probe_chart.title
    assert mon.probe_chart.labels == ["lstm.l0", "lstm.l1"]
    expected = step_norms(trace(model, x, loss=loss_fn).layers["lstm.l1"].grads["h"])
    np.testing.assert_allclose(mon.probe_chart.y[1], expected, rtol=1e-5)
    assert "lstm.l1:" in mon.probe_text.value


def test_charts_hold_the_data_and_the_clip_threshold_and_start_with_a_sentence_not_ticks():
    model = Model()
    mon = TrainingMonitor(model, clip=1.0, clock=FakeClock())
    for chart in (mon.loss_chart, mon.norm_chart):
        assert chart.buffer == b"" and chart.points == 0      # the front end shows `empty`, no axis at all
        assert "mon.step(loss)" in chart.empty
    assert mon.norm_chart.rules == [{"name": "clip 1", "value": 1.0}]
    assert mon.loss_chart.y_scale == "linear" and mon.norm_chart.y_scale == "log"
    backward(model)
    for loss in (3.0, 2.0, 2.5):
        mon.step(loss)
    mon.flush()
    np.testing.assert_array_equal(mon.loss_chart.x, [0, 1, 2])
    np.testing.assert_array_equal(mon.loss_chart.y[0], [3.0, 2.0, 2.5])
    norm = mon.norm_chart.y
    assert mon.norm_chart.labels == ["‖∇‖ (L2 over all parameters)", "clipped"]
    over = norm[0] > 1.0                                  # the markers sit on the steps that were clipped
    np.testing.assert_array_equal(norm[1][over], norm[0][over])
    assert np.isnan(norm[1][~over]).all() and mon.clipped == over.sum()


def test_sparse_gradients_are_measured():
    model = torch.nn.Embedding(10, 4, sparse=True)
    mon = TrainingMonitor(model, clock=FakeClock())
    model(torch.tensor([1, 1, 3])).sum().backward()
    mon.step(1.0)
    assert mon.last_norm == pytest.approx(float(model.weight.grad.to_dense().norm()))


def test_detach_removes_the_hooks_even_when_recording_fails(monkeypatch):
    model = Model()
    mon = TrainingMonitor(model, clock=FakeClock()).attach()
    mon._pending = {0: 1.0}

    def fail(*args, **kwargs):
        raise RuntimeError("recording failed")

    monkeypatch.setattr(mon, "_record", fail)
    with pytest.raises(RuntimeError, match="recording failed"):
        mon.detach()
    assert all(not p._post_accumulate_grad_hooks for p in model.parameters())


def test_save_html_keeps_the_final_charts(tmp_path):
    model = Model()
    mon = TrainingMonitor(model, clock=FakeClock())
    for i in range(3):
        mon.step(backward(model, seed=i))
    mon.finish()
    page = mon.save_html(tmp_path / "monitor.html").read_text(encoding="utf-8")
    assert "rw-monitor" in page and "step 3 \\u00b7 loss" in page   # the state is JSON, non-ASCII escaped


class NormedModel(torch.nn.Module):
    """An LSTM followed by BatchNorm: a probe run in training mode would move its statistics."""

    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(3, 8, batch_first=True)
        self.norm = torch.nn.BatchNorm1d(8)
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x):
        h = self.lstm(x)[0]
        return self.head(self.norm(h.transpose(1, 2)).transpose(1, 2))


def test_the_probe_leaves_the_trained_model_as_found():
    from model_state import assert_untouched, snapshot

    torch.manual_seed(0)
    model = NormedModel().train()
    mon = TrainingMonitor(model, probe=(torch.randn(2, 10, 3) * 5 + 3, lambda out: out[:, -1].sum()), every=1,
                          clock=FakeClock())
    backward(model)
    before = snapshot(model)
    mon.step(1.0)                        # takes a probe snapshot: a forward in training mode
    assert mon.snapshot is not None
    assert_untouched(model, before)      # BatchNorm's running statistics included


def test_a_model_without_trainable_parameters_is_refused_with_a_sentence():
    model = Model().requires_grad_(False)
    with pytest.raises(ValueError, match="TrainingMonitor: expected a model with trainable parameters"):
        TrainingMonitor(model)


def test_the_step_axes_say_what_a_step_counts():
    mon = TrainingMonitor(Model(), clock=FakeClock())
    labels = lambda: [mon.loss_chart.x_label, mon.norm_chart.x_label, mon.heat.column_label]  # noqa: E731
    assert labels() == ["training step (mon.step calls)"] * 3
    mon.attach()                         # gradient accumulation: several backward passes per optimizer step
    assert labels() == ["backward pass"] * 3
    mon.detach()
    assert labels() == ["training step (mon.step calls)"] * 3
