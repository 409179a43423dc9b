"""How much the gradient views cost, as ratios measured in one run.

1. A training step (forward, backward, optimizer step) of a 2-layer 256-unit LSTM on batch 32 x
   100 steps, with ``TrainingMonitor.step`` called after backward / without it. Target <= 1.05.
2. ``rw.gradient_flow`` (trace with gradients + analysis + widget) over 1,000 steps / the module's
   own forward + backward. Target <= 3.0.

Runs alternate between the two arms and the medians are compared, so a machine busy with other
work slows both arms alike (on a shared 2-core machine expect noise of several percent).  Usage: ``python benchmarks/monitor.py [--repeats N]``.
"""
import argparse
import statistics
import time

import torch

from rnnwidgets import TrainingMonitor, gradient_flow
from rnnwidgets.capture import trace

INPUT, HIDDEN, LAYERS = 32, 256, 2


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(INPUT, HIDDEN, num_layers=LAYERS, batch_first=True)
        self.head = torch.nn.Linear(HIDDEN, 1)

    def forward(self, x):
        return self.head(self.lstm(x)[0])


def training_steps(model, optimizer, x, y, steps, monitor=None) -> float:
    """Seconds per training step over ``steps`` steps."""
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x)[:, -1], y)
        loss.backward()
        if monitor is not None:
            monitor.step(loss)
        optimizer.step()
    return (time.perf_counter() - start) / steps


def bench_monitor(repeats: int, steps: int):
    torch.manual_seed(0)
    model = Model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(32, 100, INPUT), torch.randn(32, 1)
    monitor = TrainingMonitor(model, clip=1.0)
    training_steps(model, optimizer, x, y, 2)            # warm up both paths
    training_steps(model, optimizer, x, y, 2, monitor)
    bare, watched = [], []
    for _ in range(repeats * steps):                     # alternate single steps: load hits both alike
        bare.append(training_steps(model, optimizer, x, y, 1))
        watched.append(training_steps(model, optimizer, x, y, 1, monitor))
    base, mon = statistics.median(bare), statistics.median(watched)
    print(f"training step, 2x{HIDDEN} LSTM, batch 32 x 100 steps: without monitor {base * 1e3:.1f} ms, "
          f"with monitor {mon * 1e3:.1f} ms (medians of {len(bare)} alternating steps; {monitor.pushes} sends)")
    print(f"  monitor / without = {mon / base:.3f}   (target <= 1.05)")


def native_forward_backward(model, x) -> float:
    start = time.perf_counter()
    out = model(x)
    torch.autograd.grad(out[:, -1].sum(), list(model.parameters()))
    return time.perf_counter() - start


def timed_gradient_flow(model, x) -> float:
    start = time.perf_counter()
    gradient_flow(model, x, loss=lambda out: out[:, -1].sum())
    return time.perf_counter() - start


def timed_trace(model, x) -> float:
    start = time.perf_counter()
    trace(model, x, loss=lambda out: out[:, -1].sum())
    return time.perf_counter() - start


def bench_gradient_flow(repeats: int, steps: int):
    torch.manual_seed(0)
    model = Model()
    for batch in (1, 32):
        x = torch.randn(batch, steps, INPUT)
        native_forward_backward(model, x)
        timed_gradient_flow(model, x)
        native, flow, traced = [], [], []
        for _ in range(repeats):
            native.append(native_forward_backward(model, x))
            flow.append(timed_gradient_flow(model, x))
            traced.append(timed_trace(model, x))
        base, ours, capture = statistics.median(native), statistics.median(flow), statistics.median(traced)
        print(f"gradient_flow, 2x{HIDDEN} LSTM, batch {batch} x {steps} steps: native forward+backward "
              f"{base * 1e3:.0f} ms, gradient_flow {ours * 1e3:.0f} ms (of which rw.trace {capture * 1e3:.0f} ms)")
        print(f"  gradient_flow / native = {ours / base:.2f}   (target <= 3.0); rw.trace alone / native = "
              f"{capture / base:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="alternating training-step pairs per repeat")
    parser.add_argument("--sequence", type=int, default=1000, help="steps of the gradient_flow sequence")
    args = parser.parse_args()
    bench_monitor(args.repeats, args.steps)
    bench_gradient_flow(args.repeats, args.sequence)


if __name__ == "__main__":
    main()
