"""torch -> numpy for capture: whole float32 trace buffers handed over without a copy, everything
else copied to float32 (batch, time, features); the step mask and the reverse-direction order."""
import numpy as np
import pytest
import torch
from torch import nn

from rnnwidgets.capture import trace
from rnnwidgets.capture.convert import (
    STAGING_FLOATS,
    HostCopies,
    reverse_valid,
    staged_copy,
    step_mask,
    steps_buffer,
    steps_to_numpy,
    to_numpy,
    trace_buffer,
)


def test_only_whole_float32_trace_buffers_are_handed_over_without_a_copy():
    buffer = trace_buffer((2, 3), torch.empty(0))
    buffer.fill_(1)
    assert np.shares_memory(to_numpy(buffer), buffer.numpy())
    assert np.shares_memory(to_numpy(buffer.transpose(0, 1).transpose(0, 1)), buffer.numpy())
    assert not np.shares_memory(to_numpy(buffer[:1]), buffer.numpy())          # a part: copied
    other = torch.ones(2, 3)
    assert not np.shares_memory(to_numpy(other), other.numpy())
    wide = trace_buffer((2, 3), torch.empty(0, dtype=torch.float64))
    assert to_numpy(wide.fill_(1)).dtype == np.float32


def test_steps_buffer_is_a_time_major_view_of_a_batch_major_trace_buffer():
    like = torch.zeros(5, 2, 3, dtype=torch.float64)
    view = steps_buffer(like, units=4)
    assert view.shape == (5, 2, 4) and view.dtype == torch.float64 and view._base.shape == (2, 5, 4)
    view.copy_(torch.arange(40.0).reshape(5, 2, 4))
    np.testing.assert_array_equal(steps_to_numpy(view), np.arange(40.0).reshape(5, 2, 4).transpose(1, 0, 2))
    assert steps_buffer(like).shape == (5, 2, 3)


def test_bfloat16_and_views_become_contiguous_float32_copies():
    t = torch.tensor([[1.5, -2.0], [3.0, 0.25]], dtype=torch.bfloat16)
    out = to_numpy(t.transpose(0, 1))
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, [[1.5, 3.0], [-2.0, 0.25]])


def test_step_mask_is_true_inside_each_length():
    mask = step_mask(torch.tensor([3, 1, 0]), 4)
    assert mask.shape == (4, 3, 1) and mask.dtype == torch.bool
    assert mask[..., 0].T.tolist() == [[True, True, True, False], [True, False, False, False], [False] * 4]


@pytest.mark.parametrize("lengths", [[4, 4], [4, 2], [1, 3]])
def test_reverse_valid_reverses_the_valid_steps_and_leaves_padding_in_place(lengths):
    x = torch.arange(8.0).reshape(4, 2, 1)                     # (time, batch, 1): x[t, b] = 2t + b
    out = reverse_valid(x, torch.tensor(lengths))
    for b, n in enumerate(lengths):
        assert out[:n, b, 0].tolist() == x[:n, b, 0].flip(0).tolist()
        assert out[n:, b, 0].tolist() == x[n:, b, 0].tolist()
    assert torch.equal(reverse_valid(out, torch.tensor(lengths)), x)


def test_host_copies_on_the_cpu_are_to_numpy():
    t = torch.randn(4, 3, 2, dtype=torch.float64)
    copies = HostCopies()
    got = copies.steps(t)
    copies.wait()
    np.testing.assert_array_equal(got, to_numpy(t.transpose(0, 1)))
    assert got.dtype == np.float32 and copies.worker is None   # no thread for CPU tensors
    buffer = trace_buffer((2, 3), torch.empty(0))
    assert np.shares_memory(HostCopies().array(buffer), buffer.numpy())   # handed over as to_numpy does


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_staged_copies_cross_the_staging_buffers_exactly_in_any_layout_and_dtype():
    torch.manual_seed(11)
    size = 2 * STAGING_FLOATS + STAGING_FLOATS // 2 + 7        # five pieces through two buffers, a short last one
    flat = torch.randn(size, device="cuda")
    wide = torch.randn(3, size // 3 + 1, device="cuda", dtype=torch.float64).t()   # strided, float64
    half = torch.randn(1000, 37, device="cuda", dtype=torch.bfloat16)
    for t in (flat, wide, half, flat[:5]):
        got = staged_copy(t)
        assert got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, t.float().cpu().numpy())
    host = torch.empty(flat.shape, dtype=torch.float32)
    assert np.shares_memory(staged_copy(flat, host=host), host.numpy())
    np.testing.assert_array_equal(host.numpy(), flat.cpu().numpy())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_failed_host_copy_is_raised_by_wait_and_the_worker_ends(monkeypatch):
    from rnnwidgets.capture import convert

    def broken(t, ready=None, host=None):
        raise RuntimeError("copy failed")

    monkeypatch.setattr(convert, "staged_copy", broken)
    copies = HostCopies()
    copies.array(torch.ones(3, device="cuda"))
    copies.array(torch.ones(3, device="cuda"))
    worker = copies.worker
    with pytest.raises(RuntimeError, match="copy failed"):
        copies.wait()
    assert worker is not None and not worker.is_alive() and copies.worker is None
    copies.wait()   # said once


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_trace_under_torch_default_device_cuda_is_the_trace_with_devices_named():
    """``torch.set_default_device("cuda")``, as some notebooks start: every host buffer capture
    makes is still on the CPU (pinned ones may only be there)."""
    torch.manual_seed(12)
    model = nn.LSTM(4, 6, 2, bidirectional=True).cuda()
    x = torch.randn(9, 3, 4, device="cuda")
    packed = nn.utils.rnn.pack_padded_sequence(x, torch.tensor([9, 5, 2]), enforce_sorted=False)
    loss = lambda out: nn.utils.rnn.pad_packed_sequence(out[0])[0].square().sum()  # noqa: E731
    want = trace(model, packed, loss=loss)
    torch.set_default_device("cuda")
    try:
        got = trace(model, packed, loss=loss)
    finally:
        torch.set_default_device(None)
    for name, lt in want.layers.items():
        for key, value in lt.quantities().items():
            np.testing.assert_array_equal(got.layers[name].quantities()[key], value)
        for key, value in lt.grads.items():
            np.testing.assert_array_equal(got.layers[name].grads[key], value)
