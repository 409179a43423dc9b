"""What if, from the Explorer: the browser's request re-runs the live model with the edit (equal to
rw.trace with that edit), and the comparison of before and after opens beside the view, headed by
the edit; patch sources are the batch's elements and the Traces given as patch_from."""
import numpy as np
import pytest
import torch
from torch import nn

import rnnwidgets as rw
from rnnwidgets.widgets.compare import Compare
from rnnwidgets.widgets.what_if import MAIN, PANEL, WhatIf, changed_predictions, element_trace
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
    assert ex.view.what_if_status == {"live": True, "n": 0, "text": "", "elements": 3, "traces": []}
    ex.view.quantity = "c"
    ex.view.what_if = {"op": "value", "value": 2.5, "source": 0, "unit": 4, "start": 2, "end": 6, "n": 1}
    status = ex.view.what_if_status
    assert status["n"] == 1 and status["text"] == "unit 4 of lstm.l0 c, steps [2, 6): before and after compared", status
    comparison = ex.what_if.comparison
    assert isinstance(comparison, Compare) and list(ex.children).index(comparison) == list(ex.children).index(ex.view) + 1
    # beside the view (the classes js/src/what_if.ts lays out), headed by the edit, with a close
    assert PANEL in comparison._dom_classes and MAIN in ex.view._dom_classes and comparison.closable
    assert comparison.heading.startswith("What if unit 4 of lstm.l0 c were clamped to 2.5 at steps [2, 6)"), \
        comparison.heading
    expected = rw.trace(model, ids, edits=[rw.clamp("lstm.l0", "c", [4], range(2, 6), 2.5)])
    np.testing.assert_array_equal(comparison.b.layers["lstm.l0"].states["c"], expected.layers["lstm.l0"].states["c"])
    np.testing.assert_array_equal(comparison.b.outputs, expected.outputs)
    assert comparison.first_divergence() == 2
    ex.view.what_if = {"op": "zero", "value": 0, "source": 0, "unit": 1, "start": 0, "end": 9, "n": 2}
    assert ex.what_if.comparison is not comparison and comparison not in ex.children   # replaced, not stacked
    assert ex.what_if.comparison.b.layers["lstm.l0"].states["c"][:, :, 1].max() == 0.0
    ex.what_if.comparison.closed = True                                 # the browser's ×
    assert ex.what_if.comparison is None and list(ex.children) == [ex.batch, ex.view]
    assert_untouched(model, before)


def test_the_heading_counts_the_changed_predictions_and_the_comparison_opens_at_the_first(model_and_ids):
    model, ids = model_and_ids
    ex = rw.explore(model, ids)
    comparison = ex.what_if.run(2, range(4, 9), value=5.0, quantity="h")
    before = ex.trace.outputs[0].argmax(-1)
    after = comparison.b.outputs[0].argmax(-1)
    changed = np.flatnonzero(before != after)
    assert changed.size > 0 and changed[0] >= 4, f"a unit clamped from step 4 changes predictions at {changed}"
    assert changed_predictions(ex.trace, comparison.b, 0) == (changed.size, 9, int(changed[0]))
    assert comparison.heading == (f"What if unit 2 of lstm.l0 h were clamped to 5 at steps [4, 9): the best "
                                  f"prediction changes at {changed.size} of 9 steps, first at step {changed[0]}")
    assert comparison.t == changed[0]
    same = ex.what_if.run(0, [3], value=float(ex.trace.layers["lstm.l0"].h[0, 3, 0]), quantity="h")
    assert same.heading.endswith("at steps [3, 4): the best prediction changes at 0 of 9 steps")


def test_patch_from_another_element_takes_that_elements_values(model_and_ids):
    model, ids = model_and_ids
    ex = rw.explore(model, ids)
    comparison = ex.what_if.run(2, range(0, 9), source=1, quantity="h")
    h = comparison.b.layers["lstm.l0"].h
    np.testing.assert_array_equal(h[:, :, 2], np.repeat(ex.trace.layers["lstm.l0"].h[1:2, :, 2], 3, axis=0))
    source = element_trace(ex.trace, "lstm.l0", "forget", 2)
    np.testing.assert_array_equal(source.layers["lstm.l0"].gates["forget"], ex.trace.layers["lstm.l0"].gates["forget"][2:3])


def test_in_a_window_of_steps_the_edit_covers_the_steps_the_model_numbers_so(model_and_ids):
    """rw.explore(..., steps=slice(3, 9)) shows the model's steps 3..8: the box asks for them by
    those numbers (js/src/what_if.ts), and the edit acts on them, not on steps 0..5."""
    model, ids = model_and_ids
    ex = rw.explore(model, ids, steps=slice(3, 9), decode=list("abcde"))
    assert ex.trace.steps == 6
    ex.view.what_if = {"op": "zero", "value": 0, "source": 0, "unit": 1, "start": 5, "end": 9, "n": 1}
    assert ex.view.what_if_status["text"] == "unit 1 of lstm.l0 h, steps [5, 9): before and after compared"
    comparison = ex.what_if.comparison
    expected = rw.trace(model, ids, steps=slice(3, 9), edits=[rw.clamp("lstm.l0", "h", [1], range(5, 9), 0.0)])
    np.testing.assert_array_equal(comparison.b.layers["lstm.l0"].h, expected.layers["lstm.l0"].h)
    assert (comparison.b.layers["lstm.l0"].h[:, 2:, 1] == 0).all()
    # before the edit: as without it (the edited run is the step loop, the plain one fused: float32 apart)
    np.testing.assert_allclose(comparison.b.layers["lstm.l0"].h[:, :2], ex.trace.layers["lstm.l0"].h[:, :2], atol=1e-6)
    before, after = ex.trace.outputs[0].argmax(-1), comparison.b.outputs[0].argmax(-1)
    changed = np.flatnonzero(before != after)
    if changed.size:   # the heading's first changed step is the model's number too
        assert comparison.heading.endswith(f"first at step {changed[0] + 3}"), comparison.heading
    # a patch from another element reads that element's step t at the model's step t
    patched = ex.what_if.run(2, range(4, 9), source=1)
    h = patched.b.layers["lstm.l0"].h
    np.testing.assert_array_equal(h[:, 1:, 2], np.repeat(ex.trace.layers["lstm.l0"].h[1:2, 1:, 2], 3, axis=0))
    np.testing.assert_allclose(h[:, 0], ex.trace.layers["lstm.l0"].h[:, 0], atol=1e-6)


def test_patch_from_a_trace_named_in_explore_takes_its_values_step_by_index(model_and_ids):
    model, ids = model_and_ids
    deep = rw.trace(model, torch.randint(0, 5, (1, 12)))        # another run: one element, longer
    ex = rw.explore(model, ids, patch_from={"deep": deep})
    assert ex.view.what_if_status["traces"] == ["deep"] and ex.view.what_if_status["elements"] == 3
    ex.view.what_if = {"op": "patch", "value": 0, "source": "deep", "unit": 5, "start": 1, "end": 7, "n": 1}
    assert ex.view.what_if_status["text"] == "unit 5 of lstm.l0 h, steps [1, 7): before and after compared"
    comparison = ex.what_if.comparison
    expected = rw.trace(model, ids, edits=[rw.patch(deep, "lstm.l0", "h", [5], range(1, 7))])
    np.testing.assert_array_equal(comparison.b.layers["lstm.l0"].h, expected.layers["lstm.l0"].h)
    np.testing.assert_array_equal(comparison.b.layers["lstm.l0"].h[:, 1:7, 5], np.repeat(deep.layers["lstm.l0"].h[:, 1:7, 5], 3, 0))
    np.testing.assert_array_equal(comparison.b.outputs, expected.outputs)
    assert comparison.heading.startswith("What if unit 5 of lstm.l0 h were patched from 'deep' at steps [1, 7)")
    # a Trace passed to run directly, and a source of the same batch patches element by element
    same_batch = rw.trace(model, torch.randint(0, 5, (3, 9)))
    got = ex.what_if.run(2, range(0, 9), source=same_batch, quantity="c").b.layers["lstm.l0"].states["c"]
    np.testing.assert_array_equal(got[:, :, 2], same_batch.layers["lstm.l0"].states["c"][:, :, 2])
    # steps past the source's end: one sentence
    short = rw.trace(model, torch.randint(0, 5, (1, 4)))
    ex = rw.explore(model, ids, patch_from={"short": short})
    ex.view.what_if = {"op": "patch", "value": 0, "source": "short", "unit": 0, "start": 2, "end": 8, "n": 1}
    assert ex.view.what_if_status["text"] == ("could not re-run: ValueError: rw.patch: steps: expected steps in "
                                              "[0, 4) of the source's 'lstm.l0', got 7")
    ex.view.what_if = {"op": "patch", "value": 0, "source": "nope", "unit": 0, "start": 0, "end": 2, "n": 2}
    assert ex.view.what_if_status["text"] == ("could not re-run: ValueError: patch from: expected a batch element "
                                              "or one of the traces given as patch_from (['short']), got 'nope'")


class _Wider(_Tokens):
    def __init__(self):
        super().__init__()
        self.lstm, self.head = nn.LSTM(4, 7, batch_first=True), nn.Linear(7, 5)


def test_a_trace_of_another_shape_is_refused_with_one_sentence(model_and_ids):
    model, ids = model_and_ids
    wider = rw.trace(_Wider().eval(), ids)
    with pytest.raises(ValueError, match=r"^explore: patch_from\['wide'\]: expected 6 units of 'lstm.l0' 'h' like this "
                                         r"model's, got 7$"):
        rw.explore(model, ids, patch_from={"wide": wider})
    with pytest.raises(ValueError, match=r"^explore: patch_from\['two'\]: expected batch 1 \(used for every element\) "
                                         r"or 3 like the Explorer's inputs, got batch 2$"):
        rw.explore(model, ids, patch_from={"two": rw.trace(model, ids[:2])})
    with pytest.raises(TypeError, match=r"^explore: patch_from: expected a dict of name -> rw.Trace"):
        rw.explore(model, ids, patch_from=[rw.trace(model, ids)])
    with pytest.raises(TypeError, match=r"^explore: patch_from\['x'\]: expected an rw.Trace of this model, got Tensor$"):
        rw.explore(model, ids, patch_from={"x": ids})
    with pytest.raises(ValueError, match=r"^explore\(trace, patch_from=...\): patching re-runs the model"):
        rw.explore(rw.trace(model, ids), patch_from={"a": rw.trace(model, ids)})


def test_new_inputs_list_their_elements_as_sources(model_and_ids):
    model, ids = model_and_ids
    ex = rw.explore(model, ids)
    ex.update(ids[:2])
    assert ex.view.what_if_status["elements"] == 2 and ex.what_if.inputs is not ids


def test_new_data_closes_the_comparison_that_described_the_data_before(model_and_ids):
    model, ids = model_and_ids
    ex = rw.explore(model, ids)
    ex.view.what_if = {"op": "zero", "value": 0, "source": 0, "unit": 1, "start": 0, "end": 9, "n": 1}
    assert ex.what_if.comparison is not None and ex.what_if.comparison in ex.children
    ex.update(ids.flip(1))                                     # new inputs, the same batch size
    assert ex.what_if.comparison is None and list(ex.children) == [ex.batch, ex.view]
    assert ex.view.what_if_status == {"live": True, "n": 1, "text": "the comparison closed: the Explorer shows new data",
                                      "elements": 3, "traces": []}
    comparison = ex.what_if.run(1, range(0, 9))                # a run on the new inputs compares them
    np.testing.assert_array_equal(comparison.a.outputs, ex.trace.outputs)
    ex.set_trace(rw.trace(model, ids[:1]))                     # a trace given to the Explorer: closed too
    assert ex.what_if.comparison is None and comparison not in ex.children
    ex.update(ids)                                             # nothing open: the box's text stays
    assert ex.view.what_if_status["text"] == "the comparison closed: the Explorer shows new data"


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
