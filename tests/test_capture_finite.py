"""One finiteness check for every capture path: a sum first, a scan only when it is not finite."""
import warnings

import numpy as np
import pytest
import torch

from rnnwidgets.capture import trace
from rnnwidgets.capture.finite import NonFiniteWarning, count_non_finite, require_finite


@pytest.mark.parametrize("as_array", [torch.tensor, np.asarray])
def test_count_non_finite_counts_nan_and_inf_and_nothing_else(as_array):
    assert count_non_finite(as_array([[1.0, float("nan")], [float("inf"), -float("inf")]])) == 3
    assert count_non_finite(as_array([1.0, 2.0])) == 0
    assert count_non_finite(as_array([3, 4])) == 0                       # integers are always finite
    big = as_array([3e38, 3e38, -3e38])                                  # the float32 sum overflows ...
    assert count_non_finite(big.float() if isinstance(big, torch.Tensor) else big.astype(np.float32)) == 0


def test_the_sum_alone_decides_when_it_is_finite(monkeypatch):
    scans = []
    real = torch.isfinite
    monkeypatch.setattr(torch, "isfinite", lambda t: scans.append(t.numel()) or real(t))
    count_non_finite(torch.ones(1000))
    assert scans == [1]                                                  # only the sum was checked


def test_require_finite_names_where_and_how_many():
    with pytest.raises(ValueError, match=r"^x\[2\]: expected finite values, found 2 non-finite value\(s\)"):
        require_finite("x[2]", torch.tensor([float("nan"), 1.0, float("inf")]))
    require_finite("x", torch.zeros(3))


def test_the_warning_is_one_class_for_every_path():
    lstm = torch.nn.LSTM(3, 4)
    with torch.no_grad():
        lstm.bias_hh_l0[0] = float("nan")
    with pytest.warns(NonFiniteWarning, match=r"rw.trace: LSTM: non-finite values \(NaN or inf\) in \['lstm.l0.h', "
                                              r"'lstm.l0.c'\]"):
        trace(lstm, torch.randn(4, 1, 3))
    assert issubclass(NonFiniteWarning, RuntimeWarning) and issubclass(NonFiniteWarning, UserWarning)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_large_array_is_counted_alike_read_only_or_strided(dtype):
    """Large contiguous arrays are summed by torch (on all its threads); the count is the same,
    read-only (a loaded trace's) or not, and a strided view is counted by numpy."""
    values = np.ones((300, 400), dtype=dtype)
    values[7, 8], values[100, 3], values[299, 399] = np.nan, np.inf, -np.inf
    assert count_non_finite(values) == 3
    values.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # nothing said about the array being read-only
        assert count_non_finite(values) == 3
    assert count_non_finite(values[::-1]) == 3 and count_non_finite(values[:, ::2]) == 1
    assert count_non_finite(np.full((300, 400), 3e38, dtype=np.float32)) == 0   # its sum overflows
