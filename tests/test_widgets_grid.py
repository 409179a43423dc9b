"""HeatmapGrid widget state: one float32 buffer, labels as given, colour range fit to the data."""
import numpy as np
import pytest

from rnnwidgets.widgets.grid import HeatmapGrid


def test_values_travel_as_one_row_major_float32_buffer():
    values = np.arange(6, dtype=np.float64).reshape(2, 3) / 7
    grid = HeatmapGrid(values, ["a", "<b>"], scale="sequential", column_start=10, column_step=5)
    assert (grid.rows, grid.columns) == (2, 3) and len(grid.buffer) == 2 * 3 * 4
    np.testing.assert_array_equal(grid.values, values.astype(np.float32))
    assert list(grid.row_labels) == ["a", "<b>"] and (grid.column_start, grid.column_step) == (10.0, 5.0)
    assert (grid.vmin, grid.vmax) == pytest.approx((0.0, 5 / 7))
    assert grid.t is None                        # no cursor until linked or set


def test_an_explicit_range_wins_and_rows_default_to_their_index():
    grid = HeatmapGrid(np.ones((2, 2)), scale="diverging")
    assert list(grid.row_labels) == ["0", "1"]
    grid.show(np.ones((2, 2)), vmin=-5, vmax=5)
    assert (grid.vmin, grid.vmax) == (-5.0, 5.0)


def test_bad_input_says_what_was_expected():
    with pytest.raises(ValueError, match="2-d array"):
        HeatmapGrid(np.ones(3))
    with pytest.raises(ValueError, match="expected 2 row labels"):
        HeatmapGrid(np.ones((2, 3)), ["only one"])
    with pytest.raises(ValueError, match="scale must be one of"):
        HeatmapGrid(np.ones((1, 1)), scale="rainbow")
    with pytest.raises(ValueError, match="column_step must be positive"):
        HeatmapGrid(np.ones((1, 1)), column_step=0)
