"""torch -> numpy helpers for capture.

Capture computes on the model's own device and dtype; only here do tensors leave for the CPU,
as float32 numpy laid out (batch, time, features) like every array of a Trace.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch


def trace_buffer(shape: tuple, like: torch.Tensor) -> torch.Tensor:
    """A new tensor on ``like``'s device and dtype that ``to_numpy`` hands over without a copy
    when it is float32 on the CPU: capture fills it and lets go of it, and nothing else sees it."""
    buffer = torch.empty(shape, dtype=like.dtype, device=like.device)
    buffer.for_trace = True  # type: ignore[attr-defined]  # a marker attribute torch's Tensor type does not declare
    return buffer


def steps_buffer(like: torch.Tensor, units: Optional[int] = None) -> torch.Tensor:
    """A (time, batch, units) view of a new (batch, time, units) ``trace_buffer`` for a
    (time, batch, ·) tensor ``like`` (its width unless ``units`` is given)."""
    steps, batch = like.shape[:2]
    return trace_buffer((batch, steps, units or like.shape[2]), like).transpose(0, 1)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A contiguous float32 numpy array on the CPU, never a view of the model's own tensors: the
    memory of a whole float32 ``trace_buffer`` as it is, else a copy.

    One ``copy_`` converts device, dtype (bfloat16 has no numpy dtype) and layout at once. From
    a GPU it goes into memory touched first on the CPU: a copy into pages never touched faults
    them in one by one (measured 4x slower on an H200 host).
    """
    if is_whole_trace_buffer(t) and t.dtype == torch.float32 and t.device.type == "cpu" and t.is_contiguous():
        return t.detach().numpy()
    out = torch.empty(t.shape, dtype=torch.float32) if t.device.type == "cpu" else torch.zeros(t.shape)
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


class HostCopies:
    """Copies of tensors to float32 numpy arrays, started as capture goes and waited for once.

    On the CPU ``array`` is ``to_numpy``. From a CUDA device each copy goes into a page-locked
    (pinned) host buffer of its own, as a non-blocking copy on a side stream that first waits
    for what the current stream has queued (the work that made the tensor), so it runs while
    the current stream goes on with the next layer; the tensor's memory is kept from reuse until
    the copy is done (``record_stream``). The arrays ``array`` returns hold their values only
    after ``wait``: nothing may read them before. ``overlap=False``: every copy is ``to_numpy``'s,
    done when ``array`` returns.
    """

    def __init__(self, overlap: bool = True):
        self.overlap = overlap
        self.streams: dict = {}   # device -> its side stream

    def array(self, t: torch.Tensor) -> np.ndarray:
        if t.device.type != "cuda" or not self.overlap:
            return to_numpy(t)
        stream = self.streams.get(t.device)
        if stream is None:
            stream = self.streams[t.device] = torch.cuda.Stream(device=t.device)
        host = torch.empty(t.shape, dtype=torch.float32, pin_memory=True)
        stream.wait_stream(torch.cuda.current_stream(t.device))
        with torch.cuda.stream(stream):
            host.copy_(t.detach(), non_blocking=True)   # a dtype or layout change runs on the side stream too
        t.record_stream(stream)
        return host.numpy()

    def steps(self, t: torch.Tensor) -> np.ndarray:
        """A time-major (time, batch, features) tensor as (batch, time, features): ``steps_to_numpy``."""
        return self.array(t.transpose(0, 1))

    def wait(self) -> None:
        """Block until every copy started is in its host buffer."""
        for stream in self.streams.values():
            stream.synchronize()
