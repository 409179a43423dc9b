"""The entry points that take a live model (rw.explore, rw.gradient_flow, rw.compare): what each builds from
its arguments, and the one sentence for arguments that make no sense."""
import numpy as np
import pytest
import torch
from torch import nn

import rnnwidgets as rw
from rnnwidgets import explore
from rnnwidgets.capture import trace
from rnnwidgets.capture.live import LiveModel
from rnnwidgets.entrypoints import gradient_flow, live
from rnnwidgets.widgets.explorer import Explorer


@pytest.fixture
def lstm():
    torch.manual_seed(0)
    return nn.LSTM(4, 8, num_layers=2, batch_first=True)


def test_explore_arguments_that_make_no_sense_say_what_was_expected(lstm):
    tr = trace(lstm, torch.randn(1, 3, 4))
    with pytest.raises(ValueError, match="takes no inputs"):
        explore(tr, torch.randn(1, 3, 4))
    with pytest.raises(ValueError, match="expected the inputs"):
        explore(lstm)
    with pytest.raises(ValueError, match="needs encode="):
        explore(lstm, text="abc")
    with pytest.raises(ValueError, match=r"^explore\(trace\) takes no inputs: the trace already holds its run$"):
        explore(tr, text="abc")
    with pytest.raises(ValueError, match=r"^explore\(trace, dynamics=True\): the dynamics need the model; "):
        explore(tr, dynamics=True)


def test_explore_refuses_a_bad_window_of_steps_in_its_own_name_before_running(lstm, monkeypatch):
    ran = []
    monkeypatch.setattr(LiveModel, "trace", lambda *a, **k: ran.append(1))
    x = torch.randn(1, 200, 4)
    with pytest.raises(TypeError, match=r"^explore: steps: expected a slice or range, got the tuple \(120, 180\), .*"
                                        r"pass steps=slice\(120, 180\) or steps=range\(120, 180\) for steps 120 to 179$"):
        explore(lstm, x, steps=(120, 180))
    with pytest.raises(TypeError, match=r"^explore: steps: expected a slice or range, got the single step 120; for that "
                                        r"step alone pass steps=slice\(120, 121\)$"):
        explore(lstm, x, steps=np.int64(120), dynamics=True)
    with pytest.raises(ValueError, match=r"^explore: steps: expected step numbers counted from 0 on"):
        explore(lstm, x, steps=range(-60, 0))
    assert not ran
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"^rw.trace: steps: the window starts at step 300, past the end of 'lstm.l0', "
                                         r"which runs 200 steps \(0–199\)"):
        explore(lstm, x, steps=slice(300, 400))


def test_explore_of_a_trace_shows_that_trace_with_nothing_to_rerun(lstm):
    tr = trace(lstm, torch.randn(2, 3, 4))
    ex = explore(tr, batch=1)
    assert isinstance(ex, Explorer) and ex.trace is tr and ex.live is None and ex.batch.value == 1


def test_explore_of_a_model_holds_its_live_model_and_the_hidden_state_it_was_given(lstm):
    x, h0 = torch.randn(1, 3, 4), torch.randn(2, 1, 8)
    ex = explore(lstm, x, hidden=(h0, torch.zeros(2, 1, 8)))
    assert isinstance(ex.live, LiveModel)
    want = lstm(x, (h0, torch.zeros(2, 1, 8)))[0][0].detach().numpy()
    torch.testing.assert_close(torch.from_numpy(ex.trace.layers["lstm.l1"].states["h"][0]), torch.from_numpy(want))
    assert isinstance(live(lstm, "explore"), LiveModel)


def test_gradient_flow_arguments_that_make_no_sense_get_one_sentence():
    models = [nn.GRU(3, 4), nn.RNN(3, 4)]
    optimizer = torch.optim.SGD(models[0].parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"^gradient_flow: give lr= or optimizer=, not both$"):
        gradient_flow(models[0], torch.randn(5, 1, 3), lr=0.1, optimizer=optimizer)
    with pytest.raises(ValueError, match=r"^gradient_flow: with several models give lr= \(a number\), not optimizer=$"):
        gradient_flow(models, torch.randn(5, 1, 3), optimizer=optimizer)


def test_gradient_flow_names_a_list_of_models_by_position_and_a_dict_by_key():
    torch.manual_seed(1)
    x = torch.randn(5, 1, 3)
    listed = gradient_flow([nn.GRU(3, 4), nn.RNN(3, 4)], x)
    assert list(listed.traces) == ["model 0", "model 1"]
    named = rw.gradient_flow({"gru": nn.GRU(3, 4), 7: nn.RNN(3, 4)}, x, lr=0.1)
    assert list(named.traces) == ["gru", "7"]


def test_gradient_flow_reads_the_weight_norms_only_for_the_update_chart(monkeypatch):
    """The weight norms serve the update/weight chart alone, which needs a learning rate: without
    lr= or optimizer= the model's weights are not read for them (no chart either way)."""
    read = []
    monkeypatch.setattr(LiveModel, "weight_norms", lambda self: read.append(self) or {})
    torch.manual_seed(1)
    x = torch.randn(5, 1, 3)
    single, several = gradient_flow(nn.GRU(3, 4), x), gradient_flow([nn.GRU(3, 4), nn.RNN(3, 4)], x)
    assert read == [] and not hasattr(single, "update_chart") and not hasattr(several, "update_chart")
    gradient_flow(nn.GRU(3, 4), x, lr=0.1)
    gradient_flow([nn.GRU(3, 4), nn.RNN(3, 4)], x, lr=0.1)
    assert len(read) == 3


class _Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(6, 4)
        self.rnn = nn.GRU(4, 5, batch_first=True)
        self.head = nn.Linear(5, 6)

    def forward(self, ids):
        return self.head(self.rnn(self.emb(ids))[0])


def test_explore_with_attribution_sends_the_live_models_attribution_of_the_chosen_step():
    from rnnwidgets.capture.attribution import attribution
    from tests.model_state import assert_untouched, snapshot

    torch.manual_seed(1)
    model, ids = _Tokens().eval(), torch.randint(0, 6, (2, 7))
    vocab = list("abcdef")
    before = snapshot(model)
    ex = explore(model, ids, tokens=[[vocab[i] for i in row] for row in ids.tolist()], decode=vocab, attribution=True)
    sent = ex.view.attribution
    assert sent["t"] == ex.view.t == 0 and sent["batch"] == 0
    ex.view.t = 4                                            # the browser's step, once a scrub rests
    sent = ex.view.attribution
    assert sent["t"] == 4 and sent["values"] == pytest.approx(attribution(model, ids, t=4)[0].tolist(), rel=1e-5)
    with torch.no_grad():
        predicted = vocab[int(model(ids)[0, 4].argmax())]
    assert f"step 4 ({predicted!r})" in sent["title"] and "summed over the embedding" in sent["title"]
    ex.batch.value = 1
    assert ex.view.attribution["batch"] == 1
    assert ex.view.attribution["values"] == pytest.approx(attribution(model, ids, t=4)[1].tolist(), rel=1e-5)
    new = torch.randint(0, 6, (2, 7))
    ex.update(new)                                           # new inputs: their attributions
    assert ex.view.attribution["values"] == pytest.approx(attribution(model, new, t=4)[1].tolist(), rel=1e-5)
    assert_untouched(model, before)


def test_explore_with_attribution_in_a_window_of_steps_explains_the_models_own_step():
    """rw.explore(..., steps=slice(2, 7)): step 2 of the view is the model's step 4; its bars are
    the window's input steps 2..6, and the title says step 4."""
    from rnnwidgets.capture.attribution import attribution

    torch.manual_seed(1)
    model, ids = _Tokens().eval(), torch.randint(0, 6, (2, 9))
    ex = explore(model, ids, decode=list("abcdef"), attribution=True, steps=slice(2, 7))
    ex.view.t = 2
    sent = ex.view.attribution
    assert sent["t"] == 2 and "why the prediction at step 4 (" in sent["title"], sent["title"]
    assert sent["values"] == pytest.approx(attribution(model, ids, t=4)[0, 2:7].tolist(), rel=1e-5)


def test_explore_attribution_needs_the_live_model_and_says_why_it_cannot_attribute(lstm):
    with pytest.raises(ValueError, match=r"attribution needs the live model; give explore\(model, inputs, attribution"):
        explore(trace(lstm, torch.randn(1, 3, 4)), attribution=True)

    class LastStep(nn.Module):      # one prediction of the whole sequence: no prediction at a step
        def __init__(self):
            super().__init__()
            self.rnn, self.head = lstm, nn.Linear(8, 2)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    ex = explore(LastStep(), torch.randn(1, 3, 4), attribution=True)
    sent = ex.view.attribution
    assert sent["values"] == [] and sent["title"].startswith("no attribution for step 0: ValueError: rw.attribution: "
                                                             "t: the model's output (1, 2) has no time axis")


def test_compare_traces_a_model_on_two_inputs_or_two_models_on_one(lstm):
    x = torch.randn(1, 6, 4)
    y = x.clone()
    y[:, 3] += 1.0
    view = rw.compare(lstm, x, y[:, :5], tokens=[list("abcdef")], tokens_b=[list("abcXe")])
    assert view.first_divergence() == 3                  # the inputs differ from step 3 on
    assert view.index["layers"][0]["lengths"] == [6, 5]
    np.testing.assert_array_equal(view.a.layers["lstm.l1"].h, trace(lstm, x).layers["lstm.l1"].h)
    other = nn.LSTM(4, 8, num_layers=2, batch_first=True)
    checkpoints = rw.compare(lstm, other, x, names=("epoch 1", "epoch 2"))
    assert checkpoints.first_divergence() == 0 and checkpoints.index["names"] == ["epoch 1", "epoch 2"]
    same = rw.compare(lstm, lstm, x)
    assert same.first_divergence() is None and same.differing_units() == []


def test_compare_arguments_that_make_no_sense_get_one_sentence(lstm):
    x = torch.randn(1, 3, 4)
    tr = trace(lstm, x)
    with pytest.raises(ValueError, match=r"compare\(trace_a, trace_b\) takes no inputs"):
        rw.compare(tr, tr, x)
    with pytest.raises(ValueError, match="expected \\(trace_a, trace_b\\), \\(model, inputs_a, inputs_b\\)"):
        rw.compare(lstm, x)
    with pytest.raises(ValueError, match="give tokens=, not tokens_b="):
        rw.compare(lstm, lstm, x, tokens_b=[list("abc")])
    with pytest.raises(TypeError, match="compare: expected a torch.nn.Module"):
        rw.compare("model", x, x)
