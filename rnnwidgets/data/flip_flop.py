"""The 3-bit flip-flop of Sussillo & Barak (2013): a memory task whose solution is 2^bits stable
fixed points, one per stored pattern.

Each of ``bits`` input channels is 0 most of the time and now and then a pulse of +1 or -1; the
matching output channel holds the sign of that channel's last pulse (0 before its first).
"""
from __future__ import annotations

import numpy as np
import torch


def flip_flop(n: int, steps: int, bits: int = 3, p: float = 0.05, seed: int = 0):
    """``(inputs, targets)``: float32 tensors (n, steps, bits), batch first."""
    if n < 1 or steps < 1 or bits < 1 or not 0 < p <= 1:
        raise ValueError(f"flip_flop: expected n, steps, bits >= 1 and 0 < p <= 1, got n={n}, steps={steps}, "
                         f"bits={bits}, p={p}")
    rng = np.random.default_rng(seed)
    pulses = (rng.random((n, steps, bits)) < p) * rng.choice([-1.0, 1.0], size=(n, steps, bits))
    targets = np.zeros_like(pulses)
    held = np.zeros((n, bits))
    for t in range(steps):
        held = np.where(pulses[:, t] != 0, pulses[:, t], held)
        targets[:, t] = held
    return torch.tensor(pulses, dtype=torch.float32), torch.tensor(targets, dtype=torch.float32)
