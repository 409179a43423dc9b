"""A batch run in parts at once, each part on a thread of its own with its share of torch's
threads: the elements of a batch never meet inside a recurrent module, so each part runs every
layer on its own, and no thread waits on another.

The native LSTM kernel steps through time, and every step is a barrier between torch's threads:
two threads shorten a layer at batch 32 by far less than half. The training-mode kernel alone on a
one-layer 256-unit LSTM over 1,000 steps here, against the module's own forward on 2 threads:
the whole batch on 2 threads 1.27x, each half of it on a thread of its own 0.82x (at batch 8:
1.39x and 1.19x), the same values to the bit. Each part's thread runs with
``torch.get_num_threads()`` divided among the parts (at least one), set for that thread alone in
the OpenMP runtime torch runs on: ``omp_set_num_threads`` holds per thread, so the user's setting
stays as it is for every other thread. Where that runtime is not found, or a count set on one
thread is not what torch sees there, the batch runs whole.
"""
from __future__ import annotations

import ctypes
import functools
import os
import threading
from typing import Callable, Optional

import torch

RUNTIMES = ("libgomp", "libiomp5", "libomp")   # OpenMP runtimes torch links, GNU's, Intel's, LLVM's


def _loaded_runtimes() -> list:
    """The OpenMP runtimes loaded in this process (Linux), those in torch's own folder first
    (another package may bring a runtime of its own)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = dict.fromkeys(line.split()[-1] for line in maps if "/" in line)   # each mapped file once
    except OSError:
        return []
    torch_folder = os.path.dirname(torch.__file__)
    found = []
    for path in sorted(paths, key=lambda p: not p.startswith(torch_folder)):
        name = os.path.basename(path)
        if name.startswith(RUNTIMES) and ".so" in name:
            try:
                library = ctypes.CDLL(path)   # loaded already: the same library, not a second copy
                library.omp_set_num_threads.argtypes = [ctypes.c_int]
            except (OSError, AttributeError):
                continue
            found.append(library)
    return found


def _own_count(runtime: ctypes.CDLL, threads: int) -> None:
    """Run this thread's torch ops on ``threads`` threads. torch sets its own count on a thread
    the first time it asks for it there, so it is asked first."""
    torch.get_num_threads()
    runtime.omp_set_num_threads(threads)


def _holds_per_thread(runtime: ctypes.CDLL) -> bool:
    """Whether a count set in ``runtime`` on a new thread is the one torch sees there, and only there."""
    before = torch.get_num_threads()
    seen: list = []

    def probe() -> None:
        _own_count(runtime, before + 1)   # a count torch does not have: seen only if it holds
        seen.append(torch.get_num_threads())

    thread = threading.Thread(target=probe, name="rnnwidgets-thread-probe", daemon=True)
    thread.start()
    thread.join()
    return seen == [before + 1] and torch.get_num_threads() == before


@functools.lru_cache(maxsize=1)
def runtime() -> Optional[ctypes.CDLL]:
    """torch's OpenMP runtime where a thread count set on one thread holds there alone, else None."""
    if "parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None
    return next((found for found in _loaded_runtimes() if _holds_per_thread(found)), None)


def parts(batch: int) -> tuple:
    """(parts, torch threads for each) for a batch of ``batch`` elements run in parts at once; (0, 0)
    where it runs whole (a single torch thread, a single element, no runtime that holds a count
    per thread)."""
    threads = torch.get_num_threads()
    if batch < 2 or threads < 2 or runtime() is None:
        return 0, 0
    count = min(threads, batch)
    return count, threads // count


def run_all(tasks: list, threads: int, stop: threading.Event) -> list:
    """What each of ``tasks`` (callables, one a part) returns, each run on a thread of its own
    with ``threads`` torch threads, in the caller's inference and grad modes (never under CPU
    autocast: ``fused.check_features`` refuses an LSTM there, the one module run in parts). An
    error in one sets ``stop`` (the others stop at their next kernel call) and is raised here once
    all have stopped; so is an interrupt of the wait."""
    found: list = [None] * len(tasks)
    errors: list = []
    rt = runtime()
    # torch's modes hold per thread: each task runs in the caller's (the buffers a trace made under
    # inference_mode are inference tensors, which only inference mode may write)
    inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()

    def run(k: int, task: Callable) -> None:
        try:
            if rt is not None:
                _own_count(rt, threads)
            with torch.inference_mode(inference), torch.set_grad_enabled(grad):
                found[k] = task()
        except BaseException as error:   # noqa: BLE001  # raised in the caller's thread, below
            errors.append(error)
            stop.set()

    workers = [threading.Thread(target=run, args=(k, task), name=f"rnnwidgets-part-{k}", daemon=True)
               for k, task in enumerate(tasks)]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.join()
    except BaseException:
        stop.set()
        raise
    if errors:
        raise errors[0]
    return found
