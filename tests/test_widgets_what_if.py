"""What if, from the Explorer: the browser's request re-runs the live model with the edit (equal to
rw.trace with that edit), and the comparison of before and after opens under the view."""
import numpy as np
import pytest
import torch
from torch import nn

import rnnwidgets as rw
from rnnwidgets.widgets.compare import Compare
from rnnwidgets.widgets.what_if import WhatIf, element_trace
from tests.model_state import assert_untouched, snapshot


class _Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.lstm, self.head = nn.Embedding(5, 4), nn.LSTM(4, 6, batch_first=True), nn.Linear(6, 5)

    def forward(self, ids):
        return self.head(self.lstm(self.emb(ids))[0])


@pytest.fixture
def model_and_ids():
    torch.manual_seed(3)
    return _Tokens().eval(), torch.randint(0, 5, (3, 9))


def test_a_request_from_the_browser_clamps_the_unit_and_opens_the_comparison(model_and_ids):
    model, ids = model_and_ids
    before = snapshot(model)
    ex = rw.explore(model, ids, decode=list("abcde"))
    assert ex.view.what_if_status == {"live": True, "n": 0, "text": ""}
    ex.view.quantity = "c"
    ex.view.what_if = {"op": "value", "value": 2.5, "source": 0, "unit": 4, "start": 2, "end": 6, "n": 1}
    status = ex.view.what_if_status
    assert status["n"] == 1 and status["text"].startswith("unit 4 of lstm.l0 c, steps [2, 6)"), status
    comparison = ex.what_if.comparison
    assert isinstance(comparison, Compare) and list(ex.children).index(comparison) == list(ex.children).index(ex.view) + 1
    expected = rw.trace(model, ids, edits=[rw.clamp("lstm.l0", "c", [4], range(2, 6), 2.5)])
    np.testing.assert_array_equal(comparison.b.layers["lstm.l0"].states["c"], expected.layers["lstm.l0"].states["c"])
    np.testing.assert_array_equal(comparison.b.outputs, expected.outputs)
    assert comparison.first_divergence() == 2
    ex.view.what_if = {"op": "zero", "value": 0, "source": 0, "unit": 1, "start": 0, "end": 9, "n": 2}
    assert ex.what_if.comparison is not comparison and comparison not in ex.children   # replaced, not stacked
    assert ex.what_if.comparison.b.layers["lstm.l0"].states["c"][:, :, 1].max() == 0.0
    assert_untouched(model, before)


def test_patch_from_another_element_takes_that_elements_values(model_and_ids):
    model, ids = model_and_ids
    ex = rw.explore(model, ids)
    comparison = ex.what_if.run(2, range(0, 9), source=1, quantity="h")
    h = comparison.b.layers["lstm.l0"].h
    np.testing.assert_array_equal(h[:, :, 2], np.repeat(ex.trace.layers["lstm.l0"].h[1:2, :, 2], 3, axis=0))
    source = element_trace(ex.trace, "lstm.l0", "forget", 2)
    np.testing.assert_array_equal(source.layers["lstm.l0"].gates["forget"], ex.trace.layers["lstm.l0"].gates["forget"][2:3])


def test_a_request_that_makes_no_sense_is_answered_with_one_sentence(model_and_ids):
    model, ids = model_and_ids
    ex = rw.explore(model, ids)
    ex.view.what_if = {"op": "zero", "value": 0, "source": 0, "unit": 40, "start": 0, "end": 3, "n": 7}
    status = ex.view.what_if_status
    assert status["n"] == 7 and status["text"].startswith("could not re-run: ValueError: "), status
    assert ex.what_if.comparison is None
    ex.view.what_if = {"op": "patch", "value": 5, "source": 5, "unit": 0, "start": 0, "end": 3, "n": 8}
    assert ex.view.what_if_status["text"] == ("could not re-run: ValueError: patch from element: expected an element "
                                              "of this batch, 0 to 2, got 5")


def test_without_a_live_model_there_is_no_what_if(model_and_ids):
    model, ids = model_and_ids
    ex = rw.explore(rw.trace(model, ids))
    assert ex.what_if is None and ex.view.what_if_status == {}
    with pytest.raises(ValueError, match="what if needs the live model"):
        WhatIf(ex, ids)
