"""The bracket-strings dataset: shapes, determinism, true depth labels, a depth-counting unit."""
import numpy as np
import pytest
import torch
from torch import nn

from rnnwidgets.data import brackets


def depth_by_counting(text):
    """The reference: walk the string keeping a counter."""
    depth, out = 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        out.append(depth)
    return out


def test_encode_decode_and_depths():
    text = "(a(())b)()"
    ids = brackets.encode(text)
    assert ids.dtype == torch.int64 and brackets.decode(ids) == text
    assert brackets.depths(text).tolist() == [1, 1, 2, 3, 2, 1, 1, 0, 1, 0]
    with pytest.raises(ValueError, match="expected characters from '\\(\\)ab', found \\['x', '\\{'\\]"):
        brackets.encode("(x{")


@pytest.mark.parametrize("max_depth,noise", [(1, 0.0), (4, 0.2), (6, 0.5)])
def test_strings_are_bracket_walks_within_the_depth_limit(max_depth, noise):
    texts = brackets.strings(64, 80, max_depth=max_depth, noise=noise, seed=3)
    assert len(texts) == 64 and {len(t) for t in texts} == {80}
    assert set("".join(texts)) <= set(brackets.VOCAB)
    for text in texts:
        depth = depth_by_counting(text)
        assert min(depth) >= 0 and max(depth) <= max_depth
        assert brackets.depths(text).tolist() == depth
    letters = sum(ch in brackets.LETTERS for t in texts for ch in t) / (64 * 80)
    assert letters == pytest.approx(noise, abs=0.03)


def test_the_odds_of_opening_fall_with_depth():
    texts = brackets.strings(400, 100, max_depth=4, noise=0.0, seed=0)
    opened, seen = np.zeros(5), np.zeros(5)
    for text in texts:
        depth = [0] + depth_by_counting(text)
        for d, ch in zip(depth, text):
            seen[d] += 1
            opened[d] += ch == "("
    np.testing.assert_allclose(opened / seen, [1.0, 0.75, 0.5, 0.25, 0.0], atol=0.02)


def test_next_char_data_shapes_targets_depths_and_determinism():
    inputs, targets, depth = brackets.next_char_data(8, 30, seed=5)
    assert inputs.shape == targets.shape == depth.shape == (8, 30)
    assert inputs.dtype == targets.dtype == depth.dtype == torch.int64
    assert torch.equal(inputs[:, 1:], targets[:, :-1])
    for row, d in zip(inputs, depth):
        assert d.tolist() == depth_by_counting(brackets.decode(row))
    again = brackets.next_char_data(8, 30, seed=5)
    for a, b in zip((inputs, targets, depth), again):
        assert torch.equal(a, b)
    assert not torch.equal(inputs, brackets.next_char_data(8, 30, seed=6)[0])
    with pytest.raises(ValueError, match="0 <= noise < 1"):
        brackets.next_char_data(8, 30, noise=1.0)


@pytest.fixture
def one_thread(torch_threads):
    """Small models train several times faster on one thread than on contended cores."""
    torch_threads(1)


def test_a_small_lstm_learns_a_depth_counting_unit(one_thread):
    torch.manual_seed(0)
    inputs, targets, _ = brackets.next_char_data(256, 60, seed=0)
    embed, lstm, head = nn.Embedding(4, 8), nn.LSTM(8, 16, batch_first=True), nn.Linear(16, 4)
    params = [*embed.parameters(), *lstm.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, 1e-2)
    for _ in range(300):
        idx = torch.randint(0, 256, (32,))
        logits = head(lstm(embed(inputs[idx]))[0])
        loss = nn.functional.cross_entropy(logits.reshape(-1, 4), targets[idx].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    test_inputs, _, test_depth = brackets.next_char_data(64, 60, seed=1)
    with torch.no_grad():
        h = lstm(embed(test_inputs))[0].reshape(-1, 16).numpy()
    d = test_depth.reshape(-1).numpy().astype(float)
    best = max(abs(np.corrcoef(h[:, u], d)[0, 1]) for u in range(16))
    assert best > 0.85

