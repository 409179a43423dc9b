"""Pages of a trace's new buffers faulted in on a spare core (capture/prefault.py): the pages are
in after populating, their contents never change, and a trace is the same with it as without."""
import resource

import numpy as np
import pytest
import torch
from torch import nn

from rnnwidgets.capture import prefault, trace
from rnnwidgets.capture.prefault import PAGE, Prefault, populate

MIB = 1 << 20


def faults_writing(t: torch.Tensor) -> int:
    """Minor page faults of this process while ``t`` is written (one torch thread)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t.fill_(1.0)
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    finally:
        torch.set_num_threads(threads)


def new_memory(floats: int) -> torch.Tensor:
    """Pages new to the process: over glibc's largest mmap threshold (32 MiB), so never heap
    memory an earlier test touched and freed."""
    assert floats * 4 > 32 * MIB
    t = torch.empty(floats)
    if not populate(t[:1]):
        pytest.skip("this system does not populate pages on request (madvise MADV_POPULATE_WRITE)")
    return t


def test_populated_pages_are_written_without_faults_and_keep_what_they_hold():
    pages = 64 * MIB // PAGE
    control = new_memory(64 * MIB // 4)
    assert faults_writing(control) > pages // 2          # new memory faults page by page
    t = new_memory(64 * MIB // 4)
    t[:1000] = torch.arange(1000.0)
    assert populate(t)
    assert torch.equal(t[:1000], torch.arange(1000.0))  # populating changes nothing
    assert faults_writing(t) < pages // 20


def test_a_strided_chunk_of_steps_is_populated_and_nothing_outside_it():
    """(batch, steps, units) buffer, steps 100..200: one run of memory per batch element."""
    batch, steps, units = 40, 1000, 256                   # 1 MiB a batch element
    t = new_memory(batch * steps * units).view(batch, steps, units)
    assert populate(t.narrow(1, 100, 100))
    inside = faults_writing(t[:, 101:199])                # pages wholly inside the chunk
    outside = faults_writing(t[:, 300:400])
    assert inside < 8 and outside > batch * 100 * units * 4 // PAGE // 2


def test_the_thread_runs_only_with_a_spare_core_and_buffers_worth_it(monkeypatch):
    big, small = torch.empty(40 * MIB // 4).view(10, -1, 1), torch.empty(4 * MIB // 4).view(1, -1, 1)
    steps = big.shape[1]
    for spare, buffers, runs in [(True, [(big, 1)], True), (False, [(big, 1)], False), (True, [(small, 1)], False)]:
        monkeypatch.setattr(prefault, "spare_core", lambda spare=spare: spare)
        with Prefault(buffers, buffers[0][0].shape[1], max(1, steps // 8)) as p:
            started = p.thread is not None
        assert started == (runs and prefault.MADVISE is not None)
        assert p.thread is None or not p.thread.is_alive()  # joined on exit


@pytest.mark.parametrize("batch_first", [False, True])
def test_an_lstm_trace_is_the_same_with_pages_populated_as_without(monkeypatch, batch_first):
    """One torch thread (a core to spare) and buffers over the threshold: the native path's gates,
    states and output equal those made without the thread, and the module's own output."""
    torch.manual_seed(3)
    module = nn.LSTM(32, 160, num_layers=2, batch_first=batch_first)   # 37 MB of new buffers a layer
    x = torch.randn(16, 600, 32) if batch_first else torch.randn(600, 16, 32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        monkeypatch.setattr(prefault, "spare_core", lambda: True)
        threads_started = []
        real = Prefault.__enter__

        def entered(self):
            real(self)
            threads_started.append(self.thread is not None)
            return self

        monkeypatch.setattr(Prefault, "__enter__", entered)
        with_thread = trace(module, x)
        if not any(threads_started):
            pytest.skip("this system does not populate pages on request (madvise MADV_POPULATE_WRITE)")
        assert threads_started == [True, True]          # each layer's native call
        monkeypatch.setattr(prefault, "spare_core", lambda: False)
        without = trace(module, x)
        with torch.no_grad():
            own = module(x)[0]
    finally:
        torch.set_num_threads(threads)
    for name, lt in with_thread.layers.items():
        for key, value in lt.quantities().items():
            np.testing.assert_array_equal(value, without.layers[name].quantities()[key])
    # the kernel run in chunks of steps against one call: float32 rounding apart
    np.testing.assert_allclose(with_thread.outputs, (own if batch_first else own.transpose(0, 1)).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_two_traces_at_once_from_two_threads_are_each_the_trace_made_alone(monkeypatch):
    """A notebook may trace from a background thread while another trace runs: each has its own
    populating thread and buffers, and each equals the trace made alone."""
    import threading

    monkeypatch.setattr(prefault, "spare_core", lambda: True)
    torch.manual_seed(4)
    modules = [nn.LSTM(32, 160, num_layers=2) for _ in range(2)]
    inputs = [torch.randn(600, 16, 32) for _ in range(2)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = [trace(m, x) for m, x in zip(modules, inputs)]
        together: list = [None, None]
        workers = [threading.Thread(target=lambda k=k: together.__setitem__(k, trace(modules[k], inputs[k])))
                   for k in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(alone, together):
        for name, lt in a.layers.items():
            for key, value in lt.quantities().items():
                np.testing.assert_array_equal(value, b.layers[name].quantities()[key])
