"""The layers of a stacked module run at once, each on a thread of its own with its share of
torch's threads, layer k + 1 reading layer k's h a chunk of steps at a time as it is written.

The native LSTM kernel steps through time, and every step is a barrier between torch's threads:
two threads shorten a layer at batch 32 by far less than half (the training-mode kernel alone on a
2-layer 256-unit LSTM here, against the native forward: a layer after the other on 2 threads
1.13-1.25x, the layers at once on a thread each 0.92-1.0x). Each layer's thread runs with ``torch.get_num_threads()``
divided among the layers (at least one), set for that thread alone in the OpenMP runtime torch
runs on: ``omp_set_num_threads`` holds per thread, so the user's setting stays as it is for
every other thread. Where that runtime is not found, or a count set on one thread is not what
torch sees there, the layers run one after another.
"""
from __future__ import annotations

import ctypes
import functools
import os
import threading
from typing import Callable, Optional

import torch

RUNTIMES = ("libgomp", "libiomp5", "libomp")   # OpenMP runtimes torch links, GNU's, Intel's, LLVM's


class Progress:
    """How many steps of one layer's h are written, waited on by the layer above; ``fail`` tells
    every waiter (and the layer itself, ``failed``) that the stack stops."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.steps = 0
        self.failed = False

    def advance(self, steps: int) -> None:
        with self._changed:
            self.steps = steps
            self._changed.notify_all()

    def fail(self) -> None:
        with self._changed:
            self.failed = True
            self._changed.notify_all()

    def wait(self, steps: int) -> bool:
        """Block until ``steps`` steps are written: True, or False once the stack stops."""
        with self._changed:
            self._changed.wait_for(lambda: self.failed or self.steps >= steps)
            return not self.failed


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


def threads_each(layers: int) -> int:
    """torch threads for each of ``layers`` layers run at once; 0 where they run one after
    another (a single torch thread, a single layer, no runtime that holds a count per thread)."""
    threads = torch.get_num_threads()
    if layers < 2 or threads < 2 or runtime() is None:
        return 0
    return max(1, threads // layers)


def autocast_state() -> dict:
    """The caller's CPU autocast, as ``torch.autocast("cpu", ...)`` takes it."""
    return {"enabled": torch.is_autocast_enabled("cpu"), "dtype": torch.get_autocast_dtype("cpu")}


def run_all(tasks: list, threads: int, progress: list) -> list:
    """What each of ``tasks`` (callables, one a layer) returns, each run on a thread of its own
    with ``threads`` torch threads, in the caller's inference, grad and CPU autocast modes. An
    error in one fails every ``progress`` (the others stop at their next chunk) and is raised here
    once all have stopped; so is an interrupt of the wait."""
    found: list = [None] * len(tasks)
    errors: list = []
    rt = runtime()
    # torch's modes hold per thread: each task runs in the caller's (the buffers a trace made under
    # inference_mode are inference tensors, which only inference mode may write)
    inference, grad, autocast = torch.is_inference_mode_enabled(), torch.is_grad_enabled(), autocast_state()

    def run(k: int, task: Callable) -> None:
        try:
            if rt is not None:
                _own_count(rt, threads)
            with torch.inference_mode(inference), torch.set_grad_enabled(grad), torch.autocast("cpu", **autocast):
                found[k] = task()
        except BaseException as error:   # noqa: BLE001  # raised in the caller's thread, below
            errors.append(error)
            for p in progress:
                p.fail()

    workers = [threading.Thread(target=run, args=(k, task), name=f"rnnwidgets-layer-{k}", daemon=True)
               for k, task in enumerate(tasks)]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.join()
    except BaseException:
        for p in progress:
            p.fail()
        raise
    if errors:
        raise errors[0]
    return found
