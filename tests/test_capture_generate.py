"""rw.generate (capture/generate.py): the tokens a model writes, greedy or sampled, under edits at
every step; its Trace equals rw.trace of the prompt + continuation under the same edits; one step
of the recurrence per token; the model left as found; what it cannot run (a model of float features,
an empty prompt, ids past the embedding) refused in one sentence."""
import re

import numpy as np
import pytest
import torch
from model_state import assert_untouched, snapshot
from torch import nn

import rnnwidgets as rw


class TokenLM(nn.Module):
    """ids (batch, time) -> logits (batch, time, vocab) through an embedding, a recurrent module and a head."""

    def __init__(self, mode="LSTM", vocab=11, units=6, layers=2, batch_first=True, proj=0):
        super().__init__()
        self.embed = nn.Embedding(vocab, 5)
        extra = {"proj_size": proj} if proj else {}
        self.rnn = getattr(nn, mode)(5, units, layers, batch_first=batch_first, **extra)
        self.head = nn.Linear(proj or units, vocab)
        self.batch_first = batch_first

    def forward(self, ids):
        x = self.embed(ids if self.batch_first else ids.t())
        out, _ = self.rnn(x)
        return self.head(out if self.batch_first else out.transpose(0, 1))


def greedy(model, prompt, steps):
    """The plain loop: the whole prefix run again for every token."""
    ids = prompt
    with torch.no_grad():
        for _ in range(steps):
            ids = torch.cat([ids, model(ids)[:, -1].argmax(-1, keepdim=True)], 1)
    return ids


CASES = [dict(mode="LSTM"), dict(mode="GRU", batch_first=False), dict(mode="RNN", layers=1),
         dict(mode="LSTM", proj=3, batch_first=False)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_greedy_generation_is_the_plain_loop_and_its_trace_the_trace_of_what_it_wrote(case):
    torch.manual_seed(3)
    model = TokenLM(**case).double()
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    before = snapshot(model)
    tr = rw.generate(model, prompt, steps=6)
    assert_untouched(model, before)
    ids = torch.tensor(tr.meta["token_ids"])
    assert torch.equal(ids, greedy(model, prompt, 6))
    assert tr.meta["prompt_steps"] == 3 and tr.steps == 9 and "edits" not in tr.meta
    assert tr.tokens == [[str(i) for i in row] for row in ids.tolist()]
    plain = rw.trace(model, ids)
    for name, lt in plain.layers.items():
        for key, value in lt.quantities().items():
            np.testing.assert_allclose(tr.layers[name].quantities()[key], value, atol=1e-6, err_msg=f"{name} {key}")
    with torch.no_grad():
        np.testing.assert_allclose(tr.outputs, model(ids).numpy(), atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_edits_act_at_every_step_generated_ones_included(case):
    torch.manual_seed(4)
    model = TokenLM(**case).double()
    name = "rnn.l0"
    gate = {"LSTM": "forget", "GRU": "update"}.get(case["mode"])
    edits = [rw.clamp(name, "h", [0, 1], range(2, 7), 0.9)]
    if gate:
        edits.append(rw.clamp(name, gate, [2], None, 0.1))
    prompt = torch.tensor([[1, 2, 3]])
    tr = rw.generate(model, prompt, steps=8, edits=edits)
    ids = torch.tensor(tr.meta["token_ids"])
    with torch.no_grad():   # the edited model's own greedy choice at every generated step
        for t in range(3, ids.shape[1]):
            last = list(rw.trace(model, ids[:, :t], edits=edits).layers.values())[-1].h   # steps past t: none
            logits = model.head(torch.from_numpy(last).double())
            assert int(logits[0, -1].argmax()) == int(ids[0, t]), t
    edited = rw.trace(model, ids, edits=edits)
    for layer, lt in edited.layers.items():
        for key, value in lt.quantities().items():
            np.testing.assert_allclose(tr.layers[layer].quantities()[key], value, atol=1e-6, err_msg=f"{layer} {key}")
    np.testing.assert_array_equal(tr.layers[name].h[0, 2:7, :2], np.float32(0.9))
    assert tr.meta["edits"] == [e.describe() for e in edits]


def test_one_step_of_the_recurrence_per_token():
    torch.manual_seed(5)
    model = TokenLM()
    seen = []
    handle = model.rnn.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1]))
    try:
        rw.generate(model, torch.tensor([[1, 2, 3, 4]]), steps=5)
    finally:
        handle.remove()
    assert seen == [4, 1, 1, 1, 1, 1]


def test_sampling_is_repeatable_with_a_seed_and_decodes_tokens():
    torch.manual_seed(6)
    model = TokenLM(vocab=5)
    vocab = ["a", "b", "c", "d", "e"]
    first = rw.generate(model, [0, 1], steps=20, temperature=1.5, seed=7, decode=vocab)
    again = rw.generate(model, [0, 1], steps=20, temperature=1.5, seed=7, decode=vocab)
    assert first.meta["token_ids"] == again.meta["token_ids"]
    assert first.tokens == [[vocab[i] for i in first.meta["token_ids"][0]]]
    others = {tuple(rw.generate(model, [0, 1], steps=20, temperature=1.5, seed=s).meta["token_ids"][0])
              for s in range(5)}
    assert len(others) > 1                                  # a draw, not the argmax
    cold = rw.generate(model, [0, 1], steps=10, temperature=1e-6, seed=1, decode=lambda i: vocab[i].upper())
    assert cold.meta["token_ids"] == rw.generate(model, [0, 1], steps=10).meta["token_ids"]
    assert cold.tokens[0][0] == "A"


class NoRecurrence(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 4)

    def forward(self, ids):
        return ids


def test_bad_models_and_arguments_are_refused_in_one_sentence():
    model = TokenLM()
    with pytest.raises(ValueError, match="steps: expected a whole number of tokens to generate, at least 1"):
        rw.generate(model, [1], steps=0)
    with pytest.raises(ValueError, match=r"temperature: expected a finite number >= 0"):
        rw.generate(model, [1], steps=2, temperature=-1)
    with pytest.raises(ValueError, match=r"prompt: expected token ids \(batch, time\) or \(time,\)"):
        rw.generate(model, torch.zeros(2, 3), steps=2)
    with pytest.raises(TypeError, match="expected a model holding an nn.LSTM / nn.GRU / nn.RNN"):
        rw.generate(NoRecurrence(), [1], steps=2)
    both = TokenLM()
    both.cell = nn.GRUCell(5, 6)
    with pytest.raises(TypeError, match="expected either nn.LSTM / nn.GRU / nn.RNN modules or cells"):
        rw.generate(both, [1], steps=2)
    bidirectional = TokenLM()
    bidirectional.rnn = nn.LSTM(5, 6, batch_first=True, bidirectional=True)
    with pytest.raises(ValueError, match="rnn is bidirectional; generating one token at a time needs"):
        rw.generate(bidirectional, [1], steps=2)
    odd = TokenLM()
    odd.forward = lambda ids: TokenLM.forward(odd, ids)[..., None]
    with pytest.raises(ValueError, match=r"expected the model to map token ids \(1, 1\) \(batch, time\) to logits"):
        rw.generate(odd, [1], steps=2)
    with pytest.raises(ValueError, match="names no layer of this run"):
        rw.generate(model, [1], steps=2, edits=[rw.clamp("lstm.l0", "h", [0], None, 0.0)])


def test_a_forward_that_needs_more_than_the_ids_and_a_state_is_refused():
    class NeedsLengths(TokenLM):
        def forward(self, ids, lengths):
            return super().forward(ids)

    with pytest.raises(TypeError, match=r"expected a model called as model\(ids\) with ids \(batch, time\), or "
                                        r"model\(ids, hidden\); .*needs 'lengths'"):
        rw.generate(NeedsLengths(), [1, 2], steps=2)


def test_flattened_logits_are_read_back_per_step():
    torch.manual_seed(0)
    model = TokenLM().eval()
    flat = TokenLM().eval()
    flat.load_state_dict(model.state_dict())
    flat.forward = lambda ids: TokenLM.forward(flat, ids).flatten(0, 1)   # (batch·time, vocab)
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    a, b = rw.generate(model, prompt, steps=3), rw.generate(flat, prompt, steps=3)
    assert a.meta["token_ids"] == b.meta["token_ids"]
    np.testing.assert_array_equal(a.outputs, b.outputs)


class CellLM(nn.Module):
    """Cells in the model's own loop, each forward starting from zeros."""

    def __init__(self, kind="lstm", vocab=9, units=6):
        super().__init__()
        self.embed = nn.Embedding(vocab, 4)
        self.cells = nn.ModuleList([{"lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind](4, units),
                                    {"lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind](units, units)])
        self.head = nn.Linear(units, vocab)
        self.kind, self.units = kind, units

    def forward(self, ids):
        x = self.embed(ids)
        zeros = x.new_zeros(ids.shape[0], self.units)
        states = [(zeros, zeros) if self.kind == "lstm" else zeros for _ in self.cells]
        outs = []
        for t in range(ids.shape[1]):
            layer_in = x[:, t]
            for k, cell in enumerate(self.cells):
                states[k] = cell(layer_in, states[k])
                layer_in = states[k][0] if self.kind == "lstm" else states[k]
            outs.append(self.head(layer_in))
        return torch.stack(outs, 1)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_cells_in_the_models_own_loop_carry_their_state_from_call_to_call(kind):
    torch.manual_seed(7)
    model = CellLM(kind).double()
    prompt = torch.tensor([[1, 2, 3], [3, 2, 1]])
    before = snapshot(model)
    tr = rw.generate(model, prompt, steps=5)
    assert_untouched(model, before)
    ids = torch.tensor(tr.meta["token_ids"])
    assert torch.equal(ids, greedy(model, prompt, 5))
    plain = rw.trace(model, ids)
    assert list(tr.layers) == list(plain.layers) == ["cells.0", "cells.1"]
    for name, lt in plain.layers.items():
        for key, value in lt.quantities().items():
            np.testing.assert_allclose(tr.layers[name].quantities()[key], value, atol=1e-6, err_msg=f"{name} {key}")
    edits = [rw.clamp("cells.0", "h", [0, 2], range(2, 6), 0.7)]
    edited = rw.generate(model, prompt, steps=5, edits=edits)
    again = rw.trace(model, torch.tensor(edited.meta["token_ids"]), edits=edits)
    for name, lt in again.layers.items():
        for key, value in lt.quantities().items():
            np.testing.assert_allclose(edited.layers[name].quantities()[key], value, atol=1e-6,
                                       err_msg=f"{name} {key}")
    np.testing.assert_array_equal(edited.layers["cells.0"].h[:, 2:6, [0, 2]], np.float32(0.7))
    assert edited.meta["edits"] == [e.describe() for e in edits] and edited.meta["source"] == "generate"


def test_a_model_reading_float_features_is_refused_in_one_sentence_that_points_to_rw_trace():
    from public_models import Sequence  # pytorch/examples' time-sequence prediction: LSTMCells over floats

    torch.manual_seed(8)
    seq, lstm = Sequence(6).double(), nn.LSTM(3, 4, batch_first=True)
    before = snapshot(seq)
    hint = r"a model that reads float features has no token to feed back: trace its sequence with rw\.trace"
    cases = [
        (seq, torch.randn(1, 5, dtype=torch.double), ValueError, r"got floating-point values of shape \(1, 5\)"),
        (lstm, torch.randn(1, 5, 3), ValueError, r"got floating-point values of shape \(1, 5, 3\)"),
        (seq, torch.tensor([[1, 2, 3]]), TypeError,   # torch's own dtype error, before: mat1 and mat2 ...
         r"expected a model that reads token ids \(batch, time\) and returns logits \(an nn.Embedding first\), "
         r"as it feeds each chosen id back; Sequence has no nn.Embedding and failed on the ids \(1, 3\): "),
        (lstm, torch.tensor([[1, 2, 3]]), TypeError, r"LSTM failed on the ids \(1, 3\): rw.trace: lstm expected "
                                                     r"floating-point input"),
    ]
    for model, prompt, kind, says in cases:
        with pytest.raises(kind, match=says) as e:
            rw.generate(model, prompt, steps=3)
        message = str(e.value)
        assert message.startswith("rw.generate: ") and "\n" not in message and re.search(hint, message), message
    assert_untouched(seq, before)
    # what it points to: the model's own loop, traced
    x = torch.randn(2, 5, dtype=torch.double)
    tr = rw.trace(seq, x, kwargs={"future": 3})
    assert tr.outputs.shape == (2, 8, 1)      # 5 steps read, 3 of its own
    np.testing.assert_allclose(tr.outputs[..., 0], seq(x, future=3).detach().numpy(), rtol=1e-6)


def test_odd_prompts_are_refused_in_one_sentence_and_the_rest_generate():
    torch.manual_seed(9)
    model = TokenLM(vocab=11)
    before = snapshot(model)
    refused = [
        ([], r"got an empty prompt \(shape \(0,\)\): generation starts from the prompt's last token"),
        (torch.zeros(1, 0, dtype=torch.long), r"got an empty prompt \(shape \(1, 0\)\)"),
        ([1, -2, 3], r"got negative ids \(-2\)"),
        ([True, False], r"got booleans of shape \(2,\)"),
        ("hello", r"got str$"),
        (torch.zeros(1, 2, 3, dtype=torch.long), r"got Tensor of shape \(1, 2, 3\)"),
        ([1, 11], r"expected token ids from 0 to 10 \(embed is nn.Embedding\(11, \.\.\.\)\), got 11$"),
    ]
    for prompt, says in refused:
        with pytest.raises(ValueError, match=says) as e:
            rw.generate(model, prompt, steps=2)
        assert str(e.value).startswith("rw.generate: ") and "\n" not in str(e.value)
    assert_untouched(model, before)
    # a prompt far longer than the vocabulary; numpy ids; a model in train mode (left so); temperature 0
    long = torch.arange(300).remainder(11)[None]
    assert rw.generate(model, long, steps=3).meta["token_ids"] == greedy(model, long, 3).tolist()
    assert rw.generate(model, np.array([1, 2]), steps=3).meta["token_ids"] == \
        greedy(model, torch.tensor([[1, 2]]), 3).tolist()
    model.train()
    tr = rw.generate(model, [1, 2], steps=3, temperature=0)
    assert model.training and tr.meta["training"] is True
    assert tr.meta["token_ids"] == greedy(model, torch.tensor([[1, 2]]), 3).tolist()


def test_ids_past_an_embedding_are_refused_whichever_of_the_models_embeddings_refuses_them():
    """One embedding: checked before the model runs (on a GPU the embedding's refusal is a device
    assert); two: the embedding's IndexError read back into one sentence naming the one too small."""
    torch.manual_seed(10)
    one = TokenLM(vocab=11)
    seen = []
    handle = one.embed.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    try:
        with pytest.raises(ValueError, match=r"^rw.generate: expected token ids from 0 to 10 \(embed is "
                                             r"nn.Embedding\(11, \.\.\.\)\), got 12$"):
            rw.generate(one, [[1, 2], [12, 3]], steps=2)
    finally:
        handle.remove()
    assert seen == []                                    # refused before the model ran

    class Two(TokenLM):
        def __init__(self):
            super().__init__(vocab=11)
            self.topic = nn.Embedding(4, 5)              # a second, smaller table the ids also index

        def forward(self, ids):
            return super().forward(ids) + self.topic(ids).sum(-1, keepdim=True)

    two = Two()
    before = snapshot(two)
    with pytest.raises(ValueError, match=r"^rw.generate: expected token ids from 0 to 3 \(topic is "
                                         r"nn.Embedding\(4, \.\.\.\)\), got 5$") as e:
        rw.generate(two, [1, 5], steps=2)
    assert isinstance(e.value.__cause__, IndexError)
    assert_untouched(two, before)
