"""What rw.dynamics costs, measured in the same run, for a 2-layer 256-unit LSTM (s = [h, c]: a
512 x 512 step Jacobian per layer) over 1,000 steps at batch 1:

  rw.dynamics(k=8) / native forward                                target <= 20
      (per step: the top 8 singular values, sigma_min, the Lyapunov QR; and the PCA plane)
  per-step recipe / rw.dynamics(k=8)                               target >= 50
      (the recipe: torch.autograd.functional.jacobian of one step of the layer, then
       torch.linalg.svdvals; timed on --sample steps per layer and scaled to all steps)
  peak memory growth of rw.dynamics (fresh process) against a full Jacobian stack

Beside the first ratio, the floor the method implies, measured in the same run: the products J^T J q
that Lanczos actually took per step (counted during the timed call) times the time of one such
product over all the steps of both layers (timed after it, on the same chunks of steps), over the
native forward. What the ratio holds above the floor is everything else (reorthogonalisation, the
Ritz checks, sigma_min, the Lyapunov QR, the PCA).

Both ratios are printed for each thread count of ``--threads`` (default: 1 and torch's own default,
which the user gets; the library never sets it), the native forward timed at the same count.

    .venv/bin/python benchmarks/dynamics.py [--steps 1000] [--batch 1] [--sample 10] [--threads 1,default]
"""
import argparse
import multiprocessing
import resource
import statistics
import time

import torch
from common import seconds
from torch import nn

import rnnwidgets as rw
from rnnwidgets.capture import jacobians

UNITS, LAYERS, K = 256, 2, 8


def make(batch: int, steps: int):
    torch.manual_seed(0)
    return nn.LSTM(UNITS, UNITS, num_layers=LAYERS).eval(), torch.randn(steps, batch, UNITS)


def recipe_seconds_per_step(module, x, sample: int) -> float:
    """The common recipe on ``sample`` steps of each layer: autograd Jacobian + svdvals, per step."""
    tr = rw.trace(module, x)
    total, count = 0.0, 0
    for layer in range(LAYERS):
        one = nn.LSTM(UNITS, UNITS).eval()
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(one, name + "_l0").copy_(getattr(module, f"{name}_l{layer}"))
        lt = tr.layers[f"lstm.l{layer}"]
        inputs = x if layer == 0 else torch.from_numpy(tr.layers[f"lstm.l{layer - 1}"].h).transpose(0, 1)
        for t in range(1, sample + 1):
            s = torch.cat([torch.from_numpy(lt.states["h"][0, t - 1]), torch.from_numpy(lt.states["c"][0, t - 1])])
            xt = inputs[t, :1]

            def step(s, xt=xt):
                _, (h, c) = one(xt[None], (s[None, None, :UNITS], s[None, None, UNITS:]))
                return torch.cat([h.flatten(), c.flatten()])
            start = time.perf_counter()
            torch.linalg.svdvals(torch.autograd.functional.jacobian(step, s))
            total += time.perf_counter() - start
            count += 1
    return total / count


class ProductCount:
    """Counts, while installed, the Lanczos products each step takes (``lanczos_top``'s ``iterations``)
    and keeps each chunk's operator, to time one product over the same steps afterwards."""

    def __init__(self):
        self.calls: list = []          # (operator, products each of its steps took)
        self.real = jacobians.lanczos_top

    def __enter__(self):
        def counted(op, k, **kwargs):
            iterations = torch.zeros(len(op), dtype=torch.int64)
            out = self.real(op, k, iterations=iterations, **kwargs)
            self.calls.append((op, iterations))
            return out
        jacobians.lanczos_top = counted
        return self

    def __exit__(self, *exc):
        jacobians.lanczos_top = self.real

    def per_step(self) -> float:
        """The mean number of products a step took."""
        return float(torch.cat([it for _, it in self.calls]).double().mean())

    def one_product(self, repeats: int) -> float:
        """Seconds of one product J^T J q for every step counted (each chunk's operator whole)."""
        total = 0.0
        for op, _ in self.calls:
            q = torch.randn(len(op), op.rec.state_size, dtype=op.rec.w_hh.dtype)
            op.gram(q)
            total += statistics.median(seconds(lambda op=op, q=q: op.gram(q)) for _ in range(repeats))
        return total


def peak_memory(batch: int, steps: int, queue) -> None:
    module, x = make(batch, steps)
    rw.trace(module, x[:2])                     # imports and first-call allocations before the baseline
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    dyn = rw.dynamics(module, x, k=K)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    returned = sum(d.singular_values.nbytes + d.states.nbytes + d.pca.trajectory.nbytes for d in dyn.layers.values())
    queue.put(((peak - base) * 1024, returned))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--sample", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", default="1,default",
                        help="comma-separated thread counts; 'default' is torch's own (the user's)")
    args = parser.parse_args()
    default = torch.get_num_threads()
    counts = [default if t == "default" else int(t) for t in args.threads.split(",")]
    module, x = make(args.batch, args.steps)
    print(f"2-layer {UNITS}-unit LSTM, {args.steps} steps, batch {args.batch}")
    for threads in dict.fromkeys(counts):
        torch.set_num_threads(threads)
        with torch.no_grad():
            module(x)
            native = statistics.median(seconds(lambda: module(x)) for _ in range(args.repeats))
        rw.dynamics(module, x[:20], k=K)            # warmup
        with ProductCount() as count:
            ours = seconds(lambda: rw.dynamics(module, x, k=K))
        products, one = count.per_step(), count.one_product(max(args.repeats, 5))
        del count
        with torch.no_grad():
            native_after = statistics.median(seconds(lambda: module(x)) for _ in range(args.repeats))
        native = min(native, native_after)
        per_step = recipe_seconds_per_step(module, x, args.sample)
        recipe = per_step * args.steps * args.batch * LAYERS
        print(f"{threads} thread(s){' (torch default)' if threads == default else ''}")
        print(f"  native forward            {native * 1e3:10.1f} ms")
        print(f"  rw.dynamics(k={K})          {ours * 1e3:10.1f} ms   ratio to forward {ours / native:7.1f}   "
              f"(target <= 20)")
        print(f"  floor: {products:.1f} products/step x {one * 1e3:.1f} ms (one J^T J product, all steps) = "
              f"{products * one * 1e3:.0f} ms   floor / forward {products * one / native:7.1f}   "
              f"products' share of rw.dynamics {products * one / ours:.0%}")
        print(f"  recipe (scaled from {args.sample} steps/layer) {recipe:8.1f} s    "
              f"recipe / rw.dynamics {recipe / ours:7.1f}   (target >= 50)")
    torch.set_num_threads(counts[0])
    size = 2 * UNITS
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=peak_memory, args=(args.batch, args.steps, queue))
    proc.start()
    grown, returned = queue.get()
    proc.join()
    stack = LAYERS * args.steps * args.batch * size * size * 4
    print(f"peak memory growth        {grown / 2 ** 20:10.1f} MiB  (returned arrays {returned / 2 ** 20:.1f} MiB; "
          f"a full Jacobian stack would be {stack / 2 ** 20:.0f} MiB)")


if __name__ == "__main__":
    main()
