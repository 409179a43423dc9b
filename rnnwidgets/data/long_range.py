"""The adding problem: a long-range memory task for comparing recurrent cells.

Each step carries two numbers: a value drawn uniformly from [0, 1) and a marker that is 1 at
exactly two steps (one in each half of the sequence) and 0 elsewhere. The target is the sum of
the two marked values. Always answering 1 gives a mean squared error of about 0.167; beating it
needs information carried from the first marked step to the end, so over long sequences it
separates a tanh RNN (vanishing gradients) from a GRU or an LSTM (Hochreiter & Schmidhuber 1997;
Le, Jaitly & Hinton 2015).
"""
from __future__ import annotations

import numpy as np
import torch


def adding_problem(n: int, steps: int, seed: int = 0):
    """``(inputs, targets)``: float32 tensors (n, steps, 2) batch first, and (n, 1)."""
    if n < 1 or steps < 2:
        raise ValueError(f"adding_problem: expected n >= 1 and steps >= 2, got n={n}, steps={steps}")
    rng = np.random.default_rng(seed)
    values = rng.random((n, steps), dtype=np.float32)
    half = steps // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, steps, size=n)
    markers = np.zeros((n, steps), dtype=np.float32)
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = values[rows, first] + values[rows, second]
    inputs = np.stack([values, markers], axis=2)
    return torch.from_numpy(inputs), torch.from_numpy(targets[:, None])
