"""What the torch benchmarks share: their command line (--steps, --batch, --repeats, --threads),
torch set up from it, and a wall-clock timer of one call."""
from __future__ import annotations

import argparse
import time

import torch


def seconds(fn) -> float:
    """Wall seconds of one call of `fn`; its result is freed after the clock stops."""
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    del result
    return elapsed


def parser(doc: str | None, steps: int, batch: int = 1, repeats: int = 3) -> argparse.ArgumentParser:
    """A benchmark's command line, its usage `doc`: --steps, --batch, --repeats and --threads
    (default 1: a busy machine then does not stall torch's thread pool); add more before `setup`."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=steps)
    p.add_argument("--batch", type=int, default=batch)
    p.add_argument("--repeats", type=int, default=repeats)
    p.add_argument("--threads", type=int, default=1)
    return p


def setup(p: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (`argv`, else the process's), set torch's threads from it and seed
    torch with 0; returns the arguments."""
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    return args
