"""rw.trace on an LSTM / GRU layer run as our own step loop (large batch on the CPU), against the
same references as the native path: the per-step reference, the module called separately, autograd."""
import numpy as np
import pytest
import torch
from model_state import assert_untouched, snapshot
from reference_rnn import Reference
from test_capture_fused import check_case, make_case
from test_capture_gradients import check_grads, reference_loss, square_loss
from torch import nn

import rnnwidgets.capture.fused as fused
from rnnwidgets.capture import fused_loop, gradients, trace
from rnnwidgets.capture.convert import to_numpy


@pytest.fixture
def stepped(monkeypatch):
    """Every LSTM/GRU layer runs as the step loop; calling the native kernel for one fails the test."""
    monkeypatch.setitem(fused.WORKSPACE_GATES, "LSTM", False)
    for mode in ("LSTM", "GRU"):
        monkeypatch.setitem(fused.LOOP_BATCH_PER_THREAD, mode, 0)
        monkeypatch.setitem(fused.NATIVE, mode, lambda *args: pytest.fail("the native kernel ran"))


FLAGS = [dict(), dict(layers=2, bidirectional=True, given_state=True), dict(batch_first=True, layers=2),
         dict(bias=False, bidirectional=True), dict(unbatched=True, given_state=True)]


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
@pytest.mark.parametrize("flags", FLAGS)
def test_states_and_gates(stepped, mode, flags):
    check_case(dict(mode=mode, batch=3, steps=7, **flags))


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
@pytest.mark.parametrize("flags", FLAGS)
def test_grads_through_time(stepped, mode, flags):
    check_grads(dict(mode=mode, batch=3, steps=7, **flags))


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_float64_exact_before_conversion(stepped, mode):
    module, inputs, hidden, x, lengths, h0, c0 = make_case(mode=mode, layers=2, bidirectional=True, given_state=True,
                                                           batch=3, steps=6, dtype=torch.float64)
    anchor = torch.zeros((), requires_grad=True)
    with torch.enable_grad(), fused.LayerByLayer(module, gradients.differentiable_layer(anchor)) as recorder:
        output = module(inputs, hidden)
    gradients.backward(module, square_loss(output), anchor)
    ref = Reference(module, x, lengths, type(module).__name__.lower(), h0, c0)
    want = {key: ref.grads(reference_loss(ref), key) for key in (["h", "c"] if mode == "LSTM" else ["h"])}
    with torch.no_grad():
        for run in recorder.runs:
            for d, grads in zip(run.recomputed(), run.grads):
                found = {"h": d.h, **({"c": d.c} if d.c is not None else {}), **d.gates}
                for key, got in found.items():
                    np.testing.assert_allclose(d.natural(got).transpose(0, 1).numpy(),
                                               ref.array(d.name, key).detach().numpy(), rtol=0, atol=1e-10)
                for key, got in grads.items():
                    np.testing.assert_allclose(d.natural(got).transpose(0, 1).numpy(), want[key][d.name].numpy(),
                                               rtol=0, atol=1e-10, err_msg=f"{d.name} {key}")


class KeepsOutput(nn.Module):
    """An LSTM whose output the model scales in place afterwards, as a model may."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, batch_first=True)

    def forward(self, x):
        self.out = self.lstm(x)[0]
        return self.out.mul_(2)


def test_the_model_never_holds_the_traces_arrays(stepped):
    model = KeepsOutput()
    held = []                               # what each forward of the trace returned (self.out scaled in place)
    hook = model.register_forward_hook(lambda module, args, out: held.append(out))
    x = torch.randn(3, 5, 3)
    tr = trace(model, x)
    hook.remove()
    with torch.no_grad():
        np.testing.assert_allclose(tr.layers["lstm.l0"].h, model.lstm(x)[0].numpy(), rtol=0, atol=1e-6)
    assert held
    for out in held:
        for array in tr.layers["lstm.l0"].quantities().values():
            assert not np.shares_memory(array, out.detach().numpy())
        assert out.is_contiguous()
    assert "out" not in vars(model)          # the tensor the forward kept is taken away: the model is as found


def test_model_left_untouched_with_a_loss(stepped):
    module = nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    module.weight_hh_l0.grad = torch.ones_like(module.weight_hh_l0)
    module.train()
    before = snapshot(module)
    trace(module, torch.randn(5, 3, 3), loss="last")
    assert_untouched(module, before)


def test_large_lstm_batches_on_the_cpu_take_the_step_loop(monkeypatch, torch_threads):
    mode = "LSTM"
    monkeypatch.setitem(fused.WORKSPACE_GATES, "LSTM", False)
    ran = []
    real = fused.NATIVE[mode]
    monkeypatch.setitem(fused.NATIVE, mode, lambda *args: ran.append(args[0].shape) or real(*args))
    module = getattr(nn, mode)(3, 4)
    for threads_now in (1, 2):
        torch_threads(threads_now)
        smallest = fused.LOOP_BATCH_PER_THREAD[mode] * threads_now
        trace(module, torch.randn(5, smallest, 3))
        assert ran == []
        trace(module, torch.randn(5, smallest - 1, 3))
        assert len(ran) == 1
        ran.clear()


def test_a_gru_on_the_cpu_takes_the_step_loop_at_any_batch(monkeypatch, torch_threads):
    monkeypatch.setitem(fused.NATIVE, "GRU", lambda *args: pytest.fail("the native kernel ran"))
    for threads_now in (1, 2):
        torch_threads(threads_now)
        trace(nn.GRU(3, 4), torch.randn(5, 1, 3))


@pytest.mark.parametrize("steps", [1, 2, 3, 7, 64, 70])
def test_the_cell_state_scans_match_the_step_loop(steps):
    """What an LSTM's c scan runs on a GPU (by doubling) and on the CPU (in chunks where a step is
    small), against the plain step loop; 70 steps leave a remainder after the chunks."""
    torch.manual_seed(steps)
    u, a, first = torch.randn(steps, 3, 5, dtype=torch.float64), torch.rand(steps, 3, 5, dtype=torch.float64), \
        torch.randn(3, 5, dtype=torch.float64)
    one_by_one, doubled, chunked = u.clone(), u.clone(), u.clone()
    fused.recurrence(one_by_one, a, first)
    a_before = a.clone()
    fused.recurrence_by_doubling(doubled, a, first)
    fused.recurrence_in_chunks(chunked, a, first)
    assert torch.equal(a, a_before)                      # the forget gates are left as they are
    want = []
    for t in range(steps):
        want.append(a[t] * (want[-1] if want else first) + u[t])
    np.testing.assert_allclose(one_by_one.numpy(), torch.stack(want).numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(doubled.numpy(), torch.stack(want).numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(chunked.numpy(), torch.stack(want).numpy(), rtol=0, atol=1e-12)


def test_the_cell_state_scan_on_the_cpu_runs_in_chunks_only_where_a_step_is_small():
    assert fused.scan(torch.empty(10, 1, 256)) is fused.recurrence_in_chunks
    assert fused.scan(torch.empty(10, 32, 256)) is fused.recurrence


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_an_in_place_op_after_the_layer_does_not_rewrite_the_trace(stepped, mode):
    torch.manual_seed(12)
    module = getattr(nn, mode)(3, 4)
    model = nn.Sequential(module, Output(), nn.ReLU(inplace=True))
    x = torch.randn(6, 2, 3)
    tr = trace(model, x)
    with torch.no_grad():
        want = module(x)[0]
    assert (want < 0).any()
    np.testing.assert_allclose(tr.first.h, want.transpose(0, 1).numpy(), atol=1e-6)


class Output(nn.Module):
    def forward(self, result):
        return result[0]


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
@pytest.mark.parametrize("batch", [1, 3])
def test_the_kernels_own_h_handed_to_the_trace_is_never_the_models(monkeypatch, mode, batch):
    """The native path gives the Trace the kernel's output as its h where the layout allows
    (batch first, or batch 1): the model goes on with a copy, so an in-place op there leaves the
    trace as it was, and no array of the trace is memory the model holds."""
    monkeypatch.setitem(fused.LOOP_BATCH_PER_THREAD, mode, 10**9)
    torch.manual_seed(13)
    module = getattr(nn, mode)(3, 4, num_layers=2, batch_first=True)
    model = nn.Sequential(module, Output(), nn.ReLU(inplace=True))
    x = torch.randn(batch, 6, 3)
    with torch.no_grad():
        want = module(x)[0]
    assert (want < 0).any()
    tr = trace(model, x)
    np.testing.assert_allclose(list(tr.layers.values())[-1].h, want.numpy(), atol=1e-6)
    with torch.no_grad():
        out = model(x)
    assert all(not np.shares_memory(a, out.numpy()) for lt in tr.layers.values() for a in lt.quantities().values())


def test_gate_buffers_are_parts_of_one_allocation_each_handed_over_without_a_copy():
    stacked, parts = fused_loop.gate_buffers(3, (2, 5, 4), torch.empty(0))
    for k, part in enumerate(parts):
        part.fill_(k)
        assert part.shape == (2, 5, 4) and part.is_contiguous()
        assert torch.equal(stacked[k], part)                    # the stacked view sees every part
        assert np.shares_memory(to_numpy(part), stacked.numpy())
    arrays = [to_numpy(p) for p in parts]
    assert not any(np.shares_memory(a, b) for a, b in zip(arrays, arrays[1:]))
    wide = fused_loop.gate_buffers(2, (2, 3), torch.empty(0, dtype=torch.float64))[1][0]
    assert to_numpy(wide.fill_(1)).dtype == np.float32


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
@pytest.mark.parametrize("batch", [1, 3])
def test_an_inner_layers_h_goes_on_to_the_next_layer_and_the_last_stays_the_models(stepped, mode, batch):
    """The next layer reads an inner layer's h itself, not a copy (a strided view of it at batch 3);
    the last layer's output, which the model goes on with (and here rewrites in place), is a
    contiguous tensor, never memory of the trace."""
    torch.manual_seed(15)
    module = getattr(nn, mode)(3, 4, num_layers=3)
    model = nn.Sequential(module, Output(), nn.ReLU(inplace=True))
    x = torch.randn(7, batch, 3)
    with torch.no_grad():
        want = module(x)[0]
    assert (want < 0).any()
    with torch.no_grad(), fused.LayerByLayer(model) as recorder:
        out = model(x)
    runs = recorder.runs
    for before, after in zip(runs, runs[1:]):
        h = before.recomputed()[0].h
        assert after.x.data_ptr() == h.data_ptr()
        torch.testing.assert_close(after.x, h, rtol=0, atol=0)
    assert out.is_contiguous() and not np.shares_memory(runs[-1].recomputed()[0].h.numpy(), out.numpy())
    tr = trace(model, x)
    np.testing.assert_allclose(list(tr.layers.values())[-1].h, want.transpose(0, 1).numpy(), atol=1e-6)
    check_case(dict(mode=mode, layers=3, batch=batch, steps=7))
