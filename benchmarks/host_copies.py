"""How a trace's arrays come back from a GPU: ways to copy ``--arrays`` device arrays (437 MB in all
by default, an LSTM trace at batch 32) into host memory, each timed against page-locked memory
of its own per array (what capture did before ``convert.staged_copy``) in the same run:

  page-locked array each, new (torch's pinned-memory cache emptied first)   the baseline
  the same, from torch's pinned-memory cache (only where earlier arrays were freed)
  one pageable copy into memory never touched
  convert.staged_copy (two 8 MiB page-locked buffers, reused) into memory new to the process
    (capture/buffer_pool.py handed back first): a first trace
  the same into the memory of arrays let go of (the pool's): a repeated trace, what capture does
  convert.staged_copy into new memory, its pages populated ahead by a thread (capture/prefault.py)

    .venv/bin/python benchmarks/host_copies.py [--mb 437] [--arrays 13] [--repeats 4]
"""
import argparse
import statistics
import threading
import time

import torch

from rnnwidgets.capture import buffer_pool
from rnnwidgets.capture.convert import staged_copy
from rnnwidgets.capture.prefault import populate


def median_ms(copy, parts, repeats: int, before=None) -> float:
    """Median wall time of ``copy(parts)``; ``before()`` runs untimed before each."""
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        torch.cuda.synchronize()
        start = time.perf_counter()
        hosts = copy(parts)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        del hosts
    return statistics.median(times) * 1e3


def page_locked_each(parts):
    hosts = [torch.empty(p.shape, pin_memory=True) for p in parts]
    for host, p in zip(hosts, parts):
        host.copy_(p, non_blocking=True)
    return hosts


def pageable(parts):
    return [torch.empty(p.shape).copy_(p) for p in parts]


def staged(parts):
    return [staged_copy(p) for p in parts]


def staged_populated_ahead(parts):
    hosts = [torch.empty(p.shape) for p in parts]
    ahead = threading.Thread(target=lambda: [populate(h) for h in hosts])
    ahead.start()
    for host, p in zip(hosts, parts):
        staged_copy(p, host=host)
    ahead.join()
    return hosts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=437)
    parser.add_argument("--arrays", type=int, default=13)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks/host_copies.py: expected a CUDA device; torch sees none here")
    parts = [torch.randn(args.mb * 2**20 // 4 // args.arrays, device="cuda") for _ in range(args.arrays)]
    staged(parts[:1])   # the staging buffers, made once per device
    print(f"{args.mb} MB in {args.arrays} arrays, {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s); median of {args.repeats}")
    base = median_ms(page_locked_each, parts, args.repeats, torch._C._host_emptyCache)
    rows = [("page-locked array each, new", base),
            ("page-locked array each, from torch's cache", median_ms(page_locked_each, parts, args.repeats)),
            ("one pageable copy, memory never touched", median_ms(pageable, parts, max(1, args.repeats // 2))),
            ("staged_copy into new memory (a first trace)",
             median_ms(staged, parts, args.repeats, buffer_pool.release)),
            ("staged_copy into the pool's (capture's, repeated)", median_ms(staged, parts, args.repeats)),
            ("staged_copy, new pages populated ahead", median_ms(staged_populated_ahead, parts, args.repeats))]
    for label, ms in rows:
        print(f"{label:50s} {ms:8.1f} ms  {ms / base:6.2f}x the baseline")


if __name__ == "__main__":
    main()
