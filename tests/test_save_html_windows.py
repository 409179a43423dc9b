"""save_html of an Explorer over its budget: the page keeps a window of steps, and says so."""
import warnings

import numpy as np
import pytest

import rnnwidgets as rw
from rnnwidgets.tracedata import LayerTrace, Trace


@pytest.fixture(scope="module")
def long_trace():
    """One element of 1,500 steps x 1,400 units: 2.1M float32 values, more than one window holds."""
    h = np.random.default_rng(0).standard_normal((1, 1500, 1400)).astype(np.float32)
    return Trace(layers={"rnn": LayerTrace("rnn", "custom", states={"h": h})}, lengths=np.array([1500]))


def test_a_page_that_keeps_a_window_says_what_it_kept(long_trace, tmp_path):
    ex = rw.explore(long_trace, budget=1_000_000)
    held = ex.view.index["lod"]["held"]
    assert held < 1500
    expected = (rf"^save_html: the Explorer's batch element 0 holds 2,100,000 float32 values, over its budget of "
                rf"1,000,000, so the page keeps steps 0–{held - 1} \({held:,} of 1,500\) in full and of the rest only "
                rf"an overview of rnn h; to keep every step, build it with rw.explore\(\.\.\., budget=2100000\)")
    with pytest.warns(UserWarning, match=expected) as caught:
        ex.save_html(tmp_path / "window.html")
    assert caught[0].filename == __file__   # points at the call that saved
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rw.explore(long_trace, budget=2_100_000).save_html(tmp_path / "whole.html")   # as the warning says: no warning


def test_a_window_that_holds_every_step_needs_no_warning(tmp_path):
    h = np.zeros((1, 50, 8), dtype=np.float32)
    ex = rw.explore(Trace(layers={"rnn": LayerTrace("rnn", "custom", states={"h": h})}, lengths=np.array([50])),
                    budget=100)
    assert ex.view.index["lod"]["held"] == 50
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ex.save_html(tmp_path / "short.html")


def test_a_window_of_steps_is_numbered_as_the_model_numbers_it(monkeypatch, tmp_path):
    """rw.explore(model, x, steps=range(120, 380)): the trace's step 0 is the model's step 120, so the
    steps the page keeps are named from 120 on (payload.first_step), as the Explorer numbers them."""
    import torch
    from torch import nn

    from rnnwidgets.widgets.payload import floats_per_step

    monkeypatch.setattr("rnnwidgets.widgets.payload.WINDOW_BUDGET", 400)
    torch.manual_seed(0)
    rnn = nn.RNN(2, 8, batch_first=True)
    ex = rw.explore(rnn, torch.randn(2, 400, 2), steps=range(120, 380), budget=2000)
    per_step = floats_per_step(ex.trace)
    needed, held = per_step * 260, 400 // per_step
    assert ex.view.index["first_step"] == 120 and ex.view.index["lod"]["held"] == held < 260
    for element, t, t0 in [(0, 0, 0), (1, 200, 200 - held // 2)]:   # scrubbed to the trace's step 200 (the model's 320)
        ex.select(t=t)
        ex.batch.value = element          # a new element: its window is the one around the step shown
        assert ex.view.index["lod"]["t0"] == t0
        expected = (rf"^save_html: the Explorer's batch element {element} holds {needed:,} float32 values, over its "
                    rf"budget of 2,000, so the page keeps steps {120 + t0}–{120 + t0 + held - 1} \({held:,} of 260, "
                    rf"steps 120–379\) in full")
        with pytest.warns(UserWarning, match=expected):
            ex.save_html(tmp_path / "window.html")
