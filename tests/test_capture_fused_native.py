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
from rnnwidgets.capture import batch_threads, fused_native, trace

pytestmark = pytest.mark.skipif(not fused_native.available(torch.zeros(1)), reason="no oneDNN LSTM kernel here")


@pytest.fixture
def counted(monkeypatch):
    """Every LSTM layer reads its workspace (the tests' own fixtures turn it off elsewhere); each
    call's outcome is recorded (True: the gates came from the workspace)."""
    monkeypatch.setitem(fused.LOOP_BATCH_PER_THREAD, "GRU", 10**9)
    monkeypatch.setitem(fused.WORKSPACE_GATES, "LSTM", True)
    outcomes = []
    real = fused_native.lstm

    def spy(*args, **kwargs):
        found = real(*args, **kwargs)
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


def unrolled_cells(module: nn.LSTM, x, h0, c0):
    """Every step's c of a one-layer LSTM by a float64 loop over the module's own weights."""
    w_ih, w_hh, b_ih, b_hh = (p.detach().double() for p in module.all_weights[0])
    h, c, cells = h0.double(), c0.double(), []
    for x_t in x.double():
        i, f, g, o = (x_t @ w_ih.t() + b_ih + h @ w_hh.t() + b_hh).chunk(4, 1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h = o.sigmoid() * c.tanh()
        cells.append(c)
    return torch.stack(cells)


@pytest.mark.parametrize("seed", range(12))
def test_cell_states_read_from_the_workspace_are_the_kernels(monkeypatch, seed):
    """Across sizes and chunkings (a last chunk of other length, one-step chunks, one chunk) c comes
    from the workspace, matches an unrolled loop, and its last step is the kernel's c_n itself."""
    rng = np.random.default_rng(seed)
    units, batch, steps, features = (int(rng.integers(1, n)) for n in (300, 40, 70, 300))
    per_step = batch * units * 64
    monkeypatch.setattr(fused_native, "WORKSPACE_BYTES", int(rng.choice([1, 4 << 20, per_step * rng.integers(1, 9)])))
    torch.manual_seed(seed)
    module, x = nn.LSTM(features, units), torch.randn(steps, batch, features)
    h0, c0 = torch.randn(batch, units), torch.randn(batch, units)
    with torch.no_grad():
        found = fused_native.lstm(x, h0, c0, list(module.all_weights[0]))
    assert found is not None
    out, h, c, h_n, c_n, gates = found
    assert c is not None, (units, batch, steps, features)
    np.testing.assert_allclose(c.double().numpy(), unrolled_cells(module, x, h0, c0).numpy(), rtol=0, atol=1e-5)
    assert torch.equal(c[-1], c_n)
    np.testing.assert_allclose(c.numpy(), torch.addcmul(gates[0] * gates[2], gates[1], torch.cat(
        [c0.unsqueeze(0), c[:-1]])).numpy(), rtol=0, atol=1e-5)   # c_t = f_t c_{t-1} + i_t g_t, read alike


def test_cell_state_offsets_follow_onednns_layout():
    """Gates, h before its projection, the states (2 layers x (time + 1) steps), each on a new 4 KiB
    page; c of step 0 at layer 1, time index 1 (the layouts found in this torch's workspaces)."""
    assert fused_native.cell_offset(10, 1, 256, 256) == 23552
    assert fused_native.cell_offset(7, 1, 256, 256) == 17664
    assert fused_native.cell_offset(10, 1, 256, 64) == 11008
    assert fused_native.cell_offset(9, 5, 3, 7) == 5505
    assert fused_native.cell_offset(13, 4, 30, 100) == 46960


def spied_cells(monkeypatch) -> list:
    """Whether each fused_native.lstm call gave c (True) or left it to the scan (False)."""
    outcomes = []
    real = fused_native.lstm

    def spy(*args, **kwargs):
        found = real(*args, **kwargs)
        outcomes.append(found is not None and found[2] is not None)
        return found
    monkeypatch.setattr(fused_native, "lstm", spy)
    return outcomes


@pytest.mark.parametrize("wrong", ["every call", "the last, shorter call"])
def test_cell_states_at_an_unknown_offset_fall_back_to_the_scan(monkeypatch, wrong):
    """Read a float off, the cell states fail the check at a chunk's ends (in every call, or only in
    the last, shorter one): c is scanned from the workspace's gates, and the trace is the same.
    The batch runs whole, in calls of the sizes below."""
    monkeypatch.setattr(batch_threads, "parts", lambda batch: (0, 0))
    torch.manual_seed(5)
    module, x = nn.LSTM(4, 6, num_layers=2), torch.randn(11, 2, 4)
    monkeypatch.setattr(fused_native, "WORKSPACE_BYTES", 3 * 2 * 6 * 64)   # calls of 3, 3, 3 and 2 steps
    cells = spied_cells(monkeypatch)
    right = trace(module, x)
    assert cells == [True, True]
    real = fused_native.cell_offset
    monkeypatch.setattr(fused_native, "cell_offset", lambda steps, *rest: real(steps, *rest) + (
        1 if wrong == "every call" or steps == 2 else 0))
    cells.clear()
    fallen = trace(module, x)
    assert cells == [False, False]
    for name, layer in right.layers.items():
        for key, value in layer.quantities().items():
            np.testing.assert_allclose(fallen.layers[name].quantities()[key], value, rtol=0, atol=1e-6)


def test_cells_match_finds_one_wrong_value_at_any_step_it_is_given():
    torch.manual_seed(6)
    steps, batch, units = 10, 3, 5
    i, f, g, o = torch.rand(4, batch, steps, units).unbind(0)
    c0 = torch.randn(batch, units)
    c = torch.empty(batch, steps, units)
    before = c0
    for t in range(steps):
        before = c[:, t] = f[:, t] * before + i[:, t] * g[:, t]
    checked = (0, 3, 8, 9)   # the first and last step of the calls [0, 4) and [8, 10), as lstm gives them
    ends = {t: torch.stack([i[:, t], f[:, t], g[:, t], o[:, t]], 1) for t in checked}
    assert fused_native.cells_match(c, ends, c0)
    for t in checked:
        wrong = c.clone()
        wrong[1, t, 2] += 1e-3
        assert not fused_native.cells_match(wrong, ends, c0), t
    nan = c.clone()
    nan[0, 9, 0] = float("nan")
    assert not fused_native.cells_match(nan, ends, c0)
    off = dict(ends)
    off[3] = ends[3].roll(1, dims=1)   # the gates at another place in the workspace
    assert not fused_native.cells_match(c, off, c0)


@pytest.mark.parametrize("batch", [1, 3])
def test_an_inner_layers_output_is_its_h(monkeypatch, batch):
    """``shared_out``: the output is the trace's h itself (a strided view of it at batch 3), run in
    chunks or not; for the output the user's code gets, a contiguous tensor of its own with the same values."""
    torch.manual_seed(6)
    module, x = nn.LSTM(6, 5), torch.randn(40, batch, 6)
    h0 = c0 = torch.zeros(batch, 5)
    for workspace in (fused_native.WORKSPACE_BYTES, 8 * batch * 5 * 64):
        monkeypatch.setattr(fused_native, "WORKSPACE_BYTES", workspace)
        for shared in (True, False):
            out, h, *_ = fused_native.lstm(x, h0, c0, module.all_weights[0], shared)
            torch.testing.assert_close(out, h, rtol=0, atol=0)
            assert (out.data_ptr() == h.data_ptr()) is shared
            assert shared or out.is_contiguous()


@pytest.mark.parametrize("batch", [1, 3])
def test_the_next_layer_reads_the_traces_h_and_the_model_gets_its_own_output(counted, batch):
    """A 3-layer LSTM whose output the model rewrites in place: layers 2 and 3 read the h of the
    layer before as the trace keeps it (in chunks of steps at batch 3), the model's output is a
    contiguous tensor of its own, no memory of the trace."""
    torch.manual_seed(7)
    module = nn.LSTM(3, 4, num_layers=3)
    x = torch.randn(9, batch, 3)
    with torch.no_grad():
        want = module(x)[0]
    with torch.no_grad(), fused.LayerByLayer(module) as recorder:
        out = module(x)[0]
    runs = recorder.runs
    for before, after in zip(runs, runs[1:]):
        assert after.x.data_ptr() == before.recomputed()[0].h.data_ptr()
    assert out.is_contiguous() and not np.shares_memory(runs[-1].recomputed()[0].h.numpy(), out.numpy())
    tr = trace(module, x)
    np.testing.assert_allclose(tr.layers["lstm.l2"].h, want.transpose(0, 1).numpy(), atol=1e-6)
    check_case(dict(mode="LSTM", layers=3, batch=batch, steps=9))
    assert counted and all(counted)
