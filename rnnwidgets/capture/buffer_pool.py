"""Host memory for a trace's arrays, kept for a few seconds after the trace is let go of, so that the
next trace of the same shapes writes into pages already in place.

A trace writes every array into memory new to the process, and the first write to each 4 KiB page
traps into the kernel, which zeroes it: for a 2-layer 256-unit LSTM at batch 32 (400 MB of arrays)
about 90 ms of a 350 ms trace at 2 threads, more than half of what writing the arrays costs (a copy
into touched memory runs 3.6 times as fast here). Traces come in runs of one shape (an Explorer's
edits, a TrainingMonitor's probe batch, a loop over a dataset's batches), so a buffer one trace
let go of serves the next. A buffer comes back when nothing refers to its memory any more (every
array, tensor and view of it gone); it is kept ``KEEP_SECONDS`` and then handed back to the
system, and the pool never keeps more than ``KEEP_FRACTION`` of the machine's memory.
``KEEP_SECONDS = 0`` keeps nothing; ``release()`` hands back everything kept at once.
"""
from __future__ import annotations

import collections
import math
import os
import threading
import time
import weakref
from typing import Optional

import torch

KEEP_SECONDS = 10.0        # how long a buffer let go of is kept for the next trace
KEEP_FRACTION = 1 / 8      # of the machine's memory, the most ever kept
SMALLEST = 1 << 20         # bytes; smaller buffers are malloc's, which reuses its own freed memory


def machine_bytes() -> int:
    """The machine's physical memory in bytes (4 GiB where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


class BufferPool:
    """float32 CPU buffers handed out by ``take`` and kept, once let go of, for the next take of as
    many values. A sweeper thread (a tick every quarter of ``KEEP_SECONDS``) hands back what has
    been kept too long; it runs while a buffer is out or kept, and ends when none is."""

    def __init__(self, keep_bytes: Optional[int] = None):
        self.keep_bytes = int(machine_bytes() * KEEP_FRACTION) if keep_bytes is None else keep_bytes
        self._lock = threading.Lock()
        self._kept: dict = {}   # values -> [(since, flat buffer)], oldest first
        self._kept_total = 0    # bytes in _kept
        self._out = 0           # buffers handed out and not yet settled back
        # buffers let go of, appended by their finalizers: a deque's append takes no lock, and a
        # finalizer may run inside any code of any thread (the cyclic collector runs anywhere)
        self._returned: collections.deque = collections.deque()
        self._sweeper: Optional[threading.Thread] = None

    def take(self, shape: tuple) -> torch.Tensor:
        """A float32 CPU tensor of ``shape`` (contiguous, uninitialised): a kept buffer of as many
        values where there is one, else new memory."""
        count = math.prod(shape)
        flat = None
        with self._lock:
            self._settle()
            kept = self._kept.get(count)
            if kept:
                flat = kept.pop()[1]
                self._kept_total -= 4 * count
            self._out += 1
            if self._sweeper is None:
                self._sweeper = threading.Thread(target=self._sweep, name="rnnwidgets-buffer-pool", daemon=True)
                self._sweeper.start()
        if flat is None:
            flat = torch.empty(count, dtype=torch.float32, device="cpu")
        # the tensor handed out holds its memory through ``owner``, a numpy array of its own: every
        # view, numpy array and storage made from it keeps ``owner`` alive, and when the last goes,
        # the finalizer hands ``flat`` (still holding the pages) back
        owner = flat.numpy().reshape(shape)
        weakref.finalize(owner, self._returned.append, (count, flat)).atexit = False   # nothing to keep at exit
        return torch.from_numpy(owner)

    def kept_bytes(self) -> int:
        """Bytes kept for reuse now (buffers let go of since the last settling included)."""
        with self._lock:
            self._settle()
            return self._kept_total

    def release(self) -> None:
        """Hand back every kept buffer to the system now."""
        with self._lock:
            self._settle()
            self._kept.clear()
            self._kept_total = 0

    def _settle(self, now: Optional[float] = None) -> None:
        """Move the buffers let go of into ``_kept`` and drop what is past its time or over the
        limit, oldest first. Call with the lock held."""
        now = time.monotonic() if now is None else now
        while self._returned:
            count, flat = self._returned.popleft()
            self._out -= 1
            if KEEP_SECONDS > 0 and 4 * count <= self.keep_bytes:
                self._kept.setdefault(count, []).append((now, flat))
                self._kept_total += 4 * count
        oldest = sorted((since, count) for count, kept in self._kept.items() for since, _ in kept)
        for since, count in oldest:
            if now - since < KEEP_SECONDS and self._kept_total <= self.keep_bytes:
                break
            self._kept[count].pop(0)
            self._kept_total -= 4 * count
            if not self._kept[count]:
                del self._kept[count]

    def _sweep(self) -> None:
        while True:
            time.sleep(max(KEEP_SECONDS, 0.2) / 4)
            with self._lock:
                self._settle()
                if self._out == 0 and not self._kept:
                    self._sweeper = None
                    return

    def _forget_after_fork(self) -> None:
        """In a forked child: the parent's sweeper does not run there; start over."""
        self._lock = threading.Lock()
        self._kept, self._kept_total, self._out = {}, 0, 0
        self._returned = collections.deque()
        self._sweeper = None


POOL = BufferPool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=POOL._forget_after_fork)


def host_buffer(shape: tuple) -> torch.Tensor:
    """A new float32 CPU tensor of ``shape`` for a trace's array: from ``POOL`` when it is
    ``SMALLEST`` bytes or more."""
    if KEEP_SECONDS > 0 and 4 * math.prod(shape) >= SMALLEST:
        return POOL.take(tuple(shape))
    return torch.empty(shape, dtype=torch.float32, device="cpu")


def release() -> None:
    """Hand back to the system every buffer kept for the next trace."""
    POOL.release()
