"""What ``rw.recording`` and ``rw.record`` cost, as ratios measured in one run.

1. ``rw.record(name, tensor)`` outside a recording / a call of an empty Python function: what a
   model pays for leaving ``record`` in its forward. Target <= 2 (one context-variable read).
   Also shown as a share of one LSTMCell step at batch 1, 256 units.
2. A user's loop over a 2-layer LSTMCell stack (256 units, 1,000 steps, batch 1 and 32) inside
   ``rw.recording`` (the trace built at the end included) / the same loop without it.
3. A long loop: one LSTMCell (8 -> 32 units, batch 1) stepped 20,000 times inside
   ``rw.recording`` / the same loop without it. Target <= 3: recording is linear in the steps.

Arms alternate and medians are compared, so a machine busy with other work slows both alike.
Usage: ``python benchmarks/recording.py [--repeats N] [--device cuda]``.
"""
import argparse
import statistics
import time
import timeit

import torch
from torch import nn

from rnnwidgets.capture.recording import record, recording

HIDDEN, STEPS = 256, 1000
LONG_STEPS, LONG_HIDDEN = 20_000, 32


def nothing(name, tensor):
    return None


class CellStack(nn.Module):
    def __init__(self):
        super().__init__()
        self.cells = nn.ModuleList([nn.LSTMCell(HIDDEN, HIDDEN), nn.LSTMCell(HIDDEN, HIDDEN)])

    def forward(self, xs):
        states = [None, None]
        for x in xs:
            for i, cell in enumerate(self.cells):
                states[i] = cell(x, states[i])
                x = states[i][0]
        return x


class CellLoop(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(8, LONG_HIDDEN)

    def forward(self, xs):
        hx = None
        for x in xs:
            hx = self.cell(x, hx)
        return hx


def compare(plain, recorded, device, repeats) -> tuple:
    """Median seconds of each arm, the arms alternating."""
    recorded()   # warm-up
    plain_s, recorded_s = [], []
    for _ in range(repeats):
        plain_s.append(seconds(plain, device))
        recorded_s.append(seconds(recorded, device))
    return statistics.median(plain_s), statistics.median(recorded_s)


def per_call(stmt, number, repeats, **names) -> float:
    return min(timeit.repeat(stmt, globals=names, number=number, repeat=repeats)) / number


def seconds(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def plain_and_recorded(model, xs, device, repeats: int) -> tuple:
    """compare's seconds of ``model(xs)`` run plainly and inside rw.recording, without autograd."""
    def plain():
        with torch.no_grad():
            model(xs)

    def recorded():
        with torch.no_grad(), recording(model) as rec:
            model(xs)
        return rec.trace

    return compare(plain, recorded, device, repeats)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")

    h = torch.zeros(1, HIDDEN)
    cell = nn.LSTMCell(HIDDEN, HIDDEN)
    with torch.no_grad():
        rec = per_call("record('h', h)", 200_000, 5, record=record, h=h)
        empty = per_call("nothing('h', h)", 200_000, 5, nothing=nothing, h=h)
        step = per_call("cell(h, (h, h))", 2_000, 5, cell=cell, h=h)
    print(f"rw.record outside a recording: {rec * 1e9:.0f} ns; / empty function call: {rec / empty:.2f} "
          f"(target <= 2); / one LSTMCell step: {rec / step:.4f}")

    model = CellStack().to(device)
    for batch in (1, 32):
        p, r = plain_and_recorded(model, torch.randn(STEPS, batch, HIDDEN, device=device), device, args.repeats)
        print(f"2 x LSTMCell({HIDDEN}) loop, {STEPS} steps, batch {batch}: plain {p:.3f} s, recorded {r:.3f} s, "
              f"ratio {r / p:.2f}")

    p, r = plain_and_recorded(CellLoop().to(device), torch.randn(LONG_STEPS, 1, 8, device=device), device,
                              args.repeats)
    print(f"LSTMCell(8, {LONG_HIDDEN}) loop, {LONG_STEPS:,} steps, batch 1: plain {p:.3f} s, recorded {r:.3f} s, "
          f"ratio {r / p:.2f} (target <= 3)")


if __name__ == "__main__":
    main()
