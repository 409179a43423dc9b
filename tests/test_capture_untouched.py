"""rw.trace leaves the model exactly as it found it, also when something raises half-way:
parameters bit for bit, .grad fields, training flags, requires_grad flags, forward, hooks."""
import contextlib

import numpy as np
import pytest
import torch
from model_state import assert_untouched, snapshot
from torch import nn

from rnnwidgets.capture import trace


class Model(nn.Module):
    """embedding -> 2-layer LSTM (dropout between layers) -> GRU -> linear; optionally raises
    after the recurrent modules ran."""

    def __init__(self, fail_after_rnn=False):
        super().__init__()
        self.embed = nn.Embedding(7, 3)
        self.lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5, batch_first=True)
        self.gru = nn.GRU(4, 4, batch_first=True)
        self.head = nn.Linear(4, 7)
        self.fail_after_rnn = fail_after_rnn

    def forward(self, ids):
        out = self.gru(self.lstm(self.embed(ids))[0])[0]
        if self.fail_after_rnn:
            raise RuntimeError("the model's own error after its RNN ran")
        return self.head(out)


def prepared(fail_after_rnn=False) -> nn.Module:
    """A model in training mode with some frozen parameters, some existing .grad and a user hook."""
    torch.manual_seed(0)
    model = Model(fail_after_rnn)
    model.train()
    model.embed.weight.requires_grad_(False)
    model.lstm.weight_hh_l1.grad = torch.randn_like(model.lstm.weight_hh_l1)
    model.head.bias.grad = torch.randn_like(model.head.bias)
    model.gru.register_forward_hook(lambda m, args, out: None)
    model.head.register_forward_pre_hook(lambda m, args: None)
    return model


IDS = torch.randint(0, 7, (2, 5))


@pytest.mark.parametrize("loss", [None, "last", lambda out: out.square().mean()])
def test_after_a_trace(loss):
    model = prepared()
    before = snapshot(model)
    tr = trace(model, IDS, loss=loss)
    assert list(tr.layers) == ["lstm.l0", "lstm.l1", "gru.l0"]
    assert_untouched(model, before)


@pytest.mark.parametrize("loss", [None, "last"])
def test_after_a_trace_under_edits(loss):
    import rnnwidgets as rw

    model = prepared()
    before = snapshot(model)
    edits = [rw.clamp("lstm.l0", "c", [1], range(1, 3), 0.0), rw.clamp("gru.l0", "update", [0, 2], None, 1.0)]
    tr = trace(model, IDS, loss=loss, edits=edits)
    assert tr.meta["edits"] == [e.describe() for e in edits]
    assert_untouched(model, before)


def test_when_the_loss_raises():
    model = prepared()
    before = snapshot(model)

    def broken(out):
        raise KeyError("the user's loss failed")
    with pytest.raises(KeyError, match="the user's loss failed"):
        trace(model, IDS, loss=broken)
    assert_untouched(model, before)


def test_when_the_model_raises_after_its_rnn_ran():
    model = prepared(fail_after_rnn=True)
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="the model's own error"):
        trace(model, IDS, loss="last")
    assert_untouched(model, before)


def test_when_the_input_is_wrong_inside_a_recurrent_module():
    model = prepared()
    before = snapshot(model)
    with pytest.raises(ValueError, match="expected"):
        trace(model.lstm, torch.randn(2, 5, 9))   # 9 features, the LSTM takes 3
    with pytest.raises(ValueError, match="initial state"):
        trace(model.gru, torch.randn(2, 5, 4), hidden=torch.zeros(3))
    assert_untouched(model, before)


def test_a_users_own_instance_forward_is_restored_and_the_model_still_runs():
    model = prepared()
    stock = model.gru.forward
    calls = []

    def own_forward(*args, **kwargs):
        calls.append(1)
        return stock(*args, **kwargs)
    model.gru.forward = own_forward
    before = snapshot(model)
    trace(model, IDS)
    assert_untouched(model, before)
    assert model.gru.forward is own_forward
    model(IDS)
    assert calls == [1]


def test_user_hooks_still_run_during_the_trace():
    model = prepared()
    seen = []
    model.lstm.register_forward_hook(lambda m, args, out: seen.append(type(out[0]).__name__))
    before = snapshot(model)
    trace(model, IDS)
    assert seen == ["Tensor"]
    assert_untouched(model, before)


def test_training_mode_output_has_no_dropout_and_the_flag_stays():
    model = prepared()
    tr = trace(model, IDS)
    assert model.training and model.lstm.training
    model.eval()
    with torch.no_grad():
        want = model(IDS)
    model.train()
    assert (abs(tr.outputs - want.numpy()).max()) < 1e-6


@pytest.mark.parametrize("loss", [None, "last"])
def test_the_given_hidden_is_left_as_found_and_the_trace_keeps_its_own_copy(loss):
    model = prepared()
    before = snapshot(model.lstm)
    h0, c0 = torch.randn(2, 2, 4), torch.randn(2, 2, 4)
    kept = h0.clone(), c0.clone()
    tr = trace(model.lstm, torch.randn(2, 5, 3), hidden=(h0, c0), loss=loss)
    assert torch.equal(h0, kept[0]) and torch.equal(c0, kept[1]) and not h0.requires_grad
    assert not np.shares_memory(tr.layers["lstm.l0"].initial["h"], h0.numpy())
    tr.layers["lstm.l1"].initial["c"][:] = 0   # the trace's arrays are its own
    assert torch.equal(c0, kept[1])
    assert_untouched(model.lstm, before)


# ---- buffers, in-place ops on the output, threads ------------------------------------------------
class Normed(nn.Module):
    """BatchNorm over the features -> LSTM -> a spectral_norm head: in training mode every forward
    moves the running statistics and spectral_norm's power iteration."""

    def __init__(self):
        super().__init__()
        self.norm = nn.BatchNorm1d(3)
        self.lstm = nn.LSTM(3, 4, batch_first=True)
        self.head = nn.utils.spectral_norm(nn.Linear(4, 2))

    def forward(self, x):
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        return self.head(self.lstm(x)[0])


def normed():
    torch.manual_seed(3)
    model = Normed().train()
    model(torch.randn(4, 5, 3))    # statistics and u, v away from their initial values
    return model


X = torch.randn(2, 5, 3)


@pytest.mark.parametrize("call", ["trace", "trace loss", "explore", "explore loss", "gradient_flow"])
def test_buffers_are_left_as_found_in_training_mode(call):
    import rnnwidgets as rw
    model = normed()
    before = snapshot(model)
    tr = {"trace": lambda: trace(model, X), "trace loss": lambda: trace(model, X, loss="last"),
          "explore": lambda: rw.explore(model, X).trace,
          "explore loss": lambda: rw.explore(model, X, loss="last").trace,
          "gradient_flow": lambda: rw.gradient_flow(model, X).trace}[call]()
    assert_untouched(model, before)
    assert tr.meta["training"] is True
    # the trace ran as the model trains: BatchNorm on the batch's statistics
    with torch.no_grad():
        x = model.norm.train()(X.transpose(1, 2)).transpose(1, 2)
        want = model.lstm(x)[0]
    np.testing.assert_allclose(tr.layers["lstm.l0"].h, want.numpy(), atol=1e-6)


def test_an_eval_model_says_so_and_uses_its_running_statistics():
    model = normed().eval()
    before = snapshot(model)
    tr = trace(model, X)
    assert tr.meta["training"] is False
    assert_untouched(model, before)
    with torch.no_grad():
        np.testing.assert_allclose(tr.outputs, model(X).numpy(), atol=1e-6)


@pytest.mark.parametrize("rnn", [nn.LSTM, nn.GRU, nn.RNN])
@pytest.mark.parametrize("edit", ["relu", "hook"])
def test_an_in_place_op_after_the_rnn_does_not_rewrite_the_trace(rnn, edit):
    torch.manual_seed(4)
    module = rnn(3, 4, batch_first=True)
    model = nn.Sequential(module, Pick(), nn.ReLU(inplace=True)) if edit == "relu" else module
    if edit == "hook":
        module.register_forward_hook(lambda m, args, out: out[0].mul_(0))
    x = torch.randn(2, 6, 3)
    tr = trace(model, x)
    with torch.no_grad():
        clean = rnn(3, 4, batch_first=True)
        clean.load_state_dict(module.state_dict())
        want = clean(x)[0]
    assert (want < 0).any()
    np.testing.assert_allclose(tr.layers[next(iter(tr.layers))].h, want.numpy(), atol=1e-6)


class Pick(nn.Module):
    def forward(self, out):
        return out[0]


class Gate(nn.Module):
    """Holds the first trace inside the model's forward until the second is inside too (or a
    second has passed, when traces run one at a time)."""

    def __init__(self):
        super().__init__()
        import threading
        self.first_inside, self.second_inside = threading.Event(), threading.Event()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls == 1:
            self.first_inside.set()
            self.second_inside.wait(timeout=1.0)
        else:
            self.second_inside.set()
        return x


def test_two_threads_tracing_one_model_leave_it_as_found():
    import threading
    torch.manual_seed(5)
    model = nn.Sequential(Gate(), nn.LSTM(3, 4))
    before = snapshot(model)
    x = torch.randn(5, 2, 3)
    results, errors = [], []

    def run():
        try:
            results.append(trace(model, x))
        except Exception as e:   # noqa: BLE001  (reported below)
            errors.append(e)
    first = threading.Thread(target=run)
    first.start()
    model[0].first_inside.wait(timeout=5)
    second = threading.Thread(target=run)
    second.start()
    first.join()
    second.join()
    assert not errors
    assert_untouched(model, before)
    assert "forward" not in model[1].__dict__
    with torch.no_grad():
        want = model[1](x)[0].numpy()
    for tr in results:
        np.testing.assert_allclose(tr.layers["1.l0"].h, want.transpose(1, 0, 2), atol=1e-6)


# ---- every entry point, also when the model's forward raises half-way through any of its calls ----

class Failing(nn.Module):
    """embedding -> 2-layer LSTM (dropout) -> BatchNorm -> GRU -> linear, in training mode; its
    ``fail_on``-th forward call raises after the LSTM and BatchNorm ran (0: never)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(7, 3)
        self.lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.3, batch_first=True)
        self.norm = nn.BatchNorm1d(4)
        self.gru = nn.GRU(4, 4, batch_first=True)
        self.head = nn.Linear(4, 7)
        self.calls, self.fail_on = 0, 0

    def forward(self, ids):
        self.calls += 1
        x = self.norm(self.lstm(self.embed(ids))[0].transpose(1, 2)).transpose(1, 2)
        if self.calls == self.fail_on:
            raise RuntimeError("the model's own error half-way")
        return self.head(self.gru(x)[0])


def failing() -> Failing:
    torch.manual_seed(0)
    model = Failing().train()
    model.embed.weight.requires_grad_(False)
    model.lstm.weight_hh_l1.grad = torch.randn_like(model.lstm.weight_hh_l1)
    model.gru.register_forward_hook(lambda m, args, out: None)
    return model


FAIL_IDS = torch.randint(0, 7, (3, 6))


def _monitor_step(model):
    import rnnwidgets as rw

    model.fail_on, failing_call = 0, model.fail_on
    mon = rw.TrainingMonitor(model, probe=(FAIL_IDS, "last"), every=1, dynamics=True)
    model(FAIL_IDS).square().mean().backward()   # the user's own step: its .grad, RNG and call
    model.calls -= 1
    model.fail_on = failing_call
    return mon, snapshot(model), torch.get_rng_state()


def _what_if(model):
    import rnnwidgets as rw

    model.fail_on, failing_call = 0, model.fail_on
    ex = rw.explore(model, FAIL_IDS)
    model.calls -= 1
    model.fail_on = failing_call
    return ex, snapshot(model), torch.get_rng_state()


ENTRY_POINTS = {   # name -> (setup returning (object, state before, RNG before) or None, the call)
    "trace": (None, lambda m, _: __import__("rnnwidgets").trace(m, FAIL_IDS, loss="last")),
    "explore": (None, lambda m, _: __import__("rnnwidgets").explore(m, FAIL_IDS, loss="last", dynamics=True,
                                                                      attribution=True)),
    "gradient_flow": (None, lambda m, _: __import__("rnnwidgets").gradient_flow(m, FAIL_IDS)),
    "dynamics": (None, lambda m, _: __import__("rnnwidgets").dynamics(m, FAIL_IDS, k=2)),
    "attribution": (None, lambda m, _: __import__("rnnwidgets").attribution(m, FAIL_IDS, t=3)),
    "generate": (None, lambda m, _: __import__("rnnwidgets").generate(m, FAIL_IDS[:2, :3], steps=3)),
    "trace_dataset": (None, lambda m, _: __import__("rnnwidgets").trace_dataset(m, [FAIL_IDS, FAIL_IDS],
                                                                                 progress=False)),
    "fixed_points": (None, lambda m, _: __import__("rnnwidgets").fixed_points(m, layer="gru.l0", n_init=4,
                                                                               adam_steps=5, newton_steps=3)),
    "what-if": (_what_if, lambda m, ex: ex.what_if.run(1, [2, 3], value=0.0)),
    "TrainingMonitor.step": (_monitor_step, lambda m, mon: mon.step(torch.tensor(1.0))),
}


@pytest.mark.parametrize("name", list(ENTRY_POINTS))
def test_every_entry_point_leaves_the_model_as_found_when_its_forward_raises_half_way(name):
    """Parameters, .grad, buffers (BatchNorm's statistics), modes, hooks, forwards, requires_grad,
    the grad mode and torch's RNG state: as found after the call, and after the same call with the
    model raising in each of the forward calls it makes."""
    setup, call = ENTRY_POINTS[name]
    calls, fail_on = None, 0
    while calls is None or fail_on <= calls:
        model = failing()
        model.fail_on = fail_on
        held, before, rng = setup(model) if setup else (None, snapshot(model), torch.get_rng_state())
        if fail_on:   # raised, or shown in the view (the Explorer's attribution strip says what failed)
            with contextlib.suppress(RuntimeError):
                call(model, held)
            assert model.calls == fail_on or name == "trace_dataset", "the failing call was not made"
        else:
            call(model, held)
            calls = model.calls
        assert_untouched(model, before)
        assert torch.equal(torch.get_rng_state(), rng), f"{name} (failing on call {fail_on}) moved torch's RNG"
        fail_on += 1
    assert calls >= 1 or name == "fixed_points"   # fixed_points steps the layer alone, never the forward


class Reassigning(nn.Module):
    """A forward that rebinds its module's state: a weight set from a raw parameter (registered as a
    parameter when it is that parameter, as AWD-LSTM's WeightDrop does in eval mode), a tensor
    attribute it adds, and a (h, c) tuple kept as an attribute (the BiLSTM-CRF tutorial's self.hidden)."""

    def __init__(self, fail=False):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, batch_first=True)
        self.raw = nn.Parameter(self.lstm.weight_hh_l0.detach().clone())
        self.hidden = (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4))
        self.fail = fail

    def forward(self, x):
        self.lstm.weight_hh_l0 = self.raw if not self.training else self.raw * 1.0
        self.lstm.last_input = x.detach()
        out, self.hidden = self.lstm(x, self.hidden)
        if self.fail:
            raise RuntimeError("the model's own error")
        return out


@pytest.mark.parametrize("fail", [False, True])
@pytest.mark.parametrize("loss", [None, "last"])
def test_parameter_registrations_added_tensors_and_kept_state_tuples_are_put_back(fail, loss):
    torch.manual_seed(0)
    model = Reassigning(fail).eval()
    x = torch.randn(2, 5, 3)
    params = [dict(m._parameters) for m in model.modules()]
    hidden, attrs = model.hidden, [set(vars(m)) for m in model.modules()]
    with contextlib.nullcontext() if not fail else pytest.raises(RuntimeError, match="the model's own error"):
        trace(model, x, loss=loss)
    assert [dict(m._parameters) for m in model.modules()] == params        # weight_hh_l0 still a parameter
    assert all(m._parameters[k] is p for m, ps in zip(model.modules(), params) for k, p in ps.items())
    assert model.hidden is hidden
    assert [set(vars(m)) for m in model.modules()] == attrs                # no last_input left behind
    with torch.no_grad():                              # without a trace: the model's own forward does all this
        model.fail = False
        model(x)
    assert model.lstm._parameters["weight_hh_l0"] is model.raw and model.hidden is not hidden
