"""Several recurrent modules with their own time axes: an encoder over 7 source tokens and a
decoder run for 10 steps in one model (the PyTorch seq2seq tutorial's EncoderRNN + DecoderRNN).

Every entry point keeps each layer on its own axis: its steps, its valid steps and its tokens
(``rw.trace``, the Explorer, ``gradient_flow``, the monitor's probe, ``trace_dataset``, save and
load), and the numbers are the model's own.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rnnwidgets as rw
from rnnwidgets.patterns import matches
from rnnwidgets.tracedata import LayerTrace, Trace

SOURCE, TARGET, HIDDEN = 7, 10, 8
SOS = 0
ROOT = Path(__file__).resolve().parent.parent


class EncoderRNN(nn.Module):
    """The tutorial's encoder: an nn.GRU over the whole source at once."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.embedding = nn.Embedding(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)

    def forward(self, input):
        return self.gru(self.embedding(input))


class DecoderRNN(nn.Module):
    """The tutorial's decoder: its nn.GRU called one step at a time, greedy or teacher-forced."""

    def __init__(self, hidden_size, output_size, steps=TARGET):
        super().__init__()
        self.embedding = nn.Embedding(output_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, output_size)
        self.steps = steps

    def forward(self, encoder_outputs, encoder_hidden, target_tensor=None, keep=None):
        batch_size = encoder_outputs.size(0)
        decoder_input = torch.full((batch_size, 1), SOS, dtype=torch.long)
        decoder_hidden = encoder_hidden
        outputs = []
        for i in range(self.steps):
            output, decoder_hidden = self.forward_step(decoder_input, decoder_hidden)
            outputs.append(output)
            if keep is not None:
                keep.append(decoder_hidden)
            if target_tensor is not None:
                decoder_input = target_tensor[:, i].unsqueeze(1)
            else:
                decoder_input = output.topk(1)[1].squeeze(-1).detach()
        return F.log_softmax(torch.cat(outputs, dim=1), dim=-1), decoder_hidden

    def forward_step(self, input, hidden):
        output = F.relu(self.embedding(input))
        output, hidden = self.gru(output, hidden)
        return self.out(output), hidden


class Seq2Seq(nn.Module):
    """Encoder and decoder driven in one module, as a user's training loop calls them."""

    def __init__(self):
        super().__init__()
        self.encoder = EncoderRNN(12, HIDDEN)
        self.decoder = DecoderRNN(HIDDEN, 11)

    def forward(self, src):
        encoder_outputs, encoder_hidden = self.encoder(src)
        return self.decoder(encoder_outputs, encoder_hidden)[0]


def loss_of(out):
    return out.exp().mul(torch.arange(out.shape[-1], dtype=out.dtype)).sum()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Seq2Seq().eval()


@pytest.fixture(scope="module")
def src():
    torch.manual_seed(1)
    return torch.randint(0, 12, (2, SOURCE))


SRC_TOKENS = [list("abcdefg"), list("hijklmn")]
TGT_TOKENS = [[f"y{t}" for t in range(TARGET)], [f"z{t}" for t in range(TARGET)]]


def reference(model, src):
    """The model's own states: the encoder's outputs and final hidden, the decoder's hidden after each step."""
    with torch.no_grad():
        encoder_outputs, encoder_hidden = model.encoder(src)
        kept: list = []
        model.decoder(encoder_outputs, encoder_hidden, keep=kept)
    return encoder_outputs.numpy(), encoder_hidden[0].numpy(), torch.stack([h[0] for h in kept], 1).numpy()


def test_each_layer_keeps_its_own_steps_and_the_models_own_states(model, src):
    tr = rw.trace(model, src)
    enc, dec = tr.layers["encoder.gru.l0"], tr.layers["decoder.gru.l0"]
    assert (enc.steps, dec.steps, tr.steps) == (SOURCE, TARGET, TARGET)
    assert tr.layer_lengths("encoder.gru.l0").tolist() == [SOURCE, SOURCE]
    assert tr.layer_lengths("decoder.gru.l0").tolist() == [TARGET, TARGET]
    encoder_outputs, encoder_hidden, decoder_hiddens = reference(model, src)
    np.testing.assert_allclose(enc.h, encoder_outputs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(enc.h[:, -1], encoder_hidden, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dec.h, decoder_hiddens, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dec.initial["h"], encoder_hidden, rtol=1e-5, atol=1e-6)  # the decoder starts there
    for gate in ("reset", "update"):
        assert 0 <= dec.gates[gate].min() and dec.gates[gate].max() <= 1


def test_tokens_per_layer_by_name_or_module(model, src):
    tr = rw.trace(model, src, tokens={"encoder": SRC_TOKENS, "decoder.gru.l0": TGT_TOKENS})
    assert tr.tokens is None
    assert tr.layer_tokens("encoder.gru.l0") == SRC_TOKENS
    assert tr.layer_tokens("decoder.gru.l0") == TGT_TOKENS
    # a plain list labels every layer whose steps it fits: the source's 7 the encoder only
    tr = rw.trace(model, src, tokens=SRC_TOKENS)
    assert (tr.layer_tokens("encoder.gru.l0"), tr.layer_tokens("decoder.gru.l0")) == (SRC_TOKENS, None)
    tr = rw.trace(model, src, tokens=TGT_TOKENS)
    assert (tr.layer_tokens("encoder.gru.l0"), tr.layer_tokens("decoder.gru.l0")) == (None, TGT_TOKENS)


def test_tokens_that_fit_no_layer_are_refused_with_the_call_to_write(model, src):
    with pytest.raises(ValueError, match=r"'encoder.gru.l0' 7 steps.*'decoder.gru.l0' 10 steps.*tokens=\{layer name"):
        rw.trace(model, src, tokens=[list("abcdefgh")] * 2)
    with pytest.raises(ValueError, match=r"expected keys naming layers.*'decoder.gru.l0'.*got 'decoder.lstm'"):
        rw.trace(model, src, tokens={"decoder.lstm": TGT_TOKENS})
    with pytest.raises(ValueError, match=r"layers\['decoder.gru.l0'\].tokens: expected between its valid steps"):
        rw.trace(model, src, tokens={"decoder": SRC_TOKENS})   # never cut: 7 tokens do not label 10 steps


def test_a_padded_source_keeps_its_lengths_and_the_decoder_its_own(model):
    """A packed encoder over sources of 7 and 4 tokens: each layer's valid steps are its own."""
    from torch.nn.utils.rnn import pack_padded_sequence

    class Packed(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.encoder, self.decoder = inner.encoder, inner.decoder

        def forward(self, src, lengths=(SOURCE, 4)):
            packed = pack_padded_sequence(self.encoder.embedding(src), list(lengths), batch_first=True)
            _, hidden = self.encoder.gru(packed)
            return self.decoder(src, hidden)[0]

    torch.manual_seed(2)
    tr = rw.trace(Packed(model).eval(), torch.randint(0, 12, (2, SOURCE)),
                  tokens={"encoder": [list("abcdefg"), list("abcd")], "decoder": TGT_TOKENS})
    assert tr.layer_lengths("encoder.gru.l0").tolist() == [SOURCE, 4]
    assert tr.layer_lengths("decoder.gru.l0").tolist() == [TARGET, TARGET]
    assert tr.layer_tokens("encoder.gru.l0")[1] == list("abcd")


def test_cells_in_loops_of_different_lengths(model):
    """A hand-written encoder–decoder of GRUCells (rw.recording): each cell on its own steps."""

    class CellSeq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc, self.dec = nn.GRUCell(3, 4), nn.GRUCell(3, 4)

        def forward(self, x):
            h = torch.zeros(x.shape[0], 4)
            for t in range(x.shape[1]):
                h = self.enc(x[:, t], h)
            out = []
            for _ in range(TARGET):
                h = self.dec(x[:, 0], h)
                out.append(h)
            return torch.stack(out, 1)

    torch.manual_seed(3)
    m, x = CellSeq2Seq(), torch.randn(1, SOURCE, 3)
    tr = rw.trace(m, x, tokens={"enc": [list("abcdefg")], "dec": [TGT_TOKENS[0]]})
    enc, dec = (tr.layers[name] for name in tr.layers)
    assert (enc.steps, dec.steps) == (SOURCE, TARGET)
    assert [tr.layer_lengths(name).tolist() for name in tr.layers] == [[SOURCE], [TARGET]]
    np.testing.assert_allclose(dec.h, m(x).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_save_and_load_keep_each_layers_axis(model, src, tmp_path):
    tr = rw.trace(model, src, tokens={"encoder": SRC_TOKENS, "decoder": TGT_TOKENS})
    back = Trace.load(tr.save(tmp_path / "t.npz"))
    for name, lt in tr.layers.items():
        assert back.layers[name].steps == lt.steps
        assert back.layer_lengths(name).tolist() == tr.layer_lengths(name).tolist()
        assert back.layer_tokens(name) == tr.layer_tokens(name)
        np.testing.assert_array_equal(back.layers[name].h, lt.h)


def test_a_file_whose_layer_lengths_do_not_fit_is_refused(tmp_path):
    h = np.zeros((1, 3, 2), np.float32)
    tr = Trace(layers={"a.l0": LayerTrace("a.l0", "rnn", states={"h": h}, lengths=np.array([3]))}, lengths=[3])
    with pytest.raises(ValueError, match=r"lengths: expected each in \[0, 3\]"):
        LayerTrace("a.l0", "rnn", states={"h": h}, lengths=np.array([4]))
    with pytest.raises(ValueError, match=r"lengths: expected shape \(1,\)"):
        LayerTrace("a.l0", "rnn", states={"h": h}, lengths=np.array([3, 3]))
    path = tr.save(tmp_path / "t.npz")
    import zipfile
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["l0/lengths.npy"] = members["lengths.npy"][:-8] + np.array([9], np.int64).tobytes()
    with zipfile.ZipFile(tmp_path / "bad.npz", "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises(ValueError, match=r"bad.npz.*expected each in \[0, 3\]"):
        Trace.load(tmp_path / "bad.npz")


def test_the_explorer_shows_each_layer_on_its_own_time_axis(model, src):
    ex = rw.explore(model, src, tokens={"encoder": SRC_TOKENS, "decoder": TGT_TOKENS})
    ex.select(layer="decoder.gru.l0", t=9)
    assert (ex.view.layer, ex.view.t) == ("decoder.gru.l0", 9)
    entries = {e["name"]: e for e in ex.view.index["layers"]}
    assert [(e["steps"], e["length"], e["tokens"]) for e in entries.values()] == [
        (SOURCE, SOURCE, SRC_TOKENS[0]), (TARGET, TARGET, TGT_TOKENS[0])]
    assert [q["steps"] for q in entries["decoder.gru.l0"]["quantities"]] == [TARGET] * 4
    assert ex.view.index["predictions"]["steps"] == TARGET   # the decoder's outputs: shown beside its 10 steps
    ex.select(layer="encoder.gru.l0")        # 7 steps: step 9 is not one of them, so its last is shown
    assert ex.view.t == SOURCE - 1
    with pytest.raises(ValueError, match=r"t: expected 0 <= t < 7, got 9 \(layer 'encoder.gru.l0' has 7 steps\)"):
        ex.select(t=9)
    ex.view.brush = [2, 9]                   # clamped into the encoder's steps
    assert ex.view.brush == [2, SOURCE]
    ex.view.layer = "decoder.gru.l0"         # as the browser's layer picker sets it
    ex.view.t = 9
    assert ex.view.t == 9
    ex.batch.value = 1
    assert {e["name"]: e.get("tokens") for e in ex.view.index["layers"]}["decoder.gru.l0"] == TGT_TOKENS[1]
    ex.view.layer = "encoder.gru.l0"         # picked in the browser at decoder step 9: the encoder's last
    assert (ex.view.t, ex.view.brush) == (SOURCE - 1, [2, SOURCE])


def test_gradient_flow_puts_layers_of_different_lengths_on_one_axis(model, src):
    gf = rw.gradient_flow(model, src, loss=loss_of)
    enc, dec = gf.norms["encoder.gru.l0"], gf.norms["decoder.gru.l0"]
    assert enc.shape == dec.shape == (TARGET,)
    assert np.isnan(enc[SOURCE:]).all() and np.isfinite(enc[:SOURCE]).all() and np.isfinite(dec).all()
    assert (gf.verdicts["encoder.gru.l0"].steps, gf.verdicts["decoder.gru.l0"].steps) == (SOURCE, TARGET)
    # the chart draws the encoder's line over its own steps only: nothing past step 6 is plotted
    row = next(i for i, label in enumerate(gf.time_chart.labels) if label.startswith("encoder.gru.l0"))
    assert np.isnan(gf.time_chart.y[row, SOURCE:]).all() and np.isfinite(gf.time_chart.y[row, :SOURCE]).all()

    # ∂L/∂h_t of the decoder against autograd over the model's own step-by-step loop
    tr = rw.trace(model, src, loss=loss_of)
    encoder_outputs, encoder_hidden = model.encoder(src)
    hidden, outputs, hiddens = encoder_hidden, [], []
    steps_out = []
    decoder_input = torch.full((src.shape[0], 1), SOS, dtype=torch.long)
    for _ in range(TARGET):
        x = F.relu(model.decoder.embedding(decoder_input))
        out, hidden = model.decoder.gru(x, hidden)
        out.retain_grad()
        hidden.retain_grad()
        outputs.append(out)
        hiddens.append(hidden)
        logits = model.decoder.out(out)
        steps_out.append(logits)
        decoder_input = logits.topk(1)[1].squeeze(-1).detach()
    encoder_hidden.retain_grad()
    loss_of(F.log_softmax(torch.cat(steps_out, 1), -1)).backward()
    carried = [h.grad[0] if h.grad is not None else torch.zeros_like(h[0]) for h in hiddens]  # the last: unused
    want = np.stack([(o.grad[:, 0] + g).numpy() for o, g in zip(outputs, carried)], 1)
    np.testing.assert_allclose(tr.layers["decoder.gru.l0"].grads["h"], want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(tr.layers["encoder.gru.l0"].grads["h"][:, -1], encoder_hidden.grad[0].numpy(),
                               rtol=1e-4, atol=1e-6)
    model.zero_grad(set_to_none=True)


def test_the_monitors_probe_follows_layers_of_different_lengths(model, src):
    mon = rw.TrainingMonitor(model, probe=(src, loss_of), every=1)
    mon.step(torch.tensor(1.0))
    step, norms = mon.snapshot
    assert norms["encoder.gru.l0"].shape == norms["decoder.gru.l0"].shape == (TARGET,)
    assert np.isnan(norms["encoder.gru.l0"][SOURCE:]).all() and np.isfinite(norms["decoder.gru.l0"]).all()
    assert mon.snapshot_verdicts["encoder.gru.l0"].steps == SOURCE


def test_trace_dataset_keeps_every_step_of_every_layer(model, tmp_path):
    torch.manual_seed(4)
    batches = [torch.randint(0, 12, (1, SOURCE)) for _ in range(3)]
    ds = rw.trace_dataset(model, batches, tokens=lambda ids: [list("abcdefg")], progress=False,
                          quantities="all", path=tmp_path / "ds")
    assert ds.values("encoder.gru.l0").shape[0] == 3 * SOURCE
    assert ds.values("decoder.gru.l0").shape[0] == 3 * TARGET          # all 30 decoder steps
    assert ds.offsets_of("decoder.gru.l0").tolist() == [0, 10, 20, 30]
    assert ds.offsets.tolist() == [0, 7, 14, 21] and ds.token_ids.shape == (21,)
    assert ds.outputs is None   # the decoder's outputs are on its own steps, not the dataset's
    one = ds.sequence(1)
    tr = rw.trace(model, batches[1])
    for name in tr.layers:
        assert one.layers[name].steps == tr.layers[name].steps
        np.testing.assert_allclose(one.layers[name].h, tr.layers[name].h, rtol=1e-6)
        np.testing.assert_allclose(one.layers[name].gates["update"], tr.layers[name].gates["update"], rtol=1e-6)
    assert one.layer_tokens("encoder.gru.l0") == [list("abcdefg")] and one.layer_tokens("decoder.gru.l0") is None
    back = rw.DatasetTrace.load(ds.save(tmp_path / "copy"))
    assert back.offsets_of("decoder.gru.l0").tolist() == [0, 10, 20, 30]
    np.testing.assert_array_equal(np.asarray(back.values("decoder.gru.l0")), np.asarray(ds.values("decoder.gru.l0")))
    found = matches(back, [0], -1.0, layer="decoder.gru.l0", limit=None)  # every step is on
    assert found["end"].max() == TARGET and (found["text"] == "").all()
    with pytest.raises(ValueError, match="decoder.gru.l0 has its own time axis"):
        rw.unit_stats(back, layer="decoder.gru.l0")
    with pytest.raises(ValueError, match="a dict of tokens per layer is not kept in a dataset trace"):
        rw.trace_dataset(model, batches, tokens=lambda ids: {"encoder": [list("abcdefg")]}, progress=False)


def test_a_saved_encoder_decoder_trace_is_explored_without_torch(model, src, tmp_path):
    path = rw.trace(model, src, tokens={"encoder": SRC_TOKENS, "decoder": TGT_TOKENS}).save(tmp_path / "t.npz")
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        import rnnwidgets as rw
        ex = rw.explore(rw.Trace.load({str(path)!r}))
        ex.select(layer="decoder.gru.l0", t=9)
        print(ex.view.t, "torch" in sys.modules)
    """)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["9", "False"]


def test_the_still_and_the_selection_read_the_shown_layers_own_steps(model, src):
    """The still picture and the units a brush selects use all 10 decoder steps, not the encoder's 7."""
    from rnnwidgets.ranges import colour_scale
    from rnnwidgets.widgets import still
    from rnnwidgets.widgets.patterns import selected_units

    ex = rw.explore(model, src)
    ex.select(layer="decoder.gru.l0", quantity="h")
    lt = ex.trace.layers["decoder.gru.l0"]
    png = still.explorer_png(ex)
    scale = colour_scale("h", lt.h)
    assert png == still.heatmap_png(lt.h[0], scale["scale"], scale["vmin"], scale["vmax"])
    ex.view.brush, ex.view.threshold = [0, TARGET], -2.0   # on (> -2) over all 10 decoder steps: every unit
    assert selected_units(ex).tolist() == list(range(HIDDEN))
    ex.view.brush = [0, 9]                                  # not off at step 9 (GRU states stay above -1): none
    assert selected_units(ex).tolist() == []
