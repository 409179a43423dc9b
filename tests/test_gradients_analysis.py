"""Gradient analysis against autograd on unrolled references, and the verdict on known recurrences."""
import numpy as np
import pytest
import torch

from rnnwidgets import gradients_analysis as ga
from rnnwidgets.tracedata import LayerTrace


def gate_paths(*args, **kwargs) -> dict:
    """Every path's whole array at once (production code reduces each as it comes)."""
    return dict(ga.each_path(*args, **kwargs))

B, T, I, H = 3, 7, 4, 5


def _randn(*shape, requires_grad=False):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=requires_grad)


def _np(t):
    return t.detach().numpy()


def _stack(ts):
    return torch.stack(ts, dim=1)            # list over time of (batch, units) -> (batch, time, units)


def _keep(t):
    t.retain_grad()
    return t


def unrolled_lstm(seed=0):
    """An LSTM unrolled step by step from nn.LSTM's weights, with every intermediate's gradient."""
    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(I, H, batch_first=True).double()
    x, h, c = _randn(B, T, I), _randn(B, H), _randn(B, H)
    c0 = c.detach().clone()
    head = _randn(H)
    pre = {k: [] for k in "ifgo"}
    gates = {k: [] for k in "ifgo"}
    hs, cs = [], []
    for t in range(T):
        a = x[:, t] @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + h @ lstm.weight_hh_l0.T + lstm.bias_hh_l0
        parts = dict(zip("ifgo", a.chunk(4, dim=1)))
        for k in "ifgo":
            pre[k].append(_keep(parts[k]))
        i, f, o = (torch.sigmoid(parts[k]) for k in "ifo")
        g = torch.tanh(parts["g"])
        c = _keep(f * c + i * g)
        h = _keep(o * torch.tanh(c))
        for k, v in zip("ifgo", (i, f, g, o)):
            gates[k].append(v)
        hs.append(h)
        cs.append(c)
    loss = sum(torch.tanh(hh @ head).sum() for hh in hs)   # a loss on every step: direct + recurrent parts
    loss.backward()
    names = {"i": "input", "f": "forget", "g": "cell", "o": "output"}
    return dict(
        gates={names[k]: _np(_stack(v)) for k, v in gates.items()},
        states={"h": _np(_stack(hs)), "c": _np(_stack(cs))},
        grads={"h": _np(_stack([v.grad for v in hs])), "c": _np(_stack([v.grad for v in cs]))},
        pre={names[k]: _np(_stack([v.grad for v in vs])) for k, vs in pre.items()},
        c0=_np(c0),
    )


def test_lstm_gate_paths_are_the_autograd_gradients_of_each_gate():
    r = unrolled_lstm()
    paths = gate_paths("lstm", r["gates"], r["states"], r["grads"], initial=r["c0"])
    np.testing.assert_allclose(paths["input gate"], r["pre"]["input"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(paths["forget gate"], r["pre"]["forget"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(paths["candidate"], r["pre"]["cell"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(paths["output gate"], r["pre"]["output"], rtol=1e-10, atol=1e-12)
    # the forget carry is the part of dL/dc_{t-1} that arrives through c_t; the rest comes through h_{t-1}
    dc, dh, c, o = r["grads"]["c"], r["grads"]["h"], r["states"]["c"], r["gates"]["output"]
    through_h = dh[:, :-1] * o[:, :-1] * (1 - np.tanh(c[:, :-1]) ** 2)
    np.testing.assert_allclose(dc[:, :-1], paths["forget carry"][:, 1:] + through_h, rtol=1e-10, atol=1e-12)


def test_lstm_forget_gate_path_without_initial_state_assumes_zero():
    r = unrolled_lstm()
    paths = gate_paths("lstm", r["gates"], r["states"], r["grads"])
    np.testing.assert_array_equal(paths["forget gate"][:, 0], 0.0)
    np.testing.assert_allclose(paths["forget gate"][:, 1:], r["pre"]["forget"][:, 1:], rtol=1e-10, atol=1e-12)


def _reverse_valid(a: np.ndarray, lengths) -> np.ndarray:
    """Each element's first `length` steps in reverse order (the rest left as they are)."""
    out = a.copy()
    for b, n in enumerate(lengths):
        out[b, :n] = a[b, :n][::-1]
    return out


def test_a_reverse_layer_starts_each_step_from_the_one_after_and_its_initial_state_at_its_last():
    # A reverse layer over steps read backward is a forward layer over them read forward: its
    # paths, put back in time order, are the forward run's (checked against autograd above).
    r = unrolled_lstm()
    lengths = [T, T - 3, 2][:B] + [T] * max(0, B - 3)
    flip = lambda group: {k: _reverse_valid(v, lengths) for k, v in group.items()}  # noqa: E731
    forward = gate_paths("lstm", r["gates"], r["states"], r["grads"], initial=r["c0"])
    backward = gate_paths("lstm", flip(r["gates"]), flip(r["states"]), flip(r["grads"]), initial=r["c0"],
                             reverse=True, lengths=lengths)
    for name, path in backward.items():
        for b, n in enumerate(lengths):
            np.testing.assert_allclose(_reverse_valid(path, lengths)[b, :n], forward[name][b, :n], rtol=1e-10,
                                       atol=1e-12, err_msg=name)
    np.testing.assert_allclose(forward["forget gate"], r["pre"]["forget"], rtol=1e-10, atol=1e-12)


def test_gru_gate_paths_are_the_autograd_gradients():
    torch.manual_seed(1)
    gru = torch.nn.GRU(I, H, batch_first=True).double()
    x, h = _randn(B, T, I), _randn(B, H, requires_grad=True)
    h0 = h.detach().clone()
    head = _randn(H)
    pre_z, pre_n, zs, ns, hs, carried = [], [], [], [], [], []
    for t in range(T):
        gi = x[:, t] @ gru.weight_ih_l0.T + gru.bias_ih_l0
        gh = h @ gru.weight_hh_l0.T + gru.bias_hh_l0
        (ir, iz, inn), (hr, hz, hn) = gi.chunk(3, 1), gh.chunk(3, 1)
        r = torch.sigmoid(ir + hr)
        az = _keep(iz + hz)
        z = torch.sigmoid(az)
        an = _keep(inn + r * hn)
        n = torch.tanh(an)
        prev = _keep(h * 1.0)                 # h_{t-1} as seen by the carry term only
        h = _keep((1 - z) * n + z * prev)
        pre_z.append(az)
        pre_n.append(an)
        zs.append(z)
        ns.append(n)
        hs.append(h)
        carried.append(prev)
    sum(torch.tanh(hh @ head).sum() for hh in hs).backward()
    gates = {"update": _np(_stack(zs)), "new": _np(_stack(ns))}
    states, grads = {"h": _np(_stack(hs))}, {"h": _np(_stack([v.grad for v in hs]))}
    paths = gate_paths("gru", gates, states, grads, initial=_np(h0))
    np.testing.assert_allclose(paths["update gate"], _np(_stack([v.grad for v in pre_z])), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(paths["candidate"], _np(_stack([v.grad for v in pre_n])), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(paths["update carry"], _np(_stack([v.grad for v in carried])), rtol=1e-10, atol=1e-12)


def test_rnn_recurrent_path_is_the_preactivation_gradient():
    torch.manual_seed(2)
    rnn = torch.nn.RNN(I, H, batch_first=True).double()
    x, h = _randn(B, T, I), torch.zeros(B, H, dtype=torch.float64)
    pres, hs = [], []
    for t in range(T):
        a = _keep(x[:, t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0)
        h = _keep(torch.tanh(a))
        pres.append(a)
        hs.append(h)
    hs[-1].sum().backward()
    paths = gate_paths("rnn", {}, {"h": _np(_stack(hs))}, {"h": _np(_stack([v.grad for v in hs]))})
    np.testing.assert_allclose(paths["recurrent"], _np(_stack([v.grad for v in pres])), rtol=1e-10, atol=1e-12)


def test_gate_paths_of_a_kind_without_gates_is_empty():
    assert gate_paths("custom", {}, {"h": np.zeros((1, 2, 3))}, {"h": np.zeros((1, 2, 3))}) == {}


def test_step_norms_mask_steps_past_each_length():
    g = np.zeros((2, 4, 2))
    g[0, :, 0] = [3, 3, 3, 3]       # norm 3 everywhere
    g[1, :, :] = [[0, 1], [0, 1], [5, 5], [5, 5]]   # length 2: the 5s are padding
    norms = ga.step_norms(g, lengths=[4, 2])
    np.testing.assert_allclose(norms, [2.0, 2.0, 3.0, 3.0])
    assert np.isnan(ga.step_norms(g, lengths=[0, 0])).all()
    with pytest.raises(ValueError, match=r"\(batch, time, units\)"):
        ga.step_norms(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="lengths"):
        ga.step_norms(g, lengths=[1, 2, 3])


def linear_recurrence_grads(a: float, steps: int = 100, units: int = 4) -> np.ndarray:
    """dL/dh_t of h_t = a*h_{t-1} + x_t with the loss on the last step: exactly a^(T-1-t)."""
    x = _randn(1, steps, units)
    h, hs = torch.zeros(1, units, dtype=torch.float64), []
    for t in range(steps):
        h = _keep(a * h + x[:, t].requires_grad_())
        hs.append(h)
    hs[-1].sum().backward()
    return _np(_stack([v.grad for v in hs]))


@pytest.mark.parametrize("a, label, ratio_power, decade_start", [
    (0.9, "vanishing", 90, 99 - 22),    # 0.9^22 is the first power below 1/10
    (1.1, "exploding", 90, 99 - 25),    # 1.1^25 is the first power above 10
    (0.999, "healthy", 90, None),       # 0.999^99 is still 0.91: never 10x off
])
def test_verdict_on_linear_recurrences_with_known_rates(a, label, ratio_power, decade_start):
    grads = linear_recurrence_grads(a)
    norms = ga.step_norms(grads)
    np.testing.assert_allclose(norms, 2.0 * a ** (99 - np.arange(100)), rtol=1e-12)   # sqrt(4 units)
    v = ga.verdict(norms)
    assert v.label == label
    assert v.window == 10 and v.steps == 100
    assert v.ratio == pytest.approx(a ** ratio_power, rel=1e-9)   # both windows: a^(90..99) vs a^(0..9)
    assert v.decade == (None if decade_start is None else (decade_start, 99))
    text = v.text()
    assert label in text and f"{v.ratio:.3g}" in text and "vanishing below 0.01" in text


def test_verdict_uses_only_steps_some_element_reaches():
    norms = np.r_[np.full(20, 1e-4), np.full(20, 1.0), np.full(10, np.nan)]
    v = ga.verdict(norms)
    assert v.steps == 40 and v.window == 4 and v.label == "vanishing"
    assert v.ratio == pytest.approx(1e-4)


def test_verdict_on_zero_and_non_finite_gradients():
    assert ga.verdict(np.zeros(10)).label == "none"
    assert "no gradient" in ga.verdict(np.zeros(10)).text()
    bad = ga.verdict(np.r_[np.inf, np.ones(9)])
    assert bad.label == "exploding" and bad.ratio == float("inf")
    with pytest.raises(ValueError, match="all NaN"):
        ga.verdict(np.full(3, np.nan))


def test_a_nan_gradient_at_steps_that_run_is_judged_non_finite_not_left_out():
    """A NaN loss makes every gradient NaN: the layer's steps all run, so the verdict is on them
    (exploding, said in words) and not the error for steps no element reaches."""
    from rnnwidgets.tracedata import LayerTrace

    nan = np.full((2, 6, 3), np.nan, dtype=np.float32)
    gru = LayerTrace("gru.l0", "gru", states={"h": np.zeros((2, 6, 3))}, grads={"h": nan})
    v = ga.layer_verdict(gru)
    assert v.label == "exploding" and v.steps == 6
    assert v.text().startswith("exploding: ‖∂L/∂h_t‖ (hidden state) is NaN over the first 1 step and over the last 1")
    assert "nan" not in v.text()
    lstm = LayerTrace("lstm.l0", "lstm", states={"h": nan, "c": nan}, grads={"h": nan, "c": nan})
    assert {q: x.label for q, x in ga.layer_verdicts(lstm).items()} == {"c": "exploding", "h": "exploding"}
    # steps past every element's length stay left out: 4 judged, not 6
    assert ga.layer_verdict(gru, lengths=[4, 3]).steps == 4
    with pytest.raises(ValueError, match="reached: expected a bool series of shape"):
        ga.verdict(np.ones(3), reached=np.ones(4, dtype=bool))


def test_layer_verdict_reads_the_cell_state_of_an_lstm_and_h_otherwise():
    from rnnwidgets.tracedata import LayerTrace

    flat, falling = np.ones((1, 20, 2)), 0.5 ** (19 - np.arange(20))[None, :, None] * np.ones((1, 20, 2))
    lstm = LayerTrace("lstm.l0", "lstm", states={"h": flat, "c": flat}, grads={"h": falling, "c": flat})
    gru = LayerTrace("gru.l0", "gru", states={"h": flat}, grads={"h": falling})
    assert ga.layer_verdict(lstm).label == "healthy" and ga.layer_verdict(lstm).quantity == "c"
    assert "‖∂L/∂c_t‖" in ga.layer_verdict(lstm).text()
    assert ga.layer_verdict(gru).label == "vanishing" and ga.layer_verdict(gru).quantity == "h"


def test_gate_flow_norms_per_path():
    r = unrolled_lstm()
    flow = ga.gate_flow("lstm", r["gates"], r["states"], r["grads"], lengths=[T, T, 3], initial=r["c0"])
    assert list(flow) == ["forget carry", "input gate", "forget gate", "candidate", "output gate"]
    carry = r["grads"]["c"] * r["gates"]["forget"]
    np.testing.assert_allclose(flow["forget carry"][5], np.linalg.norm(carry[:2, 5], axis=1).mean())


def test_steps_the_loss_does_not_read_are_left_out_and_said():
    falling = 0.5 ** (19 - np.arange(20))
    v = ga.verdict(np.r_[falling, 0.0, 0.0])
    alone = ga.verdict(falling)
    assert (v.label, v.ratio, v.steps, v.decade) == (alone.label, alone.ratio, alone.steps, alone.decade)
    assert v.unread == 2 and alone.unread == 0
    assert "inf" not in v.text() and "The last 2 steps get exactly zero gradient" in v.text()
    assert "steps 0–19" in v.text() and "‖∂L/∂h_t‖ (hidden state)" in v.text()
    assert "Thresholds" not in v.text(thresholds=False)


def test_a_window_of_steps_verdict_says_the_models_step_numbers():
    """A series that is a window of the model's steps 120.. (rw.trace(steps=...)): the text says
    every step as the model numbers it, the numbers it measured being those of the same series
    counted from 0."""
    falling = 0.5 ** (59 - np.arange(60))                # 10x off from step 59 first at step 55
    counted, window = ga.verdict(falling), ga.verdict(falling, first=120)
    assert (window.label, window.ratio, window.steps, window.decade) == (counted.label, counted.ratio, 60, (55, 59))
    assert "(to step 59)" in counted.text() and "going back from step 59 it falls 10× by step 55 (4 steps)" in counted.text()
    assert "(to step 179)" in window.text()
    assert "going back from step 179 it falls 10× by step 175 (4 steps)" in window.text()
    unread = ga.verdict(np.r_[falling, 0.0, 0.0], first=120)
    assert "so they are left out: measured over steps 120–179." in unread.text()
    assert "steps 0–" not in unread.text() and "step 59" not in unread.text()
    # a layer's verdicts carry it too (an LSTM: c judged, h also drawn)
    grads = {"h": np.broadcast_to(falling[None, :, None], (1, 60, 2)), "c": np.broadcast_to(falling[None, :, None], (1, 60, 2))}
    lstm = LayerTrace("lstm.l0", "lstm", states={}, grads=grads)
    both = ga.layer_verdicts(lstm, first=120)
    assert [v.first for v in both.values()] == [120, 120] and all("(to step 179)" in v.text() for v in both.values())
    assert ga.layer_verdict(lstm).first == 0


def _decade_step_by_step(series):
    """The definition read one step at a time, going back from the last step."""
    e = len(series) - 1
    ref = series[e]
    for s in range(e - 1, -1, -1):
        v = series[s]
        if not np.isnan(v) and ((ref > 0 and v <= ref / 10) or v >= ref * 10):
            return (s, e)
    return None


def test_decade_is_the_first_step_back_that_is_10x_off_with_nan_inf_and_zero_steps():
    rng = np.random.default_rng(0)
    special = [np.nan, np.inf, 0.0, 1e308, 1e-310]
    for _ in range(3000):
        series = np.exp(rng.normal(0, 3, int(rng.integers(1, 30))))
        for _ in range(int(rng.integers(0, 4))):
            series[rng.integers(0, series.size)] = rng.choice(special)
        with np.errstate(over="ignore"):
            assert ga._decade(series) == _decade_step_by_step(series), series
    assert ga._decade(np.array([1.0, np.nan, 50.0, 100.0])) == (0, 3)     # a NaN step is skipped
    assert ga._decade(np.array([0.0, 3.0, 0.0])) == (1, 2)                # from 0 any step is 10x off
    assert ga._decade(np.array([2.0, 3.0, np.nan])) is None               # nothing is 10x off NaN
