"""Host memory of traces let go of, kept a few seconds for the next trace (capture/buffer_pool.py)."""
import gc
import os
import resource
import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

import rnnwidgets as rw
from rnnwidgets.capture import buffer_pool
from rnnwidgets.capture.buffer_pool import BufferPool

SHAPE = (4, 100, 1024)   # 1.6 MB


def address(a) -> int:
    return a.__array_interface__["data"][0] if isinstance(a, np.ndarray) else a.data_ptr()


def test_a_buffer_let_go_of_serves_the_next_take_of_as_many_values():
    pool = BufferPool()
    a = pool.take(SHAPE)
    assert a.shape == SHAPE and a.dtype == torch.float32 and a.is_contiguous()
    at = a.data_ptr()
    del a
    assert pool.kept_bytes() == 4 * np.prod(SHAPE)
    b = pool.take((400, 1024))                      # as many values, another shape
    assert b.data_ptr() == at and b.shape == (400, 1024)
    assert pool.kept_bytes() == 0
    c = pool.take((401, 1024))                      # other sizes get memory of their own
    assert c.data_ptr() != at


@pytest.mark.parametrize("keep", ["numpy view", "tensor view", "shared storage", "numpy of the whole"])
def test_memory_still_referred_to_is_never_handed_out(keep):
    pool = BufferPool()
    a = pool.take(SHAPE)
    a.fill_(1.0)
    if keep == "numpy view":
        held = a[1].numpy()
    elif keep == "tensor view":
        held = a[2:].transpose(0, 1)
    elif keep == "shared storage":   # as fused_loop.gate_buffers makes its parts
        held = torch.empty(0).set_(a.untyped_storage(), 1024, (100, 1024), (1024, 1))
    else:
        held = a.numpy()
    at = a.data_ptr()
    del a
    b = pool.take(SHAPE)
    assert b.data_ptr() != at
    b.fill_(2.0)
    assert float(np.asarray(held).min()) == 1.0
    del held
    assert pool.take(SHAPE).data_ptr() == at        # once the last holder is gone


def test_kept_buffers_are_handed_back_after_keep_seconds(monkeypatch):
    monkeypatch.setattr(buffer_pool, "KEEP_SECONDS", 0.2)
    pool = BufferPool()
    a = pool.take(SHAPE)
    del a
    assert pool.kept_bytes() > 0
    deadline = time.monotonic() + 10
    while pool._sweeper is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.kept_bytes() == 0
    assert pool._sweeper is None                    # nothing out, nothing kept: the sweeper ended


def test_the_sweeper_runs_while_a_buffer_is_out_and_hands_it_back_later(monkeypatch):
    monkeypatch.setattr(buffer_pool, "KEEP_SECONDS", 0.2)
    pool = BufferPool()
    a = pool.take(SHAPE)
    time.sleep(0.5)                                 # a trace kept a while, as users keep them
    assert pool._sweeper is not None
    del a
    deadline = time.monotonic() + 10
    while pool._sweeper is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.kept_bytes() == 0 and pool._sweeper is None


def test_never_keeps_more_than_its_limit_letting_the_oldest_go_first():
    size = 4 * int(np.prod(SHAPE))
    pool = BufferPool(keep_bytes=2 * size + 10)
    buffers = [pool.take(SHAPE) for _ in range(3)]
    addresses = [b.data_ptr() for b in buffers]
    while buffers:                                    # let go of in order, the first first
        buffers.pop(0)
    time.sleep(0.01)
    assert pool.kept_bytes() == 2 * size
    taken = [pool.take(SHAPE) for _ in range(2)]
    assert {b.data_ptr() for b in taken} == set(addresses[1:])


def test_a_buffer_over_the_limit_is_never_kept():
    pool = BufferPool(keep_bytes=1000)
    a = pool.take(SHAPE)
    del a
    assert pool.kept_bytes() == 0


def test_release_hands_back_everything_kept():
    pool = BufferPool()
    a, b = pool.take(SHAPE), pool.take((10, 1024))
    del a, b
    assert pool.kept_bytes() > 0
    pool.release()
    assert pool.kept_bytes() == 0


def test_small_buffers_and_keep_seconds_zero_are_plain_memory(monkeypatch):
    buffer_pool.release()
    small = buffer_pool.host_buffer((10, 10))
    del small
    assert buffer_pool.POOL.kept_bytes() == 0
    monkeypatch.setattr(buffer_pool, "KEEP_SECONDS", 0.0)
    big = buffer_pool.host_buffer(SHAPE)
    del big
    assert buffer_pool.POOL.kept_bytes() == 0


def test_a_finalizer_never_waits_for_the_pools_lock():
    """The cyclic collector may let a buffer go inside any code, the pool's own included."""
    pool = BufferPool()
    holder = [pool.take(SHAPE)]
    holder.append(holder)                            # a cycle: only the collector frees it
    del holder
    done = threading.Event()

    def collect_under_the_lock():
        with pool._lock:
            gc.collect()
        done.set()
    thread = threading.Thread(target=collect_under_the_lock, daemon=True)
    thread.start()
    thread.join(10)
    assert done.is_set()
    assert pool.kept_bytes() == 4 * np.prod(SHAPE)


def test_threads_taking_and_letting_go_at_once_never_share_memory():
    pool = BufferPool()
    errors = []

    def work(k):
        for _ in range(200):
            b = pool.take(SHAPE)
            b.fill_(k)
            time.sleep(0)
            if float(b.min()) != k or float(b.max()) != k:
                errors.append(k)
            del b
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_with_an_empty_pool():
    a = buffer_pool.host_buffer(SHAPE)
    del a
    assert buffer_pool.POOL.kept_bytes() > 0
    pid = os.fork()
    if pid == 0:   # the child: no torch work here, only the pool's state
        ok = buffer_pool.POOL.kept_bytes() == 0 and buffer_pool.POOL._sweeper is None
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def lstm_case():
    torch.manual_seed(0)
    return nn.LSTM(16, 64, num_layers=2).eval(), torch.randn(200, 32, 16)   # 1.6 MB an array


def arrays_of(tr) -> list:
    return [a for lt in tr.layers.values() for a in lt.quantities().values()] + [tr.outputs, tr.inputs]


def test_a_trace_writes_into_the_memory_of_one_let_go_of_and_its_arrays_are_its_own():
    model, x = lstm_case()
    first = rw.trace(model, x)
    want = [a.copy() for a in arrays_of(first)]
    used = {address(a) for a in arrays_of(first)}
    del first
    second = rw.trace(model, x)
    assert used & {address(a) for a in arrays_of(second)}     # reused
    for got, expected in zip(arrays_of(second), want):
        np.testing.assert_array_equal(got, expected)
    third = rw.trace(model, x)                                 # while the second is kept
    assert not {address(a) for a in arrays_of(second)} & {address(a) for a in arrays_of(third)}
    for got, expected in zip(arrays_of(second), want):
        np.testing.assert_array_equal(got, expected)
    for got, expected in zip(arrays_of(third), want):
        np.testing.assert_array_equal(got, expected)


def test_a_repeated_trace_writes_into_pages_already_in_place(monkeypatch):
    """The point of keeping: the next trace takes no page fault for its arrays. A 2-layer LSTM's
    gates here are 39 MB a layer, over glibc's largest mmap threshold, so without the pool they
    are new pages on every trace; the pool saves at least those."""
    torch.manual_seed(0)
    model, x = nn.LSTM(64, 256, num_layers=2).eval(), torch.randn(300, 32, 64)
    gate_pages = 2 * 4 * 32 * 300 * 256 * 4 // 4096

    def faults_of_a_second_trace():
        rw.trace(model, x)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        tr = rw.trace(model, x)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
        del tr
        return faults
    kept = faults_of_a_second_trace()
    buffer_pool.release()
    monkeypatch.setattr(buffer_pool, "KEEP_SECONDS", 0.0)
    assert faults_of_a_second_trace() - kept > 0.75 * gate_pages


def nan_filled(shape):
    return torch.full(tuple(shape), float("nan"))


def quantities_of(tr) -> dict:
    found = {f"{name}.{key}": a for name, lt in tr.layers.items() for key, a in lt.quantities().items()}
    found.update({name + ".initial." + k: v for name, lt in tr.layers.items() for k, v in lt.initial.items()})
    return {**found, "outputs": tr.outputs, "inputs": tr.inputs}


def assert_same_trace(got, want):
    got, want = quantities_of(got), quantities_of(want)
    assert got.keys() == want.keys()
    for key in want:
        if want[key] is None:
            assert got[key] is None, key
        else:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)


class Tagger(nn.Module):
    """Packed, bidirectional, two layers: padding a kernel never writes."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(5, 7, num_layers=2, bidirectional=True, batch_first=True)
        self.head = nn.Linear(14, 3)

    def forward(self, x, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return self.head(out)


def stale_memory_cases():
    torch.manual_seed(3)
    lstm = nn.LSTM(6, 300, num_layers=2).eval()      # 300 units x 40 steps x 24: arrays over 1 MiB
    gru = nn.GRU(6, 300, batch_first=True).eval()
    relu = nn.RNN(6, 300, nonlinearity="relu", bidirectional=True).eval()
    proj = nn.LSTM(6, 300, proj_size=20).eval()
    x = torch.randn(40, 24, 6)
    tagger = Tagger().eval()
    lengths = torch.randint(1, 41, (24,))
    lengths[0] = 40

    def loss(output):
        return output[0].square().mean()
    return {
        "lstm": lambda: rw.trace(lstm, x),
        "lstm with a loss": lambda: rw.trace(lstm, x, loss=loss),
        "lstm, a window of steps": lambda: rw.trace(lstm, x, steps=slice(5, 30)),
        "lstm with a clamp": lambda: rw.trace(lstm, x, edits=[rw.clamp("lstm.l1", "c", [1, 2], range(3, 9), 0.5)]),
        "gru, batch first, with a loss": lambda: rw.trace(gru, x.transpose(0, 1), loss=loss),
        "bidirectional relu rnn": lambda: rw.trace(relu, x),
        "proj_size with a loss": lambda: rw.trace(proj, x, loss=loss),
        "packed with lengths, with a loss": lambda: rw.trace(tagger, torch.randn(24, 40, 5), lengths,
                                                             loss=lambda out: out.square().mean()),
    }


@pytest.mark.parametrize("name", list(stale_memory_cases()))
def test_every_value_of_a_trace_is_written_by_capture(name, monkeypatch):
    """The pool hands out memory holding an earlier trace's values: a trace whose buffers all start
    as NaN is the trace made in memory new to the process (zero pages), value for value."""
    case = stale_memory_cases()[name]
    monkeypatch.setattr(buffer_pool, "KEEP_SECONDS", 0.0)
    torch.manual_seed(0)
    want = case()
    from rnnwidgets.capture import convert
    monkeypatch.setattr(convert, "host_buffer", nan_filled)
    monkeypatch.setattr(buffer_pool, "host_buffer", nan_filled)
    torch.manual_seed(0)
    assert_same_trace(case(), want)
