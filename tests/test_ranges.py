"""Value ranges: finite min/max, colour limits per scale, colour scales per quantity, axis ranges."""
import numpy as np
import pytest

from rnnwidgets import ranges
from rnnwidgets.ranges import axis_range, colour_limits, colour_scale, finite_range, max_abs, robust_max_abs


def test_finite_range_skips_non_finite_values():
    assert finite_range(np.array([1.0, -2.0, 3.0])) == (-2.0, 3.0)
    assert finite_range(np.array([np.nan, -np.inf, 0.5, np.inf])) == (0.5, 0.5)
    assert finite_range(np.array([np.nan])) is None and finite_range(np.zeros(0)) is None
    assert finite_range(np.array([-1.0, 0.0, 2.0, 4.0]), positive=True) == (2.0, 4.0)
    assert max_abs(np.array([0.5, -3.0, np.nan])) == 3.0 and max_abs(np.array([np.inf])) == 0.0


def test_colour_ranges_per_scale():
    a = np.array([[-2.0, 0.0, 1.0, np.nan, np.inf]])
    assert colour_limits(a, "diverging") == (-2.0, 2.0)
    assert colour_limits(a, "sequential") == (-2.0, 1.0)
    assert colour_limits(a, "log") == (1.0, 2.0)            # magnitudes; 0 has no place on a log scale
    assert colour_limits(np.full((1, 2), np.nan), "log") == (1e-3, 1.0)
    assert colour_limits(np.full((1, 2), 4.0), "log") == (2.0, 8.0)
    with pytest.raises(ValueError, match="expected one of diverging, sequential, log"):
        colour_limits(a, "rainbow")


def test_colour_scales_fit_each_quantity():
    assert colour_scale("forget", np.array([0.2, 0.9])) == {"scale": "sequential", "vmin": 0.0, "vmax": 1.0}
    assert colour_scale("h", np.array([0.1, -0.5, np.nan])) == {"scale": "diverging", "vmin": -0.5, "vmax": 0.5}
    assert colour_scale("cell", np.array([0.1, 0.2]))["scale"] == "diverging"
    assert colour_scale("relu_track", np.array([0.0, 3.0])) == {"scale": "sequential", "vmin": 0.0, "vmax": 3.0}
    assert colour_scale("c", np.array([np.inf, np.nan]))["vmax"] == 1.0  # nothing finite: a unit scale


def test_axis_ranges_widen_a_single_point():
    assert axis_range([1.0, np.nan, 3.0]) == (1.0, 3.0)
    assert axis_range([0.0, 2.0, 8.0], log=True) == (2.0, 8.0)
    assert axis_range([4.0], log=True) == (2.0, 8.0)
    assert axis_range([5.0]) == pytest.approx((4.75, 5.25))
    assert axis_range([np.nan]) is None and axis_range([0.0, -1.0], log=True) is None


def test_robust_limits_ignore_one_saturated_unit():
    # 16 units over (batch 2, 200 steps): one saturates at ±9.8, one counts 0..3.7, the rest
    # wander within ±1 (the quickstart's cell state, in miniature).
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (2, 200, 16))
    a[..., 0] = np.where(rng.random((2, 200)) < 0.5, -9.8, 9.8)
    a[..., 1] = np.linspace(0, 3.7, 200)
    a[..., 2:6] *= 3.0
    scale = colour_scale("c", a)
    assert scale["scale"] == "diverging" and scale["vmin"] == -scale["vmax"]
    assert 2.9 <= scale["vmax"] <= 3.7                     # the upper quartile of unit peaks, not 9.8
    assert 3.7 / (2 * scale["vmax"]) >= 0.5                # the counter spans half the scale
    assert robust_max_abs(a) == scale["vmax"]
    # a spike at one step of one unit does not set that unit's peak (nor the limits)
    b = rng.uniform(-1, 1, (1, 1000, 4))
    b[0, 10, 3] = 50.0
    assert robust_max_abs(b) < 1.0


def test_robust_limits_all_equal_and_non_finite_values():
    assert colour_scale("h", np.full((1, 5, 3), 2.5)) == {"scale": "diverging", "vmin": -2.5, "vmax": 2.5}
    assert colour_scale("h", np.zeros((1, 5, 3)))["vmax"] == 1.0      # all zero: a unit scale
    assert colour_scale("h", np.full((1, 5, 3), np.nan))["vmax"] == 1.0
    a = np.full((1, 300, 4), np.nan)
    a[0, :, 1] = np.linspace(-2.0, 2.0, 300)
    a[0, 7, 2] = np.inf                                    # an inf never sets a limit
    assert robust_max_abs(a) == pytest.approx(2.0, rel=0.02)
    sparse = np.zeros((1, 1000, 2))
    sparse[0, 3, 0] = 4.0                                  # units that are mostly 0: their largest value
    assert robust_max_abs(sparse) == 4.0
    assert colour_scale("relu_track", np.abs(sparse))["scale"] == "sequential"
    assert robust_max_abs(np.zeros((0, 4))) == 0.0


def test_robust_limits_from_a_sample_of_a_large_trace():
    rng = np.random.default_rng(1)
    a = np.tanh(rng.standard_normal((1, 20_000, 256), dtype=np.float32))
    exact = np.percentile(np.percentile(np.abs(a[0]), 99, axis=0, method="higher"), 75)
    assert a.size > 4 * ranges.SAMPLE and robust_max_abs(a) == pytest.approx(exact, rel=0.01)


def test_unit_peaks_equal_nanpercentile_higher():
    # The partial selection must give exactly numpy's "higher" percentile of each unit's finite values.
    rng = np.random.default_rng(1)
    for trial in range(100):
        units, steps = rng.integers(1, 20), rng.integers(1, 300)
        x = np.abs(rng.standard_normal((units, steps)))
        if trial % 2:
            hole = rng.random((units, steps)) < 0.3
            x[hole] = rng.choice([np.nan, np.inf], size=hole.sum())
        kept = [r for r in x if np.isfinite(r).any()]
        expected = [np.nanpercentile(np.where(np.isfinite(r), r, np.nan), ranges.UNIT_PERCENTILE, method="higher")
                    for r in kept]
        np.testing.assert_array_equal(ranges.unit_peaks(x), np.array(expected).reshape(-1))


@pytest.mark.parametrize("holes", [False, True])
def test_robust_max_abs_is_the_upper_quartile_of_the_unit_peaks_with_or_without_non_finite_values(holes):
    a = np.random.default_rng(5).standard_normal((2, 300, 40)).astype(np.float32) * np.arange(1, 41)
    if holes:
        a[0, 3, 5], a[1, 7, 9] = np.nan, np.inf
    sample = np.abs(a.reshape(-1, 40), dtype=np.float64)
    sample[~np.isfinite(sample)] = np.nan
    peaks = [np.nanpercentile(unit, 99.0, method="higher") for unit in sample.T]
    assert robust_max_abs(a) == float(np.percentile(peaks, 75.0))


def test_percentile_is_numpys_linear_percentile_exactly():
    # robust_max_abs takes the upper quartile of the unit peaks with it instead of np.percentile,
    # whose np.unique imports numpy.ma: the same float for any length, ties and magnitudes.
    rng = np.random.default_rng(3)
    for n in [*range(1, 40), 255, 256, 257, 1000, 4097]:
        for trial in range(12):
            v = rng.standard_normal(n) * 10.0 ** rng.integers(-20, 20)
            if trial % 3 == 1:
                v = np.round(v, 1)
            elif trial % 3 == 2:
                v = rng.integers(0, 3, n).astype(np.float64)
            before = v.copy()
            for q in (ranges.UNITS_QUANTILE, 0.0, 12.5, 50.0, 99.0, 100.0):
                assert ranges.percentile(v, q) == float(np.percentile(v, q)), (n, trial, q)
            np.testing.assert_array_equal(v, before)   # left as found


@pytest.mark.parametrize("shape", [(1000, 256), (7, 3), (40, 1), (1, 5), (5000, 4), (3, 0), (0, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32])
def test_transposed_abs_is_the_transposed_magnitudes_in_c_order(shape, dtype):
    rows = (np.random.default_rng(4).standard_normal(shape) * 5).astype(dtype)
    kind = rows.dtype if rows.dtype.kind == "f" else np.dtype(np.float64)
    for part in (rows, rows[::3]):
        got = ranges.transposed_abs(part, kind)
        assert got.dtype == kind and got.flags.c_contiguous
        np.testing.assert_array_equal(got, np.abs(part.T, dtype=kind))
