"""rw.recording over a user's own loop of cells, and rw.record: exact, untouched model, clear errors."""
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from model_state import assert_untouched, snapshot
from models import LoopOfCell
from torch import nn

from rnnwidgets.capture.recording import record, recording

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


# ---- references written from the PyTorch documentation's equations, one step at a time ----------
def lstm_gates_reference(cell, x, h, c):
    W_ii, W_if, W_ig, W_io = cell.weight_ih.chunk(4)
    W_hi, W_hf, W_hg, W_ho = cell.weight_hh.chunk(4)
    zero = torch.zeros(4 * cell.hidden_size, dtype=x.dtype)
    b_ii, b_if, b_ig, b_io = (cell.bias_ih if cell.bias else zero).chunk(4)
    b_hi, b_hf, b_hg, b_ho = (cell.bias_hh if cell.bias else zero).chunk(4)
    i = torch.sigmoid(x @ W_ii.T + b_ii + h @ W_hi.T + b_hi)
    f = torch.sigmoid(x @ W_if.T + b_if + h @ W_hf.T + b_hf)
    g = torch.tanh(x @ W_ig.T + b_ig + h @ W_hg.T + b_hg)
    o = torch.sigmoid(x @ W_io.T + b_io + h @ W_ho.T + b_ho)
    return {"input": i, "forget": f, "cell": g, "output": o}


def gru_gates_reference(cell, x, h):
    W_ir, W_iz, W_in = cell.weight_ih.chunk(3)
    W_hr, W_hz, W_hn = cell.weight_hh.chunk(3)
    zero = torch.zeros(3 * cell.hidden_size, dtype=x.dtype)
    b_ir, b_iz, b_in = (cell.bias_ih if cell.bias else zero).chunk(3)
    b_hr, b_hz, b_hn = (cell.bias_hh if cell.bias else zero).chunk(3)
    r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = torch.tanh(x @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))
    return {"reset": r, "update": z, "new": n}


class CellLoop(nn.Module):
    """A user's model: an embedding-free loop over one cell and a linear head."""

    def __init__(self, kind, input_size, hidden_size, bias=True, nonlinearity="tanh"):
        super().__init__()
        if kind == "lstm":
            self.cell = nn.LSTMCell(input_size, hidden_size, bias=bias)
        elif kind == "gru":
            self.cell = nn.GRUCell(input_size, hidden_size, bias=bias)
        else:
            self.cell = nn.RNNCell(input_size, hidden_size, bias=bias, nonlinearity=nonlinearity)
        self.head = nn.Linear(hidden_size, 2)
        self.kind = kind

    def forward(self, xs, hx=None):
        """xs: (time, batch, features) or (time, features); returns every cell output."""
        outs = []
        for x in xs:
            hx = self.cell(x, hx)
            outs.append(hx)
            self.head(hx[0] if self.kind == "lstm" else hx)
        return outs


def run_and_reference(model, xs, hx=None):
    """The cell outputs per step and the documented gates per step, from an unrecorded run."""
    cell = model.cell
    H = cell.hidden_size
    with torch.no_grad():
        outs = model(xs, hx)
        gates = []
        prev = hx
        for x, out in zip(xs, outs):
            xb = x.unsqueeze(0) if x.dim() == 1 else x
            lift = (lambda t: t.unsqueeze(0)) if x.dim() == 1 else (lambda t: t)
            if model.kind == "lstm":
                h, c = (torch.zeros(xb.shape[0], H, dtype=x.dtype),) * 2 if prev is None else map(lift, prev)
                gates.append(lstm_gates_reference(cell, xb, h, c))
            elif model.kind == "gru":
                h = torch.zeros(xb.shape[0], H, dtype=x.dtype) if prev is None else lift(prev)
                gates.append(gru_gates_reference(cell, xb, h))
            prev = out
    return outs, gates


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
def test_cell_states_and_gates_are_exact(kind, dtype, bias, batched):
    torch.manual_seed(0)
    model = CellLoop(kind.split("_")[0], 3, 5, bias=bias,
                     nonlinearity=kind.split("_")[1] if "_" in kind else "tanh").to(dtype)
    xs = torch.randn(6, 2, 3, dtype=dtype) if batched else torch.randn(6, 3, dtype=dtype)
    outs, ref_gates = run_and_reference(model, xs)
    with recording(model) as rec:
        model(xs)
    tr = rec.trace
    lt = tr.layers["cell"]
    assert list(tr.layers) == ["cell"] and lt.kind == "cell"
    assert lt.meta["cell"] == kind.split("_")[0] and lt.meta["hidden_size"] == 5 and lt.meta["module"] == "cell"
    batch = 2 if batched else 1
    assert lt.h.shape == (batch, 6, 5) and tr.lengths.tolist() == [6] * batch
    tol = TOL[dtype]
    for t, out in enumerate(outs):
        h, c = out if kind == "lstm" else (out, None)
        np.testing.assert_allclose(lt.states["h"][:, t], h.reshape(batch, 5).float().numpy(), atol=tol, rtol=0)
        if c is not None:
            np.testing.assert_allclose(lt.states["c"][:, t], c.reshape(batch, 5).float().numpy(), atol=tol, rtol=0)
        for name, ref in (ref_gates[t].items() if ref_gates else ()):
            np.testing.assert_allclose(lt.gates[name][:, t], ref.float().numpy(), atol=tol, rtol=0)
    expected_gates = {"lstm": {"input", "forget", "cell", "output"}, "gru": {"reset", "update", "new"}}
    assert set(lt.gates) == expected_gates.get(kind.split("_")[0], set())
    # called with no hidden, the cell started from zeros
    assert list(lt.initial) == list(lt.states)
    for key, value in lt.initial.items():
        assert value.dtype == np.float32 and value.shape == (batch, 5) and not value.any()
    np.testing.assert_array_equal(tr.inputs, xs.reshape(6, batch, 3).transpose(0, 1).float().numpy())


@settings(max_examples=15, deadline=None)
@given(kind=st.sampled_from(["lstm", "gru", "rnn"]), input_size=st.integers(1, 6), hidden=st.integers(1, 7),
       batch=st.integers(1, 4), steps=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_cells_exact_over_sizes(kind, input_size, hidden, batch, steps, seed):
    torch.manual_seed(seed)
    model = CellLoop(kind, input_size, hidden).double()
    xs = torch.randn(steps, batch, input_size, dtype=torch.float64)
    hx = torch.randn(batch, hidden, dtype=torch.float64)
    hx = (hx, torch.randn(batch, hidden, dtype=torch.float64)) if kind == "lstm" else hx
    outs, ref_gates = run_and_reference(model, xs, hx)
    with recording(model) as rec:
        model(xs, hx)
    lt = rec.trace.layers["cell"]
    for t, out in enumerate(outs):
        h = out[0] if kind == "lstm" else out
        np.testing.assert_allclose(lt.h[:, t], h.float().numpy(), atol=1e-7, rtol=0)
        for name, ref in (ref_gates[t].items() if ref_gates else ()):
            np.testing.assert_allclose(lt.gates[name][:, t], ref.float().numpy(), atol=1e-7, rtol=0)
    given = hx if kind == "lstm" else (hx,)
    assert list(lt.initial) == list(lt.states)
    for key, value in zip(lt.initial, given):
        np.testing.assert_array_equal(lt.initial[key], value.float().numpy())
    # the first step, recomputed by the cell from the initial state, is the recorded one
    with torch.no_grad():
        start = tuple(torch.from_numpy(lt.initial[k]).double() for k in lt.initial)
        first = model.cell(xs[0], start if kind == "lstm" else start[0])
    for key, value in zip(lt.states, first if kind == "lstm" else (first,)):
        np.testing.assert_allclose(lt.states[key][:, 0], value.float().numpy(), atol=1e-6, rtol=0)


@pytest.mark.filterwarnings("error")   # a missed previous state would show as gates that do not reproduce h
def test_names_follow_module_paths_and_calls_make_steps():
    class EncoderDecoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.GRUCell(3, 4)
            self.decoder = nn.ModuleDict({"cell": nn.LSTMCell(4, 4)})

        def forward(self, xs):
            h = None
            for x in xs:
                h = self.encoder(x, h)
            state, out = (h, torch.zeros_like(h)), h
            for _ in range(2):
                state = self.decoder["cell"](out, state)
                out = state[0]
            return out

    model = EncoderDecoder()
    with recording(model) as rec:
        model(torch.randn(5, 2, 3))
    assert list(rec.trace.layers) == ["encoder", "decoder.cell"]
    assert rec.trace.layers["encoder"].h.shape == (2, 5, 4)
    assert rec.trace.layers["decoder.cell"].states["c"].shape == (2, 2, 4)
    assert rec.trace.layers["decoder.cell"].meta["cell"] == "lstm"
    # each cell starts from what its first call was given: zeros (no hidden), the encoder's last h
    assert not rec.trace.layers["encoder"].initial["h"].any()
    decoder = rec.trace.layers["decoder.cell"].initial
    np.testing.assert_array_equal(decoder["h"], rec.trace.layers["encoder"].h[:, -1])
    assert not decoder["c"].any() and decoder["c"].shape == (2, 4)

    cell = nn.RNNCell(2, 3)
    x = torch.randn(2, 2)
    with recording(cell) as rec:
        h1 = cell(input=x[0])                  # arguments by keyword, unbatched
        h2 = cell(x[1], hx=h1)
    assert list(rec.trace.layers) == ["rnncell"] and rec.trace.first.h.shape == (1, 2, 3)
    assert rec.trace.first.initial["h"].shape == (1, 3)      # unbatched, no hidden: batch 1 of zeros
    with torch.no_grad():
        expected = torch.tanh(x[1] @ cell.weight_ih.T + cell.bias_ih + h1 @ cell.weight_hh.T + cell.bias_hh)
    np.testing.assert_allclose(rec.trace.first.h[0, 1], expected.numpy(), atol=1e-6)
    np.testing.assert_array_equal(rec.trace.first.h[0, 1], h2.detach().numpy())


class HandWrittenRNN(nn.Module):
    """A recurrent module written by hand that exposes its state and gate through rw.record."""

    def __init__(self):
        super().__init__()
        self.w = nn.Linear(3 + 4, 4)
        self.gate = nn.Linear(3 + 4, 4)

    def forward(self, x, h):
        xh = torch.cat([x, h], 1)
        z = torch.sigmoid(self.gate(xh))
        record("update", z)
        h = (1 - z) * h + z * torch.tanh(self.w(xh))
        record("h", h)
        return h


class Wrapper(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = HandWrittenRNN()

    def forward(self, xs):
        h = torch.zeros(xs.shape[1], 4)
        for x in xs:
            h = self.rnn(x, h)
            record("norm", h.norm(dim=1, keepdim=True))
        return h


def test_record_goes_to_the_running_module_and_h_is_a_state():
    model = Wrapper()
    xs = torch.randn(5, 2, 3)
    expected_h, expected_z, h = [], [], torch.zeros(2, 4)
    with torch.no_grad():
        for x in xs:
            xh = torch.cat([x, h], 1)
            expected_z.append(torch.sigmoid(model.rnn.gate(xh)))
            h = model.rnn(x, h)
            expected_h.append(h)
    with recording(model) as rec:
        model(xs)
        record("outside", torch.tensor(1.5))
    tr = rec.trace
    assert list(tr.layers) == ["rnn", "wrapper", "record"]
    rnn = tr.layers["rnn"]
    assert rnn.kind == "custom" and set(rnn.states) == {"h"} and set(rnn.tracks) == {"update"}
    assert rnn.initial == {}          # a recorded h: nothing says which tensor it started from
    np.testing.assert_allclose(rnn.h, torch.stack(expected_h, 1).numpy(), atol=1e-6)
    np.testing.assert_allclose(rnn.tracks["update"], torch.stack(expected_z, 1).numpy(), atol=1e-6)
    assert tr.layers["wrapper"].tracks["norm"].shape == (2, 5, 1)
    assert tr.layers["record"].tracks["outside"].tolist() == [[[1.5]]]


def test_record_outside_a_recording_does_nothing():
    class Loud:
        def __torch_function__(self, *a, **k):
            raise AssertionError("record touched its tensor outside a recording")

    assert record("anything", Loud()) is None
    with recording(Wrapper()) as rec:
        rec.model(torch.randn(2, 1, 3))
    assert record("after", torch.ones(3)) is None   # the recording ended: nothing is active any more
    assert "record" not in rec.trace.layers


def prepared_model():
    model = CellLoop("lstm", 3, 4)
    model.head.weight.requires_grad_(False)
    model.cell.eval()
    model.cell(torch.randn(2, 3))[0].sum().backward()   # .grad fields that must stay as they are
    return model


def test_recording_leaves_the_model_untouched():
    model = prepared_model()
    before = snapshot(model)
    xs = torch.randn(4, 2, 3, requires_grad=True)
    with recording(model) as rec:
        out = model(xs)
        out[-1][0].sum().backward()   # the user's own backward inside the block still works
    assert rec.trace.first.h.shape == (2, 4, 4)
    assert xs.grad is not None
    for n, p in model.named_parameters():   # the user's backward added to .grad; undo it to compare the rest
        grad = before["grads"][n]   # None, or (the tensor that was there, a copy of its values)
        p.grad = None if grad is None else grad[0].copy_(grad[1])
    assert_untouched(model, before)


def test_recording_leaves_the_model_untouched_when_the_body_raises():
    model = prepared_model()
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="half-way"):
        with recording(model) as rec:
            model(torch.randn(3, 2, 3))
            raise RuntimeError("half-way")
    assert_untouched(model, before)
    with pytest.raises(RuntimeError, match="once the"):
        rec.trace
    assert record("x", torch.ones(1)) is None


def test_recording_leaves_the_model_untouched_when_a_cell_raises():
    model = prepared_model()
    before = snapshot(model)
    with pytest.raises(RuntimeError):
        with recording(model):
            model(torch.randn(3, 2, 3))
            model(torch.randn(3, 2, 5))     # wrong input size: the cell raises inside its forward
    assert_untouched(model, before)


def test_errors_say_what_was_expected():
    with pytest.raises(ValueError, match="nothing was recorded.*nn.LSTMCell"):
        with recording(nn.Linear(2, 2)) as rec:
            rec.model(torch.randn(2))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        recording(lambda x: x)
    cell = nn.GRUCell(2, 3)
    with pytest.raises(ValueError, match="batch sizes \\[1, 2\\]"):
        with recording(cell):
            cell(torch.randn(1, 2))
            cell(torch.randn(2, 2))
    with pytest.raises(ValueError, match="got shape \\(1, 2, 3\\)"):
        with recording(cell):
            record("bad", torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="no layer has a hidden state"):
        with recording(cell):
            record("only a track", torch.zeros(3))


def test_tokens_are_kept_and_checked():
    cell = nn.RNNCell(2, 3)
    with recording(cell, tokens=[["a", "<b>"]]) as rec:
        h = cell(torch.randn(1, 2))
        cell(torch.randn(1, 2), h)
    assert rec.trace.tokens == [["a", "<b>"]]
    with pytest.raises(ValueError, match="tokens"):
        with recording(cell, tokens=[["a"], ["b"]]):
            cell(torch.randn(1, 2))


def test_a_recording_copies_what_it_keeps():
    cell = nn.RNNCell(2, 3)
    with recording(cell) as rec:
        h = cell(torch.randn(1, 2))
        kept = h.detach().numpy().copy()
        with torch.no_grad():
            h.zero_()                      # the user reuses the tensor in place
        record("unused", torch.ones(1))
    np.testing.assert_array_equal(rec.trace.first.h[:, 0], kept)


def test_public_names_are_these_functions():
    import rnnwidgets as rw

    model = CellLoop("gru", 2, 3)
    with rw.recording(model) as rec:
        model(torch.randn(4, 1, 2))
        rw.record("extra", torch.ones(2))
    assert list(rec.trace.layers) == ["cell", "record"]
    assert rw.record is record


def test_a_bfloat16_model_gives_a_float32_trace_without_false_alarms():
    torch.manual_seed(6)
    model = CellLoop("lstm", 3, 5).to(torch.bfloat16)
    xs = torch.randn(5, 2, 3, dtype=torch.bfloat16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with recording(model) as rec:
            outs = model(xs)
    lt = rec.trace.first
    assert lt.h.dtype == np.float32 and lt.gates["forget"].dtype == np.float32
    np.testing.assert_array_equal(lt.h, torch.stack([h for h, _ in outs], 1).float().detach().numpy())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_a_cuda_model_is_recorded_on_its_device(kind):
    torch.manual_seed(7)
    model = CellLoop(kind, 3, 5)
    xs = torch.randn(6, 2, 3)
    with recording(model) as rec:
        model(xs)
    on_cpu = rec.trace.first
    model.cuda()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with recording(model) as rec:
            model(xs.cuda())
    on_gpu = rec.trace.first
    assert next(model.parameters()).is_cuda
    for key, value in on_cpu.quantities().items():
        assert isinstance(on_gpu.quantities()[key], np.ndarray)
        np.testing.assert_allclose(on_gpu.quantities()[key], value, atol=1e-5, rtol=0)
    assert list(on_gpu.initial) == list(on_cpu.initial)
    for key, value in on_cpu.initial.items():
        assert isinstance(on_gpu.initial[key], np.ndarray)
        np.testing.assert_array_equal(on_gpu.initial[key], value)


def record_norm_and_row(h):
    record("norm", h.norm(dim=1))                  # (batch,)
    if len(h) == 1:
        record("row", h[0])                        # (features,) for batch 1


def test_a_value_per_batch_element_is_one_feature_per_element():
    torch.manual_seed(8)
    with recording(LoopOfCell(nn.GRUCell(3, 4), each=record_norm_and_row)) as rec:
        rec.model(torch.randn(5, 3, 3))
    tr = rec.trace
    assert tr.layers["loopofcell"].tracks["norm"].shape == (3, 5, 1)
    norms = np.linalg.norm(tr.layers["cell"].h, axis=2)
    np.testing.assert_allclose(tr.layers["loopofcell"].tracks["norm"][..., 0], norms, rtol=1e-6)
    # batch 1: a vector is the features of the one element
    with recording(LoopOfCell(nn.GRUCell(3, 4), each=record_norm_and_row)) as rec:
        rec.model(torch.randn(5, 1, 3))
    tracks = rec.trace.layers["loopofcell"].tracks
    assert tracks["norm"].shape == (1, 5, 1) and tracks["row"].shape == (1, 5, 4)
    np.testing.assert_allclose(tracks["row"], rec.trace.layers["cell"].h, rtol=1e-6)


def test_a_long_loop_keeps_no_child_outputs_while_it_runs():
    """A model running its own loop is not a step call: its children's outputs are not collected
    (they were, one more per step, each searched for a free label: quadratic in the steps)."""
    seen = []
    with recording(LoopOfCell(each=lambda hx: seen.append(rec._children))) as rec:
        rec.model(torch.randn(50, 1, 3))
    assert seen == [None] * 50 and rec.trace.layers["cell"].steps == 50


def test_a_hidden_passed_back_is_kept_once_and_still_exact():
    """The previous output passed back in is not copied again, unless it was changed in place."""
    torch.manual_seed(9)
    cell = nn.LSTMCell(3, 4)
    xs = torch.randn(4, 2, 3)
    with recording(cell) as rec:
        hx = None
        for t, x in enumerate(xs):
            if t == 2:
                hx[1].mul_(0.5)                        # edited in place before the next step
            hx = cell(x, hx)
    lt = rec.trace.first
    with torch.no_grad():
        h, c = torch.zeros(2, 4), torch.zeros(2, 4)
        for t, x in enumerate(xs):
            if t == 2:
                c = c * 0.5
            h, c = cell(x, (h, c))
            np.testing.assert_allclose(lt.states["c"][:, t], c.numpy(), atol=1e-6)
            np.testing.assert_allclose(lt.h[:, t], h.numpy(), atol=1e-6)
