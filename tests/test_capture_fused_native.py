"""rw.trace on an LSTM layer whose gates come from the native kernel's workspace (CPU, float32,
one direction, not packed), against the same references as the other paths: the per-step
reference, the module called separately, autograd; and its fallback where the workspace does not
hold the gates as expected."""
import numpy as np
import pytest
import torch
from test_capture_fused import check_case
from test_capture_gradients import check_grads
from torch import nn

import rnnwidgets.capture.fused as fused
from rnnwidgets.capture import fused_native, trace

pytestmark = pytest.mark.skipif(not fused_native.available(torch.zeros(1)), reason="no oneDNN LSTM kernel here")


@pytest.fixture
def counted(monkeypatch):
    """Every LSTM layer reads its workspace (the tests' own fixtures turn it off elsewhere); each
    call's outcome is recorded (True: the gates came from the workspace)."""
    monkeypatch.setitem(fused.LOOP_BATCH_PER_THREAD, "GRU", 10**9)
    monkeypatch.setitem(fused.WORKSPACE_GATES, "LSTM", True)
    outcomes = []
    real = fused_native.lstm

    def spy(*args):
        found = real(*args)
        outcomes.append(found is not None)
        return found
    monkeypatch.setattr(fused_native, "lstm", spy)
    return outcomes


FLAGS = [dict(), dict(layers=2, given_state=True), dict(batch_first=True, layers=3), dict(unbatched=True),
         dict(batch=5, steps=9, units=7, given_state=True)]


@pytest.mark.parametrize("flags", FLAGS)
def test_states_and_gates(counted, flags):
    check_case(dict(mode="LSTM", **flags))
    assert counted and all(counted)


@pytest.mark.parametrize("flags", FLAGS)
def test_grads_through_time(counted, flags):
    check_grads(dict(mode="LSTM", **flags))
    assert counted and all(counted)


def test_chunks_of_time_carry_the_state(counted, monkeypatch):
    """A layer run in chunks of 3 steps gives what it gives in one chunk."""
    torch.manual_seed(3)
    module, x = nn.LSTM(4, 6, num_layers=2), torch.randn(11, 2, 4)
    whole = trace(module, x)
    monkeypatch.setattr(fused_native, "WORKSPACE_BYTES", 3 * 2 * 6 * 64)
    assert fused_native.chunk_steps(2, 6, 11) == 3
    chunked = trace(module, x)
    for name, layer in whole.layers.items():
        for key, value in layer.quantities().items():
            np.testing.assert_allclose(chunked.layers[name].quantities()[key], value, rtol=0, atol=1e-6)
    assert all(counted)


def test_a_layout_it_does_not_know_falls_back_to_recomputing(counted, monkeypatch):
    """Read with another row width, the first step's gates do not match: the layer is computed
    as before, and the trace is the same."""
    torch.manual_seed(4)
    module, x = nn.LSTM(3, 5), torch.randn(6, 2, 3)
    right = trace(module, x)
    monkeypatch.setattr(fused_native, "gates_ld", lambda units: 4 * units + 16)
    wrong = trace(module, x)
    assert counted == [True, False]
    for key, value in right.first.quantities().items():
        np.testing.assert_allclose(wrong.first.quantities()[key], value, rtol=0, atol=1e-6)


def test_gates_ld_pads_as_onednn_does():
    assert [fused_native.gates_ld(u) for u in (1, 4, 8, 64, 256, 100)] == [16, 16, 32, 272, 1040, 400]


@pytest.mark.parametrize("flags", [dict(bidirectional=True), dict(proj_size=2), dict(bias=False)])
def test_other_lstms_keep_their_own_path(counted, flags):
    trace(nn.LSTM(3, 4, **flags), torch.randn(5, 2, 3))
    assert counted == []
    trace(nn.LSTM(3, 4).double(), torch.randn(5, 2, 3, dtype=torch.float64))
    assert counted == []


def test_a_chunk_holds_at_least_chunk_steps_in_a_long_sequence():
    """At a large batch the workspace bound alone would give calls of a few steps each; a chunk
    then takes CHUNK_STEPS steps, where the sequence has 32 times as many (its workspace under
    a twelfth of the layer's arrays)."""
    per_step = 256 * 64
    assert fused_native.chunk_steps(1, 256, 1000) == fused_native.WORKSPACE_BYTES // per_step
    assert fused_native.chunk_steps(32, 256, 1000) == min(fused_native.CHUNK_STEPS, 1000 // 32)
    assert fused_native.chunk_steps(32, 256, 10**4) == fused_native.CHUNK_STEPS
    assert fused_native.chunk_steps(32, 256, 100) == max(1, fused_native.WORKSPACE_BYTES // (32 * per_step))
    assert fused_native.chunk_steps(10**6, 256, 31) == 1
