"""Every public entry point on the models of well-known public examples (tests/public_models.py) and
on the shapes users give them: batch 1, a single step, odd lengths, batch_first, 3 bidirectional
layers, proj_size, dropout in training mode, float64, frozen parameters, the model's own hooks,
DataParallel, a dict output, cells in the model's own loop. Each trace's states are checked against
the modules' own outputs in an independent run, and ``tr.outputs`` against the model's own output."""
import numpy as np
import pytest
import torch
from public_models import AirModel, GenRNN, LSTMTagger, RNNModel, SentimentRNN, Sequence
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


def module_outputs(model, inputs, own):
    """Each nn.LSTM / GRU / RNN's (output, h_n) and each cell's outputs, from the model's own run."""
    seen, handles = {}, []
    for name, m in model.named_modules():
        if isinstance(m, (nn.RNNBase, nn.RNNCellBase)):
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
