"""GradientFlow widget state: the marks hold the analysis' numbers; the text is escaped."""
import math
import re

import numpy as np
import pytest
import torch

import rnnwidgets as rw
from rnnwidgets import GradientFlow, gradient_flow
from rnnwidgets.gradients_analysis import gate_flow, step_norms, verdict
from rnnwidgets.tracedata import LayerTrace, Trace

B, T, U = 2, 12, 3


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def made_up_trace(steps=T, param_grads=None, name="enc.lstm.l0"):
    """An LSTM layer and a tanh RNN layer with decaying gradients (values need not be consistent)."""
    rng = np.random.default_rng(0)
    decay = 0.5 ** (steps - 1 - np.arange(steps))[None, :, None]
    lstm = LayerTrace(name, "lstm",
                      states={"h": rng.normal(size=(B, steps, U)), "c": rng.normal(size=(B, steps, U))},
                      gates={k: sigmoid(rng.normal(size=(B, steps, U))) for k in ("input", "forget", "output")}
                      | {"cell": np.tanh(rng.normal(size=(B, steps, U)))},
                      grads={"h": rng.normal(size=(B, steps, U)) * decay, "c": rng.normal(size=(B, steps, U)) * decay})
    rnn = LayerTrace("rnn.l0", "rnn", states={"h": np.tanh(rng.normal(size=(B, steps, U)))},
                     grads={"h": rng.normal(size=(B, steps, U))})
    if param_grads is None:
        param_grads = {"lstm.weight_hh_l0": {"norm": 2.0, "mean_abs": 0.1, "max_abs": 0.5},
                       "head.bias": {"norm": 0.0, "mean_abs": 0.0, "max_abs": 0.0},
                       "head.weight": {"norm": float("nan"), "mean_abs": float("nan"), "max_abs": float("nan")}}
    return Trace(layers={name: lstm, "rnn.l0": rnn}, lengths=np.array([steps, steps - 4]), param_grads=param_grads)


def test_through_time_lines_hold_the_masked_norms_of_h_and_c():
    tr = made_up_trace()
    gf = GradientFlow(tr)
    lt = tr.layers["enc.lstm.l0"]
    chart = gf.time_chart
    np.testing.assert_allclose(chart.y[0], step_norms(lt.grads["h"], tr.lengths), rtol=1e-6)
    np.testing.assert_allclose(chart.y[1], step_norms(tr.layers["rnn.l0"].grads["h"], tr.lengths), rtol=1e-6)
    np.testing.assert_allclose(chart.y[2], step_norms(lt.grads["c"], tr.lengths), rtol=1e-6)
    assert chart.labels == ["enc.lstm.l0 h", "rnn.l0 h", "enc.lstm.l0 c"]
    assert [s.get("dash", False) for s in chart.series] == [False, False, True]
    assert chart.series[2]["colour"] == chart.series[0]["colour"]     # a layer's c in its h's colour
    assert (chart.y_scale, chart.kind) == ("log", "lines")
    np.testing.assert_array_equal(chart.x, np.arange(T))


def test_grid_rows_are_layers_then_cells_at_full_resolution_on_a_log_scale():
    tr = made_up_trace()
    gf = GradientFlow(tr)
    grid = gf.heat
    assert (grid.rows, grid.columns, grid.scale, grid.column_step) == (3, T, "log", 1.0)
    assert len(grid.buffer) == 3 * T * 4           # one float32 buffer, not JSON lists
    assert list(grid.row_labels) == ["enc.lstm.l0 h", "rnn.l0 h", "enc.lstm.l0 c"]
    lt = tr.layers["enc.lstm.l0"]
    for row, grads in enumerate([lt.grads["h"], tr.layers["rnn.l0"].grads["h"], lt.grads["c"]]):
        np.testing.assert_allclose(grid.values[row], step_norms(grads, tr.lengths), rtol=1e-6)
    finite = grid.values[np.isfinite(grid.values)]
    assert grid.vmin == pytest.approx(finite.min(), rel=1e-6) and grid.vmax == pytest.approx(finite.max(), rel=1e-6)


def test_every_cursor_follows_the_step_control_in_the_browser():
    gf = GradientFlow(made_up_trace())
    assert gf.steps.followers == [gf.time_chart, gf.heat, gf.gate_chart] == gf.cursor_views
    assert gf.steps.steps == T and gf.steps in gf.children
    gf.steps.t = 99                                       # kept within the steps
    assert gf.steps.t == T - 1


def test_gate_chart_shows_each_path_of_the_chosen_layer():
    tr = made_up_trace()
    gf = GradientFlow(tr)
    lt = tr.layers["enc.lstm.l0"]
    expected = gate_flow("lstm", lt.gates, lt.states, lt.grads, tr.lengths)
    assert list(gf.gate_layer.options) == ["enc.lstm.l0", "rnn.l0"]
    assert gf.gate_chart.labels == list(expected)
    np.testing.assert_allclose(gf.gate_chart.y[0], expected["forget carry"], rtol=1e-6)
    assert "forget carry" in gf.gate_caption.value
    assert gf.gate_chart.title == "gradient leaving each step, by the path it takes through the LSTM's gates"
    gf.gate_layer.value = "rnn.l0"
    assert gf.gate_chart.labels == ["recurrent"] and "tanh RNN" in gf.gate_caption.value
    assert "gates" not in gf.gate_chart.title.split("(")[0], gf.gate_chart.title   # a tanh RNN has none


def test_gate_chart_starts_from_the_recorded_initial_state_in_either_direction():
    torch.manual_seed(4)
    model = torch.nn.LSTM(3, 5, bidirectional=True)
    c0 = torch.randn(2, 2, 5)
    gf = gradient_flow(model, torch.randn(7, 2, 3), hidden=(torch.randn(2, 2, 5), c0), loss=lambda out: out[0].sum())
    for name, first in (("lstm.l0", 0), ("lstm.l0.reverse", -1)):
        lt = gf.trace.layers[name]
        np.testing.assert_array_equal(lt.initial["c"], c0[int(name.endswith("reverse"))].numpy())
        flow = gf.flows[name]["forget gate"]
        assert np.isfinite(flow).all(), name  # its first step too: the state before it was recorded
        reverse = name.endswith(".reverse")
        expected = gate_flow("lstm", lt.gates, lt.states, lt.grads, gf.trace.lengths, initial=lt.initial["c"],
                             reverse=reverse)["forget gate"]
        np.testing.assert_allclose(flow, expected)
        if reverse:  # read in the wrong direction, the path differs
            wrong = gate_flow("lstm", lt.gates, lt.states, lt.grads, gf.trace.lengths, initial=lt.initial["c"])
            assert not np.allclose(flow, wrong["forget gate"])


def test_verdict_text_is_escaped_and_has_the_numbers():
    tr = made_up_trace(name="<img src=x onerror=alert(1)>.l0")
    gf = GradientFlow(tr)
    assert "<img" not in gf.verdict_text.value and "&lt;img src=x" in gf.verdict_text.value
    v = verdict(step_norms(tr.layers["<img src=x onerror=alert(1)>.l0"].grads["c"], tr.lengths), "c")
    assert v.label == "vanishing" and "‖∂L/∂c_t‖" in gf.verdict_text.value   # an LSTM is judged on c
    assert f"{v.ratio:.3g}" in gf.verdict_text.value


def test_parameter_bars_flag_zero_and_non_finite_gradients():
    gf = GradientFlow(made_up_trace())
    chart = gf.param_chart
    assert chart.kind == "bars" and chart.categories == ["lstm.weight_hh_l0", "head.bias", "head.weight"]
    np.testing.assert_allclose(chart.y[:, 0], [0.1, 0.5])
    assert np.isnan(chart.y[:, 1:]).all()            # a log scale cannot draw 0 or NaN
    assert gf.flagged == ["head.bias", "head.weight"]
    assert chart.flags == {"head.bias": "zero gradient: the loss does not depend on it",
                           "head.weight": "non-finite gradient (inf or NaN)"}
    assert not hasattr(gf, "update_chart")


def test_update_to_weight_ratio_when_a_learning_rate_is_given():
    gf = GradientFlow(made_up_trace(), weight_norms={"lstm.weight_hh_l0": 4.0, "head.bias": 1.0}, lr=0.1)
    assert gf.update_ratio["lstm.weight_hh_l0"] == pytest.approx(0.1 * 2.0 / 4.0)
    assert gf.update_chart.categories == ["lstm.weight_hh_l0", "head.bias"]
    np.testing.assert_allclose(gf.update_chart.y[0], [0.05, np.nan])   # a zero ratio has no place on a log axis
    assert gf.update_chart.flags == {"head.bias": "zero update: its gradient is 0"}   # so its row says why
    gf = GradientFlow(made_up_trace(), weight_norms={"lstm.weight_hh_l0": 0.0, "head.weight": 1.0}, lr=0.1)
    assert gf.update_chart.flags == {"lstm.weight_hh_l0": "non-finite: a non-finite gradient or a weight of norm 0",
                                     "head.weight": "non-finite: a non-finite gradient or a weight of norm 0"}


def test_link_t_keeps_another_widgets_t_in_step():
    import ipywidgets
    import traitlets

    class Other(ipywidgets.DOMWidget):
        t = traitlets.Int(0).tag(sync=True)

    gf = GradientFlow(made_up_trace())
    link = gf.link_t(Other())
    assert link.source == (gf.steps, "t") and link.target[1] == "t"


def test_a_trace_without_gradients_is_refused_clearly():
    tr = made_up_trace()
    for lt in tr.layers.values():
        lt.grads.clear()
    with pytest.raises(ValueError, match="no gradients"):
        GradientFlow(tr)
    with pytest.raises(TypeError, match="rw.Trace"):
        GradientFlow({"not": "a trace"})


class Net(torch.nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn
        self.head = torch.nn.Linear(rnn.hidden_size, 1)

    def forward(self, x):
        return self.head(self.rnn(x)[0])


def test_gradient_flow_on_a_live_model_leaves_grad_alone_and_finds_a_small_tanh_rnn_vanishing():
    torch.manual_seed(0)
    model = Net(torch.nn.RNN(3, 16, batch_first=True))
    with torch.no_grad():
        model.rnn.weight_hh_l0.mul_(0.3)            # contracting recurrence
    x = torch.randn(2, 60, 3)
    model(x).sum().backward()
    before = [p.grad.clone() for p in model.parameters()]
    loss = lambda out: out[:, -1].sum()             # noqa: E731
    gf = gradient_flow(model, x, loss=loss, lr=0.1)
    assert all(torch.equal(a, p.grad) for a, p in zip(before, model.parameters()))
    assert gf.verdicts["rnn.l0"].label == "vanishing"
    w = model.rnn.weight_hh_l0
    (g,) = torch.autograd.grad(loss(model(x)), [w])
    assert gf.update_ratio["rnn.weight_hh_l0"] == pytest.approx(0.1 * float(g.norm()) / float(w.detach().norm()), rel=1e-4)


def test_gradient_flow_takes_learning_rates_from_an_optimizer():
    torch.manual_seed(0)
    model = Net(torch.nn.GRU(3, 4, batch_first=True))
    optimizer = torch.optim.SGD([{"params": model.rnn.parameters(), "lr": 0.5},
                                 {"params": model.head.parameters(), "lr": 0.01}])
    gf = gradient_flow(model, torch.randn(1, 5, 3), loss="last", optimizer=optimizer)
    stats = gf.trace.param_grads
    w = dict(model.named_parameters())
    assert gf.update_ratio["head.weight"] == pytest.approx(0.01 * stats["head.weight"]["norm"] / float(w["head.weight"].norm()))
    assert gf.update_ratio["rnn.weight_hh_l0"] == pytest.approx(0.5 * stats["rnn.weight_hh_l0"]["norm"] / float(w["rnn.weight_hh_l0"].norm()))
    assert list(gf.flows["rnn.l0"]) == ["update carry", "update gate", "candidate"]
    with pytest.raises(ValueError, match="not both"):
        gradient_flow(model, torch.randn(1, 5, 3), lr=0.1, optimizer=optimizer)


def test_save_html_writes_one_offline_file_with_the_charts(tmp_path):
    gf = GradientFlow(made_up_trace(name="<b>enc</b>.l0"))
    page = gf.save_html(tmp_path / "flow.html").read_text(encoding="utf-8")
    assert "rw-gradient-flow" in page and '"_view":"chart"' in page and '"_view":"steps"' in page
    assert "<b>enc</b>" not in page                         # the layer name travels escaped
    assert not re.search(r"<script[^>]*\ssrc=[\"']?https?:", page)   # nothing loads from the network


def test_the_verdict_says_when_the_model_was_traced_in_training_mode():
    tr = made_up_trace()
    assert "training mode" not in GradientFlow(tr).verdict_text.value
    tr.meta["training"] = True
    assert "traced in training mode (dropout on)" not in GradientFlow(tr).verdict_text.value   # not recorded
    assert "traced in training mode" in GradientFlow(tr).verdict_text.value
    tr.meta["dropout"] = False                                  # a bare nn.LSTM in train(): nothing dropped
    text = GradientFlow(tr).verdict_text.value
    assert "traced in training mode" in text and "dropout" not in text
    tr.meta["dropout"] = True
    assert "traced in training mode (dropout on)" in GradientFlow(tr).verdict_text.value


def test_several_models_are_overlaid_on_one_axis_and_judged_each():
    torch.manual_seed(0)
    models = {"tanh RNN": Net(torch.nn.RNN(3, 6, batch_first=True)), "LSTM": Net(torch.nn.LSTM(3, 6, batch_first=True))}
    x = torch.randn(2, 9, 3)
    loss = lambda out: out[:, -1].sum()                 # noqa: E731
    gf = gradient_flow(models, x, loss=loss, lr=0.1)
    assert gf.time_chart.labels == ["tanh RNN · rnn.l0 h", "LSTM · rnn.l0 h", "LSTM · rnn.l0 c"]
    assert "2 models on one axis" in gf.time_chart.title
    for i, (name, model) in enumerate(models.items()):  # each line is that model's own gradient
        alone = gradient_flow(model, x, loss=loss)
        np.testing.assert_allclose(gf.time_chart.y[i], alone.time_chart.y[0], rtol=1e-6)
        assert gf.verdicts[f"{name} · rnn.l0"].ratio == pytest.approx(alone.verdicts["rnn.l0"].ratio)
    assert "LSTM · rnn.weight_hh_l0" in gf.param_chart.categories
    assert gf.update_ratio["LSTM · rnn.weight_hh_l0"] > 0
    listed = gradient_flow(list(models.values()), x, loss=loss)
    assert listed.time_chart.labels[0] == "model 0 · rnn.l0 h"
    with pytest.raises(ValueError, match="not optimizer"):
        gradient_flow(models, x, optimizer=torch.optim.SGD(models["LSTM"].parameters(), lr=0.1))
    with pytest.raises(TypeError, match="rw.Trace for 'b'"):
        GradientFlow({"a": gf.traces["tanh RNN"], "b": "not a trace"})


def test_titles_and_words_follow_the_model_kind():
    torch.manual_seed(0)
    x = torch.randn(1, 6, 3)
    for rnn in (torch.nn.RNN(3, 4, batch_first=True), torch.nn.GRU(3, 4, batch_first=True)):
        gf = gradient_flow(Net(rnn), x)
        assert "c_t" not in gf.time_chart.title and "dashed" not in gf.time_chart.title   # no cell state here
        assert "c_t" not in gf.heat.title and "c_t" not in gf.verdict_text.value
        assert "formulas" not in gf.gate_caption.value and "rnnwidgets" not in gf.gate_caption.value
    gf = gradient_flow(Net(torch.nn.LSTM(3, 4, batch_first=True)), x)
    assert "‖∂L/∂c_t‖ (dashed)" in gf.time_chart.title
    text = gf.verdict_text.value
    # the verdict says which line it judged, and what the other drawn line does
    assert "judged on c (dashed line)" in text and "also drawn: h (solid line)" in text
    assert set(gf.all_verdicts["rnn.l0"]) == {"c", "h"} and gf.verdicts["rnn.l0"].quantity == "c"


def test_a_loss_that_does_not_read_the_last_steps_is_not_called_exploding():
    torch.manual_seed(0)
    gf = gradient_flow(Net(torch.nn.GRU(3, 4, batch_first=True)), torch.randn(1, 10, 3),
                       loss=lambda out: out[:, 6].sum())     # reads step 6's output only
    v = gf.verdicts["rnn.l0"]
    assert v.label != "exploding" and math.isfinite(v.ratio)
    assert v.unread == 3 and v.steps == 7
    assert "The last 3 steps get exactly zero gradient (the loss does not read them)" in gf.verdict_text.value


def test_a_window_of_steps_is_numbered_as_the_model_numbers_it():
    """rw.trace(steps=slice(120, 180), loss=...): the charts, the grid and the step control carry
    the window's first step (their x, columns and cursor still count from 0, as the Explorer's t),
    and the verdict says the model's steps; its numbers are the full trace's steps 120..179."""
    torch.manual_seed(0)
    model = Net(torch.nn.LSTM(3, 6, batch_first=True))
    x = torch.randn(1, 200, 3)
    loss = lambda out: out[:, 165].sum()      # noqa: E731  (reads step 165: steps 166..179 are left out)
    window = GradientFlow(rw.trace(model, x, steps=slice(120, 180), loss=loss))
    full = GradientFlow(rw.trace(model, x, loss=loss))
    assert window.first_step == 120 and full.first_step == 0
    for view in (window.time_chart, window.gate_chart, window.heat, window.steps):
        assert view.first_step == 120
    np.testing.assert_array_equal(window.time_chart.x, np.arange(60))
    np.testing.assert_array_equal(window.time_chart.y, full.time_chart.y[:, 120:180])   # the same steps
    assert (window.heat.column_start, window.heat.columns, window.steps.steps) == (0.0, 60, 60)
    judged = window.verdicts["rnn.l0"]
    text = window.verdict_text.value
    assert judged.first == 120 and judged.unread == 14 and judged.steps == 46
    assert "(to step 165)" in text and "measured over steps 120–165." in text
    assert judged.decade is not None and "going back from step 165 it" in text
    assert f"by step {120 + judged.decade[0]} ({judged.decade[1] - judged.decade[0]} steps)" in text
    assert "steps 0–" not in text and "to step 45" not in text
    # the Explorer's gradient view: from the same first step as the Explorer's own axes
    explorer = rw.explore(model, x, loss=loss, steps=slice(120, 180))
    assert explorer.gradients is not None and explorer.gradients.first_step == explorer.view.index["first_step"] == 120
    assert "(to step 165)" in explorer.gradients.verdict_text.value


def test_overlaid_traces_share_a_windows_numbers_only_when_they_hold_the_same_window():
    torch.manual_seed(0)
    model = Net(torch.nn.GRU(3, 4, batch_first=True))
    x = torch.randn(1, 40, 3)
    a, b = (rw.trace(model, x, steps=slice(10, 30), loss="last") for _ in range(2))
    assert GradientFlow({"a": a, "b": b}).time_chart.first_step == 10
    other = rw.trace(model, x, steps=slice(5, 25), loss="last")
    mixed = GradientFlow({"a": a, "b": other})
    assert (mixed.first_step, mixed.heat.first_step, mixed.steps.first_step) == (0, 0, 0)


def test_gradient_flow_takes_a_window_of_steps_and_layers_as_rw_trace_does():
    """rw.gradient_flow(model, x, loss=..., steps=, layers=) is GradientFlow(rw.trace(... the same)):
    the window numbered from its first step, only the layers asked for, the whole run's gradients."""
    torch.manual_seed(0)
    model = Net(torch.nn.LSTM(3, 6, 2, batch_first=True))
    x = torch.randn(1, 200, 3)
    loss = lambda out: out[:, 165].sum()      # noqa: E731
    got = gradient_flow(model, x, loss=loss, steps=slice(120, 180), layers=["rnn.l1"])
    want = GradientFlow(rw.trace(model, x, loss=loss, steps=slice(120, 180), layers=["rnn.l1"]))
    full = GradientFlow(rw.trace(model, x, loss=loss))
    assert list(got.norms) == ["rnn.l1"] and list(full.norms) == ["rnn.l0", "rnn.l1"]
    assert (got.first_step, got.steps.first_step, got.heat.first_step, got.steps.steps) == (120, 120, 120, 60)
    np.testing.assert_array_equal(got.time_chart.y, want.time_chart.y)
    np.testing.assert_array_equal(got.time_chart.y, full.time_chart.y[[1, 3], 120:180])   # l1's h and c
    assert got.verdict_text.value == want.verdict_text.value and "(to step 165)" in got.verdict_text.value
    several = gradient_flow({"a": model, "b": model}, x, loss=loss, steps=range(120, 180))
    assert several.first_step == 120 and several.steps_count == 60


@pytest.mark.parametrize("steps, message", [
    ((120, 180), r"^gradient_flow: steps: expected a slice or range, got the tuple \(120, 180\), which could mean "
                 r"single steps or a window; pass steps=slice\(120, 180\) or steps=range\(120, 180\) for steps 120 "
                 r"to 179$"),
    (np.int64(5), r"^gradient_flow: steps: expected a slice or range, got the single step 5; for that step alone "
                  r"pass steps=slice\(5, 6\)$"),
    (slice(-10, None), r"^gradient_flow: steps: expected step numbers counted from 0 on, got slice\(-10, None, None\); "
                       r"a negative index \(counting from the end\) is not taken"),
    (slice(500, 600), r"^rw.trace: steps: the window starts at step 500, past the end of 'rnn.l0', which runs 200 "
                      r"steps \(0–199\); expected a start below 200, or layers= leaving 'rnn.l0' out$"),
])
def test_gradient_flow_refuses_a_bad_window_in_one_sentence(steps, message):
    model, x = Net(torch.nn.GRU(3, 4, batch_first=True)), torch.randn(1, 200, 3)
    with pytest.raises((TypeError, ValueError), match=message):
        gradient_flow(model, x, steps=steps)
