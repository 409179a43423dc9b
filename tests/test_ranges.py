"""Value ranges: finite min/max, colour limits per scale, colour scales per quantity, axis ranges."""
import numpy as np
import pytest

from rnnwidgets.ranges import axis_range, colour_limits, colour_scale, finite_range, max_abs


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
