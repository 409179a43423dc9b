"""The layers of a stacked LSTM run at once, each on a thread of its own (capture/layer_threads.py,
fused.workspace_stack): the same trace as the layers one after another, bit for bit; the user's
thread count left as it is; a failure or an error in one layer's thread handled as on one thread."""
import threading

import numpy as np
import pytest
import torch
from test_capture_fused import check_case
from torch import nn

from rnnwidgets.capture import fused_native, layer_threads, trace

pytestmark = pytest.mark.skipif(not fused_native.available(torch.zeros(1)) or layer_threads.runtime() is None,
                                reason="no oneDNN LSTM kernel or no per-thread OpenMP count here")


@pytest.fixture
def two_threads():
    """torch on 2 threads (the user's setting), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def stacks(monkeypatch, two_threads):
    """Small workspaces, so that short test sequences run in the calls a stack needs (calls of 6
    steps at batch 1, 6 units, 2 layers); records the thread count each layer's thread saw, a
    list per stack that ran."""
    monkeypatch.setattr(fused_native, "WORKSPACE_BYTES", 2 * 6 * 6 * 64)
    seen: list = []
    real = layer_threads.run_all

    def spy(tasks, threads, progress):
        counts: list = []

        def counting(task):
            def run():
                counts.append(torch.get_num_threads())
                return task()
            return run
        seen.append(counts)
        return real([counting(t) for t in tasks], threads, progress)
    monkeypatch.setattr(layer_threads, "run_all", spy)
    return seen


def one_after_another(monkeypatch, fn):
    """``fn()`` with the layers run one after another."""
    with monkeypatch.context() as m:
        m.setattr(layer_threads, "threads_each", lambda layers: 0)
        return fn()


def assert_same(a, b):
    assert a.layers.keys() == b.layers.keys()
    for name, layer in a.layers.items():
        assert layer.quantities().keys() == b.layers[name].quantities().keys()
        for key, value in layer.quantities().items():
            np.testing.assert_array_equal(b.layers[name].quantities()[key], value, err_msg=f"{name}.{key}")
        for key, value in layer.initial.items():
            np.testing.assert_array_equal(b.layers[name].initial[key], value)
    np.testing.assert_array_equal(a.outputs, b.outputs)


def test_progress_waits_for_steps_and_wakes_on_failure():
    p = layer_threads.Progress()
    p.advance(3)
    assert p.wait(3) and not p.failed
    woke: list = []
    waiter = threading.Thread(target=lambda: woke.append(p.wait(10)))
    waiter.start()
    p.advance(5)
    waiter.join(0.2)
    assert waiter.is_alive()      # 5 of 10 steps: still waiting
    p.fail()
    waiter.join(5)
    assert woke == [False] and p.failed and not p.wait(1)


def test_threads_each_shares_the_users_threads_among_layers(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    assert [layer_threads.threads_each(n) for n in (1, 2, 3, 8, 9)] == [0, 4, 2, 1, 1]
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert layer_threads.threads_each(2) == 0


def test_run_all_gives_each_task_its_count_and_leaves_the_callers(two_threads):
    seen: list = []

    def task(k):
        return lambda: seen.append(torch.get_num_threads()) or k * 10
    assert layer_threads.run_all([task(k) for k in range(3)], 1, []) == [0, 10, 20]
    assert seen == [1, 1, 1]
    assert torch.get_num_threads() == 2
    thread_counts: list = []
    checker = threading.Thread(target=lambda: thread_counts.append(torch.get_num_threads()))
    checker.start()
    checker.join()
    assert thread_counts == [2]    # a new thread of the user's still gets the user's count


def test_an_error_in_one_task_stops_the_others_and_is_raised():
    progress = [layer_threads.Progress(), layer_threads.Progress()]

    def failing():
        raise MemoryError("out of memory in layer 0")

    def waiting():
        return progress[0].wait(100)   # would wait forever without the failure
    with pytest.raises(MemoryError, match="layer 0"):
        layer_threads.run_all([failing, waiting], 1, progress)
    assert all(p.failed for p in progress)


CASES = [dict(batch=1, layers=2), dict(batch=4, layers=3, batch_first=True), dict(batch=3, layers=2, given=True),
         dict(batch=1, layers=2, unbatched=True), dict(batch=6, layers=4, features=5, units=9)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_a_stack_traces_what_layers_one_after_another_trace(stacks, monkeypatch, case):
    torch.manual_seed(case["batch"] + case["layers"])
    features, units, layers = case.get("features", 4), case.get("units", 6), case["layers"]
    batch_first = case.get("batch_first", False)
    module = nn.LSTM(features, units, num_layers=layers, batch_first=batch_first)
    shape = (200, features) if case.get("unbatched") else (
        (case["batch"], 200, features) if batch_first else (200, case["batch"], features))
    x = torch.randn(shape)
    hidden = None
    if case.get("given"):
        hidden = (torch.randn(layers, case["batch"], units), torch.randn(layers, case["batch"], units))
    stacked = trace(module, x, hidden=hidden)
    assert stacks == [[1] * layers], "the layers ran at once, each on 1 of the 2 threads"
    alone = one_after_another(monkeypatch, lambda: trace(module, x, hidden=hidden))
    assert len(stacks) == 1
    assert_same(alone, stacked)
    assert torch.get_num_threads() == 2


def test_a_stack_matches_the_references(stacks):
    check_case(dict(mode="LSTM", layers=3, batch=2, steps=120, given_state=True))   # the per-step reference, the module called alone
    assert stacks and all(counts == [1, 1, 1] for counts in stacks)


def test_a_selection_of_h_and_c_from_a_stack_is_the_full_traces(stacks):
    torch.manual_seed(3)
    module, x = nn.LSTM(4, 6, num_layers=2), torch.randn(200, 2, 4)
    full = trace(module, x)
    states = trace(module, x, quantities=("h", "c"))
    assert len(stacks) == 2
    for name, layer in states.layers.items():
        assert set(layer.quantities()) == {"h", "c"}
        for key in ("h", "c"):
            np.testing.assert_array_equal(layer.quantities()[key], full.layers[name].quantities()[key])


def test_a_layer_whose_workspace_is_not_as_expected_sends_the_stack_one_layer_after_another(stacks, monkeypatch):
    """The second layer's first step does not match (another oneDNN, say): the stack stops and the
    layers run one after another, the way each takes there; the trace is the same."""
    torch.manual_seed(4)
    module, x = nn.LSTM(4, 6, num_layers=2), torch.randn(200, 2, 4)
    right = trace(module, x)
    real = fused_native.first_step_matches
    monkeypatch.setattr(fused_native, "first_step_matches",
                        lambda found, x0, h0, weights: real(found, x0, h0, weights) and x0.shape[-1] == 4)
    fallen = trace(module, x)
    assert len(stacks) == 2
    for name, layer in right.layers.items():
        for key, value in layer.quantities().items():
            np.testing.assert_allclose(fallen.layers[name].quantities()[key], value, rtol=0, atol=1e-6)


def test_an_error_in_a_layers_thread_is_raised_and_leaves_the_model_as_found(stacks, monkeypatch):
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
    assert not [t for t in threading.enumerate() if t.name.startswith("rnnwidgets-layer")]
    monkeypatch.setattr(fused_native, "lstm", real)
    assert_same(one_after_another(monkeypatch, lambda: trace(module, x)), trace(module, x))


def test_no_stack_where_it_cannot_help(stacks, monkeypatch):
    """One layer; a single torch thread; a sequence of fewer than STACK_CALLS calls a layer; a GRU;
    a bidirectional or projected LSTM: the layers run one after another."""
    torch.manual_seed(6)
    x = torch.randn(200, 2, 4)
    trace(nn.LSTM(4, 6), x)
    trace(nn.GRU(4, 6, num_layers=2), x)
    trace(nn.LSTM(4, 6, num_layers=2, bidirectional=True), x)
    trace(nn.LSTM(4, 6, num_layers=2, proj_size=3), x)
    monkeypatch.setattr(fused_native, "WORKSPACE_BYTES", 4 << 20)
    trace(nn.LSTM(4, 6, num_layers=2), x)
    assert stacks == []
    monkeypatch.setattr(fused_native, "WORKSPACE_BYTES", 1)
    torch.set_num_threads(1)
    trace(nn.LSTM(4, 6, num_layers=2), x)
    assert stacks == []


def test_a_stacks_arrays_are_the_buffers_its_kernels_wrote(stacks, monkeypatch):
    """Every state and gate of a stack's layers is handed over as the buffer its layer's thread
    wrote, copied into no other array: an inner layer's h included, which is the next layer's input."""
    from rnnwidgets.capture import convert
    copied: list = []
    real = convert.is_whole_trace_buffer

    def spy(t):
        whole = real(t)
        copied.append(not whole)
        return whole
    monkeypatch.setattr(convert, "is_whole_trace_buffer", spy)
    torch.manual_seed(7)
    module, x = nn.LSTM(4, 6, num_layers=3), torch.randn(200, 2, 4)
    stacked = trace(module, x)
    in_stack = list(copied)
    copied.clear()
    alone = one_after_another(monkeypatch, lambda: trace(module, x))
    assert len(stacks) == 1
    assert in_stack == copied and in_stack.count(False) >= 3 * 6   # h, c and 4 gates a layer, handed over
    assert_same(alone, stacked)


def test_a_stack_runs_in_the_callers_inference_mode(stacks):
    """Under torch.inference_mode() the trace's buffers are inference tensors, which only inference
    mode may write: each layer's thread runs in the caller's mode."""
    torch.manual_seed(8)
    module, x = nn.LSTM(4, 6, num_layers=2), torch.randn(200, 2, 4)
    plain = trace(module, x)
    with torch.inference_mode():
        inferred = trace(module, x)
    assert len(stacks) == 2
    assert_same(plain, inferred)


def test_run_all_runs_each_task_in_the_callers_modes():
    seen: list = []

    def task():
        seen.append((torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
    with torch.inference_mode():
        layer_threads.run_all([task], 1, [])
    with torch.no_grad():
        layer_threads.run_all([task], 1, [])
    layer_threads.run_all([task], 1, [])
    assert seen == [(True, False), (False, False), (False, True)]


def test_only_a_runtime_whose_count_holds_per_thread_is_taken(two_threads):
    """torch's own runtime holds a count set on one thread there alone; a runtime torch does not run
    on (here one whose setting goes nowhere) is refused, whatever count torch has."""
    real = layer_threads.runtime()
    assert real is not None and layer_threads._holds_per_thread(real)

    class Elsewhere:
        def omp_set_num_threads(self, n):
            pass
    assert not layer_threads._holds_per_thread(Elsewhere())
    torch.set_num_threads(1)
    assert not layer_threads._holds_per_thread(Elsewhere()) and layer_threads._holds_per_thread(real)
    assert torch.get_num_threads() == 1
