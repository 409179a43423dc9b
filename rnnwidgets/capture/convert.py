"""torch -> numpy helpers for capture.

Capture computes on the model's own device and dtype; only here do tensors leave for the CPU,
as float32 numpy laid out (batch, time, features) like every array of a Trace.
"""
from __future__ import annotations

import queue
import threading
from typing import Optional

import numpy as np
import torch

from .buffer_pool import host_buffer


def trace_buffer(shape: tuple, like: torch.Tensor) -> torch.Tensor:
    """A ``new_buffer`` that ``to_numpy`` hands over without a copy when it is float32 on the
    CPU: capture fills it and lets go of it, and nothing else sees it."""
    buffer = new_buffer(shape, like)
    buffer.for_trace = True  # type: ignore[attr-defined]  # a marker attribute torch's Tensor type does not declare
    return buffer


def new_buffer(shape: tuple, like: torch.Tensor) -> torch.Tensor:
    """A new tensor of ``shape`` on ``like``'s device and dtype, for a trace's array: float32 on the
    CPU from ``buffer_pool`` (memory a trace let go of, its pages in place)."""
    if like.device.type == "cpu" and like.dtype == torch.float32:
        return host_buffer(shape)
    return torch.empty(shape, dtype=like.dtype, device=like.device)


def steps_buffer(like: torch.Tensor, units: Optional[int] = None) -> torch.Tensor:
    """A (time, batch, units) view of a new (batch, time, units) ``trace_buffer`` for a
    (time, batch, ·) tensor ``like`` (its width unless ``units`` is given)."""
    steps, batch = like.shape[:2]
    return trace_buffer((batch, steps, units or like.shape[2]), like).transpose(0, 1)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A contiguous float32 numpy array on the CPU, never a view of the model's own tensors: the
    memory of a whole float32 ``trace_buffer`` as it is, else a copy (from a GPU, ``staged_copy``).
    One ``copy_`` converts device, dtype (bfloat16 has no numpy dtype) and layout at once.
    """
    if t.device.type == "cuda":
        return staged_copy(t)
    if is_whole_trace_buffer(t) and t.dtype == torch.float32 and t.device.type == "cpu" and t.is_contiguous():
        return t.detach().numpy()
    out = host_buffer(t.shape)
    out.copy_(t.detach())
    return out.numpy()


def is_whole_trace_buffer(t: torch.Tensor) -> bool:
    """Whether ``t`` is a ``trace_buffer`` or a view of all of one (a part would keep the rest alive)."""
    base = t._base if t._base is not None else t
    return getattr(base, "for_trace", False) and t.data_ptr() == base.data_ptr() and t.numel() == base.numel()


def steps_to_numpy(t: torch.Tensor) -> np.ndarray:
    """A time-major (time, batch, features) tensor as float32 numpy (batch, time, features)."""
    return to_numpy(t.transpose(0, 1))


def step_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(time, batch, 1) bool: True where step t is inside element b's length."""
    t = torch.arange(steps, device=lengths.device).unsqueeze(1)
    return (t < lengths.unsqueeze(0)).unsqueeze(2)


def reverse_valid(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each element's valid steps along time (dim 0), leaving its padding in place.

    This is the order a reverse-direction layer reads its input in; applied twice it is the
    identity, so it also maps results back to natural time order.
    """
    steps = x.shape[0]
    if bool((lengths == steps).all()):
        return x.flip(0)
    t = torch.arange(steps, device=x.device).unsqueeze(1)
    index = torch.where(t < lengths.unsqueeze(0), lengths.unsqueeze(0) - 1 - t, t)
    return x.gather(0, index.unsqueeze(2).expand_as(x))


STAGING_FLOATS = 2 * 2**20   # 8 MiB a staging buffer: large enough to keep the copy engine busy


class Staging:
    """Two page-locked host buffers and a side stream of one CUDA device, made once and reused by
    every copy from it (``staged_copy``), with a lock so that one copy at a time uses them."""

    _made: dict = {}
    _made_lock = threading.Lock()

    def __init__(self, device: torch.device):
        self.stream = torch.cuda.Stream(device=device)
        self.buffers = [torch.empty(STAGING_FLOATS, dtype=torch.float32, device="cpu", pin_memory=True)
                        for _ in range(2)]
        self.done = [torch.cuda.Event(), torch.cuda.Event()]
        self.lock = threading.Lock()

    @classmethod
    def of(cls, device: torch.device) -> "Staging":
        with cls._made_lock:
            if device not in cls._made:
                cls._made[device] = cls(device)
            return cls._made[device]


def staged_copy(t: torch.Tensor, ready: Optional[torch.cuda.Event] = None,
                host: Optional[torch.Tensor] = None) -> np.ndarray:
    """``t`` (on a CUDA device) as float32 numpy in pageable host memory, through the device's
    two staging buffers: the copy engine fills one while torch's CPU threads copy the other out.
    Measured on an H200 host (16 threads), 437 MB into memory new to the process: 29 ms, against
    268 ms for page-locked arrays of their own (each new one is locked page by page, and torch
    keeps them locked for reuse once freed) and 243 ms for one pageable copy (the driver faults
    untouched pages one by one). ``ready``: an event the copy waits for on the device (the work
    that made ``t``; default: what the current stream has queued). ``host``: the float32 CPU
    tensor of ``t``'s shape to fill (default: a ``buffer_pool.host_buffer``)."""
    device = t.device
    host = host_buffer(t.shape) if host is None else host
    if ready is None:
        ready = torch.cuda.current_stream(device).record_event()
    staging = Staging.of(device)
    target = host.view(-1)
    with staging.lock, torch.cuda.device(device), torch.cuda.stream(staging.stream):
        staging.stream.wait_event(ready)
        # one flat float32 tensor to cut in pieces: a layout or dtype change runs on the side stream
        flat = t.detach().to(torch.float32).contiguous().view(-1)
        size = len(target)
        pending: list = []   # (slot, start, stop) of pieces on their way
        for k, start in enumerate(range(0, size, STAGING_FLOATS)):
            slot = k % 2
            if len(pending) == 2:          # the slot's last piece must be out before it is refilled
                _take(staging, pending.pop(0), target)
            stop = min(start + STAGING_FLOATS, size)
            staging.buffers[slot][:stop - start].copy_(flat[start:stop], non_blocking=True)
            staging.done[slot].record(staging.stream)
            pending.append((slot, start, stop))
        for piece in pending:
            _take(staging, piece, target)
    return host.numpy()


def _take(staging: Staging, piece: tuple, target: torch.Tensor) -> None:
    """Copy a piece out of its staging buffer into ``target`` once the device has put it there."""
    slot, start, stop = piece
    staging.done[slot].synchronize()
    target[start:stop].copy_(staging.buffers[slot][:stop - start])


class HostCopies:
    """Copies of tensors to float32 numpy arrays, started as capture goes and waited for once.

    On the CPU ``array`` is ``to_numpy``. From a CUDA device each copy is a ``staged_copy`` run
    by a worker thread, in the order asked, while capture goes on with the next layer; the copy
    waits on the device for the work that made the tensor (an event recorded when it is asked
    for), and the tensor is kept until its copy is done. The arrays ``array`` returns hold their
    values only after ``wait``: nothing may read them before. ``overlap=False``: every copy is
    ``to_numpy``'s, done when ``array`` returns.
    """

    def __init__(self, overlap: bool = True):
        self.overlap = overlap
        self.jobs: queue.Queue = queue.Queue()
        self.worker: Optional[threading.Thread] = None
        self.error: Optional[BaseException] = None

    def array(self, t: torch.Tensor) -> np.ndarray:
        if t.device.type != "cuda" or not self.overlap:
            return to_numpy(t)
        host = host_buffer(t.shape)
        ready = torch.cuda.current_stream(t.device).record_event()
        if self.worker is None:
            self.worker = threading.Thread(target=self._copy_all, name="rnnwidgets-host-copies", daemon=True)
            self.worker.start()
        self.jobs.put((t.detach(), ready, host))
        return host.numpy()

    def _copy_all(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            if self.error is None:   # after a failed copy the rest are let go of, and wait raises
                try:
                    staged_copy(*job)
                except BaseException as e:   # noqa: BLE001  # raised in the caller's thread by wait
                    self.error = e
            del job

    def steps(self, t: torch.Tensor) -> np.ndarray:
        """A time-major (time, batch, features) tensor as (batch, time, features): ``steps_to_numpy``."""
        return self.array(t.transpose(0, 1))

    def close(self) -> None:
        """Let the worker end once the copies asked for are done, raising nothing (after an error
        elsewhere); ``wait`` is the way to get the arrays."""
        self._stop()
        self.error = None

    def wait(self) -> None:
        """Block until every copy started is in its host memory; a copy's error is raised here."""
        self._stop()
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def _stop(self) -> None:
        if self.worker is not None:
            self.jobs.put(None)
            self.worker.join()
            self.worker = None
