"""Chart and StepControl without a front end: the float32 buffer as sent, gaps where a log axis
cannot place a value, and the step kept in range."""
import numpy as np
import pytest
import traitlets

from rnnwidgets.widgets.chart import Chart, StepControl, drawable


def test_drawable_turns_what_a_log_axis_cannot_place_into_gaps():
    values = [1.0, 0.0, -2.0, np.inf, np.nan, 1e-50, 3.5]
    np.testing.assert_array_equal(drawable(values, log=True),
                                  np.array([1.0, np.nan, np.nan, np.nan, np.nan, np.nan, 3.5], np.float32))
    linear = drawable(values, log=False)
    assert linear.dtype == np.float32
    np.testing.assert_array_equal(linear, np.array([1.0, 0.0, -2.0, np.inf, np.nan, 0.0, 3.5], np.float32))


def test_lines_travel_as_x_then_each_series_in_one_buffer():
    chart = Chart()
    series = [{"name": "h", "colour": "a"}, {"name": "c", "colour": "b"}]
    chart.show_lines([0, 1, 2], [[1.0, 0.0, 4.0], [2.0, 3.0, -1.0]], series)
    assert chart.kind == "lines" and chart.points == 3 and chart.labels == ["h", "c"]
    # as they are, on a log axis too: the page leaves a gap at 0 and -1, and its legend says "= 0"
    np.testing.assert_array_equal(np.frombuffer(chart.buffer, "<f4"), [0, 1, 2, 1, 0, 4, 2, 3, -1])
    np.testing.assert_array_equal(chart.x, [0, 1, 2])
    np.testing.assert_array_equal(chart.y, [[1, 0, 4], [2, 3, -1]])
    chart.y_scale = "linear"
    chart.show_lines([0, 1, 2], [[1.0, 0.0, 4.0], [2.0, 3.0, -1.0]], series)
    np.testing.assert_array_equal(chart.y, [[1, 0, 4], [2, 3, -1]])
    with pytest.raises(ValueError):
        chart.show_lines([0, 1], [[1.0, 2.0, 3.0]], series)


def test_bars_are_per_category_on_a_log_axis_with_flags():
    chart = Chart(y_scale="linear")
    chart.show_bars(["w", 7], [[0.5, 0.0]], [{"name": "grad"}], flags={"7": "zero gradient"})
    assert chart.kind == "bars" and chart.categories == ["w", "7"] and chart.flags == {"7": "zero gradient"}
    np.testing.assert_array_equal(chart.y, [[0.5, np.nan]])          # bars are always on a log axis
    assert chart.x.shape == (0,)
    assert Chart().y.shape == (0, 0)


def test_step_control_keeps_its_step_in_range():
    steps = StepControl(steps=5)
    steps.t = 9
    assert steps.t == 4
    steps.t = -3
    assert steps.t == 0
    assert StepControl(steps=0, t=3).t == 0
    with pytest.raises(traitlets.TraitError):
        Chart(kind="pie")


def test_lines_that_draw_nothing_say_why_a_zero_or_a_nan():
    from rnnwidgets.widgets.chart import undrawn_reason

    chart = Chart(y_scale="log")
    chart.show_lines([0, 1], [[0.0, 0.0]], [{"name": "h"}])
    assert chart.undrawn == "nothing to draw on a log axis: every value is 0 (or below)"
    np.testing.assert_array_equal(chart.y, [[0.0, 0.0]])   # sent as they are: the page draws no point
    chart.show_lines([0, 1], [[np.nan, np.inf]], [{"name": "h"}])
    assert chart.undrawn == "nothing to draw: every value is NaN or infinite"
    chart.show_lines([0, 1], [[0.0, 2.0]], [{"name": "h"}])
    assert chart.undrawn == ""
    assert undrawn_reason(np.zeros((1, 0)), np.zeros((1, 0)), True) == ""
    assert undrawn_reason([[0.0, -1.0]], [[0.0, -1.0]], False) == ""   # a linear axis draws them
