"""The pages of a trace's new buffers faulted in on a spare core, ahead of the copies that fill them.

A first trace (or one of new shapes: ``buffer_pool`` serves a repeated trace from the memory of
one let go of) writes every array into memory new to the process, and the first write to each
4 KiB page traps into the kernel, which zeroes it: for an LSTM at batch 32 on one thread about a
quarter of the trace's time. Where torch's threads leave a core idle, ``Prefault`` runs a thread
that asks the kernel to populate the buffers' pages (``madvise(MADV_POPULATE_WRITE)``, Linux
5.14 and later), a chunk of steps at a time in the order the copies go, while the native kernel
computes. Populating never changes what a page holds, so the thread may trail the copies without
harm; where the call is refused (another system, an older kernel) it stops at once.
"""
from __future__ import annotations

import ctypes
import itertools
import os
import sys
import threading
from typing import Optional

import torch

MADV_POPULATE_WRITE = 23
PAGE = 4096
WORTH_FROM = 32 << 20   # bytes of buffers; below, starting a thread costs about what it saves (batch 1)


def _madvise():
    """libc's madvise, or None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        call = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    call.restype = ctypes.c_int
    return call


MADVISE = _madvise()


def spare_core() -> bool:
    """Whether torch's threads leave one of this process's cores idle."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return torch.get_num_threads() < cores


def populate(t: torch.Tensor) -> bool:
    """Ask the kernel to fault in the pages under ``t`` (a view of CPU memory) for writing; False
    where it refuses. Each run of contiguous memory is one call, widened to whole pages: those
    pages belong to the same allocation, and populating leaves their contents as they are."""
    if MADVISE is None or t.device.type != "cpu" or t.numel() == 0:
        return False
    size, stride = list(t.shape), list(t.stride())
    inner, run = len(size), 1      # the trailing dims that lie contiguous in memory, and their length
    while inner > 0 and (size[inner - 1] == 1 or stride[inner - 1] == run):
        run *= size[inner - 1]
        inner -= 1
    item, base = t.element_size(), t.data_ptr()
    for index in itertools.product(*(range(n) for n in size[:inner])):
        start = base + item * sum(i * s for i, s in zip(index, stride))
        first = start // PAGE * PAGE
        end = -(-(start + run * item) // PAGE) * PAGE
        if MADVISE(first, end - first, MADV_POPULATE_WRITE) != 0:
            return False
    return True


class Prefault:
    """Context manager: while active, where ``spare_core()`` and the buffers hold ``WORTH_FROM``
    bytes or more, a thread populates the pages of ``buffers`` (each ``(tensor, time_dim)``)
    ``chunk`` steps at a time, from step 0 on; it is joined on exit."""

    def __init__(self, buffers: list, steps: int, chunk: int):
        self.buffers, self.steps, self.chunk = buffers, steps, chunk
        self.thread: Optional[threading.Thread] = None
        self.stop = threading.Event()

    def __enter__(self) -> "Prefault":
        size = sum(t.numel() * t.element_size() for t, _ in self.buffers)
        if MADVISE is not None and size >= WORTH_FROM and spare_core():
            self.thread = threading.Thread(target=self._run, name="rnnwidgets-prefault", daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.thread is not None:
            self.stop.set()
            self.thread.join()

    def _run(self) -> None:
        for start in range(0, self.steps, self.chunk):
            for t, time_dim in self.buffers:
                if self.stop.is_set() or not populate(t.narrow(time_dim, start, min(self.chunk, self.steps - start))):
                    return
