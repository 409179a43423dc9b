"""The boxes of views shown in marimo (outside a marimo kernel, marimo lays out the same elements)."""
import ipywidgets as widgets
import numpy as np
import pytest

pytest.importorskip("marimo")

from rnnwidgets.widgets.chart import Chart  # noqa: E402
from rnnwidgets.widgets.marimo_display import MarimoDisplay, TextView, marimo_element  # noqa: E402


class Box(MarimoDisplay, widgets.VBox):
    pass


def made_box():
    label, text = widgets.Label("step 0"), widgets.HTML("<b>lstm.l0</b>: healthy")
    choice = widgets.Dropdown(options=[("layer 0", "l0"), ("layer 1", "l1")], value="l0", description="layer")
    clicks = []
    button = widgets.Button(description="find")
    button.on_click(lambda _b: clicks.append(1))
    chart = Chart(title="loss")
    chart.show_lines(np.arange(3), [[1.0, 2.0, 3.0]], [{"name": "loss"}])
    box = Box([widgets.HBox([button, label]), text, choice, chart])
    box.add_class("rw-monitor")
    return box, label, text, choice, button, clicks, chart


def test_a_box_becomes_marimo_elements_that_follow_and_drive_the_widgets():
    box, label, text, choice, _button, clicks, chart = made_box()
    html = box._display_().text
    assert html.startswith('<div class="rw-monitor">') and "marimo-anywidget" in html
    kept = box._marimo_kept
    mirrors = [k for k in kept if isinstance(k, TextView)]
    assert [(m.value, m.html) for m in mirrors] == [("step 0", False), ("<b>lstm.l0</b>: healthy", True)]
    label.value = "step 7"                       # the kernel's updates reach the mirror
    assert mirrors[0].value == "step 7"
    dropdown = next(k for k in kept if type(k).__name__ == "dropdown")
    assert (dropdown.value, dropdown.options) == ("l0", {"layer 0": "l0", "layer 1": "l1"})
    dropdown._update(["layer 1"])                # as marimo does when the page picks an option
    assert choice.value == "l1"
    button_element = next(k for k in kept if type(k).__name__ == "button")
    button_element._update(1)                    # a click in the page
    assert clicks == [1]
    assert any(getattr(k, "widget", None) is chart for k in kept if type(k).__name__ == "anywidget")


def test_a_new_display_unlinks_the_last_ones_mirrors():
    box, label, *_ = made_box()
    box._display_()
    first = next(k for k in box._marimo_kept if isinstance(k, TextView))
    box._display_()
    second = next(k for k in box._marimo_kept if isinstance(k, TextView))
    label.value = "step 9"
    assert (first.value, second.value) == ("step 0", "step 9")


def test_a_widget_marimo_cannot_show_gets_a_sentence():
    with pytest.raises(TypeError, match="expected our views, boxes, labels, dropdowns or buttons, got a IntSlider"):
        marimo_element(widgets.IntSlider(), [])
