"""Every public entry point on the models of well-known public examples (tests/public_models.py) and
on the shapes users give them: batch 1, a single step, odd lengths, batch_first, 3 bidirectional
layers, proj_size, dropout in training mode, float64, frozen parameters, the model's own hooks,
DataParallel, a dict output, cells in the model's own loop. Each trace's states are checked against
the modules' own outputs in an independent run, and ``tr.outputs`` against the model's own output.

Then more public models (``more_cases``): bentrevett's time-major packed sentiment LSTM with sorted
lengths, Udacity's char-LSTM with its hidden carried across batches, spro's char-rnn called one
token id per call, deeplearningwizard's LSTM with h0 made in forward, a learned h0 (nn.Parameter),
the seq2seq tutorial's Bahdanau AttnDecoderRNN, the 2024 char-RNN classifier, the time-sequence
example with ``future=``, and GRU-D's hand-written step with ``rw.record``."""
import numpy as np
import pytest
import torch
from public_models import (
    GRUD,
    MAX_LENGTH,
    AirModel,
    AttnDecoderRNN,
    CharRNN,
    EncoderRNN,
    GenRNN,
    LearnedInitGRU,
    LSTMModel,
    LSTMTagger,
    RNNModel,
    SentimentRNN,
    Seq2Seq,
    Sequence,
    SproCharRNN,
    UdacityCharRNN,
    UpgradedSentiment,
)
from torch import nn

import rnnwidgets as rw
from tests.model_state import assert_untouched, snapshot

V = 11


class DictOut(nn.Module):
    """A model returning a dict, as Hugging Face models return a ModelOutput."""
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, 8)
        self.gru = nn.GRU(8, 12, batch_first=True)
        self.head = nn.Linear(12, V)

    def forward(self, input_ids):
        out, h = self.gru(self.emb(input_ids))
        return {"logits": self.head(out), "hidden": h}


class GRUCellLoop(nn.Module):
    def __init__(self, batch_first=True):
        super().__init__()
        self.batch_first = batch_first
        self.cell = nn.GRUCell(3, 10)
        self.fc = nn.Linear(10, 2)

    def forward(self, x):
        xs = x.unbind(1 if self.batch_first else 0)
        h, outs = torch.zeros(x.shape[0 if self.batch_first else 1], 10, dtype=x.dtype), []
        for x_t in xs:
            h = self.cell(x_t, h)
            outs.append(self.fc(h))
        return torch.stack(outs, 1 if self.batch_first else 0)


class Tagger(nn.Module):
    """Bidirectional, 3 layers, batch_first, dropout between layers."""
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(V, 6)
        self.lstm = nn.LSTM(6, 8, num_layers=3, bidirectional=True, batch_first=True, dropout=0.3)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        out, _ = self.lstm(self.embedding(x))
        return self.fc(out)


class Frozen(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, 8)
        self.emb.weight.requires_grad_(False)
        self.lstm = nn.LSTM(8, 10, num_layers=2, batch_first=True, proj_size=4)
        for name, p in self.lstm.named_parameters():
            p.requires_grad_(not name.endswith("l0"))
        self.head = nn.Linear(4, V)

    def forward(self, x):
        return self.head(self.lstm(self.emb(x))[0])


def hooked():
    torch.manual_seed(0)
    model = Frozen().double()
    model.lstm.register_forward_hook(lambda m, i, o: None)
    model.head.register_forward_hook(lambda m, i, o: o * 1.0)
    return model


def own_word_lm(m, x):
    return m(x, m.init_hidden(x.size(1)))[0]


def own_gen(m, x, category):
    h, outs = m.initHidden(), []
    for x_t in x:
        out, h = m(category, x_t, h)
        outs.append(out)
    return torch.stack(outs, 1)


def cases():
    torch.manual_seed(0)
    category = torch.eye(3)[:1]
    return {   # name: (model, inputs, calling, own call (None: model(inputs)), the layer edited)
        "tagger-1d": (LSTMTagger(6, 8, V, 4), torch.randint(0, V, (5,)), {}, None, "lstm.l0"),
        "gen-rnn": (GenRNN(3, 6, 12, 6), torch.randn(4, 1, 6), {"kwargs": {"category": category}},
                    lambda m, x: own_gen(m, x, category), "genrnn"),
        "sentiment-b1": (SentimentRNN(V, 1, 8, 12, 2), torch.randint(0, V, (1, 7)), {},
                         lambda m, x: m(x, m.init_hidden(1))[0], "lstm.l1"),
        "air-1step": (AirModel(), torch.randn(3, 1, 1), {}, None, "lstm.l0"),
        "wordlm-relu-3": (RNNModel("RNN_RELU", V, 8, 12, 3, 0.3), torch.randint(0, V, (5, 3)), {}, own_word_lm,
                          "rnn.l2"),
        "tagger-bi3-train": (Tagger().train(), torch.randint(0, V, (2, 5)), {}, None, "lstm.l2.reverse"),
        "frozen-proj-f64-hooks": (hooked(), torch.randint(0, V, (2, 6)), {}, None, "lstm.l1"),
        "dataparallel": (nn.DataParallel(DictOut()), torch.randint(0, V, (2, 4)), {}, lambda m, x: m(x)["logits"],
                         "gru.l0"),
        "dict-out": (DictOut(), torch.randint(0, V, (2, 5)), {}, lambda m, x: m(x)["logits"], "gru.l0"),
        "grucell-time-major": (GRUCellLoop(batch_first=False), torch.randn(5, 2, 3), {}, None, "cell"),
        "sequence-f64": (Sequence(6).double(), torch.randn(2, 5, dtype=torch.double), {}, None, "lstm2"),
    }


def module_outputs(model, inputs, own, kinds=(nn.RNNBase, nn.RNNCellBase)):
    """Each nn.LSTM / GRU / RNN's calls' (output, h_n) and each cell's outputs (of ``kinds``), and the
    model's output, from the model's own run."""
    seen, handles = {}, []
    for name, m in model.named_modules():
        if isinstance(m, kinds):
            handles.append(m.register_forward_hook(lambda m, i, o, name=name: seen.setdefault(name, []).append(o)))
    try:
        with torch.no_grad():
            out = own(model, inputs) if own else model(inputs)
    finally:
        for h in handles:
            h.remove()
    return seen, out


@pytest.mark.parametrize("name", list(cases()))
def test_states_and_outputs_are_the_models_own(name):
    model, inputs, calling, own, _ = cases()[name]
    model.eval()
    tr = rw.trace(model, inputs, **calling)
    base = model.module if isinstance(model, nn.DataParallel) else model
    seen, out = module_outputs(base, inputs, own)
    for path, calls in seen.items():
        module = dict(base.named_modules())[path]
        if isinstance(module, nn.RNNCellBase):
            h = torch.stack([o[0] if isinstance(o, tuple) else o for o in calls], 1).float().numpy()
            np.testing.assert_allclose(tr.layers[path].h, h, atol=1e-6)
            continue
        (output, h_n), = calls
        h_n = (h_n[0] if isinstance(h_n, tuple) else h_n).float().numpy()
        output = (output if module.batch_first else output.transpose(0, 1)).float().numpy()
        directions, last, width = 1 + module.bidirectional, module.num_layers - 1, module.proj_size or module.hidden_size
        for k in range(module.num_layers):
            for d in range(directions):
                lt = tr.layers[f"{path or type(base).__name__.lower()}.l{k}" + (".reverse" if d else "")]
                np.testing.assert_allclose(lt.h[:, 0 if d else -1], h_n[k * directions + d], atol=1e-6)
                if k == last:
                    np.testing.assert_allclose(lt.h, output[..., d * width:(d + 1) * width], atol=1e-6)
    if out.dim() >= 2 and out.shape[:2] != (1, 1) and name not in ("sentiment-b1",):   # one row a step
        want = out.float().numpy()
        want = want if want.shape[0] == tr.batch else np.swapaxes(want.reshape(tr.steps, tr.batch, -1), 0, 1)
        np.testing.assert_allclose(tr.outputs, want.reshape(tr.outputs.shape), atol=1e-6)


@pytest.mark.parametrize("name", ["tagger-1d", "gen-rnn", "sentiment-b1", "air-1step", "frozen-proj-f64-hooks",
                                  "dataparallel", "dict-out", "grucell-time-major"])
def test_every_entry_point_runs_on_the_model_and_leaves_it_as_found(name, tmp_path):
    model, inputs, calling, own, layer = cases()[name]
    model.eval()
    before = snapshot(model)
    loss = "last" if name != "sentiment-b1" else (lambda out: out[0].sum())
    tr = rw.trace(model, inputs, loss=loss, **calling)
    assert np.isfinite(tr.layers[layer].grads["h"]).all()
    edited = rw.trace(model, inputs, edits=[rw.clamp(layer, "h", [0], [0], 0.5)], **calling)
    assert (edited.layers[layer].h[:, 0, 0] == 0.5).all()
    ex = rw.explore(model, inputs, **calling)
    ex.update(inputs)
    ex.what_if.run(0, [0])
    ex.save_html(tmp_path / "explorer.html")
    rw.gradient_flow(model, inputs, loss=loss, **calling).save_html(tmp_path / "flow.html")
    rw.compare(model, inputs, inputs, **calling).save_html(tmp_path / "compare.html")
    rw.DynamicsView(rw.dynamics(model, inputs, k=2, **calling)).save_html(tmp_path / "dynamics.html")
    if name != "gen-rnn":       # a hand-written step has no closed form (fixed_points says so)
        rw.fixed_points(model, layer=layer.removesuffix(".reverse"), n_init=4, adam_steps=20, newton_steps=5)
    batch_major = inputs.dim() > 1 and name not in ("gen-rnn", "grucell-time-major")
    steps = inputs.shape[1] if batch_major else inputs.shape[0]
    rw.trace_dataset(model, [inputs, inputs], progress=False,
                     tokens=lambda x: [[f"t{i}" for i in range(steps)]] * (len(x) if batch_major else
                                                                          x.shape[1] if x.dim() > 1 else 1),
                     **calling)
    assert_untouched(model, before)
    monitor = rw.TrainingMonitor(model, probe=(inputs, loss), every=1, **calling)
    trained = model.module if isinstance(model, nn.DataParallel) else model
    out = own(trained, inputs) if own else trained(inputs)
    (out["logits"] if isinstance(out, dict) else out).float().pow(2).mean().backward()
    monitor.step(torch.tensor(1.0))
    monitor.save_html(tmp_path / "monitor.html")
    trained.zero_grad(set_to_none=True)


def test_a_dict_output_is_read_by_its_logits_for_outputs_the_last_step_loss_and_generate():
    torch.manual_seed(0)
    model = DictOut().eval()
    x = torch.randint(0, V, (2, 5))
    tr = rw.trace(model, x, loss="last")
    logits = model(x)["logits"]
    np.testing.assert_allclose(tr.outputs, logits.detach().numpy(), atol=1e-6)
    as_tensor = DictOut().eval()            # the same model returning its logits alone: the same gradients
    as_tensor.load_state_dict(model.state_dict())
    as_tensor.forward = lambda input_ids: DictOut.forward(as_tensor, input_ids)["logits"]
    want = rw.trace(as_tensor, x, loss="last")
    np.testing.assert_array_equal(tr.layers["gru.l0"].grads["h"], want.layers["gru.l0"].grads["h"])
    assert np.abs(tr.layers["gru.l0"].grads["h"][:, 0]).max() > 0       # through time to the first step
    gen = rw.generate(model, [3, 1, 4], steps=3)
    ids = [3, 1, 4]
    with torch.no_grad():
        for _ in range(3):
            ids.append(int(model(torch.tensor([ids]))["logits"][0, -1].argmax()))
    assert gen.meta["token_ids"] == [ids]


@pytest.mark.parametrize("batch_first", [True, False])
def test_cells_in_the_models_own_loop_keep_its_output_at_every_step(batch_first):
    torch.manual_seed(0)
    model = GRUCellLoop(batch_first).eval()
    x = torch.randn(2, 5, 3) if batch_first else torch.randn(5, 2, 3)
    tr = rw.trace(model, x)
    want = model(x).detach()
    np.testing.assert_allclose(tr.outputs, (want if batch_first else want.transpose(0, 1)).numpy(), atol=1e-6)
    square = GRUCellLoop().eval()       # batch = steps: the layout cannot be told, so none is guessed
    assert rw.trace(square, torch.randn(3, 3, 3)).outputs is None


# ---- more public models ---------------------------------------------------------------------------------
def grud_batch(batch=2, steps=5, features=4):
    """GRU-D's input (batch, 4, time, features): values, last observed values, mask, time since observed."""
    x = torch.randn(batch, 4, steps, features)
    x[:, 2] = (torch.rand(batch, steps, features) > 0.3).float()
    x[:, 3] = torch.rand(batch, steps, features)
    return x


def more_cases():
    torch.manual_seed(0)
    lengths = torch.tensor([6, 4, 2])                   # sorted longest first, as BucketIterator gives them
    ids = torch.randint(2, V, (6, 3))                   # (sent len, batch)
    for i, n in enumerate(lengths):
        ids[n:, i] = 1                                  # the pad index
    chars = UdacityCharRNN(tuple("abcdefg"), 12, 2, 0.5)
    one_hot = torch.eye(7)[torch.randint(0, 7, (2, 5))]
    with torch.no_grad():                               # the previous batch's state, carried as training does
        _, h = chars.eval()(one_hot, chars.init_hidden(2))
    carried = tuple(each.data for each in h)
    spro_ids = torch.randint(0, V, (5, 2))              # (chunk_len, batch): inp[:, c] a step
    return {   # name: (model, inputs, calling, own call (None: model(inputs)), an editable layer, a quantity)
        "upgraded-sentiment": (UpgradedSentiment(V, 8, 10, 1, 2, True, 0.5, 1), ids,
                               {"kwargs": {"text_lengths": lengths}}, lambda m, x: m(x, lengths), "rnn.l1.reverse",
                               "c"),
        "udacity-char-carried": (chars, one_hot, {"hidden": carried}, lambda m, x: m(x, carried)[0], "lstm.l1", "c"),
        "spro-gru": (SproCharRNN(V, 12, V, "gru", 2), spro_ids, {},
                     lambda m, x: own_spro(m, list(x.unbind(0))), "rnn.l1", "h"),
        "spro-lstm-list": (SproCharRNN(V, 12, V, "lstm", 1), list(spro_ids.unbind(0)), {}, own_spro, "rnn.l0", "c"),
        "lstm-model": (LSTMModel(3, 10, 2, 1), torch.randn(4, 6, 3), {}, None, "lstm.l1", "c"),
        "learned-h0": (LearnedInitGRU(3, 10, 2, 2), torch.randn(2, 6, 3), {}, None, "gru.l0", "update"),
        "attn-seq2seq": (Seq2Seq(EncoderRNN(V, 12), AttnDecoderRNN(12, V)), torch.randint(1, V, (2, 5)),
                         {"kwargs": {"target": torch.randint(1, V, (2, MAX_LENGTH))}},
                         lambda m, x: m(x, TARGET[0]), "decoder.gru.l0", "h"),
        "charrnn-cls": (CharRNN(7, 12, 3), torch.eye(7)[torch.randint(0, 7, (5,))].unsqueeze(1), {}, None, "rnn.l0",
                        "h"),
        "sequence-future": (Sequence(8).double(), torch.randn(2, 5, dtype=torch.double), {"kwargs": {"future": 3}},
                            lambda m, x: m(x, future=3), "lstm1", "c"),
        "grud-record": (GRUD(4, 4, 4, torch.zeros(1, 5, 4), record=True), grud_batch(), {}, None, None, None),
    }


TARGET: list = []


def own_spro(m, steps):
    """spro's train(): ``output, hidden = decoder(inp[:, c], hidden)`` for each c."""
    hidden, outs = m.init_hidden(steps[0].shape[0]), []
    for x_t in steps:
        out, hidden = m(x_t, hidden)
        outs.append(out)
    return torch.stack(outs, 1)


def more_case(name):
    case = more_cases()[name]
    TARGET[:] = [case[2]["kwargs"]["target"]] if name == "attn-seq2seq" else []
    return case


@pytest.mark.parametrize("name", list(more_cases()))
def test_more_models_states_are_the_modules_own(name):
    model, inputs, calling, own, _, _ = more_case(name)
    model.eval()
    tr = rw.trace(model, inputs, **calling)
    seen, out = module_outputs(model, inputs, own, kinds=(nn.RNNBase,))
    if name == "grud-record":                           # its output is its state at every step
        np.testing.assert_allclose(tr.layers["grud"].h, out.numpy(), atol=1e-6)
        return
    for path, calls in seen.items():
        module = dict(model.named_modules())[path]
        directions, width = 1 + module.bidirectional, module.proj_size or module.hidden_size
        for k in range(module.num_layers):
            for d in range(directions):
                lt = tr.layers[f"{path}.l{k}" + (".reverse" if d else "")]
                h_n = [(o[1][0] if isinstance(o[1], tuple) else o[1])[k * directions + d] for o in calls]
                if len(calls) > 1:                      # one call a step (a decoder, a one-token char-rnn)
                    np.testing.assert_allclose(lt.h, torch.stack(h_n, 1).numpy(), atol=1e-6)
                    continue
                np.testing.assert_allclose(lt.h[np.arange(tr.batch), tr.layer_lengths(lt.name) - 1, :] if not d
                                           else lt.h[:, 0], h_n[0].numpy(), atol=1e-6)
                output = calls[0][0]
                if k == module.num_layers - 1 and not isinstance(output, nn.utils.rnn.PackedSequence):
                    output = output if module.batch_first else output.transpose(0, 1)
                    np.testing.assert_allclose(lt.h, output[..., d * width:(d + 1) * width].numpy(), atol=1e-6)
    if tr.outputs is not None:
        want = out.float().numpy()
        np.testing.assert_allclose(tr.outputs, want.reshape(tr.outputs.shape), atol=1e-6)


@pytest.mark.parametrize("name", ["upgraded-sentiment", "udacity-char-carried", "spro-gru", "attn-seq2seq",
                                  "grud-record"])
def test_more_models_every_entry_point_runs_and_leaves_the_model_as_found(name, tmp_path):
    model, inputs, calling, own, layer, quantity = more_case(name)
    model.eval()
    before = snapshot(model)
    loss = "last" if name != "upgraded-sentiment" else (lambda out: out.sum())
    tr = rw.trace(model, inputs, loss=loss, **calling)
    assert all(np.isfinite(lt.grads["h"]).all() for lt in tr.layers.values() if "h" in lt.grads)
    back = rw.Trace.load(tr.save(tmp_path / "trace.npz"))
    np.testing.assert_array_equal(back.first.h, tr.first.h)
    if layer is not None:
        edited = rw.trace(model, inputs, edits=[rw.clamp(layer, quantity, [0], [1], 0.25)], **calling)
        lt = edited.layers[layer]
        values = lt.states[quantity] if quantity in lt.states else lt.gates[quantity]
        np.testing.assert_array_equal(values[edited.layer_lengths(layer) > 1, 1, 0], 0.25)
    ex = rw.explore(model, inputs, **calling)
    ex.update(inputs)
    if layer is not None:
        ex.what_if.run(0, [0])
    ex.save_html(tmp_path / "explorer.html")
    rw.gradient_flow(model, inputs, loss=loss, **calling).save_html(tmp_path / "flow.html")
    rw.compare(model, inputs, inputs, **calling).save_html(tmp_path / "compare.html")
    if layer is not None:
        rw.DynamicsView(rw.dynamics(model, inputs, k=2, **calling)).save_html(tmp_path / "dynamics.html")
    ds = rw.trace_dataset(model, [inputs, inputs], progress=False, **calling,
                          tokens=lambda x: [[f"t{i}" for i in range(tr.steps)]] * tr.batch)
    stats = rw.unit_stats(ds, layer=tr.first.name)
    assert np.isfinite(stats.mean).all()
    assert_untouched(model, before)
    monitor = rw.TrainingMonitor(model, probe=(inputs, loss), every=1, **calling)
    out = own(model, inputs) if own else model(inputs)
    (out[0] if isinstance(out, tuple) else out).float().pow(2).mean().backward()
    monitor.step(torch.tensor(1.0))
    monitor.save_html(tmp_path / "monitor.html")
    model.zero_grad(set_to_none=True)


def test_attribution_of_a_model_packing_sorted_lengths_equals_each_sequence_alone():
    """bentrevett's packs with enforce_sorted=True: the interpolation points keep each sequence's
    copies together, so the lengths stay sorted and each row is the sequence's own attribution."""
    model, ids, calling, _, _, _ = more_case("upgraded-sentiment")
    model.eval()
    lengths = calling["kwargs"]["text_lengths"]
    a = rw.attribution(model, ids, steps=8, **calling)
    assert a.shape == (3, 6)
    for b, n in enumerate(lengths.tolist()):
        alone = rw.attribution(model, ids[:n, b:b + 1], steps=8, kwargs={"text_lengths": lengths[b:b + 1]})
        np.testing.assert_allclose(a[b, :n], alone[0], atol=1e-6)
        assert (a[b, n:] == 0).all()                    # padding past the length is not read


def test_attribution_of_the_time_sequence_example_reads_one_value_a_step():
    """Sequence's input is (batch, time), one value a step (input.split(1, dim=1)), its output (batch,
    time + future): gradient x input equals autograd's, integrated gradients add up to f(x) - f(0)."""
    model, x, calling, _, _, _ = more_case("sequence-future")
    model.eval()
    a = rw.attribution(model, x, t=3, method="gradient_x_input", **calling)
    xr = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(model(xr, future=3)[:, 3].sum(), xr)
    np.testing.assert_allclose(a, (x * g).float().numpy(), rtol=1e-5, atol=1e-9)
    ig = rw.attribution(model, x, t=3, steps=32, **calling)
    with torch.no_grad():
        np.testing.assert_allclose(ig.sum(1), (model(x)[:, 3] - model(torch.zeros_like(x))[:, 3]).numpy(),
                                   rtol=1e-4)


def test_a_carried_hidden_is_where_the_trace_starts():
    model, x, calling, _, _, _ = more_case("udacity-char-carried")
    model.eval()
    h0, c0 = calling["hidden"]
    tr = rw.trace(model, x, **calling)
    for k in range(2):
        np.testing.assert_array_equal(tr.layers[f"lstm.l{k}"].initial["h"], h0[k].numpy())
        np.testing.assert_array_equal(tr.layers[f"lstm.l{k}"].initial["c"], c0[k].numpy())
    fresh = rw.trace(model, x)                           # left out: init_hidden(batch), zeros
    assert not np.allclose(fresh.layers["lstm.l0"].h[:, 0], tr.layers["lstm.l0"].h[:, 0])


def test_dynamics_of_a_one_token_char_rnn_is_its_grus_as_run_whole():
    """spro's char-rnn calls its nn.GRU once a token: the GRU's layers give the dynamics (the step
    module's joint state is left out, with a warning), equal to the same GRU run over the sequence."""
    model, ids, _, _, _, _ = more_case("spro-gru")
    model.eval()
    with pytest.warns(UserWarning, match="sprocharrnn"):
        dyn = rw.dynamics(model, ids, k=3)
    assert set(dyn.layers) == {"rnn.l0", "rnn.l1"}

    class Whole(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.encoder, self.rnn = m.encoder, m.rnn

        def forward(self, x):
            return self.rnn(self.encoder(x))[0]

    whole = rw.dynamics(Whole(model), ids, k=3)
    for name in ("rnn.l0", "rnn.l1"):
        np.testing.assert_allclose(dyn.layers[name].singular_values, whole.layers[name].singular_values, atol=1e-5)


@pytest.mark.parametrize("name", ["udacity-char-carried", "lstm-model"])
def test_generate_says_in_one_sentence_that_it_feeds_token_ids(name):
    model = more_case(name)[0].eval()
    before = snapshot(model)
    with pytest.raises((ValueError, TypeError), match=r"^rw.generate: expected a model that reads token ids "
                                                      rf"\(batch, time\) and returns logits .*; {type(model).__name__} "
                                                      r"failed on the ids \(1, 3\): [^\n]*$"):
        rw.generate(model, [3, 1, 4], steps=2)
    assert_untouched(model, before)


def test_an_edit_of_a_recorded_state_is_refused_in_one_sentence():
    model, x, _, _, _, _ = more_case("grud-record")
    with pytest.raises(ValueError, match=r"names no layer of this run; expected a layer of an nn.LSTM / GRU / RNN, "
                                         r"a cell or a step module, and this run has none \(a state recorded with "
                                         r"rw.record is read, not edited\)$"):
        rw.trace(model, x, edits=[rw.clamp("grud", "h", [0], [1], 0.0)])
    plain = GRUD(4, 4, 4, torch.zeros(1, 5, 4))          # the original, no rw.record line: what to add is said
    with pytest.raises(ValueError, match=r"nothing was recorded .* no rw.record\(...\) ran"):
        rw.trace(plain, x)


def test_attribution_of_a_one_token_model_says_it_reads_one_step_at_a_time():
    model, ids, _, _, _, _ = more_case("spro-gru")
    with pytest.raises(RuntimeError, match=r"^rw.attribution: expected a model whose forward takes the whole "
                                           r"sequence; .* failed on it, as a model reading one step at a time does"):
        rw.attribution(model.eval(), ids)


def test_a_learned_initial_state_starts_the_trace_and_gets_its_gradient():
    """h0 an nn.Parameter expanded over the batch: the trace starts from it, and ``tr.param_grads``
    holds its gradient as autograd gives it, with ``.grad`` left as found."""
    model, x, _, _, _, _ = more_case("learned-h0")
    model.eval()
    with torch.no_grad():
        model.h0.normal_()
    before = snapshot(model)
    tr = rw.trace(model, x, loss="last")
    for k in range(2):
        np.testing.assert_array_equal(tr.layers[f"gru.l{k}"].initial["h"], model.h0[k].expand(2, -1).detach().numpy())
    assert_untouched(model, before)
    model(x)[:, -1].sum().backward()
    np.testing.assert_allclose(tr.param_grads["h0"]["norm"], model.h0.grad.norm().item(), rtol=1e-5)
    model.zero_grad(set_to_none=True)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_a_scripted_public_model_is_refused_by_every_entry_point_in_one_sentence():
    """torch.jit.script(model) takes no hooks: each entry point that needs them says to pass the nn.Module."""
    torch.manual_seed(0)
    scripted = torch.jit.script(LSTMModel(3, 10, 2, 1).eval())
    x = torch.randn(2, 4, 3)
    calls = [("rw.trace", lambda: rw.trace(scripted, x)), ("rw.trace", lambda: rw.explore(scripted, x)),
             ("rw.trace", lambda: rw.gradient_flow(scripted, x)), ("rw.trace", lambda: rw.dynamics(scripted, x)),
             ("rw.trace", lambda: rw.trace_dataset(scripted, [x], progress=False)),
             ("rw.fixed_points", lambda: rw.fixed_points(scripted, n_init=2)),
             ("rw.generate", lambda: rw.generate(scripted, [1, 2], steps=2))]
    for who, call in calls:
        with pytest.raises(TypeError, match=rf"^{who}: expected a torch.nn.Module as the model, got a "
                                            r"torch.jit.script-ed module \(pass the nn.Module it was scripted from\)$"):
            call()


@pytest.mark.parametrize("prompt", [[[3, 1, 4]], [[3, 1, 4], [2, 2, 5]], [[3, 1], [2, 2]]])
def test_generate_runs_a_one_token_char_rnn_as_its_own_loop_does(prompt):
    """spro's generate.py: the prompt fed a token a call, then each chosen id, the hidden carried."""
    model = more_case("spro-gru")[0].eval()
    before = snapshot(model)
    gen = rw.generate(model, prompt, steps=3)
    assert_untouched(model, before)
    with torch.no_grad():
        p = torch.tensor(prompt)
        hidden, ids, logits = model.init_hidden(len(prompt)), p, []
        for c in range(p.shape[1]):
            out, hidden = model(p[:, c], hidden)
            logits.append(out)
        for _ in range(3):
            top = out.argmax(-1)
            ids = torch.cat([ids, top[:, None]], 1)
            out, hidden = model(top, hidden)
            logits.append(out)
    assert gen.meta["token_ids"] == ids.tolist()
    np.testing.assert_allclose(gen.outputs, torch.stack(logits, 1).numpy(), atol=1e-6)
    tr = rw.trace(model, ids.t())                       # the same ids traced: the same states
    np.testing.assert_allclose(gen.layers["rnn.l1"].h, tr.layers["rnn.l1"].h, atol=1e-6)
