"""The recurrent kinds (rnnwidgets/kinds.py): gate and state names checked against PyTorch's own
cells, the ``.reverse`` naming rule, and ``previous`` (the state each step started from) checked
against a bidirectional nn.LSTM/nn.GRU's own outputs and initial state."""
import numpy as np
import pytest
import torch
from torch import nn

from rnnwidgets import kinds
from rnnwidgets.kinds import (
    GATES,
    SIGMOID_GATES,
    first_step,
    is_reverse,
    last_forward_layer,
    layer_name,
    module_label,
    previous,
)


def test_gate_and_state_names_of_each_kind():
    assert kinds.KINDS == ("lstm", "gru", "rnn", "cell", "custom")
    assert kinds.gates_of("lstm") == kinds.LSTM_GATES == ("input", "forget", "cell", "output")
    assert kinds.gates_of("gru") == kinds.GRU_GATES == ("reset", "update", "new")
    assert [kinds.gates_of(k) for k in ("rnn", "cell", "custom")] == [(), (), ()]
    assert kinds.states_of("lstm") == ("h", "c")
    assert [kinds.states_of(k) for k in ("gru", "rnn", "cell", "custom")] == [("h",)] * 4
    assert SIGMOID_GATES == {"input", "forget", "output", "reset", "update"}
    assert SIGMOID_GATES < {g for gates in GATES.values() for g in gates}  # "cell" and "new" are tanh


def test_describe_gives_the_front_end_each_kind_as_plain_data():
    assert kinds.describe("lstm") == {"kind": "lstm", "gates": ["input", "forget", "cell", "output"],
                                      "states": ["h", "c"], "sigmoid": ["input", "forget", "output"]}
    assert kinds.describe("gru") == {"kind": "gru", "gates": ["reset", "update", "new"], "states": ["h"],
                                     "sigmoid": ["reset", "update"]}
    for kind in ("rnn", "cell", "custom"):
        assert kinds.describe(kind) == {"kind": kind, "gates": [], "states": ["h"], "sigmoid": []}


def squash(name, x):
    return torch.sigmoid(x) if name in SIGMOID_GATES else torch.tanh(x)


def test_lstm_gate_names_follow_torchs_chunk_order_and_squashing():
    torch.manual_seed(0)
    cell, x = nn.LSTMCell(3, 4), torch.randn(2, 3)
    h0, c0 = torch.randn(2, 4), torch.randn(2, 4)
    with torch.no_grad():
        pre = (x @ cell.weight_ih.T + cell.bias_ih + h0 @ cell.weight_hh.T + cell.bias_hh).chunk(4, dim=1)
        g = {name: squash(name, p) for name, p in zip(kinds.LSTM_GATES, pre)}
        c = g["forget"] * c0 + g["input"] * g["cell"]
        h = g["output"] * torch.tanh(c)
        want_h, want_c = cell(x, (h0, c0))
    torch.testing.assert_close(h, want_h)
    torch.testing.assert_close(c, want_c)


def test_gru_gate_names_follow_torchs_chunk_order_and_squashing():
    torch.manual_seed(1)
    cell, x, h0 = nn.GRUCell(3, 4), torch.randn(2, 3), torch.randn(2, 4)
    with torch.no_grad():
        gi = dict(zip(kinds.GRU_GATES, (x @ cell.weight_ih.T + cell.bias_ih).chunk(3, dim=1)))
        gh = dict(zip(kinds.GRU_GATES, (h0 @ cell.weight_hh.T + cell.bias_hh).chunk(3, dim=1)))
        r = squash("reset", gi["reset"] + gh["reset"])
        z = squash("update", gi["update"] + gh["update"])
        n = squash("new", gi["new"] + r * gh["new"])
        want = cell(x, h0)
    torch.testing.assert_close((1 - z) * n + z * h0, want)


# ---- the .reverse naming rule --------------------------------------------------------------------

def test_layer_names_and_the_reverse_rule():
    assert layer_name("lstm", 0) == "lstm.l0"
    assert layer_name("enc.rnn", 2, reverse=True) == "enc.rnn.l2.reverse"
    assert module_label("", "CharRNN") == "charrnn" and module_label("enc.rnn", "CharRNN") == "enc.rnn"
    assert is_reverse("enc.rnn.l2.reverse") and is_reverse(layer_name("gru", 1, True))
    assert not is_reverse("lstm.l0") and not is_reverse("reverse.l0") and not is_reverse("lstm.l0_reverse")
    assert not is_reverse("lstm.l0reverse")
    assert is_reverse("dec.gru.l0.reverse@1") and not is_reverse("dec.gru.l0@1")   # a later call of the module


def test_the_layer_shown_first_is_the_last_forward_one():
    names = [layer_name("lstm", k, r) for k in range(3) for r in (False, True)]
    assert last_forward_layer(names) == "lstm.l2"
    assert last_forward_layer(iter(names)) == "lstm.l2"           # any iterable of names
    assert last_forward_layer(["enc.l0", "dec.l0.reverse"]) == "enc.l0"
    assert last_forward_layer(["a.l0.reverse", "a.l1.reverse"]) == "a.l1.reverse"


def test_a_traced_bidirectional_stack_is_named_by_the_rule():
    from rnnwidgets.capture import trace

    tr = trace(nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True), torch.randn(1, 4, 3))
    assert list(tr.layers) == ["lstm.l0", "lstm.l0.reverse", "lstm.l1", "lstm.l1.reverse"]
    assert [lt.reverse for lt in tr.layers.values()] == [is_reverse(n) for n in tr.layers] == [False, True] * 2
    assert last_forward_layer(tr.layers) == "lstm.l1"


# ---- previous: the state each step started from ------------------------------------------------

def test_previous_shifts_forward_and_backward_with_the_initial_state_at_the_first_step():
    state = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)   # (batch 2, time 3, units 2)
    initial = np.array([[-1.0, -2.0], [-3.0, -4.0]])
    forward = previous(state, initial)
    np.testing.assert_array_equal(forward[:, 0], initial)
    np.testing.assert_array_equal(forward[:, 1:], state[:, :-1])
    backward = previous(state, initial, reverse=True)
    np.testing.assert_array_equal(backward[:, -1], initial)
    np.testing.assert_array_equal(backward[:, :-1], state[:, 1:])
    assert forward.dtype == backward.dtype == np.float32              # the initial state is cast, not promoting
    np.testing.assert_array_equal(previous(state)[:, 0], 0)          # no initial state: zeros
    np.testing.assert_array_equal(previous(state, reverse=True)[:, 2], 0)
    np.testing.assert_array_equal(state, np.arange(12, dtype=np.float32).reshape(2, 3, 2))   # not written


def test_a_reverse_layer_starts_from_each_elements_last_valid_step():
    state = np.arange(3 * 4 * 1, dtype=np.float64).reshape(3, 4, 1) + 1   # rows 1..4, 5..8, 9..12
    initial = np.array([[-1.0], [-2.0], [-3.0]])
    prev = previous(state, initial, reverse=True, lengths=[4, 2, 0])
    # only valid steps are compared: what a padded step "started from" has no meaning
    np.testing.assert_array_equal(prev[0, :, 0], [2, 3, 4, -1])
    np.testing.assert_array_equal(prev[1, :2, 0], [6, -2])            # length 2: its run starts at step 1
    np.testing.assert_array_equal(prev[2, :3, 0], [10, 11, 12])       # length 0: no start is written
    one = previous(state, np.array([70.0]), reverse=True, lengths=np.array([1, 3, 4]))   # (units,) for all
    np.testing.assert_array_equal(one[0, :1, 0], [70])
    np.testing.assert_array_equal(one[1, :3, 0], [6, 7, 70])
    np.testing.assert_array_equal(one[2, :, 0], [10, 11, 12, 70])
    np.testing.assert_array_equal(previous(state, reverse=True, lengths=[2, 2, 2])[:, 1, 0], [0, 0, 0])
    # the last step of a shorter element is padding: it reads 0, never memory left from before
    np.testing.assert_array_equal(previous(state, reverse=True, lengths=[4, 2, 0])[1, 3], [0])


def test_first_step():
    assert first_step(5) == 0 and first_step(5, length=3) == 0
    assert first_step(5, reverse=True) == 4 and first_step(5, length=3, reverse=True) == 2


def per_step_states(module, x, hidden):
    """Each direction's states after every step (batch, time, units), from the module's own final
    states: the forward direction after x[:, :t+1], the reverse one after x[:, t:]."""
    lstm = isinstance(module, nn.LSTM)
    steps = x.shape[1]
    out = {d: {s: [] for s in ("h", "c")} for d in (0, 1)}
    with torch.no_grad():
        for t in range(steps):
            for d, part in ((0, x[:, :t + 1]), (1, x[:, t:])):
                _, final = module(part, hidden)
                h, c = final if lstm else (final, final)
                out[d]["h"].append(h[d])
                out[d]["c"].append(c[d])
    return {d: {s: torch.stack(v, dim=1).numpy() for s, v in states.items()} for d, states in out.items()}


def direction_cell(module, d):
    suffix = "_reverse" if d else ""
    cell = (nn.LSTMCell if isinstance(module, nn.LSTM) else nn.GRUCell)(module.input_size, module.hidden_size)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(module, f"{name}_l0{suffix}"))
    return cell


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_previous_is_the_state_torchs_bidirectional_module_started_each_step_from(kind):
    torch.manual_seed(2)
    units = 4
    module = (nn.LSTM if kind == "lstm" else nn.GRU)(3, units, bidirectional=True, batch_first=True)
    x = torch.randn(2, 5, 3)
    h0 = torch.randn(2, 2, units)               # (direction, batch, units)
    hidden = (h0, torch.randn(2, 2, units)) if kind == "lstm" else h0
    initial = {"h": h0.numpy(), "c": hidden[1].numpy() if kind == "lstm" else None}
    states = per_step_states(module, x, hidden)
    with torch.no_grad():
        out = module(x, hidden)[0].numpy()
    np.testing.assert_allclose(states[0]["h"], out[..., :units], rtol=0, atol=1e-6)   # the module's own outputs
    np.testing.assert_allclose(states[1]["h"], out[..., units:], rtol=0, atol=1e-6)
    for d, reverse in ((0, False), (1, True)):
        prev = {s: previous(states[d][s], initial[s][d], reverse=reverse) for s in kinds.states_of(kind)}
        first = first_step(5, reverse=reverse)
        for s in prev:
            np.testing.assert_array_equal(prev[s][:, first], initial[s][d])
        cell = direction_cell(module, d)
        with torch.no_grad():
            for t in range(5):
                start = {s: torch.from_numpy(prev[s][:, t]) for s in prev}
                got = cell(x[:, t], (start["h"], start["c"])) if kind == "lstm" else (cell(x[:, t], start["h"]),)
                for s, value in zip(kinds.states_of(kind), got):
                    np.testing.assert_allclose(value.numpy(), states[d][s][:, t], rtol=0, atol=1e-5,
                                               err_msg=f"direction {d}, state {s}, step {t}")


def test_previous_of_a_packed_bidirectional_gru_starts_each_reverse_run_at_its_length():
    torch.manual_seed(3)
    units, lengths = 4, [5, 3, 1]
    module = nn.GRU(3, units, bidirectional=True, batch_first=True)
    x, h0 = torch.randn(3, 5, 3), torch.randn(2, 3, units)
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    with torch.no_grad():
        out = nn.utils.rnn.pad_packed_sequence(module(packed, h0)[0], batch_first=True, total_length=5)[0].numpy()
    reverse = out[..., units:]
    prev = previous(reverse, h0[1].numpy(), reverse=True, lengths=lengths)
    cell = direction_cell(module, 1)
    for b, length in enumerate(lengths):
        with torch.no_grad():   # each element alone, unpadded: its reverse run starts at its last step
            alone = module(x[b:b + 1, :length], h0[:, b:b + 1].contiguous())[0][0, :, units:].numpy()
        np.testing.assert_allclose(reverse[b, :length], alone, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(prev[b, length - 1], h0[1, b].numpy())
        with torch.no_grad():
            stepped = cell(x[b, :length], torch.from_numpy(prev[b, :length])).numpy()
        np.testing.assert_allclose(stepped, reverse[b, :length], rtol=0, atol=1e-5)
    wrong = previous(reverse, h0[1].numpy(), reverse=True)   # lengths ignored: the short elements start wrong
    assert not np.allclose(wrong[1, 2], h0[1, 1].numpy())
