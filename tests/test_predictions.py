"""The Explorer's top predictions: a partial selection equal to a full stable sort, and a model
whose logits come back flattened to (time x batch, vocabulary) shown at every batch element."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn

import rnnwidgets as rw
from rnnwidgets.widgets.payload import top_classes, top_predictions


@settings(max_examples=200, deadline=None)
@given(scores=st.integers(1, 6).flatmap(lambda t: st.integers(1, 40).flatmap(
    lambda c: arrays(np.float32, (t, c), elements=st.integers(-3, 3).map(float)))),   # small integers: many ties
    k=st.integers(1, 8))
def test_top_classes_equal_a_full_stable_sort(scores, k):
    k = min(k, scores.shape[1])
    want = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(top_classes(scores, k), want)


def test_top_predictions_on_a_large_vocabulary_match_torch():
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((50, 33_278)).astype(np.float32) * 4
    ids, probs, labels = top_predictions(scores, None, k=5)
    want_probs, want_ids = torch.softmax(torch.from_numpy(scores).double(), dim=1).topk(5, dim=1)
    np.testing.assert_allclose(probs, want_probs.numpy(), rtol=1e-5, atol=1e-9)
    assert [[labels[int(i)] for i in row] for row in ids] == [[str(c) for c in row] for row in want_ids.tolist()]


class WordLanguageModel(nn.Module):
    """pytorch/examples' word language model: (time, batch) ids, logits flattened by .view(-1, ntoken)."""

    def __init__(self, ntoken=11, units=6, batch_first=False):
        super().__init__()
        self.ntoken = ntoken
        self.encoder = nn.Embedding(ntoken, 5)
        self.rnn = nn.LSTM(5, units, 2, batch_first=batch_first)
        self.decoder = nn.Linear(units, ntoken)

    def forward(self, input, hidden):
        output, hidden = self.rnn(self.encoder(input), hidden)
        decoded = self.decoder(output).view(-1, self.ntoken)
        return torch.log_softmax(decoded, dim=1), hidden


@pytest.mark.parametrize("batch_first", [False, True])
def test_flattened_logits_are_shown_at_every_batch_element(batch_first):
    torch.manual_seed(2)
    model = WordLanguageModel(batch_first=batch_first).eval()
    steps, batch = 7, 3
    ids = torch.randint(0, 11, (batch, steps) if batch_first else (steps, batch))
    hidden = (torch.zeros(2, batch, 6), torch.zeros(2, batch, 6))
    logits = model(ids, hidden)[0].detach()
    per_element = logits.view(batch, steps, -1) if batch_first else logits.view(steps, batch, -1).transpose(0, 1)
    tr = rw.trace(model, ids, hidden=hidden)
    np.testing.assert_allclose(tr.outputs, per_element.numpy(), rtol=0, atol=1e-6)
    vocabulary = [f"w{i}" for i in range(11)]
    ex = rw.explore(model, ids, hidden=hidden, decode=vocabulary, batch=2)
    p = ex.view.index["predictions"]
    assert p is not None
    floats = np.frombuffer(ex.view.buffer, dtype="<f4")
    shown = floats[p["ids"]:p["ids"] + steps * p["k"]].reshape(steps, p["k"]).astype(int)
    probs = floats[p["probs"]:p["probs"] + steps * p["k"]].reshape(steps, p["k"])
    want_probs, want_ids = torch.softmax(per_element[2], dim=-1).topk(p["k"], dim=-1)
    assert [[p["labels"][i] for i in row] for row in shown] == [[vocabulary[c] for c in row]
                                                                for row in want_ids.tolist()]
    np.testing.assert_allclose(probs, want_probs.numpy(), atol=1e-6)
