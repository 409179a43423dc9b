"""An LSTM's batch run in parts at once, each part through every layer on a thread of its own
(capture/batch_threads.py, fused.workspace_parts): the same trace as the batch run whole, to
rounding; the user's thread count left as it is; a failure or an error in one part's thread handled as
on one thread."""
import threading

import numpy as np
import pytest
import torch
from test_capture_fused import check_case
from torch import nn

from rnnwidgets.capture import batch_threads, fused_native, trace

pytestmark = pytest.mark.skipif(not fused_native.available(torch.zeros(1)) or batch_threads.runtime() is None,
                                reason="no oneDNN LSTM kernel or no per-thread OpenMP count here")


@pytest.fixture
def two_threads(torch_threads):
    """torch on 2 threads (the user's setting), restored after."""
    torch_threads(2)


@pytest.fixture
def splits(monkeypatch, two_threads):
    """Small workspaces, so that short test sequences run in the calls a split needs (calls of 6
    steps at 6 units, a part of 1 element of 2 parts); records the thread count each part's thread
    saw, a list per split batch."""
    monkeypatch.setattr(fused_native, "WORKSPACE_BYTES", 2 * 6 * 6 * 64)
    seen: list = []
    real = batch_threads.run_all

    def spy(tasks, threads, stop):
        counts: list = []

        def counting(task):
            def run():
                counts.append(torch.get_num_threads())
                return task()
            return run
        seen.append(counts)
        return real([counting(t) for t in tasks], threads, stop)
    monkeypatch.setattr(batch_threads, "run_all", spy)
    return seen


def whole(monkeypatch, fn):
    """``fn()`` with every batch run whole."""
    with monkeypatch.context() as m:
        m.setattr(batch_threads, "parts", lambda batch: (0, 0))
        return fn()


def assert_same(a, b):
    """The same trace to rounding: a part of the batch may take another of oneDNN's matmul kernels
    than the whole batch (at a few units, one element against two), so the last bit may differ."""
    assert a.layers.keys() == b.layers.keys()
    for name, layer in a.layers.items():
        assert layer.quantities().keys() == b.layers[name].quantities().keys()
        for key, value in layer.quantities().items():
            np.testing.assert_allclose(b.layers[name].quantities()[key], value, rtol=1e-6, atol=1e-6,
                                       err_msg=f"{name}.{key}")
        for key, value in layer.initial.items():
            np.testing.assert_array_equal(b.layers[name].initial[key], value)
    np.testing.assert_allclose(a.outputs, b.outputs, rtol=1e-6, atol=1e-6)


def test_parts_share_the_users_threads(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    assert [batch_threads.parts(b) for b in (1, 2, 3, 8, 32)] == [(0, 0), (2, 4), (3, 2), (8, 1), (8, 1)]
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert batch_threads.parts(32) == (0, 0)


def test_run_all_gives_each_task_its_count_and_leaves_the_callers(two_threads):
    seen: list = []

    def task(k):
        return lambda: seen.append(torch.get_num_threads()) or k * 10
    assert batch_threads.run_all([task(k) for k in range(3)], 1, threading.Event()) == [0, 10, 20]
    assert seen == [1, 1, 1]
    assert torch.get_num_threads() == 2
    thread_counts: list = []
    checker = threading.Thread(target=lambda: thread_counts.append(torch.get_num_threads()))
    checker.start()
    checker.join()
    assert thread_counts == [2]    # a new thread of the user's still gets the user's count


def test_an_error_in_one_task_stops_the_others_and_is_raised():
    stop = threading.Event()

    def failing():
        raise MemoryError("out of memory in part 0")

    def waiting():
        return stop.wait(100)   # would wait 100 s without the failure
    with pytest.raises(MemoryError, match="part 0"):
        batch_threads.run_all([failing, waiting], 1, stop)
    assert stop.is_set()


CASES = [dict(batch=2, layers=2), dict(batch=5, layers=3, batch_first=True), dict(batch=3, layers=2, given=True),
         dict(batch=6, layers=1, features=5, units=9, steps=1000), dict(batch=4, layers=2, threads=3)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_a_split_batch_traces_what_the_whole_batch_traces(splits, monkeypatch, case):
    torch.manual_seed(case["batch"] + case["layers"])
    torch.set_num_threads(case.get("threads", 2))
    features, units, layers = case.get("features", 4), case.get("units", 6), case["layers"]
    batch_first = case.get("batch_first", False)
    module = nn.LSTM(features, units, num_layers=layers, batch_first=batch_first)
    steps = case.get("steps", 200)
    x = torch.randn((case["batch"], steps, features) if batch_first else (steps, case["batch"], features))
    hidden = None
    if case.get("given"):
        hidden = (torch.randn(layers, case["batch"], units), torch.randn(layers, case["batch"], units))
    split = trace(module, x, hidden=hidden)
    parts = min(case.get("threads", 2), case["batch"])
    assert splits == [[1] * parts], "the parts ran at once, each on 1 thread"
    at_once = whole(monkeypatch, lambda: trace(module, x, hidden=hidden))
    assert len(splits) == 1
    assert_same(at_once, split)
    assert torch.get_num_threads() == case.get("threads", 2)


def test_a_split_batch_matches_the_references(splits):
    check_case(dict(mode="LSTM", layers=3, batch=4, steps=160, given_state=True))   # per-step reference, module alone
    assert splits and all(counts == [1, 1] for counts in splits)


def test_a_selection_of_h_and_c_from_a_split_batch_is_the_full_traces(splits):
    torch.manual_seed(3)
    module, x = nn.LSTM(4, 6, num_layers=2), torch.randn(200, 2, 4)
    full = trace(module, x)
    states = trace(module, x, quantities=("h", "c"))
    assert len(splits) == 2
    for name, layer in states.layers.items():
        assert set(layer.quantities()) == {"h", "c"}
        for key in ("h", "c"):
            np.testing.assert_array_equal(layer.quantities()[key], full.layers[name].quantities()[key])


def test_a_workspace_not_as_expected_in_one_part_sends_the_batch_whole(splits, monkeypatch):
    """The second layer's first step does not match for the second part alone (another oneDNN, say):
    the parts stop and the batch runs whole, each layer the way it takes there; the trace is the same."""
    torch.manual_seed(4)
    module, x = nn.LSTM(4, 6, num_layers=2), torch.randn(200, 2, 4)
    right = trace(module, x)
    real = fused_native.first_step_matches
    second = x[0, 1:]
    monkeypatch.setattr(fused_native, "first_step_matches", lambda found, x0, h0, weights: real(
        found, x0, h0, weights) and not (x0.shape[-1] == 6 and x0.shape[0] == 1 and not torch.equal(x0, second)))
    fallen = trace(module, x)
    assert len(splits) == 2
    for name, layer in right.layers.items():
        for key, value in layer.quantities().items():
            np.testing.assert_allclose(fallen.layers[name].quantities()[key], value, rtol=0, atol=1e-6)


def test_an_error_in_a_parts_thread_is_raised_and_leaves_the_model_as_found(splits, monkeypatch):
    torch.manual_seed(5)
    module, x = nn.LSTM(4, 6, num_layers=3), torch.randn(200, 2, 4)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    real = fused_native.lstm

    def failing(x, *args, **kwargs):
        if x.shape[-1] != 4:   # an inner layer's input: the second and third layers
            raise RuntimeError("the kernel ran out of memory")
        return real(x, *args, **kwargs)
    monkeypatch.setattr(fused_native, "lstm", failing)
    with pytest.raises(RuntimeError, match="ran out of memory"):
        trace(module, x)
    assert "forward" not in module.__dict__
    assert all(torch.equal(v, before[k]) for k, v in module.state_dict().items())
    assert not [t for t in threading.enumerate() if t.name.startswith("rnnwidgets-part")]
    monkeypatch.setattr(fused_native, "lstm", real)
    assert_same(whole(monkeypatch, lambda: trace(module, x)), trace(module, x))


def test_no_split_where_it_cannot_help(splits, monkeypatch):
    """One element; a single torch thread; parts that would add more than SPLIT_MEMORY of the arrays
    (workspaces large next to them); a GRU; a bidirectional or projected LSTM: the batch runs whole."""
    torch.manual_seed(6)
    x = torch.randn(200, 2, 4)
    trace(nn.LSTM(4, 6, num_layers=2), x[:, :1])
    trace(nn.LSTM(4, 6), x[:, 0])   # unbatched
    trace(nn.GRU(4, 6, num_layers=2), x)
    trace(nn.LSTM(4, 6, num_layers=2, bidirectional=True), x)
    trace(nn.LSTM(4, 6, num_layers=2, proj_size=3), x)
    monkeypatch.setattr(fused_native, "WORKSPACE_BYTES", 4 << 20)
    trace(nn.LSTM(4, 6, num_layers=2), x)
    trace(nn.LSTM(4, 6), x)
    assert splits == []
    monkeypatch.setattr(fused_native, "WORKSPACE_BYTES", 1)
    torch.set_num_threads(1)
    trace(nn.LSTM(4, 6, num_layers=2), x)
    assert splits == []


def test_a_split_batchs_arrays_are_the_buffers_its_parts_wrote(splits, monkeypatch):
    """Every state and gate of a split batch is handed over as the buffer its parts wrote, copied
    into no other array: an inner layer's h included, which is the next layer's input."""
    from rnnwidgets.capture import convert
    copied: list = []
    real = convert.is_whole_trace_buffer

    def spy(t):
        found = real(t)
        copied.append(not found)
        return found
    monkeypatch.setattr(convert, "is_whole_trace_buffer", spy)
    torch.manual_seed(7)
    module, x = nn.LSTM(4, 6, num_layers=3), torch.randn(200, 2, 4)
    split = trace(module, x)
    in_parts = list(copied)
    copied.clear()
    at_once = whole(monkeypatch, lambda: trace(module, x))
    assert len(splits) == 1
    assert in_parts == copied and in_parts.count(False) >= 3 * 6   # h, c and 4 gates a layer, handed over
    assert_same(at_once, split)


def test_a_split_batch_runs_in_the_callers_inference_mode(splits):
    """Under torch.inference_mode() the trace's buffers are inference tensors, which only inference
    mode may write: each part's thread runs in the caller's mode."""
    torch.manual_seed(8)
    module, x = nn.LSTM(4, 6, num_layers=2), torch.randn(200, 2, 4)
    plain = trace(module, x)
    with torch.inference_mode():
        inferred = trace(module, x)
    assert len(splits) == 2
    assert_same(plain, inferred)


def test_run_all_runs_each_task_in_the_callers_modes():
    seen: list = []

    def task():
        seen.append((torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
    with torch.inference_mode():
        batch_threads.run_all([task], 1, threading.Event())
    with torch.no_grad():
        batch_threads.run_all([task], 1, threading.Event())
    batch_threads.run_all([task], 1, threading.Event())
    assert seen == [(True, False), (False, False), (False, True)]


def test_only_a_runtime_whose_count_holds_per_thread_is_taken(two_threads):
    """torch's own runtime holds a count set on one thread there alone; a runtime torch does not run
    on (here one whose setting goes nowhere) is refused, whatever count torch has."""
    real = batch_threads.runtime()
    assert real is not None and batch_threads._holds_per_thread(real)

    class Elsewhere:
        def omp_set_num_threads(self, n):
            pass
    assert not batch_threads._holds_per_thread(Elsewhere())
    torch.set_num_threads(1)
    assert not batch_threads._holds_per_thread(Elsewhere()) and batch_threads._holds_per_thread(real)
    assert torch.get_num_threads() == 1
