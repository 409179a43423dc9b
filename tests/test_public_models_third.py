"""A third round of well-known public models, copied as their sources write them (tests/public_models.py),
each checked against its own run and through every entry point:

bentrevett/pytorch-seq2seq's LSTM Seq2Seq, its GRU Seq2Seq with a context fed every step and its
Bahdanau-attention GRU Seq2Seq (time-major, the decoder called a token at a time, teacher forcing drawn with Python's ``random.random()``), bentrevett's current
packed bidirectional sentiment LSTM (lengths in any order), MorvanZhou's RNN regressor
(``forward(x, h_state)``, ``h_state`` None at first, then carried as ``h_state.data``) and LSTM classifier,
Udacity's Simple RNN (its output flattened to (batch * time, 1), hidden carried as ``hidden.data``),
yunjey's BiRNN (h0 made in forward), the old tagger tutorial's LSTMTagger that keeps its state on
``self.hidden``, the torch docs' bare ``nn.RNN`` (relu, bidirectional, 2 layers), a ``torch.compile``'d
LSTM, and StefOe's IndRNN (a hand-written cell in its own loop: one sentence, or its layers with the
user's ``rw.record`` line)."""
import random

import numpy as np
import pytest
import torch
from public_models import (
    AlignAttention,
    AlignDecoder,
    AlignEncoder,
    AlignSeq2Seq,
    BiRNN,
    HiddenTagger,
    IndRNN,
    MorvanLSTMClassifier,
    MorvanRNN,
    PhraseDecoder,
    PhraseEncoder,
    PhraseSeq2Seq,
    SimpleRNN,
    TrevettDecoder,
    TrevettEncoder,
    TrevettLSTM,
    TrevettSeq2Seq,
)
from test_public_models_audit import assert_layers_are_the_modules_own, every_entry_point
from torch import nn

import rnnwidgets as rw
from tests.model_state import assert_untouched, snapshot

V = 11
SEED = 3        # Python's random, which the seq2seq models draw teacher forcing from: one seed for both runs
CPU = torch.device("cpu")


def seq2seq_data():
    g = torch.Generator().manual_seed(2)
    return torch.randint(0, V, (5, 2), generator=g), torch.randint(0, V, (6, 2), generator=g)   # (len, batch)


def trevett_lstm_data():
    lengths = torch.tensor([4, 6, 2])                   # a DataLoader's batch: lengths in any order, on the CPU
    ids = torch.randint(2, V, (3, 6), generator=torch.Generator().manual_seed(3))
    for i, n in enumerate(lengths):
        ids[i, n:] = 1                                  # the pad index
    return ids, lengths


def tagger_with_a_carried_state():
    """The tagger after one sentence run without ``model.hidden = model.init_hidden()``: its next
    forward starts from the state the last one left."""
    model = HiddenTagger(6, 8, V, 4).eval()
    with torch.no_grad():
        model(torch.randint(0, V, (4,)))
    return model


def cases():
    torch.manual_seed(0)
    src, trg = seq2seq_data()
    s2s = TrevettSeq2Seq(TrevettEncoder(V, 6, 10, 2, 0.5), TrevettDecoder(V, 6, 10, 2, 0.5), CPU)
    align = AlignSeq2Seq(AlignEncoder(V, 6, 8, 10, 0.5), AlignDecoder(V, 6, 8, 10, 0.5, AlignAttention(8, 10)), CPU)
    ids, lengths = trevett_lstm_data()
    wave = torch.sin(torch.linspace(0, np.pi, 10)).view(1, 10, 1)      # (batch, time_step, input_size)
    morvan = MorvanRNN()
    with torch.no_grad():                               # the previous batch's state, repacked as the tutorial does
        carried = morvan(-wave, None)[1].data
    forcing = {"kwargs": {"trg": trg, "teacher_forcing_ratio": 0.5}}
    phrase = PhraseSeq2Seq(PhraseEncoder(V, 6, 10, 0.5), PhraseDecoder(V, 6, 10, 0.5), CPU)
    simple = SimpleRNN(1, 1, 10, 2)
    sine = torch.sin(torch.linspace(0, np.pi, 20)).view(1, 20, 1)      # the notebook's batch of one
    with torch.no_grad():
        simple_hidden = simple(sine, None)[1].data                      # as its train(): hidden = hidden.data
    return {   # name: (model, inputs, calling, own call (None: model(inputs)), an editable layer, a quantity)
        "trevett-seq2seq": (s2s, src, forcing, lambda m, x: m(x, trg, 0.5), "decoder.rnn.l1", "c"),
        "align-seq2seq": (align, src, forcing, lambda m, x: m(x, trg, 0.5), "decoder.rnn.l0", "update"),
        "phrase-seq2seq": (phrase, src, forcing, lambda m, x: m(x, trg, 0.5), "decoder.rnn.l0", "reset"),
        "trevett-lstm": (TrevettLSTM(V, 6, 8, 2, 2, True, 0.5, 1), ids, {"kwargs": {"length": lengths}},
                         lambda m, x: m(x, lengths), "lstm.l1.reverse", "c"),
        "morvan-rnn": (morvan, wave, {}, lambda m, x: m(x, None)[0], "rnn.l0", "h"),
        "morvan-rnn-carried": (morvan, wave, {"hidden": carried}, lambda m, x: m(x, carried)[0], "rnn.l0", "h"),
        "morvan-classifier": (MorvanLSTMClassifier(5, 8), torch.randn(2, 6, 5), {}, None, "rnn.l0", "c"),
        "yunjey-birnn": (BiRNN(5, 8, 2, 10), torch.randn(2, 6, 5), {}, None, "lstm.l1.reverse", "h"),
        "hidden-tagger": (tagger_with_a_carried_state(), torch.randint(0, V, (5,)), {}, None, "lstm.l0", "c"),
        "udacity-simple-rnn": (simple, sine, {"hidden": simple_hidden}, lambda m, x: m(x, simple_hidden)[0],
                               "rnn.l1", "h"),
        "relu-birnn": (nn.RNN(4, 8, 2, nonlinearity="relu", bidirectional=True), torch.randn(5, 2, 4), {},
                       lambda m, x: m(x)[0], "rnn.l1.reverse", "h"),
    }


CASES = cases()     # built once: the models are shared by the tests, none of which changes them


def own_run(model, inputs, own):
    """Each nn.LSTM / GRU / RNN's calls' (output, h_n) by module path, and the model's output, from its
    own run (Python's random seeded as before the trace)."""
    seen, handles = {}, []
    for name, m in model.named_modules():
        if isinstance(m, nn.RNNBase):
            handles.append(m.register_forward_hook(lambda m, i, o, name=name: seen.setdefault(name, []).append(o)))
    random.seed(SEED)
    held = getattr(model, "hidden", None)       # the tagger's forward reassigns self.hidden: put it back
    try:
        with torch.no_grad():
            out = own(model, inputs) if own else model(inputs)
    finally:
        for h in handles:
            h.remove()
        if held is not None:
            model.hidden = held
    return seen, out


@pytest.mark.parametrize("name", list(CASES))
def test_states_and_outputs_are_the_models_own(name):
    model, inputs, calling, own, _, _ = CASES[name]
    model.eval()
    before = snapshot(model)
    random.seed(SEED)
    tr = rw.trace(model, inputs, **calling)
    assert_untouched(model, before)
    seen, out = own_run(model, inputs, own)
    assert seen, "no recurrent module ran"
    assert_layers_are_the_modules_own(tr, model, seen)
    if tr.outputs is not None:                          # one row a step: the model's own output
        want = out.numpy() if out.dim() == 3 else out.numpy()[None]       # the tagger: one sentence, (time, tags)
        want = want if want.shape[0] == tr.batch else np.swapaxes(want, 0, 1)
        np.testing.assert_allclose(tr.outputs, want.reshape(tr.outputs.shape), atol=1e-6)
    else:
        assert name in ("trevett-seq2seq", "align-seq2seq", "phrase-seq2seq", "trevett-lstm", "morvan-classifier", "yunjey-birnn")


@pytest.mark.parametrize("name", [n for n in CASES if n != "morvan-rnn-carried"])    # the same model as morvan-rnn
def test_every_entry_point_runs_and_leaves_the_model_as_found(name, tmp_path):
    model, inputs, calling, own, layer, quantity = CASES[name]
    model.eval()
    before = snapshot(model)
    hidden = getattr(model, "hidden", None)
    every_entry_point(model, inputs, calling, own, layer, quantity, lambda out: main(out).sum(), before, tmp_path)
    if hidden is not None:      # every_entry_point's own training step left the tagger its state, as a user's does
        model.hidden = hidden
    a = rw.attribution(model, inputs, steps=4, target=lambda out: main(out).sum(), **calling)
    assert a.shape[0] == rw.trace(model, inputs, **calling).batch
    assert np.isfinite(a).all()
    assert_untouched(model, before)


def main(out):
    return out[0] if isinstance(out, tuple) else out


# ---- what each model asks of rnnwidgets -------------------------------------------------------------------
@pytest.mark.parametrize("ratio", [0.5, 1.0])
def test_teacher_forcing_drawn_from_pythons_random_is_the_draw_the_models_own_run_makes(ratio):
    """bentrevett's Seq2Seq decides each step's input with random.random(): a trace (with and without a
    loss) runs the model once, so under the same seed its decoder states are the model's own run's, and it
    leaves Python's random where that run leaves it."""
    model = CASES["trevett-seq2seq"][0]
    src, trg = seq2seq_data()
    seen, _ = own_run(model, src, lambda m, x: m(x, trg, ratio))
    after_own = random.random()
    for loss in (None, lambda out: out[-1].sum()):
        random.seed(SEED)
        tr = rw.trace(model, src, loss=loss, kwargs={"trg": trg, "teacher_forcing_ratio": ratio})
        assert random.random() == after_own
        for k in range(2):
            h = torch.stack([o[1][0][k] for o in seen["decoder.rnn"]], 1).numpy()
            np.testing.assert_allclose(tr.layers[f"decoder.rnn.l{k}"].h, h, atol=1e-6)


def test_a_state_parameter_named_h_state_is_given_the_models_default_as_the_tutorial_passes_none():
    """MorvanZhou's forward(x, h_state) is called with h_state=None on the first batch: rw.trace makes that
    state (zeros) as for ``hidden``, and takes the carried one as hidden=."""
    model, wave, _, _, _, _ = CASES["morvan-rnn"]
    tr = rw.trace(model, wave)
    np.testing.assert_array_equal(tr.first.initial["h"], np.zeros((1, 32), np.float32))
    with torch.no_grad():
        out, h_state = model(wave, None)
    np.testing.assert_allclose(tr.outputs, out.numpy(), atol=1e-6)
    np.testing.assert_allclose(tr.first.h[:, -1], h_state[0].numpy(), atol=1e-6)
    _, _, calling, _, _, _ = CASES["morvan-rnn-carried"]
    carried = rw.trace(model, wave, **calling)
    np.testing.assert_array_equal(carried.first.initial["h"], calling["hidden"][0].numpy())


def test_the_tagger_keeping_its_state_on_self_hidden_is_traced_from_that_state_and_keeps_it():
    """The old tutorial's forward reads and reassigns self.hidden: the trace starts from the state the model
    holds (not zeros), and the model keeps that very object after every call, with a loss too."""
    torch.manual_seed(1)
    model = tagger_with_a_carried_state()
    held = model.hidden
    sentence = torch.randint(0, V, (5,))
    tr = rw.trace(model, sentence)
    np.testing.assert_array_equal(tr.first.initial["h"], held[0][0].numpy())
    np.testing.assert_array_equal(tr.first.initial["c"], held[1][0].numpy())
    rw.trace(model, sentence, loss="last")
    rw.dynamics(model, sentence, k=2)
    assert model.hidden is held


def test_a_tagger_whose_hidden_still_holds_a_freed_graph_is_traced_from_its_values():
    """A training step without ``model.hidden = model.init_hidden()`` leaves self.hidden holding the graph that
    step's backward freed: a trace with a loss (and TrainingMonitor's probe) reads the state's values, its
    gradients those of its own run from that state, instead of failing in torch's "backward through the graph
    a second time"; self.hidden is still the user's tensor with its graph after."""
    torch.manual_seed(1)
    model = HiddenTagger(6, 8, V, 4).eval()
    sentence = torch.randint(0, V, (5,))
    model(sentence).sum().backward()                    # the step: self.hidden now holds a freed graph
    held = model.hidden
    assert held[0].grad_fn is not None
    before = snapshot(model)
    tr = rw.trace(model, sentence, loss="last")
    fresh = tagger_copy(model, tuple(h.detach() for h in held))
    want = rw.trace(fresh, sentence, loss="last")
    np.testing.assert_array_equal(tr.first.grads["h"], want.first.grads["h"])
    np.testing.assert_array_equal(tr.first.initial["h"], held[0][0].detach().numpy())
    assert model.hidden is held and held[0].grad_fn is not None
    monitor = rw.TrainingMonitor(model, probe=(sentence, "last"), every=1)
    monitor.step(torch.tensor(1.0))
    assert model.hidden is held
    assert_untouched(model, before)


def tagger_copy(model, hidden):
    copy = HiddenTagger(6, 8, V, 4).eval()
    copy.load_state_dict(model.state_dict())
    copy.hidden = hidden
    return copy


def test_a_torch_compiled_lstm_is_traced_as_the_module_it_wraps():
    """torch.compile of MorvanZhou's classifier: every entry point reads the module it wraps, the same
    numbers as uncompiled, and the compiled model still runs after."""
    torch.manual_seed(0)
    model = MorvanLSTMClassifier(5, 8).eval()
    compiled = torch.compile(model)
    x = torch.randn(2, 6, 5)
    before = snapshot(model)
    tr = rw.trace(compiled, x, loss="last")
    plain = rw.trace(model, x, loss="last")
    np.testing.assert_array_equal(tr.first.h, plain.first.h)
    np.testing.assert_array_equal(tr.first.grads["h"], plain.first.grads["h"])
    rw.dynamics(compiled, x, k=2)
    rw.fixed_points(compiled, n_init=4, adam_steps=10, newton_steps=3)
    rw.explore(compiled, x)
    rw.gradient_flow(compiled, x)
    rw.attribution(compiled, x, steps=4)
    rw.trace_dataset(compiled, [x], progress=False)
    assert_untouched(model, before)
    with torch.no_grad():
        np.testing.assert_allclose(compiled(x).numpy(), model(x).numpy(), atol=1e-6)


def test_dynamics_of_the_bidirectional_relu_rnn_equals_autograd_in_each_direction():
    """The reverse direction's step maps h_{t+1} to h_t: its Jacobian's singular values at each traced step."""
    rnn, x = CASES["relu-birnn"][:2]
    dyn = rw.dynamics(rnn, x, k=3)
    tr = dyn.trace
    below = torch.from_numpy(np.concatenate([tr.layers["rnn.l0"].h, tr.layers["rnn.l0.reverse"].h], -1))
    for k, xs in ((0, x.transpose(0, 1)), (1, below)):
        for sfx, reverse in (("", False), ("_reverse", True)):
            w_ih, w_hh, b_ih, b_hh = (getattr(rnn, f"{n}_l{k}{sfx}").detach().double()
                                      for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            name = f"rnn.l{k}" + (".reverse" if reverse else "")
            for b in range(2):
                h = torch.from_numpy(tr.layers[name].h[b]).double()
                zero = torch.zeros(1, 8, dtype=torch.double)
                prev = torch.cat([h[1:], zero]) if reverse else torch.cat([zero, h[:-1]])
                ref = [torch.linalg.svdvals(torch.autograd.functional.jacobian(
                    lambda s, x_t=x_t: torch.relu(x_t @ w_ih.T + b_ih + s @ w_hh.T + b_hh), s))[:3]
                    for x_t, s in zip(xs[b].double(), prev)]
                np.testing.assert_allclose(dyn.layers[name].singular_values[b], torch.stack(ref).numpy(),
                                           rtol=1e-4, atol=1e-5)


def test_generate_refuses_the_seq2seq_and_the_tagger_in_one_sentence():
    for name, match in (("trevett-seq2seq", r"^rw.generate: expected a model called as model\(ids\) .*needs 'trg', "
                                            r"'teacher_forcing_ratio', which rnnwidgets cannot make$"),
                        ("hidden-tagger", r"^rw.generate: expected a model that reads token ids \(batch, time\) .*"
                                          r"HiddenTagger failed on the ids \(1, 3\): [^\n]*lays out its embedded ids its own way "
                                          r"\(one unbatched sentence\)[^\n]*trace its sequence with "
                                          r"rw.trace\(model, inputs\)[^\n]*$")):
        model = CASES[name][0]
        before = snapshot(model)
        with pytest.raises((TypeError, ValueError), match=match):
            rw.generate(model, [3, 1, 4], steps=2)
        assert_untouched(model, before)


# ---- IndRNN: a hand-written cell in the model's own loop ---------------------------------------------------
def indrnn(record):
    torch.manual_seed(0)
    model = IndRNN(3, 8, n_layer=2, bidirectional=True, hidden_max_abs=2.0, record=record).eval()
    for cell in (c for layer in model.cells for c in layer):        # weights that make the states differ
        nn.init.normal_(cell.weight_ih, 0, 0.5)
        nn.init.uniform_(cell.weight_hh, -1, 1)
    return model, torch.randn(5, 2, 3)


def test_indrnn_without_record_lines_gets_one_sentence_from_every_entry_point():
    model, x = indrnn(record=False)
    before = snapshot(model)
    nothing = r"^rw.recording: nothing was recorded — IndRNN called no nn.LSTM .*and no rw.record\(...\) ran$"
    loss = lambda out: out[0].sum()     # noqa: E731
    for call in (lambda: rw.trace(model, x), lambda: rw.trace(model, x, loss=loss), lambda: rw.explore(model, x),
                 lambda: rw.gradient_flow(model, x, loss=loss), lambda: rw.dynamics(model, x),
                 lambda: rw.trace_dataset(model, [x], progress=False)):
        with pytest.raises(ValueError, match=nothing):
            call()
    with pytest.raises(ValueError, match=r"^rw.fixed_points: expected a model holding an nn.LSTM .*IndRNN has none"):
        rw.fixed_points(model)
    assert_untouched(model, before)


def test_indrnn_with_the_users_record_line_shows_each_cell_as_the_model_ran_it(tmp_path):
    """rw.record("h", h) in IndRNNCell.forward: a layer per cell (by module path), each step as the cell was
    called (the reverse cell from the last step back), equal to the model's own output; a loss gives
    dL/dh through the model's own loop; the model is left as found (check_bounds reassigns weight_hh.data
    at every forward, to the same values)."""
    model, x = indrnn(record=True)
    before = snapshot(model)
    tr = rw.trace(model, x)
    assert list(tr.layers) == ["cells.0.0", "cells.0.1", "cells.1.0", "cells.1.1"]
    with torch.no_grad():
        out, _ = model(x)
    out = out.transpose(0, 1).numpy()
    np.testing.assert_allclose(tr.layers["cells.1.0"].h, out[..., :8], atol=1e-6)
    np.testing.assert_allclose(tr.layers["cells.1.1"].h[:, ::-1], out[..., 8:], atol=1e-6)
    np.testing.assert_allclose(tr.outputs, out, atol=1e-6)
    graded = rw.trace(model, x, loss=lambda o: o[0][-1].sum())
    assert np.isfinite(graded.layers["cells.0.0"].grads["h"]).all()
    rw.explore(model, x).save_html(tmp_path / "indrnn.html")
    rw.gradient_flow(model, x, loss=lambda o: o[0][-1].sum())
    rw.trace_dataset(model, [x, x], progress=False)
    assert_untouched(model, before)


def test_attribution_of_a_model_that_runs_only_at_batch_one_takes_the_points_one_a_pass():
    """Udacity's Simple RNN .view()s its batch_first nn.RNN output, which torch leaves non-contiguous above
    batch 1: the interpolation points stacked along the batch fail in the model's own view, so
    rw.attribution takes them one a pass, the same numbers as points_per_pass=1."""
    model, sine, calling, _, _, _ = CASES["udacity-simple-rnn"]
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        model(sine.repeat(2, 1, 1), None)                 # the model itself, at batch 2
    a = rw.attribution(model, sine, steps=6, **calling)
    np.testing.assert_array_equal(a, rw.attribution(model, sine, steps=6, points_per_pass=1, **calling))
    assert a.shape == (1, 20) and np.abs(a).sum() > 0


def test_ids_past_the_embedding_get_one_sentence_from_every_entry_point_and_the_model_is_left_as_found():
    """An id the vocabulary lacks (in the inputs or in a keyword argument such as the Seq2Seq's trg) fails in
    torch as "index out of range in self"; each entry point says which ids the embedding holds, and the
    model is left as found, its self.hidden included."""
    model = tagger_with_a_carried_state()
    held, before = model.hidden, snapshot(model)
    says = r"^rw\.(trace|attribution): expected token ids from 0 to 10 \(word_embeddings is nn.Embedding\(11, ...\)\), got "
    for bad, got in ((torch.tensor([0, 99]), "99"), (torch.tensor([3, -1]), "-1")):
        for call in (lambda: rw.trace(model, bad), lambda: rw.trace(model, bad, loss="last"),
                     lambda: rw.explore(model, bad), lambda: rw.gradient_flow(model, bad),
                     lambda: rw.dynamics(model, bad), lambda: rw.attribution(model, bad),
                     lambda: rw.trace_dataset(model, [bad], progress=False)):
            with pytest.raises(ValueError, match=says + got + "$"):
                call()
            assert model.hidden is held
    assert_untouched(model, before)
    s2s, src = CASES["trevett-seq2seq"][:2]
    with pytest.raises(ValueError, match=r"^rw.trace: expected token ids from 0 to 10 .*got 99$"):
        rw.trace(s2s, src, kwargs={"trg": torch.tensor([[0, 99], [1, 2]]), "teacher_forcing_ratio": 1.0})


# ---- bentrevett's translate_sentence: the user's own loop over the decoder ------------------------------
@pytest.mark.parametrize("name", ["trevett-seq2seq", "align-seq2seq", "phrase-seq2seq"])
def test_the_users_greedy_decoding_loop_inside_recording_gives_each_decoder_call_as_a_step(name):
    """The encoder once, then the decoder a token at a time on its own argmax, inside rw.recording(model):
    the encoder's layers over the source, the decoder's one step a call, its states the decoder's own."""
    model, src = CASES[name][:2]
    model.eval()
    before = snapshot(model)
    seen = []
    handle = model.decoder.rnn.register_forward_hook(lambda m, i, o: seen.append(o[1]))
    try:
        with torch.no_grad(), rw.recording(model) as rec:
            if name == "trevett-seq2seq":
                hidden, cell = model.encoder(src)
            elif name == "align-seq2seq":
                encoder_outputs, hidden = model.encoder(src)
            else:
                context = hidden = model.encoder(src)
            inputs = torch.zeros(src.shape[1], dtype=torch.long)      # <sos>
            for _ in range(4):
                if name == "trevett-seq2seq":
                    output, hidden, cell = model.decoder(inputs, hidden, cell)
                elif name == "align-seq2seq":
                    output, hidden, _ = model.decoder(inputs, hidden, encoder_outputs)
                else:
                    output, hidden = model.decoder(inputs, hidden, context)
                inputs = output.argmax(-1)
    finally:
        handle.remove()
    tr = rec.trace
    assert tr.layers["encoder.rnn.l0"].h.shape[:2] == (2, 5)
    h = torch.stack([s[0] if isinstance(s, tuple) else s for s in seen], 2)     # (layers, batch, steps, units)
    for k in range(h.shape[0]):
        np.testing.assert_allclose(tr.layers[f"decoder.rnn.l{k}"].h, h[k].numpy(), atol=1e-6)
    assert_untouched(model, before)


def test_the_lstm_decoder_taking_hidden_and_cell_apart_is_pointed_to_recording():
    """TrevettDecoder.forward(input, hidden, cell) -> (prediction, hidden, cell): traced alone, a cell given by
    kwargs= would be the same at every step, so both refusals point to the user's loop in rw.recording."""
    model, src, calling = CASES["trevett-seq2seq"][:3]
    decoder, trg = model.decoder, calling["kwargs"]["trg"]
    with torch.no_grad():
        hidden, cell = model.encoder(src)
    note = r"a step module taking its state as \(hidden, cell\) is not carried step to step so: run your own loop " \
           r"over it inside `with rw.recording\(model\) as rec:` \(then rec.trace\)"
    with pytest.raises(TypeError, match=r"^rw.trace: TrevettDecoder.forward\(input, hidden, cell\) needs 'cell'.*; "
                                        + note + "$"):
        rw.trace(decoder, trg, hidden=hidden)
    with pytest.raises(ValueError, match=r"must return \(output, hidden\), got a tuple of 3; " + note):
        rw.trace(decoder, trg, hidden=hidden, kwargs={"cell": cell})


class StatefulLM(nn.Module):
    """The stateful pattern (Keras' stateful=True): the state lives on the model, None after train() / eval(),
    carried and detached by every forward."""
    def __init__(self, config, input_shape, num_classes):
        super().__init__()
        assert(input_shape == ())
        embedding_dim = config["embedding_dim"]
        hidden_dim = config["hidden_dim"]
        num_layers = config["num_layers"]
        self.embedding = nn.Embedding(num_classes, embedding_dim)
        self.lstm = nn.LSTM(
            input_size=embedding_dim,
            hidden_size=hidden_dim,
            num_layers=num_layers)
        self.linear = nn.Linear(hidden_dim, embedding_dim)

    def train(self, mode: bool = True):
        self.hidden = None
        return super().train(mode)

    def forward(self, input):
        rnn_input = self.embedding(input)
        rnn_output, self.hidden = self.lstm(rnn_input, self.hidden)
        self.hidden = tuple(h.detach() for h in self.hidden)
        output = self.linear(rnn_output)
        logit = torch.einsum("tbi,ji->tbj", output, self.embedding.weight)
        return logit


def test_a_stateful_model_whose_hidden_starts_as_none_is_left_with_none_and_generates_as_its_own_loop():
    """Every entry point leaves self.hidden None as found (the forward sets it at its first call), and
    rw.generate's tries (batch-first, then time-major) each start from it, so the ids are the model's
    own greedy loop's; from a carried state the trace starts there."""
    torch.manual_seed(0)
    model = StatefulLM({"embedding_dim": 6, "hidden_dim": 8, "num_layers": 2}, (), V)
    model.eval()
    before = snapshot(model)
    x = torch.randint(0, V, (5, 2))
    for call in (lambda: rw.trace(model, x), lambda: rw.trace(model, x, loss="last"), lambda: rw.explore(model, x),
                 lambda: rw.dynamics(model, x, k=2), lambda: rw.attribution(model, x, steps=4),
                 lambda: rw.gradient_flow(model, x), lambda: rw.trace_dataset(model, [x], progress=False)):
        call()
        assert model.hidden is None
    gen = rw.generate(model, [1, 2, 3], steps=3)
    assert_untouched(model, before)
    ids = [1, 2, 3]
    with torch.no_grad():
        out = model(torch.tensor(ids).view(-1, 1))
        for _ in range(3):
            ids.append(int(out[-1, 0].argmax()))
            out = model(torch.tensor([[ids[-1]]]))
    assert gen.meta["token_ids"] == [ids]
    held = model.hidden                                 # carried from that loop
    tr = rw.trace(model, x[:, :1])
    np.testing.assert_array_equal(tr.layers["lstm.l1"].initial["h"], held[0][1].numpy())
    assert model.hidden is held


def test_attribution_of_batches_with_per_sequence_arguments_equals_each_sequence_alone():
    """bentrevett's sentiment LSTM packs lengths in any order (enforce_sorted=False), and his Seq2Seq takes trg
    (trg_len, batch) beside time-major src: the interpolation points repeat both along their batch axis, so
    each row is that sequence's own attribution (zero past its length)."""
    model, ids, calling = CASES["trevett-lstm"][:3]
    model.eval()
    lengths = calling["kwargs"]["length"]
    a = rw.attribution(model, ids, steps=6, **calling)
    for b, n in enumerate(lengths.tolist()):
        alone = rw.attribution(model, ids[b:b + 1, :n], steps=6, kwargs={"length": lengths[b:b + 1]})
        np.testing.assert_allclose(a[b, :n], alone[0], atol=1e-6)
        assert not a[b, n:].any()
    s2s, src, forcing = CASES["trevett-seq2seq"][:3]
    trg = forcing["kwargs"]["trg"]
    target = lambda out: out[1:].sum()      # noqa: E731 (outputs[0] stays zeros)
    a = rw.attribution(s2s, src, steps=6, target=target, kwargs={"trg": trg, "teacher_forcing_ratio": 1.0})
    assert a.shape == (2, 5)
    for b in range(2):
        alone = rw.attribution(s2s, src[:, b:b + 1], steps=6, target=target,
                               kwargs={"trg": trg[:, b:b + 1], "teacher_forcing_ratio": 1.0})
        np.testing.assert_allclose(a[b], alone[0], rtol=1e-4, atol=1e-6)
