"""Nested-bracket strings for next-character prediction, with the true depth of every character.

    from rnnwidgets.data import brackets
    inputs, targets, depth = brackets.next_char_data(512, length=60, seed=0)
    model(inputs)                      # (batch, length) ids over brackets.VOCAB
    brackets.decode(inputs[0])         # "(a(())b(..."

A string is a random walk over depth: the next bracket opens with probability
1 - depth / ``max_depth`` (always at depth 0, never at ``max_depth``) and closes otherwise; with
probability ``noise`` a letter comes instead and leaves the depth as it is. So the odds of the
next character change with every level of depth: predicting it well means counting.
"""
from __future__ import annotations

import numpy as np
import torch

VOCAB = "()ab"
LETTERS = "ab"
STOI = {ch: i for i, ch in enumerate(VOCAB)}
LETTER_IDS = np.array([STOI[ch] for ch in LETTERS])


def encode(text: str) -> torch.Tensor:
    """Character ids (int64) of ``text``; a clear error for a character outside VOCAB."""
    unknown = sorted(set(text) - set(VOCAB))
    if unknown:
        raise ValueError(f"brackets.encode: expected characters from {VOCAB!r}, found {unknown}")
    return torch.tensor([STOI[ch] for ch in text], dtype=torch.int64)


def decode(ids) -> str:
    """The string of a sequence of character ids."""
    return "".join(VOCAB[int(i)] for i in ids)


def depths(text: str) -> np.ndarray:
    """The nesting depth after each character: "(" counts in, ")" counts out, a letter keeps it."""
    steps = np.array([{"(": 1, ")": -1}.get(ch, 0) for ch in text], dtype=np.int64)
    return np.cumsum(steps)


def strings(n: int, length: int, max_depth: int = 4, noise: float = 0.2, seed: int = 0) -> list:
    """``n`` strings of ``length`` characters (see the module doc for how they are drawn)."""
    if n < 1 or length < 1 or max_depth < 1 or not 0 <= noise < 1:
        raise ValueError(f"brackets.strings: expected n >= 1, length >= 1, max_depth >= 1 and 0 <= noise < 1, "
                         f"got n={n}, length={length}, max_depth={max_depth}, noise={noise}")
    rng = np.random.default_rng(seed)
    ids = np.empty((n, length), dtype=np.int64)
    depth = np.zeros(n, dtype=np.int64)
    for t in range(length):
        opens = rng.random(n) < 1 - depth / max_depth
        letter = rng.random(n) < noise
        a_letter = LETTER_IDS[rng.integers(len(LETTER_IDS), size=n)]
        ids[:, t] = np.where(letter, a_letter, np.where(opens, STOI["("], STOI[")"]))
        depth += np.where(letter, 0, np.where(opens, 1, -1))
    return [decode(row) for row in ids]


def next_char_data(n: int, length: int, max_depth: int = 4, noise: float = 0.2, seed: int = 0):
    """``(inputs, targets, depth)`` for next-character prediction, batch first.

    inputs, targets: int64 tensors (n, length), targets[:, t] == inputs[:, t + 1] of the same
    string; depth: int64 tensor (n, length), the nesting depth after each input character.
    """
    ids = torch.stack([encode(s) for s in strings(n, length + 1, max_depth, noise, seed)])
    inputs, targets = ids[:, :-1], ids[:, 1:]
    depth = torch.stack([torch.from_numpy(depths(decode(row))) for row in inputs])
    return inputs.contiguous(), targets.contiguous(), depth
