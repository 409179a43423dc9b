"""How long select-and-match takes over a large dataset trace, next to one plain numpy scan of it.

Builds a dataset trace of ``--steps`` steps x ``--units`` units (float32 noise with slowly
varying on/off runs, in sequences of ``--length`` steps), selects ``--selected`` units and prints
(median of ``--repeats`` after a warmup):
  match        rw patterns.matches: every maximal run of the selected units, scored, ranked
  plain scan   np.count_nonzero(values > threshold, axis=0): one pass over every value, the least
               any search that reads the whole dataset pays
  ratio        match / plain scan, both timed back to back in this run
Target: match <= 1 s for 1,000,000 steps x 512 units, and <= 1x a plain scan. ``--disk`` then
saves the dataset as a zarr store (rw's format) and the same values as a plain .npy file, frees
the arrays in memory, starts a dask.distributed LocalCluster of two single-threaded worker
processes, each with a memory limit of a quarter of the store, and prints match over the
store (a few tasks, each mapping its blocks' chunk files on a worker, one block at a time, and
reading only the selected units' columns and the rows in and around runs) next to one numpy
pass over the memory-mapped .npy in this process (page cache warm after the warmup; target
<= 1.5x), with the workers' peak memory (each one's VmHWM, mapped file pages included) and this
process's peak growth.

``--trace-steps N`` also traces a 512-unit LSTM over N steps with rw.trace_dataset(path=...) in a
fresh process and prints its peak memory growth next to the bytes it wrote to disk: with the
arrays on disk the peak is one batch's rw.trace (states, gates and torch's intermediates), not the
dataset: measured here 531 MiB at 100,000 steps (391 MiB written), 347 MiB at 300,000 (1,172 MiB).

    .venv/bin/python benchmarks/patterns.py [--steps 1000000] [--units 512] [--repeats 3] [--disk]
                                            [--trace-steps 200000]
"""
import argparse
import multiprocessing
import shutil
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


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def _trace_to_disk(steps: int, units: int, length: int, batch: int, queue) -> None:
    """In a fresh process: peak RSS growth while rw.trace_dataset writes ``steps`` steps to disk."""
    import torch

    from rnnwidgets.dataset import trace_dataset

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.LSTM(8, units, batch_first=True)
    batches = (torch.randn(batch, length, 8) for _ in range(-(-steps // (batch * length))))
    folder = tempfile.mkdtemp(prefix="rnnwidgets-bench-")
    try:
        with open("/proc/self/clear_refs", "w") as f:  # reset the peak RSS (VmHWM) to the current RSS
            f.write("5")
        before = _rss_kib("VmRSS")
        start = time.perf_counter()
        ds = trace_dataset(model, batches, max_steps=steps, path=folder, progress=False, quantities=("h", "c"),
                           outputs=False)   # what this benchmark has always measured
        seconds = time.perf_counter() - start
        written = sum(a.nbytes for q in ds.layers.values() for a in q.values())
        queue.put((_rss_kib("VmHWM") - before, written, batch * length * units * 4 * 2, seconds))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def trace_memory(steps: int, units: int, length: int, batch: int = 50) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_trace_to_disk, args=(steps, units, length, batch, queue))
    child.start()
    peak_kib, written, one_batch, seconds = queue.get()
    child.join()
    print(f"trace_dataset to disk: {steps:,} steps x {units} units (h, c) in {seconds:.1f} s: "
          f"{written / 2**20:,.0f} MiB written, peak memory growth {peak_kib / 1024:,.0f} MiB "
          f"(one batch's h and c: {one_batch / 2**20:,.0f} MiB)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--length", type=int, default=200, help="steps per sequence")
    parser.add_argument("--selected", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--disk", action="store_true")
    parser.add_argument("--trace-steps", type=int, default=0, help="also trace an LSTM to disk over this many steps")
    args = parser.parse_args()
    ds = synthetic(args.steps, args.units, args.length)
    measure(ds, args)
    if args.disk:
        folder = tempfile.mkdtemp(prefix="rnnwidgets-bench-")
        try:
            store = DatasetTrace.load(ds.save(f"{folder}/ds"))
            np.save(f"{folder}/h.npy", ds.values())
            del ds  # from here on nothing of the dataset is in memory
            from distributed import Client, LocalCluster

            limit = store.values().nbytes // 4   # per worker: a quarter of the store
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=limit,
                              dashboard_address=None) as cluster, Client(cluster) as client:
                measure_store(store, np.load(f"{folder}/h.npy", mmap_mode="r"), args, client, limit)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if args.trace_steps:
        trace_memory(args.trace_steps, args.units, args.length)


def measure(ds: DatasetTrace, args) -> None:
    units = list(range(0, args.selected * 7, 7))
    values = ds.values()
    found = matches(ds, units, THRESHOLD, length=4, limit=None)
    match_s = median_seconds(lambda: matches(ds, units, THRESHOLD, length=4), args.repeats)
    scan_s = median_seconds(lambda: np.count_nonzero(values > THRESHOLD, axis=0), args.repeats)
    print(f"dataset: {args.steps:,} steps x {args.units} units ({values.nbytes / 2**30:.2f} GiB, in memory), "
          f"{ds.sequences:,} sequences; {len(units)} selected units, threshold {THRESHOLD}: {len(found):,} matches")
    print(f"match       {match_s:.3f} s   (target <= 1 s at 1,000,000 x 512)")
    print(f"plain scan  {scan_s:.3f} s")
    print(f"ratio       {match_s / scan_s:.2f} x a plain scan")



def _worker_peak(reset: bool = False) -> int:
    """On a worker: its peak RSS (VmHWM) in KiB, reset to the current RSS first with ``reset``."""
    if reset:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    return _rss_kib("VmHWM")


def measure_store(store: DatasetTrace, mapped: np.ndarray, args, client, limit: int) -> None:
    """Match over the zarr store (dask tasks on the client's workers) / one numpy pass over the memory map."""
    units = list(range(0, args.selected * 7, 7))
    match_s = median_seconds(lambda: matches(store, units, THRESHOLD, length=4), args.repeats)
    scan_s = median_seconds(lambda: np.count_nonzero(mapped > THRESHOLD, axis=0), args.repeats)
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak RSS (VmHWM) to the current RSS
        f.write("5")
    before = _rss_kib("VmRSS")
    client.run(_worker_peak, True)
    found = matches(store, units, THRESHOLD, length=4, limit=1000)
    peak = _rss_kib("VmHWM") - before
    workers = sorted(client.run(_worker_peak).values())
    print(f"on disk: zarr store at {store.folder} ({mapped.nbytes / 2**30:.2f} GiB); 2 workers of "
          f"{limit / 2**20:,.0f} MiB each (a quarter of the store); {len(found):,} matches shown")
    print(f"match over the store (dask.distributed)  {match_s:.3f} s   workers' peak memory "
          f"{', '.join(f'{w / 1024:,.0f}' for w in workers)} MiB, this process's growth {peak / 1024:,.0f} MiB")
    print(f"one numpy pass over a memory map         {scan_s:.3f} s")
    print(f"ratio                                    {match_s / scan_s:.2f} x (target <= 1.5)")


if __name__ == "__main__":
    main()
