"""The newer calls (rw.dynamics, rw.fixed_points, edits, rw.generate, rw.compare, rw.attribution,
rw.trace_dataset with edits, explore(dynamics=, patch_from=), TrainingMonitor(dynamics=True)) on the
models of well-known public examples as users have them (tests/public_models.py), called the obvious
way; numbers checked against autograd and hand-unrolled loops where cheap."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from public_models import (
    MAX_LENGTH,
    BiGRU,
    DecoderRNN,
    EncoderRNN,
    GRURegressor,
    LSTMState,
    NameRNN,
    PackedBiLSTM,
    ProjLSTM,
    RNNModel,
    Seq2Seq,
    Sequence,
)

import rnnwidgets as rw

V = 11


def word_lm(kind, seed=0):
    torch.manual_seed(seed)
    return RNNModel(kind, V, 16, 16, 2, dropout=0.2, tie_weights=True).eval()


# ---- rw.generate on the word language model: forward(input, hidden), (time, batch), flattened logits ----
def own_generate(model, prompt, steps):
    """The word language model's own generate.py loop: one (1, 1) token at a time, hidden carried."""
    with torch.no_grad():
        out, hidden = model(prompt.view(-1, 1), model.init_hidden(1))
        ids, logits = prompt.tolist(), [out]
        for _ in range(steps):
            nxt = out[-1].argmax()
            ids.append(int(nxt))
            out, hidden = model(nxt.view(1, 1), hidden)
            logits.append(out)
    return ids, torch.cat(logits).numpy()


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN_RELU"])
def test_generate_runs_the_word_language_model_as_its_own_loop_does(kind):
    model = word_lm(kind)
    prompt = torch.tensor([3, 1, 4, 1, 5])
    gen = rw.generate(model, prompt, steps=6)
    ids, logits = own_generate(model, prompt, 6)
    assert gen.meta["token_ids"] == [ids]
    np.testing.assert_allclose(gen.outputs[0], logits, atol=1e-5)
    tr = rw.trace(model, torch.tensor(ids).view(-1, 1))           # the same ids, (time, batch)
    np.testing.assert_allclose(tr.layers["rnn.l1"].h, gen.layers["rnn.l1"].h, atol=1e-5)


@pytest.mark.parametrize("prompt", [[[3, 1, 4], [2, 7, 1]], [[3, 1, 4], [2, 7, 1], [5, 5, 0]]])
def test_generate_reads_a_batch_of_prompts_by_row_for_a_time_major_model(prompt):
    model = word_lm("GRU")
    prompt = torch.tensor(prompt)                       # (batch, time); the second square
    gen = rw.generate(model, prompt, steps=3)
    for b in range(len(prompt)):
        one = rw.generate(model, prompt[b], steps=3)
        assert gen.meta["token_ids"][b] == one.meta["token_ids"][0]
        np.testing.assert_allclose(gen.outputs[b], one.outputs[0], atol=1e-5)


def test_generate_with_a_clamp_on_the_word_language_model_equals_its_loop_with_the_clamp():
    model = word_lm("LSTM")
    prompt = torch.tensor([3, 1, 4])
    gen = rw.generate(model, prompt, steps=4, edits=[rw.clamp("rnn.l0", "h", [0, 1], None, 0.0)])
    # the reference: the two layers unrolled by hand, h of layer 0 units 0 and 1 set to 0 every step
    rnn = model.rnn
    h = [torch.zeros(1, 16), torch.zeros(1, 16)]
    c = [torch.zeros(1, 16), torch.zeros(1, 16)]
    ids, logits = prompt.tolist(), []
    with torch.no_grad():
        for t in range(len(prompt) + 4):
            x = model.encoder(torch.tensor([ids[t]]))
            for k in range(2):
                gates = x @ getattr(rnn, f"weight_ih_l{k}").T + getattr(rnn, f"bias_ih_l{k}") \
                    + h[k] @ getattr(rnn, f"weight_hh_l{k}").T + getattr(rnn, f"bias_hh_l{k}")
                i, f, g, o = gates.chunk(4, 1)
                c[k] = f.sigmoid() * c[k] + i.sigmoid() * g.tanh()
                h[k] = o.sigmoid() * c[k].tanh()
                if k == 0:
                    h[k][:, :2] = 0.0
                x = h[k]
            logits.append(F.log_softmax(model.decoder(x), 1))
            if t >= len(prompt) - 1 and len(ids) < len(prompt) + 4:
                ids.append(int(logits[-1].argmax()))
    assert gen.meta["token_ids"] == [ids]
    np.testing.assert_allclose(gen.outputs[0], torch.cat(logits).numpy(), atol=1e-5)


def test_generate_refuses_a_model_that_needs_more_than_ids_and_a_state_in_one_sentence():
    model = word_lm("GRU")
    model.forward = lambda input, lengths: RNNModel.forward(model, input, None)
    with pytest.raises(TypeError, match=r"model\(ids, hidden\); .*RNNModel.forward\(input, lengths\) needs 'lengths'"):
        rw.generate(model, [1, 2, 3], steps=2)


# ---- rw.fixed_points ------------------------------------------------------------------------------------
def test_fixed_points_of_a_hand_written_step_module_is_refused_in_one_sentence():
    with pytest.raises(ValueError, match="expected a model holding an nn.LSTM / nn.GRU / nn.RNN or a cell .*"
                                         "NameRNN has none"):
        rw.fixed_points(NameRNN(6, 12, 3))
    with pytest.raises(ValueError, match=r"layer= is needed: one of \['rnn.l0', 'rnn.l1'\]"):
        rw.fixed_points(word_lm("GRU"))


# ---- rw.dynamics against autograd: each layer's step Jacobian at the traced states -----------------------
def svd_reference(step, xs, s_prev, k):
    """(time, k) top singular values of dF/ds at (x_t, s_{t-1}) for one sequence."""
    out = []
    for x, s in zip(xs, s_prev):
        jac = torch.autograd.functional.jacobian(lambda s_: step(x, s_), s)
        out.append(torch.linalg.svdvals(jac)[:k])
    return torch.stack(out).numpy()


def fused_step(module, k, mode):
    w_ih, w_hh, b, b_hh = (getattr(module, f"{n}_l{k}").detach().double()
                           for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    units = module.hidden_size

    def step(x, s):
        if mode == "LSTM":
            h, c = s[:units], s[units:]
            gates = x @ w_ih.T + b + h @ w_hh.T + b_hh
            i, f, g, o = gates.chunk(4)
            c = f.sigmoid() * c + i.sigmoid() * g.tanh()
            return torch.cat([o.sigmoid() * c.tanh(), c])
        if mode == "GRU":
            gi, gh = x @ w_ih.T + b, s @ w_hh.T + b_hh
            r, z = (gi[:2 * units] + gh[:2 * units]).sigmoid().chunk(2)
            n = (gi[2 * units:] + r * gh[2 * units:]).tanh()
            return (1 - z) * n + z * s
        act = torch.tanh if module.nonlinearity == "tanh" else torch.relu
        return act(x @ w_ih.T + b + s @ w_hh.T + b_hh)
    return step


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN_TANH"])
def test_dynamics_of_the_word_language_model_equals_autograd_svdvals(kind):
    model = word_lm(kind)
    ids = torch.randint(0, V, (6, 2), generator=torch.Generator().manual_seed(1))
    dyn = rw.dynamics(model, ids, k=4)
    tr = dyn.trace
    emb = model.encoder(ids).detach().transpose(0, 1)          # (batch, time, 16)
    mode = "LSTM" if kind == "LSTM" else "GRU" if kind == "GRU" else "RNN"
    for k in range(2):
        lt = tr.layers[f"rnn.l{k}"]
        xs = emb if k == 0 else torch.from_numpy(tr.layers["rnn.l0"].h)
        states = np.concatenate([lt.states[q] for q in ("h", "c") if q in lt.states], -1)
        for b in range(2):
            prev = np.concatenate([np.zeros((1, states.shape[-1]), np.float32), states[b, :-1]])
            ref = svd_reference(fused_step(model.rnn, k, mode), xs[b].double(), torch.from_numpy(prev).double(), 4)
            np.testing.assert_allclose(dyn.layers[f"rnn.l{k}"].singular_values[b], ref, rtol=1e-4, atol=1e-5)


def test_dynamics_of_the_hand_written_name_rnn_equals_autograd_svdvals():
    torch.manual_seed(0)
    model = NameRNN(6, 12, 3).eval()
    line = torch.randn(7, 1, 6)
    dyn = rw.dynamics(model, line, k=5)
    d = dyn.layers[dyn.trace.first.name]
    h = dyn.trace.first.h[0]
    prev = torch.from_numpy(np.concatenate([np.zeros((1, 12), np.float32), h[:-1]]))

    def step(x, s):
        return model(x[None], s[None])[1][0]
    ref = svd_reference(step, line[:, 0], prev, 5)      # float32, as the model
    np.testing.assert_allclose(d.singular_values[0], ref, rtol=1e-4, atol=1e-5)


def test_dynamics_of_the_gru_regressor_and_the_proj_lstm_equal_autograd_svdvals():
    torch.manual_seed(0)
    reg = GRURegressor(3, 12, 2, 1, 0.2).eval()
    x = torch.randn(2, 7, 3)
    dyn = rw.dynamics(reg, x, k=3)
    h0 = dyn.trace.layers["gru.l0"].h
    for k, xs in ((0, x), (1, torch.from_numpy(h0))):
        h = dyn.trace.layers[f"gru.l{k}"].h[1]
        prev = torch.from_numpy(np.concatenate([np.zeros((1, 12), np.float32), h[:-1]])).double()
        ref = svd_reference(fused_step(reg.gru, k, "GRU"), xs[1].double(), prev, 3)
        np.testing.assert_allclose(dyn.layers[f"gru.l{k}"].singular_values[1], ref, rtol=1e-4, atol=1e-5)
    proj = ProjLSTM(4, 12, 5, 2).eval()
    dyn = rw.dynamics(proj, x[..., :2].repeat(1, 1, 2), k=3)
    lt = dyn.trace.layers["lstm.l0"]
    w_ih, w_hh, w_hr = (getattr(proj.lstm, n).detach().double() for n in ("weight_ih_l0", "weight_hh_l0", "weight_hr_l0"))
    bias = (proj.lstm.bias_ih_l0 + proj.lstm.bias_hh_l0).detach().double()

    def step(x_, s):
        h, c = s[:5], s[5:]
        i, f, g, o = (x_ @ w_ih.T + h @ w_hh.T + bias).chunk(4)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        return torch.cat([(o.sigmoid() * c.tanh()) @ w_hr.T, c])
    states = np.concatenate([lt.states["h"][0], lt.states["c"][0]], -1)
    prev = torch.from_numpy(np.concatenate([np.zeros((1, 17), np.float32), states[:-1]])).double()
    ref = svd_reference(step, x[0, :, :2].repeat(1, 2).double(), prev, 3)
    np.testing.assert_allclose(dyn.layers["lstm.l0"].singular_values[0], ref, rtol=1e-4, atol=1e-5)


# ---- edits against hand-edited loops --------------------------------------------------------------------
def test_a_clamp_on_the_hand_written_name_rnn_equals_its_loop_with_the_clamp():
    torch.manual_seed(0)
    model = NameRNN(6, 12, 3).eval()
    line = torch.randn(7, 1, 6)
    tr = rw.trace(model, line, edits=[rw.clamp("namernn", "h", [0, 2], range(1, 4), 0.5)])
    hidden, hs, outs = model.initHidden(), [], []
    with torch.no_grad():
        for t in range(7):
            out, hidden = model(line[t], hidden)
            if 1 <= t < 4:
                hidden[:, [0, 2]] = 0.5
            hs.append(hidden[0].clone())
            outs.append(out[0])
    np.testing.assert_allclose(tr.first.h[0], torch.stack(hs).numpy(), atol=1e-6)
    np.testing.assert_allclose(tr.outputs[0], torch.stack(outs).numpy(), atol=1e-6)


def test_a_clamp_on_the_seq2seq_decoder_equals_the_tutorials_loop_with_the_clamp():
    torch.manual_seed(0)
    enc, dec = EncoderRNN(V, 12).eval(), DecoderRNN(12, V).eval()
    model = Seq2Seq(enc, dec).eval()
    src, tgt = torch.randint(1, V, (2, 5)), torch.randint(1, V, (2, MAX_LENGTH))
    tr = rw.trace(model, src, kwargs={"target": tgt},
                  edits=[rw.clamp("decoder.gru.l0", "h", [1], range(2, 4), 0.0)])
    with torch.no_grad():
        _, hidden = enc(src)
        x, outs = torch.zeros(2, 1, dtype=torch.long), []
        for t in range(MAX_LENGTH):           # forward_step with the clamp before the state is used
            _, hidden = dec.gru(F.relu(dec.embedding(x)), hidden)
            if 2 <= t < 4:
                hidden = hidden.clone()
                hidden[..., 1] = 0.0
            outs.append(dec.out(hidden.transpose(0, 1)))
            x = tgt[:, t].unsqueeze(1)
    np.testing.assert_allclose(tr.outputs, F.log_softmax(torch.cat(outs, 1), -1).numpy(), atol=1e-6)


def test_a_patch_from_another_run_of_the_word_language_model_equals_the_loop_with_those_values():
    model = word_lm("GRU")
    a, b = torch.randint(0, V, (6, 1)), torch.randint(0, V, (6, 1))
    tr_a = rw.trace(model, a)
    tr = rw.trace(model, b, edits=[rw.patch(tr_a, "rnn.l1", "h", [3, 4], range(2, 5))])
    rnn, h = model.rnn, [torch.zeros(1, 16), torch.zeros(1, 16)]
    with torch.no_grad():
        outs = []
        for t in range(6):
            x = model.encoder(b[t])
            for k in range(2):
                cell = torch.nn.GRUCell(16, 16)
                for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(cell, n).copy_(getattr(rnn, f"{n}_l{k}"))
                h[k] = cell(x, h[k])
                if k == 1 and 2 <= t < 5:
                    h[k][:, [3, 4]] = torch.from_numpy(tr_a.layers["rnn.l1"].h[0, t, [3, 4]])
                x = h[k]
            outs.append(F.log_softmax(model.decoder(x), 1))
    np.testing.assert_allclose(tr.outputs.reshape(6, V), torch.cat(outs).numpy(), atol=1e-5)   # batch 1


# ---- every newer call runs on every model, the obvious way -----------------------------------------------
def cases():
    torch.manual_seed(0)
    lengths = torch.tensor([6, 4, 2])
    ids = torch.randint(1, V, (3, 6))
    for i, n in enumerate(lengths):
        ids[i, n:] = 0
    enc, dec = EncoderRNN(V, 12).eval(), DecoderRNN(12, V).eval()
    return {
        "wordlm": (word_lm("LSTM"), torch.randint(0, V, (5, 2)), {}, "rnn.l1", "c"),
        "namernn": (NameRNN(6, 12, 3).eval(), torch.randn(5, 1, 6), {}, "namernn", "h"),
        "seq2seq": (Seq2Seq(enc, dec).eval(), torch.randint(1, V, (2, 5)),
                    {"kwargs": {"target": torch.randint(1, V, (2, MAX_LENGTH))}}, "decoder.gru.l0", "h"),
        "packed": (PackedBiLSTM(V, 8, 12, 2).eval(), ids, {"kwargs": {"text_lengths": lengths}}, "rnn.l0.reverse", "c"),
        "proj": (ProjLSTM(4, 12, 5, 2).eval(), torch.randn(2, 5, 4), {}, "lstm.l1", "h"),
        "bigru": (BiGRU(4, 10, 2).eval(), torch.randn(5, 2, 4), {}, "gru.l1.reverse", "update"),
        "cells": (Sequence(10).double().eval(), torch.randn(2, 5, dtype=torch.double), {}, "lstm2", "c"),
        "state": (LSTMState(4, 12, 2).eval(), torch.randn(2, 5, 4), {}, "lstm.l0", "c"),
    }


@pytest.mark.parametrize("name", list(cases()))
def test_every_newer_call_runs_on_the_public_model(name):
    model, inputs, calling, layer, quantity = cases()[name]
    tr = rw.trace(model, inputs, **calling)
    dyn = rw.dynamics(model, inputs, k=2, **calling)
    assert set(dyn.layers) == set(tr.layers)
    for d in dyn.layers.values():
        assert np.isfinite(d.singular_values[np.arange(d.singular_values.shape[1]) < d.lengths[:, None]]).all()
    fps = rw.fixed_points(model, layer=layer.removesuffix(".reverse"), n_init=8) if name != "namernn" else None
    rw.DynamicsView(dyn, fps) if fps is not None else rw.DynamicsView(dyn)
    clamp = rw.clamp(layer, quantity, [0], range(1, 3), 0.25)
    edited = rw.trace(model, inputs, edits=[clamp], **calling)
    lt = edited.layers[layer]
    values = lt.states[quantity] if quantity in lt.states else lt.gates[quantity]
    full = edited.layer_lengths(layer) >= 3                 # the sequences that have steps 1 and 2
    np.testing.assert_array_equal(values[full, 1:3, 0], 0.25)
    rw.trace(model, inputs, loss="last", edits=[rw.patch(edited, layer, "h", [1], None)], **calling)
    rw.compare(tr, edited)
    ex = rw.explore(model, inputs, dynamics=fps if fps is not None else True, patch_from={"edited": edited},
                    **calling)
    ex.what_if.run(0, range(0, 3), source="edited")
    if not calling:
        rw.trace_dataset(model, [inputs, inputs], edits=[rw.clamp(layer, quantity, [0], None, 0.0)])
    monitor = rw.TrainingMonitor(model, probe=inputs, every=1, dynamics=True, **calling)
    monitor.step(torch.tensor(1.0))
    assert set(monitor.lyapunov) == set(tr.layers)
