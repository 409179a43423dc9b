"""How long select-and-match takes over a large dataset trace, next to one plain numpy scan of it.

Builds a dataset trace of ``--steps`` steps x ``--units`` units (float32 noise with slowly
varying on/off runs, in sequences of ``--length`` steps), selects ``--selected`` units and prints
(median of ``--repeats`` after a warmup):
  match        rw patterns.matches: every maximal run of the selected units, scored, ranked
  plain scan   np.count_nonzero(values > threshold, axis=0): one pass over every value, the least
               any search that reads the whole dataset pays
  ratio        match / plain scan, both timed back to back in this run
Target: match <= 1 s for 1,000,000 steps x 512 units. ``--disk`` runs both on a memory-mapped
dataset saved to a temporary folder (page cache warm after the warmup).

    .venv/bin/python benchmarks/patterns.py [--steps 1000000] [--units 512] [--repeats 3] [--disk]
"""
import argparse
import statistics
import tempfile
import time

import numpy as np

from rnnwidgets.dataset import DatasetTrace
from rnnwidgets.patterns import matches

THRESHOLD = 0.3


def synthetic(steps: int, units: int, length: int, seed: int = 0) -> DatasetTrace:
    """Units that switch on and off in runs of a few steps, like a trained LSTM's h."""
    rng = np.random.default_rng(seed)
    values = np.empty((steps, units), dtype=np.float32)
    block = 65536
    for a in range(0, steps, block):
        n = min(block, steps - a)
        level = rng.standard_normal((n // 8 + 1, units), dtype=np.float32).repeat(8, axis=0)[:n]  # runs of 8
        values[a:a + n] = np.tanh(level + 0.3 * rng.standard_normal((n, units), dtype=np.float32))
    offsets = np.append(np.arange(0, steps, length), steps)
    vocab = ["(", ")", "a", "b"]
    ids = rng.integers(0, len(vocab), size=steps).astype(np.int32)
    return DatasetTrace({"lstm.l0": {"h": values}}, {"lstm.l0": "lstm"}, offsets, ids, vocab)


def median_seconds(fn, repeats: int) -> float:
    fn()  # warmup
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--length", type=int, default=200, help="steps per sequence")
    parser.add_argument("--selected", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--disk", action="store_true")
    args = parser.parse_args()
    ds = synthetic(args.steps, args.units, args.length)
    if args.disk:
        folder = tempfile.mkdtemp(prefix="rnnwidgets-bench-")
        ds = DatasetTrace.load(ds.save(folder))
    units = list(range(0, args.selected * 7, 7))
    values = ds.values()
    found = matches(ds, units, THRESHOLD, length=4, limit=None)
    match_s = median_seconds(lambda: matches(ds, units, THRESHOLD, length=4), args.repeats)
    scan_s = median_seconds(lambda: np.count_nonzero(values > THRESHOLD, axis=0), args.repeats)
    where = "memory-mapped" if args.disk else "in memory"
    print(f"dataset: {args.steps:,} steps x {args.units} units ({values.nbytes / 2**30:.2f} GiB, {where}), "
          f"{ds.sequences:,} sequences; {len(units)} selected units, threshold {THRESHOLD}: {len(found):,} matches")
    print(f"match       {match_s:.3f} s   (target <= 1 s at 1,000,000 x 512)")
    print(f"plain scan  {scan_s:.3f} s")
    print(f"ratio       {match_s / scan_s:.2f} x a plain scan")


if __name__ == "__main__":
    main()
