"""What a model's forward needs besides its input, the same in every entry point (capture/call.py),
checked with the models of the public tutorials (tests/models.py) as they are written there:
final states equal the model's own, gates in range, and the recurrences hold on the numbers."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from model_state import assert_untouched, snapshot
from models import CharRNN, DecoderRNN, EncoderRNN, MinGRU, OneTokenEncoder, PackedClassifier, RNNModel, log_g
from torch import nn
from torch.utils.data import DataLoader, Dataset

import rnnwidgets as rw
from rnnwidgets.kinds import SIGMOID_GATES, previous

ATOL = 1e-5


def check_gates(lt):
    """Gates in range, and the kind's recurrence between h (and c) and its gates."""
    for name, gate in lt.gates.items():
        low, high = (0, 1) if name in SIGMOID_GATES else (-1, 1)
        assert gate.min() >= low and gate.max() <= high, f"{lt.name} {name} out of [{low}, {high}]"
    if lt.kind == "lstm":
        g = lt.gates
        c_prev = previous(lt.states["c"], lt.initial.get("c"))
        np.testing.assert_allclose(lt.states["c"], g["forget"] * c_prev + g["input"] * g["cell"], atol=ATOL)
        np.testing.assert_allclose(lt.h, g["output"] * np.tanh(lt.states["c"]), atol=ATOL)
    if lt.kind == "gru":
        g = lt.gates
        h_prev = previous(lt.h, lt.initial.get("h"))
        np.testing.assert_allclose(lt.h, (1 - g["update"]) * g["new"] + g["update"] * h_prev, atol=ATOL)


# ---- forward(input, hidden) with init_hidden: the word language model ------------------------------
@pytest.mark.parametrize("rnn_type", ["LSTM", "GRU"])
def test_word_language_model_without_and_with_hidden(rnn_type):
    torch.manual_seed(0)
    model = RNNModel(rnn_type, 40, 8, 6, 2).eval()
    ids = torch.randint(0, 40, (7, 3))                          # (time, batch) as the example batches
    before = snapshot(model)
    for hidden in (None, tuple(torch.randn(2, 3, 6) for _ in range(2)) if rnn_type == "LSTM"
                   else torch.randn(2, 3, 6)):
        tr = rw.trace(model, ids, hidden=hidden)
        with torch.no_grad():
            _, own = model(ids, model.init_hidden(3) if hidden is None else hidden)
        h_n, c_n = own if rnn_type == "LSTM" else (own, None)
        assert list(tr.layers) == ["rnn.l0", "rnn.l1"]
        for k in range(2):
            lt = tr.layers[f"rnn.l{k}"]
            assert lt.h.shape == (3, 7, 6)
            np.testing.assert_allclose(lt.h[:, -1], h_n[k].numpy(), atol=ATOL)
            if c_n is not None:
                np.testing.assert_allclose(lt.states["c"][:, -1], c_n[k].numpy(), atol=ATOL)
            check_gates(lt)
    assert_untouched(model, before)


def test_word_language_model_gradients_at_the_last_step():
    torch.manual_seed(1)
    model = RNNModel("LSTM", 30, 5, 4, 1, dropout=0.0).eval()
    ids = torch.randint(0, 30, (6, 2))
    target = torch.randint(0, 30, (12,))
    loss = lambda out: F.nll_loss(out[0], target)               # noqa: E731  the output is (time·batch, vocab)
    flow = rw.gradient_flow(model, ids, loss=loss)
    grads = flow.trace.layers["rnn.l0"].grads["h"]
    assert all(p.grad is None for p in model.parameters())     # the model's .grad fields are left alone
    # reference: the same forward by hand, d loss / d output at the last step (no later step to pass through)
    emb = model.encoder(ids)
    out, _ = model.rnn(emb, model.init_hidden(2))
    out.retain_grad()
    F.nll_loss(F.log_softmax(model.decoder(out).view(-1, 30), dim=1), target).backward()
    np.testing.assert_allclose(grads[:, -1], out.grad[-1].numpy(), atol=1e-6)


def test_trace_dataset_over_word_language_model_batches_leaves_targets_out():
    torch.manual_seed(10)
    model = RNNModel("GRU", 40, 8, 6, 1).eval()
    data = torch.randint(0, 40, (5, 2))
    batches = [(data, data.view(-1)), (data[:, :1], data[:, 0])]     # (data, targets) as get_batch gives
    ds = rw.trace_dataset(model, batches, progress=False)
    np.testing.assert_array_equal(ds.lengths, [5, 5, 5])
    whole = rw.trace(model, data).layers["rnn.l0"].h
    np.testing.assert_allclose(ds.values("rnn.l0", "h")[:10], np.concatenate(list(whole)), atol=ATOL)


# ---- forward(ids, lengths) packing inside -------------------------------------------------------
def packed_case():
    torch.manual_seed(2)
    model = PackedClassifier(30, 5, 4).eval()
    lengths = torch.tensor([6, 3, 4])
    ids = torch.randint(1, 30, (3, 6)) * (torch.arange(6) < lengths[:, None])
    return model, ids, lengths


def check_packed(tr, model, ids, lengths):
    with torch.no_grad():
        model(ids, lengths)
    h_n, c_n = model.last_state
    lt = tr.layers["lstm.l0"]
    np.testing.assert_array_equal(tr.lengths, lengths.numpy())
    last = lengths.numpy() - 1
    np.testing.assert_allclose(lt.h[np.arange(3), last], h_n[0].numpy(), atol=ATOL)
    np.testing.assert_allclose(lt.states["c"][np.arange(3), last], c_n[0].numpy(), atol=ATOL)
    check_gates(lt)


def test_lengths_by_keyword_by_position_as_a_tuple_and_as_a_dict():
    model, ids, lengths = packed_case()
    for tr in (rw.trace(model, ids, kwargs={"lengths": lengths}), rw.trace(model, ids, args=(lengths,)),
               rw.trace(model, (ids, lengths)), rw.trace(model, {"ids": ids, "lengths": lengths, "label": 1})):
        check_packed(tr, model, ids, lengths)


def test_forgotten_lengths_say_what_was_tried_and_the_call_to_write():
    model, ids, _ = packed_case()
    with pytest.raises(TypeError, match=r"needs 'lengths'.*model\(ids=inputs\).*"
                                        r"rw\.trace\(model, ids, kwargs=\{'lengths': lengths\}\)"):
        rw.trace(model, ids)
    with pytest.raises(TypeError, match=r"kwargs names \['length'\], which PackedClassifier.forward\(ids, lengths\)"):
        rw.trace(model, ids, kwargs={"length": ids})


class Pairs(Dataset):
    def __init__(self, ids, lengths, as_dict):
        self.ids, self.lengths, self.as_dict = ids, lengths, as_dict

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        item = (self.ids[i], self.lengths[i], i % 2)
        return dict(zip(("ids", "lengths", "label"), item)) if self.as_dict else item


@pytest.mark.parametrize("as_dict", [False, True])
def test_trace_dataset_over_id_length_batches(as_dict):
    model, ids, lengths = packed_case()
    loader = DataLoader(Pairs(ids, lengths, as_dict), batch_size=2)
    ds = rw.trace_dataset(model, loader, progress=False)
    np.testing.assert_array_equal(ds.lengths, lengths.numpy())
    tr = rw.trace(model, ids, kwargs={"lengths": lengths})
    whole = np.concatenate([tr.layers["lstm.l0"].h[b, :n] for b, n in enumerate(lengths.tolist())])
    np.testing.assert_allclose(ds.values("lstm.l0", "h"), whole, atol=ATOL)


# ---- forward(category, input, hidden): a constant before the input ----------------------------------
def char_case():
    torch.manual_seed(3)
    model = CharRNN(4, 10, 12, 10)
    category = F.one_hot(torch.tensor([2]), 4).float()
    line = F.one_hot(torch.tensor([1, 5, 3, 7, 0]), 10).float().unsqueeze(1)     # (time, 1, letters)
    with torch.no_grad():
        hidden, states, outputs = model.initHidden(), [], []
        for x in line:
            output, hidden = model(category, x, hidden)
            states.append(hidden[0])
            outputs.append(output[0])
    return model, category, line, torch.stack(states).numpy(), torch.stack(outputs).numpy()


def test_step_module_with_a_constant_before_its_input():
    model, category, line, states, outputs = char_case()
    tr = rw.trace(model, line, kwargs={"category": category})
    lt = tr.layers["charrnn"]
    np.testing.assert_allclose(lt.h[0], states, atol=ATOL)
    np.testing.assert_allclose(tr.outputs[0], outputs, atol=ATOL)
    with pytest.raises(TypeError, match=r"kwargs=\{'category': category\}"):
        rw.trace(model, line)


def test_recording_reads_the_constant_before_the_input():
    model, category, line, states, _ = char_case()
    with torch.no_grad(), rw.recording(model) as rec:
        hidden = model.initHidden()
        for x in line:
            _, hidden = model(category, x, hidden)
    np.testing.assert_allclose(rec.trace.layers["charrnn"].h[0], states, atol=ATOL)


def test_monitor_and_trace_name_a_step_module_alike():
    model, category, line, _, _ = char_case()
    mon = rw.TrainingMonitor(model, probe=line, kwargs={"category": category}, every=1)
    assert mon.layers == ["charrnn"]
    sum(p.sum() for p in model.parameters()).backward()
    mon.step(1.0)
    assert list(mon.snapshot[1]) == ["charrnn"]


# ---- keyword arguments: a decoder with teacher forcing ------------------------------------------------
def test_decoder_with_teacher_forcing():
    torch.manual_seed(4)
    encoder, decoder = EncoderRNN(20, 6).eval(), DecoderRNN(6, 20, max_length=10).eval()
    source, target = torch.randint(0, 20, (2, 7)), torch.randint(0, 20, (2, 10))
    with torch.no_grad():
        encoder_outputs, encoder_hidden = encoder(source)
        _, decoder_hidden, _ = decoder(encoder_outputs, encoder_hidden, target)
    for tr in (rw.trace(decoder, encoder_outputs, hidden=encoder_hidden, kwargs={"target_tensor": target}),
               rw.trace(decoder, encoder_outputs, kwargs={"encoder_hidden": encoder_hidden, "target_tensor": target})):
        lt = tr.layers["gru.l0"]
        assert lt.h.shape == (2, 10, 6)
        np.testing.assert_allclose(lt.h[:, -1], decoder_hidden[0].numpy(), atol=ATOL)
        np.testing.assert_allclose(lt.initial["h"], encoder_hidden[0].numpy(), atol=ATOL)
        check_gates(lt)
    enc = rw.trace(encoder, source).layers["gru.l0"]
    np.testing.assert_allclose(enc.h[:, -1], encoder_hidden[0].numpy(), atol=ATOL)


# ---- a step module with an nn.GRU inside, one token per call -------------------------------------------
def test_one_token_encoder_is_driven_step_by_step_with_its_gates():
    torch.manual_seed(5)
    model = OneTokenEncoder(20, 6)
    tokens = torch.randint(0, 20, (7, 1))                       # (time, 1) as the tutorial's input_tensor
    with torch.no_grad():
        hidden, states = model.initHidden(), []
        for t in range(7):
            _, hidden = model(tokens[t], hidden)
            states.append(hidden[0, 0])
    before = snapshot(model)
    for inputs in (tokens, list(tokens)):
        tr = rw.trace(model, inputs)
        assert list(tr.layers) == ["onetokenencoder", "gru.l0"]
        lt = tr.layers["gru.l0"]
        assert lt.kind == "gru" and lt.h.shape == (1, 7, 6)
        np.testing.assert_allclose(lt.h[0], torch.stack(states).numpy(), atol=ATOL)
        np.testing.assert_allclose(tr.layers["onetokenencoder"].h[0], lt.h[0], atol=ATOL)
        check_gates(lt)
    assert_untouched(model, before)


def test_recording_the_one_token_encoder_in_the_users_loop():
    torch.manual_seed(5)
    model = OneTokenEncoder(20, 6)
    tokens = torch.randint(0, 20, (7, 1))
    with torch.no_grad(), rw.recording(model) as rec:
        hidden = model.initHidden()
        for t in range(7):
            _, hidden = model(tokens[t], hidden)
    lt = rec.trace.layers["gru.l0"]
    assert list(rec.trace.layers) == ["onetokenencoder", "gru.l0"] and lt.h.shape == (1, 7, 6)
    np.testing.assert_allclose(lt.h[0, -1], hidden[0, 0].numpy(), atol=ATOL)
    check_gates(lt)


def test_a_state_parameter_is_made_only_where_it_reads_as_one():
    class Classifier(PackedClassifier):
        def init_hidden(self, batch):                # a classifier may have one; lengths stay lengths
            return torch.zeros(1, batch, 4)

    model, ids, lengths = packed_case()
    clf = Classifier(30, 5, 4).eval()
    clf.load_state_dict(model.state_dict())
    check_packed(rw.trace(clf, (ids, lengths)), clf, ids, lengths)
    with pytest.raises(TypeError, match=r"needs 'lengths'"):
        rw.trace(clf, ids)


class Broken(nn.Module):
    """forward(input, hidden) around an LSTM that fails whichever way it is called."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4)

    def forward(self, input, hidden):
        return self.lstm(input.view(1, 1, -1)[..., :5], hidden)


def test_a_model_that_fails_both_ways_says_both():
    with pytest.raises(ValueError, match=r"(?s)expected a 2-D or 3-D input.*on the whole sequence.*"
                                         r"driven one step at a time.*no initial hidden state"):
        rw.trace(Broken(), torch.randn(4, 1, 3))


# ---- a parallel scan declaring its state and gate with rw.record ---------------------------------------
def test_min_gru_parallel_scan():
    torch.manual_seed(6)
    model = MinGRU(3, 5)
    x = torch.randn(2, 6, 3)
    with torch.no_grad():
        out, _ = model(x)
    for tr in (rw.trace(model, x), rw.explore(model, x).trace):
        lt = tr.layers["mingru"]
        np.testing.assert_allclose(lt.h, out.numpy(), atol=ATOL)
        z = lt.tracks["update"]
        assert z.min() > 0 and z.max() < 1
        with torch.no_grad():
            candidate = log_g(model.to_hidden_and_gate(x).chunk(2, dim=-1)[0]).exp().numpy()
        np.testing.assert_allclose(lt.h, (1 - z) * previous(lt.h) + z * candidate, atol=ATOL)


def test_min_gru_gradients_through_time_against_the_unrolled_recurrence():
    torch.manual_seed(8)
    model = MinGRU(3, 5)
    x = torch.randn(2, 6, 3)
    weights = torch.randn(2, 6, 5)
    loss = lambda out: (out[0] * weights).sum()                # noqa: E731
    before = snapshot(model)
    flow = rw.gradient_flow(model, x, loss=loss)
    assert_untouched(model, before)
    # the same recurrence one step at a time: each h_t feeds h_{t+1}, so h_t.grad is the whole gradient
    hidden, gate = model.to_hidden_and_gate(x).chunk(2, dim=-1)
    z, candidate = gate.sigmoid(), log_g(hidden).exp()
    h, states = torch.zeros(2, 5), []
    for t in range(6):
        h = (1 - z[:, t]) * h + z[:, t] * candidate[:, t]
        h.retain_grad()
        states.append(h)
    (torch.stack(states, 1) * weights).sum().backward()
    want = torch.stack([s.grad for s in states], 1).numpy()
    np.testing.assert_allclose(flow.trace.layers["mingru"].grads["h"], want, rtol=1e-5, atol=1e-6)
    assert set(flow.trace.param_grads) == {"to_hidden_and_gate.weight"}
    mon = rw.TrainingMonitor(model, probe=(x, loss), every=1)
    mon.step(1.0)
    assert list(mon.snapshot[1]) == ["mingru"]


class OwnLoop(nn.Module):
    """A hand-written recurrence in its own loop, its state declared step by step with rw.record."""

    def __init__(self):
        super().__init__()
        self.w, self.u = nn.Linear(3, 4), nn.Linear(4, 4, bias=False)

    def forward(self, x):
        h, outs = torch.zeros(x.shape[0], 4), []
        for t in range(x.shape[1]):
            h = torch.tanh(self.w(x[:, t]) + self.u(h))
            rw.record("h", h)
            outs.append(h)
        return torch.stack(outs, 1)


def test_recorded_step_states_get_gradients_through_time():
    torch.manual_seed(9)
    model, x = OwnLoop(), torch.randn(2, 5, 3)
    tr = rw.trace(model, x, loss="last")
    h, states = torch.zeros(2, 4), []
    for t in range(5):
        h = torch.tanh(model.w(x[:, t]) + model.u(h))
        h.retain_grad()
        states.append(h)
    states[-1].sum().backward()
    np.testing.assert_allclose(tr.layers["ownloop"].grads["h"], torch.stack([s.grad for s in states], 1).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_a_scan_state_without_decay_refuses_a_loss():
    class Scan(nn.Module):
        def forward(self, x):
            h = x.cumsum(1)
            rw.record("h", h, time=1)
            return h

    with pytest.raises(ValueError, match=r"needs decay=: how much of h_\(t-1\) each h_t keeps"):
        rw.trace(Scan(), torch.randn(1, 4, 2, requires_grad=True), loss="last")


def test_record_time_must_be_a_dimension():
    class Bad(nn.Module):
        def forward(self, x):
            rw.record("h", x, time=3)
            return x

    with pytest.raises(ValueError, match=r"has no dimension 3"):
        rw.trace(Bad(), torch.randn(2, 4))


# ---- every entry point alike ---------------------------------------------------------------------------
def test_entry_points_take_the_same_keywords():
    model, ids, lengths = packed_case()
    explorer = rw.explore(model, ids, kwargs={"lengths": lengths})
    check_packed(explorer.trace, model, ids, lengths)
    flow = rw.gradient_flow(model, ids, loss=lambda out: out[0].sum(), kwargs={"lengths": lengths})
    assert flow.trace.layers["lstm.l0"].grads["h"].shape == (3, 6, 4)
    with_loss = rw.explore(model, ids, kwargs={"lengths": lengths}, loss=lambda out: out[0].sum())
    np.testing.assert_array_equal(with_loss.trace.layers["lstm.l0"].grads["h"], flow.trace.layers["lstm.l0"].grads["h"])
    explorer.update(ids[:2], kwargs={"lengths": lengths[:2]})          # a re-trace takes them too
    np.testing.assert_array_equal(explorer.trace.lengths, lengths[:2].numpy())
    mon = rw.TrainingMonitor(model, probe=(ids, lambda out: out[0].sum()), kwargs={"lengths": lengths}, every=1)
    model(ids, lengths)[0].sum().backward()
    mon.step(1.0)
    assert list(mon.snapshot[1]) == ["lstm.l0"]


@pytest.mark.parametrize("wrap", [nn.DataParallel, torch.compile])
def test_wrapped_models_read_as_the_users_module_paths(wrap):
    torch.manual_seed(7)
    model = RNNModel("LSTM", 30, 5, 4, 1).eval()
    wrapped = wrap(model)
    ids = torch.randint(0, 30, (5, 2))
    assert list(rw.trace(wrapped, ids).layers) == ["rnn.l0"]
    assert rw.TrainingMonitor(wrapped).layers == ["encoder", "rnn.l0", "decoder"]
    assert rw.fixed_points(wrapped, layer="rnn.l0", n_init=2, adam_steps=5, newton_steps=2).layer == "rnn.l0"
    assert list(rw.dynamics(wrapped, ids, k=1).layers) == ["rnn.l0"]
    assert rw.generate(wrapped, [1, 2], steps=1).meta["token_ids"] == rw.generate(model, [1, 2], steps=1).meta["token_ids"]


def test_ids_explained_names_the_embedding_once_and_leaves_other_index_errors_alone():
    from rnnwidgets.capture.call import OutOfVocabulary, ids_explained

    model = nn.Sequential(nn.Embedding(5, 3))
    ids = torch.tensor([[1, 7]])
    with pytest.raises(OutOfVocabulary, match=r"^inner: expected token ids from 0 to 4 \(0 is nn.Embedding\(5, "
                                              r"\.\.\.\)\), got 7$") as raised:
        with ids_explained("outer", model, [ids]), ids_explained("inner", model, [ids]):
            model(ids)
    assert isinstance(raised.value, IndexError) and isinstance(raised.value.__cause__, IndexError)
    with pytest.raises(IndexError, match="list index out of range"):   # ids inside the vocabulary: its own error
        with ids_explained("rw.trace", model, [torch.tensor([[1, 2]])]):
            [][0]
