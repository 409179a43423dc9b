"""rnnwidgets.comparison: alignment of runs at their start, the first divergence, the differing
units, and the checks that refuse traces that cannot be compared."""
import numpy as np
import pytest

from rnnwidgets.comparison import TAU, Comparison, check_tau, difference, differing_units, first_divergence
from rnnwidgets.tracedata import LayerTrace, Trace


def run(steps, units=4, seed=0):
    return np.random.default_rng(seed).standard_normal((steps, units)).astype(np.float32)


def trace(h, lengths=None, c=None, name="lstm.l0"):
    """A one-layer Trace of (batch, time, units) states."""
    states = {"h": h} if c is None else {"h": h, "c": c}
    return Trace(layers={name: LayerTrace(name, "lstm" if c is not None else "rnn", states=states)},
                 lengths=np.full(h.shape[0], h.shape[1]) if lengths is None else np.asarray(lengths))


def test_runs_of_different_lengths_align_at_their_start_and_the_rest_is_unmatched():
    a, b = run(7), run(4, seed=1)
    d = difference(a, b)
    assert d.shape == (7, 4) and d.dtype == np.float32
    np.testing.assert_array_equal(d[:4], a[:4] - b)
    assert np.isnan(d[4:]).all()
    assert difference(b, a).shape == (7, 4)   # either side may be the shorter
    with pytest.raises(ValueError, match="as many units"):
        difference(run(3, 4), run(3, 5))


def test_first_divergence_is_the_first_step_where_any_unit_differs_by_more_than_tau():
    a = run(10)
    b = a.copy()
    b[6, 2] += 0.01
    b[8, 0] += 1.0
    d = difference(a, b)
    assert first_divergence(d, 10, tau=1e-3) == 6
    assert first_divergence(d, 10, tau=0.01 + 1e-6) == 8       # 0.01 is within that tau
    assert first_divergence(d, 10, tau=2.0) is None
    assert first_divergence(d, 7, tau=0.5) is None             # step 8 is past the matched steps
    assert first_divergence(difference(a, a), 10, tau=0.0) is None   # equal runs never diverge
    b[3, 1] = np.nan                                           # a run that blew up differs there
    assert first_divergence(difference(a, b), 10, tau=1e-3) == 3


def test_differing_units_are_those_past_tau_at_some_matched_step():
    a = run(6, units=5)
    b = a.copy()
    b[1, 4] -= 0.5
    b[5, 1] += 0.002
    d = difference(a, b)
    assert differing_units(d, 6, tau=1e-3).tolist() == [1, 4]
    assert differing_units(d, 6, tau=0.1).tolist() == [4]
    assert differing_units(d, 5, tau=1e-3).tolist() == [4]   # step 5 unmatched
    assert differing_units(d, 6, tau=1.0).tolist() == []


def test_tau_compares_in_float64_as_the_browser_does():
    d = np.array([[np.float32(1e-3)]], dtype=np.float32)   # float32(1e-3) is a hair above 1e-3
    assert float(d[0, 0]) > 1e-3
    assert first_divergence(d, 1, tau=1e-3) == 0


@pytest.mark.parametrize("tau", [-1, float("nan"), float("inf"), "0.1", True, None])
def test_a_bad_tau_gets_one_sentence(tau):
    with pytest.raises(ValueError, match=r"tau: expected a finite number >= 0"):
        check_tau(tau)


def test_a_comparison_cuts_each_run_to_its_valid_steps_per_batch_element():
    rng = np.random.default_rng(0)
    h_a = rng.standard_normal((2, 9, 3)).astype(np.float32)
    h_b = h_a[:, :6].copy()
    h_b[1, 2:, 0] += 1
    a, b = trace(h_a, lengths=[9, 8]), trace(h_b, lengths=[6, 5])
    first = Comparison(a, b, batch=0)
    assert first.lengths("lstm.l0") == (9, 6)
    assert first.first_divergence("lstm.l0", "h") is None and first.differing_units("lstm.l0", "h").size == 0
    second = Comparison(a, b, batch=1)
    ra, rb = second.runs("lstm.l0", "h")
    assert ra.shape == (8, 3) and rb.shape == (5, 3)
    assert second.first_divergence("lstm.l0", "h") == 2
    assert second.differing_units("lstm.l0", "h", tau=TAU).tolist() == [0]
    assert second.difference("lstm.l0", "h").shape == (8, 3)


def test_a_comparison_shows_the_layers_and_quantities_both_have():
    h = np.zeros((1, 4, 3), np.float32)
    lstm = trace(h, c=h.copy())
    rnn = trace(h)
    both = Comparison(lstm, rnn)
    assert both.layers == ["lstm.l0"] and both.quantities("lstm.l0") == ["h"]
    assert both.default_layer() == "lstm.l0"
    with pytest.raises(ValueError, match=r"quantity: expected one of \['h'\]"):
        both.runs("lstm.l0", "c")
    with pytest.raises(ValueError, match="layer: expected one of"):
        both.lengths("gru.l0")


def test_traces_that_cannot_be_compared_get_one_sentence():
    h = np.zeros((1, 4, 3), np.float32)
    with pytest.raises(ValueError, match="share no layer"):
        Comparison(trace(h), trace(h, name="gru.l0"))
    with pytest.raises(ValueError, match="3 units in A and 5 in B"):
        Comparison(trace(h), trace(np.zeros((1, 4, 5), np.float32)))
    with pytest.raises(TypeError, match="expected two rnnwidgets.Trace"):
        Comparison(trace(h), h)
    with pytest.raises(IndexError, match="batch element 1 is out of range"):
        Comparison(trace(h), trace(h), batch=1)
    with pytest.raises(ValueError, match="names: expected two non-empty strings"):
        Comparison(trace(h), trace(h), names=("A", ""))
