"""rw.clamp / rw.patch (capture/edits.py): the edit objects, their one-sentence errors, and the
per-layer plan that says which units of which step an edit sets (LayerEdits)."""
import numpy as np
import pytest
import torch

import rnnwidgets as rw
from rnnwidgets.capture.edits import QUANTITIES, LayerEdits, widths_of
from rnnwidgets.kinds import GATES
from rnnwidgets.tracedata import LayerTrace, Trace


def source_trace(batch=2, steps=5, units=4):
    rng = np.random.default_rng(0)
    layer = LayerTrace("lstm.l0", "lstm", states={"h": rng.normal(size=(batch, steps, units)),
                                                 "c": rng.normal(size=(batch, steps, units))})
    return Trace(layers={"lstm.l0": layer}, lengths=np.full(batch, steps))


def test_quantities_are_the_kinds_states_and_gates():
    assert set(QUANTITIES) == {"h", "c", *GATES["lstm"], *GATES["gru"]}


def test_clamp_keeps_what_it_was_given():
    e = rw.clamp("lstm.l0", "c", units=[3, 3, 1], steps=range(10, 13), value=0.0, batch=1)
    assert (e.units, e.steps, e.batch, e.value) == ((3, 1), (10, 11, 12), (1,), (0.0,))
    assert rw.clamp("gru.l1", "update", 2, None, [0.5]).steps is None
    # a slice, as steps= windows are given elsewhere (rw.trace(steps=slice(10, 13)))
    assert rw.clamp("lstm.l0", "c", [3], slice(10, 13), 0.0).steps == (10, 11, 12)
    assert rw.clamp("lstm.l0", "c", [3], slice(None, 6, 2), 0.0).steps == (0, 2, 4)
    assert rw.clamp("lstm.l0", "c", slice(0, 3), [1], 0.0).units == (0, 1, 2)
    assert e.describe() == {"op": "clamp", "layer": "lstm.l0", "quantity": "c", "units": [3, 1],
                            "steps": [10, 11, 12], "batch": [1], "value": [0.0]}
    assert repr(e) == "rw.clamp('lstm.l0', 'c', units=[3, 1], steps=range(10, 13), value=[0.0])"


@pytest.mark.parametrize("kwargs, message", [
    (dict(quantity="gate"), r"quantity: expected one of \['h', 'c', 'input'"),
    (dict(units=[]), "units: expected whole numbers >= 0"),
    (dict(units=[-1]), "units: expected whole numbers >= 0"),
    (dict(units=[0.5]), "units: expected whole numbers >= 0"),
    (dict(steps="all"), r"steps: expected whole numbers >= 0 \(an int, a list, a range or a slice\) or None"),
    (dict(steps=slice(5, None)), r"steps: expected a slice of whole numbers >= 0 with its stop \(slice\(5, 20\)"),
    (dict(steps=slice(-3, 10)), "steps: expected a slice of whole numbers >= 0 with its stop"),
    (dict(steps=slice(0, 10, 0)), "steps: expected a slice of whole numbers >= 0 with its stop"),
    (dict(steps=slice(0.5, 10)), "steps: expected a slice of whole numbers >= 0 with its stop"),
    (dict(steps=slice(4, 4)), "steps: expected whole numbers >= 0"),
    (dict(value=float("nan")), r"value: expected a finite number or one per unit \(1\)"),
    (dict(value=[1.0, 2.0]), r"value: expected a finite number or one per unit \(1\)"),
    (dict(batch=[-2]), "batch: expected whole numbers >= 0"),
])
def test_clamp_refuses_bad_arguments_in_one_sentence(kwargs, message):
    args = dict(layer="lstm.l0", quantity="h", units=[0], steps=[1], value=0.0) | kwargs
    with pytest.raises(ValueError, match=message):
        rw.clamp(**args)


def test_clamp_refuses_a_layer_that_is_not_a_name():
    with pytest.raises(TypeError, match="layer: expected a layer name"):
        rw.clamp(0, "h", [0], [1], 0.0)


def test_patch_checks_its_source():
    tr = source_trace()
    e = rw.patch(tr, "lstm.l0", "c", units=[1], steps=[0, 4])
    assert e.describe()["source"] == repr(tr) and e.source is tr
    with pytest.raises(TypeError, match="source: expected an rw.Trace"):
        rw.patch("trace", "lstm.l0", "c", [1], [0])
    with pytest.raises(ValueError, match=r"expected a layer of the source trace, one of \['lstm.l0'\]"):
        rw.patch(tr, "lstm.l1", "c", [1], [0])
    with pytest.raises(ValueError, match=r"the source's 'lstm.l0' holds \['h', 'c'\], got 'forget'"):
        rw.patch(tr, "lstm.l0", "forget", [1], [0])
    with pytest.raises(ValueError, match=r"expected units in \[0, 4\)"):
        rw.patch(tr, "lstm.l0", "c", [4], [0])
    with pytest.raises(ValueError, match=r"expected steps in \[0, 5\)"):
        rw.patch(tr, "lstm.l0", "c", [0], [5])


def plan(edits, batch=2):
    return LayerEdits("test", "lstm.l0", edits, "lstm", widths_of("lstm", 4), batch, torch.zeros(1))


def test_a_plan_sets_the_named_units_of_the_named_steps_and_elements():
    p = plan([rw.clamp("lstm.l0", "c", [1, 2], [3], [5.0, 6.0], batch=[1]), rw.clamp("lstm.l1", "c", [0], [3], 9.0)])
    assert p.at("c", 2) is None and p.at("h", 3) is None
    mask, values = p.at("c", 3)
    assert mask.tolist() == [[False] * 4, [False, True, True, False]]
    assert values[1, 1:3].tolist() == [5.0, 6.0]
    x = torch.zeros(2, 4)
    assert p.apply("c", x, 2) is x
    assert p.apply("c", x, 3).tolist() == [[0, 0, 0, 0], [0, 5, 6, 0]]
    # a reverse direction over sequences of several lengths: one step per element
    assert p.apply("c", x, np.array([3, 1])).tolist() == [[0] * 4] * 2
    assert p.apply("c", x, np.array([1, 3])).tolist() == [[0, 0, 0, 0], [0, 5, 6, 0]]
    assert p.apply("c", x, 3, valid=np.array([True, False])).tolist() == [[0] * 4] * 2


def test_later_edits_win_and_patches_read_the_source_at_the_same_step():
    tr = source_trace()
    p = plan([rw.clamp("lstm.l0", "h", [0, 1], None, 1.0), rw.patch(tr, "lstm.l0", "h", [1], [2])])
    got = p.apply("h", torch.zeros(2, 4), 2)
    np.testing.assert_allclose(got[:, 0], 1.0)
    np.testing.assert_allclose(got[:, 1], tr.layers["lstm.l0"].h[:, 2, 1], rtol=1e-6)
    steps = p.apply_steps("h", torch.zeros(5, 2, 4), offset=0)
    np.testing.assert_allclose(steps[:, :, 0], 1.0)
    assert p.local_steps(offset=0, steps=5) == [0, 1, 2, 3, 4]
    assert plan([rw.clamp("lstm.l0", "c", [0], [3, 7], 0.0)]).local_steps(offset=2, steps=4) == [1]


def test_a_plan_refuses_edits_the_layer_cannot_take():
    with pytest.raises(ValueError, match=r"layer 'lstm.l0' \(lstm\) has \['h', 'c', 'input'"):
        plan([rw.clamp("lstm.l0", "reset", [0], [0], 0.0)])
    with pytest.raises(ValueError, match=r"expected units in \[0, 4\) of 'lstm.l0' 'c', got 4"):
        plan([rw.clamp("lstm.l0", "c", [4], [0], 0.0)])
    with pytest.raises(ValueError, match=r"expected batch elements in \[0, 2\), got 2"):
        plan([rw.clamp("lstm.l0", "c", [0], [0], 0.0, batch=2)])
    with pytest.raises(ValueError, match=r"the source has batch 2; expected 3"):
        plan([rw.patch(source_trace(), "lstm.l0", "c", [0], [0])], batch=3)
    with pytest.raises(ValueError, match=r"the source has 5 steps; this run reached step 6"):
        plan([rw.patch(source_trace(), "lstm.l0", "c", [0], None)]).at("c", 6)


def test_widths_follow_the_kind_and_a_projection():
    assert widths_of("lstm", 8, 3) == {"h": 3, "c": 8, "input": 8, "forget": 8, "cell": 8, "output": 8}
    assert widths_of("gru", 5) == {"h": 5, "reset": 5, "update": 5, "new": 5}
    assert widths_of("rnn", 5) == {"h": 5}
