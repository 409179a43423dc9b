"""torch -> numpy for capture: whole float32 trace buffers handed over without a copy, everything
else copied to float32 (batch, time, features); the step mask and the reverse-direction order."""
import numpy as np
import pytest
import torch

from rnnwidgets.capture.convert import (
    HostCopies,
    reverse_valid,
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
    assert got.dtype == np.float32 and not copies.streams
    buffer = trace_buffer((2, 3), torch.empty(0))
    assert np.shares_memory(HostCopies().array(buffer), buffer.numpy())   # handed over as to_numpy does
