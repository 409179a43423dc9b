"""The time axis: runs of steps reduced to columns, and bounded histories that keep spikes."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnwidgets.timeaxis import (
    MinMaxSeries,
    column_width,
    max_columns,
    mean_columns,
    min_max_columns,
    reduce_columns,
    step_window,
)


def downsample_minmax(y, max_points: int, x=None):
    """A reference for MinMaxSeries: at most ``max_points`` (x, y) points of a whole series, each
    of max_points // 2 buckets keeping its min and max in step order (NaN skipped)."""
    y = np.asarray(y, dtype=np.float64)
    x = np.arange(y.size, dtype=np.float64) if x is None else np.asarray(x, dtype=np.float64)
    if y.size <= max_points:
        return x, y
    xs, ys = [], []
    for idx in np.array_split(np.arange(y.size), max_points // 2):
        seg = y[idx]
        if np.all(np.isnan(seg)):
            continue
        lo, hi = idx[np.nanargmin(seg)], idx[np.nanargmax(seg)]
        for j in sorted({lo, hi}):
            xs.append(x[j])
            ys.append(y[j])
    return np.array(xs), np.array(ys)


def test_column_width_fits_the_steps_into_the_columns():
    assert [column_width(n, 4) for n in (0, 1, 4, 5, 8, 9)] == [1, 1, 1, 2, 2, 3]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60), st.integers(1, 9), st.integers(1, 3))
def test_reduce_columns_is_each_run_reduced(steps, width, units):
    values = np.random.default_rng(steps).standard_normal((steps, units)).astype(np.float32)
    for reduce in (np.min, np.max, np.fmax.reduce):
        want = np.stack([reduce(values[s:s + width], axis=0) for s in range(0, steps, width)])
        np.testing.assert_array_equal(reduce_columns(values, width, reduce), want)
        np.testing.assert_array_equal(reduce_columns(values.T, width, reduce, axis=1), want.T)


def test_mean_columns_average_runs_and_keep_short_sequences_whole():
    values = np.arange(30, dtype=np.float32).reshape(10, 3)
    assert mean_columns(values, 10) is values
    means = mean_columns(values, 4)                # columns of 3 steps; the last holds step 9 alone
    np.testing.assert_array_equal(means, [values[0:3].mean(0), values[3:6].mean(0), values[6:9].mean(0), values[9]])
    values[4, 1] = np.nan
    assert np.isnan(mean_columns(values, 4)[1, 1])  # a run with a NaN step stays NaN


def test_min_max_columns_keep_one_step_spikes_and_nan():
    values = np.zeros((10, 2), dtype=np.float32)
    values[3, 0] = 5.0
    values[8, 1] = -7.0
    values[9, 0] = np.nan
    lo, hi, bucket = min_max_columns(values, 4)
    assert bucket == 3 and lo.shape == (4, 2)  # 10 steps in columns of 3: the last holds step 9 alone
    assert hi[1, 0] == 5.0 and lo[2, 1] == -7.0
    assert np.isnan(lo[3, 0]) and np.isnan(hi[3, 0])
    assert not np.isnan(lo[:3]).any()


def test_long_sequences_are_bucketed_by_maximum_for_the_grid():
    rows = np.ones((2, 2000))
    rows[1, 1234] = 50.0
    rows[0, 10] = np.nan
    width, columns = max_columns(rows, 500)
    assert width == 4 and columns.shape == (2, 500)
    assert columns[1].argmax() == 1234 // 4 and columns[1].max() == 50.0
    assert columns[0, 2] == 1.0                    # NaN skipped
    assert max_columns(rows[:, :500], 500)[0] == 1


def test_downsample_minmax_keeps_spikes_and_bounds_points():
    y = np.sin(np.arange(100_000) / 50.0)
    y[12_345], y[77_777] = 40.0, -40.0
    x, d = downsample_minmax(y, 2000)
    assert len(d) <= 2000
    assert 40.0 in d and -40.0 in d
    assert x[d == 40.0][0] == 12_345
    assert np.all(np.diff(x) > 0)
    short_x, short_y = downsample_minmax([1.0, 2.0], 10)
    np.testing.assert_array_equal(short_y, [1.0, 2.0])


def test_minmax_series_over_a_million_steps_stays_bounded_and_keeps_spikes():
    s = MinMaxSeries(max_points=200)
    rng = np.random.default_rng(0)
    values = rng.random(1_000_000)
    values[654_321] = 1e6
    values[3] = -5.0
    for step, v in enumerate(values.tolist()):
        s.append(step, v)
    steps, ys = s.points()
    assert len(ys) <= 200 and len(s.maxima()[0]) <= 100
    assert 1e6 in ys and -5.0 in ys
    assert steps[ys == 1e6][0] == 654_321
    assert np.all(np.diff(steps) > 0)
    assert s.count == 1_000_000


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300),
       st.sampled_from([4, 8, 20]))
def test_minmax_series_matches_the_true_extremes(values, max_points):
    s = MinMaxSeries(max_points=max_points)
    for step, v in enumerate(values):
        s.append(step, v)
    steps, ys = s.points()
    assert len(ys) <= max_points
    assert min(values) in ys and max(values) in ys
    assert all(values[int(st_)] == y for st_, y in zip(steps, ys))   # every point is a real one
    bx, by = s.maxima()
    assert len(by) == len(s.maxima()[0]) and max(values) in by


def test_minmax_series_skips_nan_unless_a_bucket_is_all_nan():
    s = MinMaxSeries(max_points=4)
    for step, v in enumerate([1.0, np.nan, 3.0, 2.0, np.nan, np.nan]):
        s.append(step, v)
    steps, ys = s.points()
    assert 1.0 in ys and 3.0 in ys and len(ys) <= 4


@pytest.mark.parametrize("steps, window", [(slice(120, 180), (120, 180)), (range(3, 9), (3, 9)), (slice(None, 4), (0, 4)),
                                           (slice(5, None), (5, None)), (slice(np.int64(2), np.int32(7)), (2, 7))])
def test_step_window_takes_a_slice_or_range(steps, window):
    got = step_window("rw.trace", steps)
    assert got == window and all(v is None or type(v) is int for v in got)


@pytest.mark.parametrize("steps, error, message", [
    # a 2-tuple could mean two steps or a window: refused, with the exact call for the window
    ((120, 180), TypeError, r"expected a slice or range, got the tuple \(120, 180\), which could mean single steps or "
                            r"a window; pass steps=slice\(120, 180\) or steps=range\(120, 180\) for steps 120 to 179$"),
    ([np.int64(4), np.int64(5)], TypeError, r".*pass steps=slice\(4, 5\) or steps=range\(4, 5\) for step 4 alone$"),
    ([1, 5, 9], TypeError, r".*got the list \[1, 5, 9\], which could mean single steps or a window; pass "
                           r"steps=slice\(start, stop\)$"),
    (np.int64(7), TypeError, r"expected a slice or range, got the single step 7; for that step alone pass "
                             r"steps=slice\(7, 8\)$"),
    (-1, TypeError, r".*got the single step -1; a negative index \(counting from the end\) is not taken"),
    (slice(-10, None), ValueError, r"expected step numbers counted from 0 on, got slice\(-10, None, None\); a negative "
                                   r"index \(counting from the end\) is not taken, since layers may end at different "
                                   r"steps: pass slice\(n - k, n\) for the last k of n steps$"),
    (range(0, -3), ValueError, r"expected step numbers counted from 0 on"),
    (slice(4, 4), ValueError, r"expected a slice or range of consecutive steps from 0 on .*got slice\(4, 4, None\)$"),
    (slice(0, 9, 2), ValueError, r"expected a slice or range of consecutive steps"),
    (slice(0.5, 3), ValueError, r"expected a slice or range of consecutive steps"),
    (True, TypeError, r"expected a slice or range of consecutive steps .*got True$"),
    ("0:10", TypeError, r".*got '0:10'$"),
])
def test_step_window_refuses_in_one_sentence_with_the_fix(steps, error, message):
    with pytest.raises(error, match="^DynamicsView: steps: " + message) as raised:
        step_window("DynamicsView", steps)
    assert "\n" not in str(raised.value) and str(raised.value).count(". ") == 0
