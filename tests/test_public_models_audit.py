"""Every public entry point on the models of well-known public examples (tests/public_models.py) and
on the shapes users give them: batch 1, a single step, odd lengths, batch_first, 3 bidirectional
layers, proj_size, dropout in training mode, float64, frozen parameters, the model's own hooks,
DataParallel, a dict output, cells in the model's own loop. Each trace's states are checked against
the modules' own outputs in an independent run, and ``tr.outputs`` against the model's own output.

Then more public models (``more_cases``): bentrevett's time-major packed sentiment LSTM with sorted
lengths, Udacity's char-LSTM with its hidden carried across batches, spro's char-rnn called one
token id per call, deeplearningwizard's LSTM with h0 made in forward, a learned h0 (nn.Parameter),
the seq2seq tutorial's Bahdanau AttnDecoderRNN, the 2024 char-RNN classifier, the time-sequence
example with ``future=``, and GRU-D's hand-written step with ``rw.record``.

Then the newest (``newest_cases`` and the tests after it): the chatbot tutorial's packed bidirectional
encoder, its Luong decoder fed (1, batch) ids a call and its greedy search, d2l.ai's RNNModel (one-hot
of ``inputs.T``) and RNNScratch, AWD-LSTM's WeightDrop-wrapped LSTMs, the BiLSTM-CRF tutorial (a random
initial state each forward), piEsposito's peephole LSTM with ``rw.record``; hand-written cells without
record lines (ConvLSTM, a peephole cell loop) and fastrnns' TorchScript LSTMs get one sentence."""
import numpy as np
import pytest
import torch
from public_models import (
    GRUD,
    MAX_LENGTH,
    START_TAG,
    STOP_TAG,
    AirModel,
    AttnDecoderRNN,
    AWDRNNModel,
    BiLSTM_CRF,
    CharRNN,
    ChatbotEncoderRNN,
    ConvLSTM,
    D2LRNNModel,
    EncoderRNN,
    GenRNN,
    GreedySearchDecoder,
    LayerNormLSTMCell,
    LearnedInitGRU,
    LSTMLayer,
    LSTMModel,
    LSTMTagger,
    LuongAttnDecoderRNN,
    PeepholeCustomLSTM,
    PeepholeTagger,
    RNNLMScratch,
    RNNModel,
    RNNScratch,
    ScriptLSTMCell,
    SentimentRNN,
    Seq2Seq,
    Sequence,
    SproCharRNN,
    StackedLSTM,
    UdacityCharRNN,
    UpgradedSentiment,
    WeightDrop,
)
from torch import nn

import rnnwidgets as rw
from tests.model_state import assert_untouched, snapshot

SEED = 5   # BiLSTM_CRF draws its initial state with torch.randn at every forward: one seed for both runs

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
    """Each nn.LSTM / GRU / RNN's calls' (output, h_n) and each cell's outputs (of ``kinds``), by
    module path, and the model's output, from the model's own run (``own(model, inputs)``, None:
    ``model(inputs)``) seeded with SEED; a module that AWD-LSTM's WeightDrop wraps (and calls as
    ``.forward``, so no hook of its own runs) through its wrapper."""
    seen, handles = {}, []
    for name, m in model.named_modules():
        inner = m.module if isinstance(m, WeightDrop) else m
        if isinstance(inner, kinds) and (m is inner) != isinstance(m, WeightDrop):
            path = f"{name}.module" if m is not inner else name
            handles.append(m.register_forward_hook(lambda m, i, o, path=path: seen.setdefault(path, []).append(o)))
    try:
        torch.manual_seed(SEED)
        with torch.no_grad():
            out = own(model, inputs) if own else model(inputs)
    finally:
        for h in handles:
            h.remove()
    return seen, out


def assert_layers_are_the_modules_own(tr, model, seen):
    """Every layer and direction of each nn.LSTM / GRU / RNN the model ran (``seen``, from
    ``module_outputs``) holds the module's own h: its h_n at each element's last valid step (the
    first, reversed), its per-step h_n for a module called once a step, its output on the last layer.
    A model that is the module itself (path "") names its layers after its class, "rnn.l0"."""
    modules = dict(model.named_modules())
    for path, calls in seen.items():
        module = modules[path]
        directions, width = 1 + module.bidirectional, module.proj_size or module.hidden_size
        for k in range(module.num_layers):
            for d in range(directions):
                lt = tr.layers[f"{path or type(module).__name__.lower()}.l{k}" + (".reverse" if d else "")]
                h_n = [(o[1][0] if isinstance(o[1], tuple) else o[1])[k * directions + d] for o in calls]
                if len(calls) > 1:                      # one call a step (a decoder, a one-token char-rnn)
                    np.testing.assert_allclose(lt.h, torch.stack(h_n, 1).numpy(), atol=1e-6)
                    continue
                last = lt.h[np.arange(tr.batch), tr.layer_lengths(lt.name) - 1] if not d else lt.h[:, 0]
                np.testing.assert_allclose(last, h_n[0].numpy(), atol=1e-6)
                output = calls[0][0]
                if k == module.num_layers - 1 and not isinstance(output, nn.utils.rnn.PackedSequence):
                    output = output if module.batch_first else output.transpose(0, 1)
                    np.testing.assert_allclose(lt.h, output[..., d * width:(d + 1) * width].numpy(), atol=1e-6)


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
    assert_layers_are_the_modules_own(tr, model, seen)
    if tr.outputs is not None:
        want = out.float().numpy()
        np.testing.assert_allclose(tr.outputs, want.reshape(tr.outputs.shape), atol=1e-6)


def every_entry_point(model, inputs, calling, own, layer, quantity, loss, before, tmp_path, fixed_weights=True):
    """Every entry point a user would call on the model, as they would call it; the model left as found."""
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
    if layer is not None and fixed_weights:
        rw.DynamicsView(rw.dynamics(model, inputs, k=2, **calling)).save_html(tmp_path / "dynamics.html")
        rw.fixed_points(model, layer=layer.removesuffix(".reverse"), n_init=4, adam_steps=20, newton_steps=5)
    ds = rw.trace_dataset(model, [inputs, inputs], progress=False, **calling,
                          tokens=lambda x: [[f"t{i}" for i in range(tr.steps)]] * tr.batch)
    assert np.isfinite(rw.unit_stats(ds, layer=tr.first.name).mean).all()
    assert_untouched(model, before)
    monitor = rw.TrainingMonitor(model, probe=(inputs, loss), every=1, **calling)
    out = own(model, inputs) if own else model(inputs)
    (out[0] if isinstance(out, tuple) else out).float().pow(2).mean().backward()
    monitor.step(torch.tensor(1.0))
    monitor.save_html(tmp_path / "monitor.html")
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("name", ["upgraded-sentiment", "udacity-char-carried", "spro-gru", "attn-seq2seq",
                                  "grud-record"])
def test_more_models_every_entry_point_runs_and_leaves_the_model_as_found(name, tmp_path):
    model, inputs, calling, own, layer, quantity = more_case(name)
    model.eval()
    before = snapshot(model)
    loss = "last" if name != "upgraded-sentiment" else (lambda out: out.sum())
    every_entry_point(model, inputs, calling, own, layer, quantity, loss, before, tmp_path)


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


# ---- newest public models: the chatbot tutorial, d2l.ai, AWD-LSTM, the BiLSTM-CRF tutorial, a peephole
# ---- LSTM, ConvLSTM, fastrnns' TorchScript LSTMs ------------------------------------------------------
CRF_TAGS = {"B": 0, "I": 1, "O": 2, START_TAG: 3, STOP_TAG: 4}


def chatbot():
    """The chatbot tutorial's encoder and decoder sharing one embedding, (max_len, batch) ids padded with 0
    and sorted by length; the decoder starts from ``encoder_hidden[:decoder.n_layers]``."""
    torch.manual_seed(0)
    embedding = nn.Embedding(V, 8)
    encoder = ChatbotEncoderRNN(8, embedding, 2, 0.1).eval()
    decoder = LuongAttnDecoderRNN("general", embedding, 8, V, 2, 0.1).eval()
    lengths = torch.tensor([5, 4, 2])
    ids = torch.randint(1, V, (5, 3))
    for i, n in enumerate(lengths):
        ids[n:, i] = 0
    with torch.no_grad():
        encoder_outputs, encoder_hidden = encoder(ids, lengths)
    return encoder, decoder, ids, lengths, encoder_outputs, encoder_hidden[:decoder.n_layers]


def own_luong(m, steps, hidden, encoder_outputs):
    """The tutorial's train(): ``decoder_input = target_variable[t].view(1, -1)`` a step, the hidden carried."""
    outs = []
    for x_t in steps:
        out, hidden = m(x_t.view(1, -1), hidden, encoder_outputs)
        outs.append(out)
    return torch.stack(outs, 1)


def newest_cases():
    encoder, decoder, ids, lengths, encoder_outputs, hidden = chatbot()
    target = torch.randint(1, V, (4, 3))                # (max_target_len, batch)
    torch.manual_seed(1)
    d2l_ids = torch.randint(0, V, (2, 5))               # (batch, num_steps), as d2l's data iterator gives them
    d2l_lstm = D2LRNNModel(nn.LSTM(V, 12, 2), V)
    state = tuple(torch.randn_like(s) for s in d2l_lstm.begin_state("cpu", batch_size=2))
    awd = AWDRNNModel("LSTM", V, 8, 12, 3, wdrop=0.5)
    return {   # name: (model, inputs, calling, own call, an editable layer, a quantity)
        "chatbot-encoder": (encoder, ids, {"kwargs": {"input_lengths": lengths}}, lambda m, x: m(x, lengths)[0],
                            "gru.l1.reverse", "h"),
        "luong-decoder": (decoder, target, {"hidden": hidden, "kwargs": {"encoder_outputs": encoder_outputs}},
                          lambda m, x: own_luong(m, x, hidden, encoder_outputs), "gru.l1", "h"),
        "greedy-search": (GreedySearchDecoder(encoder, decoder), ids[:, :1],
                          {"kwargs": {"input_length": lengths[:1], "max_length": 4}},
                          lambda m, x: m(x, lengths[:1], 4)[1], "decoder.gru.l0", "h"),
        "d2l-gru": (D2LRNNModel(nn.GRU(V, 12), V), d2l_ids, {}, lambda m, x: m(x, m.begin_state("cpu", 2))[0],
                    "rnn.l0", "update"),
        "d2l-lstm-state": (d2l_lstm, d2l_ids, {"hidden": state}, lambda m, x: m(x, state)[0], "rnn.l1", "c"),
        "awd-lstm": (awd, torch.randint(0, V, (5, 2)), {}, lambda m, x: m(x, m.init_hidden(2))[0],
                     "rnns.1.module.l0", "c"),
        "bilstm-crf": (BiLSTM_CRF(V, CRF_TAGS, 6, 8), torch.randint(0, V, (7,)), {}, lambda m, x: m(x)[0],
                       "lstm.l0.reverse", "h"),
        "peephole-record": (PeepholeCustomLSTM(3, 8, peephole=True, record=True), torch.randn(2, 5, 3), {},
                            lambda m, x: m(x)[0], None, None),
    }


@pytest.mark.parametrize("name", list(newest_cases()))
def test_newest_models_states_and_outputs_are_the_models_own(name):
    model, inputs, calling, own, _, _ = newest_cases()[name]
    model.eval()
    torch.manual_seed(SEED)
    tr = rw.trace(model, inputs, **calling)
    seen, out = module_outputs(model, inputs, own, kinds=(nn.RNNBase,))
    if name == "peephole-record":                       # its output is its h at every step
        np.testing.assert_allclose(tr.layers["peepholecustomlstm"].h, out.numpy(), atol=1e-6)
        return
    assert seen, "no recurrent module ran"
    assert_layers_are_the_modules_own(tr, model, seen)
    if tr.outputs is not None:
        want = out.float().numpy()
        if want.ndim == 2 and want.shape[0] == tr.steps * tr.batch:        # flattened time-major rows
            want = want.reshape(tr.steps, tr.batch, -1)
        if want.shape[:2] == (tr.steps, tr.batch) and tr.steps != tr.batch:
            want = np.swapaxes(want, 0, 1)
        np.testing.assert_allclose(tr.outputs, want, atol=1e-6)


@pytest.mark.parametrize("name", list(newest_cases()))
def test_newest_models_every_entry_point_runs_and_leaves_the_model_as_found(name, tmp_path):
    model, inputs, calling, own, layer, quantity = newest_cases()[name]
    model.eval()
    before = snapshot(model)
    pick = 1 if name == "greedy-search" else 0          # its first output is the chosen ids, its second the scores
    loss = lambda out: (out[pick] if isinstance(out, tuple) else out).float().sum()   # noqa: E731
    every_entry_point(model, inputs, calling, own, layer, quantity, loss, before, tmp_path,
                      fixed_weights=name != "awd-lstm")  # WeightDrop: no fixed weights (its own test)


def test_the_chatbot_decoder_fed_one_step_of_ids_a_call_gets_autograds_gradient_through_time():
    """LuongAttnDecoderRNN takes input_step (1, batch): rw.trace drives it on target_variable[t] as (1, batch)
    (run whole, its attention cannot take the target's length), and dL/dh_t of each GRU layer is the
    gradient autograd gives each step's returned hidden, through the later steps."""
    _, decoder, _, _, encoder_outputs, hidden = chatbot()
    target = torch.randint(1, V, (4, 3))
    before = snapshot(decoder)
    tr = rw.trace(decoder, target, hidden=hidden, kwargs={"encoder_outputs": encoder_outputs},
                  loss=lambda out: out[-1].log().sum())     # the outputs stacked (time, batch, vocab)
    assert_untouched(decoder, before)
    h, kept_h, outs = hidden, [], []
    for x_t in target:
        out, h = decoder(x_t.view(1, -1), h, encoder_outputs)
        h.retain_grad()
        kept_h.append(h)
        outs.append(out)
    outs[-1].log().sum().backward()
    # the step module's state is the hidden it returns, both layers side by side: its gradient is the one
    # autograd gives that tensor (0 at the last step, whose returned hidden no later step reads)
    lt = tr.layers["luongattndecoderrnn"]
    want = torch.stack([s.grad if s.grad is not None else torch.zeros_like(s) for s in kept_h], 2)  # (L, B, T, H)
    np.testing.assert_allclose(lt.grads["h"], torch.cat(list(want), -1).numpy(), rtol=1e-5, atol=1e-7)
    assert np.abs(lt.grads["h"][:, 0]).max() > 0
    for k in range(2):
        np.testing.assert_allclose(tr.layers[f"gru.l{k}"].h, torch.stack([s[k] for s in kept_h], 1).detach().numpy(),
                                   atol=1e-6)
    decoder.zero_grad(set_to_none=True)


def test_a_bilstm_crf_trace_reads_the_initial_state_its_forward_drew():
    """The tutorial's _get_lstm_features sets self.hidden = init_hidden() (torch.randn) at every call: the
    trace starts from the state that run drew, the one the model's own run draws under the same seed,
    and ``model.hidden`` is left as found (with loss=, not a state holding the trace's graph)."""
    model = newest_cases()["bilstm-crf"][0].eval()
    sentence = torch.randint(0, V, (7,))
    hidden = model.hidden
    rw.trace(model, sentence, loss=lambda out: out[0])
    assert model.hidden is hidden
    torch.manual_seed(SEED)
    tr = rw.trace(model, sentence)
    torch.manual_seed(SEED)
    h0, c0 = model.init_hidden()
    for d, name in enumerate(["lstm.l0", "lstm.l0.reverse"]):
        np.testing.assert_array_equal(tr.layers[name].initial["h"], h0[d].numpy())
        np.testing.assert_array_equal(tr.layers[name].initial["c"], c0[d].numpy())


def test_awd_lstms_weight_dropped_lstms_are_traced_with_the_weights_they_ran_with():
    """WeightDrop sets weight_hh_l0 from weight_hh_l0_raw (dropped out in training) and calls
    ``self.module.forward`` directly: the states are those of that run, in eval and in training mode
    (the same mask drawn under one seed); rw.dynamics and rw.fixed_points, which need the step's fixed
    weights, say in one sentence that these are set before each call."""
    model, ids, _, own, _, _ = newest_cases()["awd-lstm"]
    for training in (True, False):      # (run by itself in eval mode first, WeightDrop fails in training after)
        model.train(training)
        before = snapshot(model)
        torch.manual_seed(3)
        tr = rw.trace(model, ids)
        assert_untouched(model, before)
        torch.manual_seed(3)
        with torch.no_grad():
            _, hidden = model(ids, model.init_hidden(2))
        for k in range(3):
            np.testing.assert_allclose(tr.layers[f"rnns.{k}.module.l0"].h[:, -1], hidden[k][0][0].numpy(), atol=1e-6)
            np.testing.assert_allclose(tr.layers[f"rnns.{k}.module.l0"].states["c"][:, -1], hidden[k][1][0].numpy(), atol=1e-6)
    model = newest_cases()["awd-lstm"][0].train()      # (its own eval run above broke its training, as in AWD)
    model(ids, model.init_hidden(2))                    # training: weight_hh_l0 a dropped-out plain tensor
    model.eval()
    for who, call in [("rw.dynamics", lambda: rw.dynamics(model, ids)),
                      ("rw.fixed_points", lambda: rw.fixed_points(model, layer="rnns.0.module.l0"))]:
        with pytest.raises(ValueError, match=rf"^{who}: expected rnns.0.module's weights to be its parameters, but "
                                             r"weight_hh_l0 is set before each call \(as AWD-LSTM's WeightDrop .*\), "
                                             r"so its step has no fixed weights to analyse$"):
            call()
    with torch.no_grad():
        model(ids, model.init_hidden(2))                # the user's own eval run registers weight_hh_l0_raw
    assert model.rnns[0].module.weight_hh_l0 is model.rnns[0].module.weight_hh_l0_raw     # as weight_hh_l0
    dyn = rw.dynamics(model, ids, k=2)                  # its weights are then fixed: the dynamics run
    assert set(dyn.layers) == {"rnns.0.module.l0", "rnns.1.module.l0", "rnns.2.module.l0"}


def hand_written_cells():
    torch.manual_seed(0)
    return {"convlstm": (ConvLSTM(2, 4, (3, 3), 2, batch_first=True), torch.randn(2, 5, 2, 6, 6)),
            "peephole-cell-loop": (PeepholeTagger(3, 8, 2), torch.randn(2, 5, 3)),
            "peephole-no-record": (PeepholeCustomLSTM(3, 8, peephole=True), torch.randn(2, 5, 3)),
            "d2l-scratch": (RNNLMScratch(RNNScratch(V, 12), V), torch.randint(0, V, (2, 5)))}


@pytest.mark.parametrize("name", list(hand_written_cells()))
def test_hand_written_cells_without_record_lines_get_one_sentence_from_every_entry_point(name, tmp_path):
    """ConvLSTM's cells (4-D state, called by keyword), a peephole cell in the user's loop, piEsposito's
    peephole LSTM and d2l's RNNScratch (raw parameters in their own loop): no module rnnwidgets knows the
    step of, so each entry point that reads states says what it looks for, and the model is left as found."""
    model, x = hand_written_cells()[name]
    model.eval()
    before = snapshot(model)
    who = type(model).__name__
    nothing = rf"^rw.recording: nothing was recorded — {who} called no nn.LSTM / GRU / RNN or nn.LSTMCell .*" \
              r"and no rw.record\(...\) ran$"
    loss = lambda out: (out[0][-1] if isinstance(out, tuple) else out).sum()     # noqa: E731
    calls = [lambda: rw.trace(model, x), lambda: rw.trace(model, x, loss=loss), lambda: rw.explore(model, x),
             lambda: rw.gradient_flow(model, x, loss=loss), lambda: rw.compare(model, x, x),
             lambda: rw.dynamics(model, x), lambda: rw.trace_dataset(model, [x], progress=False),
             lambda: rw.TrainingMonitor(model, probe=(x, loss), every=1).step(torch.tensor(1.0))]
    for call in calls:
        with pytest.raises(ValueError, match=nothing):
            call()
    with pytest.raises(ValueError, match=rf"^rw.fixed_points: expected a model holding an nn.LSTM .*; {who} has none"):
        rw.fixed_points(model)
    assert_untouched(model, before)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_fastrnns_torchscript_lstms_are_refused_by_every_entry_point_in_one_sentence():
    """custom_lstms.py's classes are written on torch.jit.ScriptModule (@jit.script_method), which runs no
    Python hooks, and there is no nn.Module they were scripted from: the sentence says to write them on
    nn.Module, for the model itself and for one inside a plain model."""
    torch.manual_seed(0)
    layer = LSTMLayer(ScriptLSTMCell, 3, 8).eval()

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = StackedLSTM(2, LSTMLayer, [LayerNormLSTMCell, 3, 8], [LayerNormLSTMCell, 8, 8])
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            states = [(torch.zeros(x.size(1), 8), torch.zeros(x.size(1), 8)) for _ in range(2)]
            return self.fc(self.lstm(x, states)[0])

    x, state = torch.randn(5, 2, 3), (torch.zeros(2, 8), torch.zeros(2, 8))
    fix = r"( \(|; )(LSTMLayer|StackedLSTM) is written on torch.jit.ScriptModule, which runs no Python hooks: " \
          r"write it on nn.Module, its @jit.script_method forward a plain forward\)?$"
    for model in (layer, Tagger().eval()):
        before = snapshot(model)
        calling = {"hidden": state} if model is layer else {}
        calls = [("rw.trace", lambda: rw.trace(model, x, **calling)), ("rw.trace", lambda: rw.explore(model, x, **calling)),
                 ("rw.trace", lambda: rw.gradient_flow(model, x, **calling)),
                 ("rw.trace", lambda: rw.dynamics(model, x, **calling)),
                 ("rw.trace", lambda: rw.trace_dataset(model, [x], progress=False, **calling)),
                 ("rw.fixed_points", lambda: rw.fixed_points(model, n_init=2))]
        if model is layer:
            calls += [("rw.attribution", lambda: rw.attribution(model, x, hidden=state)),
                      ("rw.generate", lambda: rw.generate(model, [1, 2], steps=2))]
        for who, call in calls:
            with pytest.raises(TypeError, match=rf"^{who}: expected (a torch.nn.Module as the model, got|plain torch.nn."
                                                rf"Modules, but 'lstm' is) a torch.jit.script-ed module" + fix):
                call()
        assert_untouched(model, before)


def test_an_entry_point_running_awd_lstm_in_eval_mode_leaves_its_training_going():
    """In eval mode WeightDrop's F.dropout returns weight_hh_l0_raw itself, and setattr registers it as a
    parameter 'weight_hh_l0'; the next training forward then fails ("cannot assign 'torch.FloatTensor' as
    parameter"). rw.attribution and rw.dynamics run the model in eval mode: its parameters are put back."""
    model, ids, _, _, _, _ = newest_cases()["awd-lstm"]
    model.train()
    model(ids, model.init_hidden(2))                    # a training step has run: weight_hh_l0 a plain tensor
    before = snapshot(model)
    registered = [sorted(m._parameters) for m in model.modules()]
    with pytest.raises(ValueError, match="no nn.Embedding reads them"):     # embedded_dropout: F.embedding
        rw.attribution(model, ids)
    with pytest.raises(ValueError, match="is set before each call"):
        rw.dynamics(model, ids)
    rw.trace(model, ids, loss=lambda out: out[0].sum())
    assert [sorted(m._parameters) for m in model.modules()] == registered
    assert_untouched(model, before)
    model(ids, model.init_hidden(2))[0].sum().backward()       # training goes on
    assert model.rnns[0].module.weight_hh_l0_raw.grad is not None
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_a_one_token_char_rnn_traced_with_a_loss_gets_autograds_gradient_of_each_hidden(kind):
    """spro's char-rnn runs its nn.GRU / LSTM one token a call: each returned hidden's gradient is the one
    autograd gives it through the later calls (the GRU's layers ran gradient-free fast paths, so every
    gradient read 0), and a clamp on the way changes it as the clamped run's autograd does."""
    torch.manual_seed(0)
    model = SproCharRNN(V, 12, V, kind, 2).eval()
    ids = torch.randint(0, V, (5, 2))
    before = snapshot(model)
    tr = rw.trace(model, ids, loss=lambda out: out[-1].sum())
    assert_untouched(model, before)
    hidden, kept_h, out = model.init_hidden(2), [], None
    for x_t in ids:
        out, hidden = model(x_t, hidden)
        for part in (hidden if kind == "lstm" else (hidden,)):
            part.retain_grad()
        kept_h.append(hidden)
    out.sum().backward()
    parts = [(lambda s: s[0]), (lambda s: s[1])] if kind == "lstm" else [lambda s: s]
    grads = [torch.stack([p(s).grad if p(s).grad is not None else torch.zeros_like(p(s)) for s in kept_h], 2)
             for p in parts]                                           # (layers, batch, time, units)
    lt = tr.layers["sprocharrnn"]
    np.testing.assert_allclose(lt.grads["h"], torch.cat(list(grads[0]), -1).numpy(), rtol=1e-5, atol=1e-7)
    if kind == "lstm":
        np.testing.assert_allclose(lt.grads["c"], torch.cat(list(grads[1]), -1).numpy(), rtol=1e-5, atol=1e-7)
    assert np.abs(lt.grads["h"][:, :-1]).min(initial=1.0) >= 0 and np.abs(lt.grads["h"][:, 0]).max() > 0
    model.zero_grad(set_to_none=True)


class DirectForward(nn.Module):
    """A wrapper calling its LSTM as ``self.lstm.forward(x, hx)``, as AWD-LSTM's WeightDrop does: no hook of
    the LSTM runs. ``direct=False``: the same model calling it as ``self.lstm(x, hx)``."""
    def __init__(self, direct=True):
        super().__init__()
        self.direct = direct
        self.lstm = nn.LSTM(3, 8, 2, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x, hx=None):
        out, _ = self.lstm.forward(x, hx) if self.direct else self.lstm(x, hx)
        return self.fc(out)


def test_dynamics_of_an_lstm_called_as_forward_equals_the_same_lstm_called_as_a_module():
    """rw.dynamics reads each fused call's input and initial state where the trace runs it, so a call made
    as ``module.forward(...)`` (no pre-hook sees it; it read 'ran 0 times') gives what module(...) gives."""
    torch.manual_seed(0)
    direct, plain = DirectForward().eval(), DirectForward(direct=False).eval()
    plain.load_state_dict(direct.state_dict())
    x, hx = torch.randn(2, 6, 3), (torch.randn(2, 2, 8), torch.randn(2, 2, 8))
    before = snapshot(direct)
    got = rw.dynamics(direct, x, hidden=hx, k=3)
    assert_untouched(direct, before)
    want = rw.dynamics(plain, x, hidden=hx, k=3)
    for name in ("lstm.l0", "lstm.l1"):
        np.testing.assert_array_equal(got.layers[name].singular_values, want.layers[name].singular_values)
        np.testing.assert_array_equal(got.layers[name].lyapunov, want.layers[name].lyapunov)
