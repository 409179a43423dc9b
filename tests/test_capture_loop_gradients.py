"""loss= on models that run their own loop over cells (nn.LSTMCell / GRUCell / RNNCell), and on
step modules whose output and hidden are views of one tensor: grads["h"] (and "c") against
autograd on an unrolled reference written from the cell equations, where each h_t and c_t is one
tensor, so its gradient holds every path from it to the loss."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import rnnwidgets as rw

CELLS = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn_tanh": nn.RNNCell, "rnn_relu": nn.RNNCell}


class Sequence(nn.Module):
    """PyTorch's time_sequence_prediction model as written there: two stacked LSTMCells, float64."""

    def __init__(self, units=51):
        super().__init__()
        self.units = units
        self.lstm1 = nn.LSTMCell(1, units)
        self.lstm2 = nn.LSTMCell(units, units)
        self.linear = nn.Linear(units, 1)

    def forward(self, input, future=0):
        outputs = []
        h_t = torch.zeros(input.size(0), self.units, dtype=torch.double)
        c_t = torch.zeros(input.size(0), self.units, dtype=torch.double)
        h_t2 = torch.zeros(input.size(0), self.units, dtype=torch.double)
        c_t2 = torch.zeros(input.size(0), self.units, dtype=torch.double)
        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        for _ in range(future):   # if we should predict the future
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        return torch.cat(outputs, dim=1)


class CellStack(nn.Module):
    """Cells of one kind stacked in a loop over (batch, time, features), a head fed back for ``future`` steps."""

    def __init__(self, kind, features, units, layers, bias):
        super().__init__()
        extra = {"nonlinearity": kind[4:]} if kind.startswith("rnn") else {}
        self.kind = kind
        self.cells = nn.ModuleList([CELLS[kind](features if k == 0 else units, units, bias=bias, **extra)
                                    for k in range(layers)])
        self.head = nn.Linear(units, features)

    def forward(self, x, future=0):
        states = [None] * len(self.cells)
        outputs = []
        steps = list(x.unbind(1)) + [None] * future
        for x_t in steps:
            x_t = outputs[-1] if x_t is None else x_t
            for k, cell in enumerate(self.cells):
                states[k] = cell(x_t, states[k])
                x_t = states[k][0] if isinstance(states[k], tuple) else states[k]
            outputs.append(self.head(x_t))
        return torch.stack(outputs, 1)


def cell_step(kind, cell, x, h, c):
    """One step from the documented equations, h and c each one tensor."""
    gi = x @ cell.weight_ih.T + (cell.bias_ih if cell.bias else 0)
    gh = h @ cell.weight_hh.T + (cell.bias_hh if cell.bias else 0)
    if kind == "lstm":
        i, f, g, o = (gi + gh).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
    if kind == "gru":
        (ir, iz, i_n), (hr, hz, hn) = gi.chunk(3, 1), gh.chunk(3, 1)
        r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
        n = torch.tanh(i_n + r * hn)
        return (1 - z) * n + z * h, None
    return (torch.tanh if kind == "rnn_tanh" else torch.relu)(gi + gh), None


def unrolled(cells, kind, x, head, future=0):
    """(output (batch, time, features), per cell name the lists of h_t and c_t) of the same loop."""
    batch, units = x.shape[0], cells[0].hidden_size
    h = [x.new_zeros(batch, units) for _ in cells]
    c = [x.new_zeros(batch, units) for _ in cells]
    kept = {k: ([], []) for k in range(len(cells))}
    outputs = []
    for x_t in list(x.unbind(1)) + [None] * future:
        x_t = outputs[-1] if x_t is None else x_t
        for k, cell in enumerate(cells):
            h[k], c_new = cell_step(kind, cell, x_t, h[k], c[k])
            c[k] = c_new if c_new is not None else c[k]
            kept[k][0].append(h[k])
            kept[k][1].append(c_new)
            x_t = h[k]
        outputs.append(head(x_t))
    return torch.stack(outputs, 1), kept


def check_against_reference(tr, names, kept, value, model, atol):
    for k, name in enumerate(names):
        hs, cs = kept[k]
        keys = [("h", hs)] + ([("c", cs)] if cs[0] is not None else [])
        found = torch.autograd.grad(value, [t for _, ts in keys for t in ts], retain_graph=True)
        for j, (key, ts) in enumerate(keys):
            want = torch.stack(found[j * len(ts):(j + 1) * len(ts)], 1).numpy()    # (batch, time, units)
            got = tr.layers[name].grads[key]
            assert got.dtype == np.float32 and got.shape == want.shape, (name, key)
            scale = max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(got, want, rtol=0, atol=atol * scale, err_msg=f"{name} {key}")
    params = list(model.named_parameters())
    want = torch.autograd.grad(value, [p for _, p in params], allow_unused=True)
    assert list(tr.param_grads) == [n for n, _ in params]
    for (name, p), g in zip(params, want):
        g = torch.zeros_like(p) if g is None else g
        assert tr.param_grads[name]["norm"] == pytest.approx(float(g.norm()), rel=1e-4, abs=1e-7), name


def test_time_sequence_prediction_model_in_float64():
    """Two stacked LSTMCells with future=, as in PyTorch's example: every entry point with loss= works."""
    torch.manual_seed(0)
    model = Sequence(units=7).double()
    x = torch.randn(3, 6, dtype=torch.double)
    loss = lambda out: (out ** 2).sum()   # noqa: E731
    tr = rw.trace(model, x, loss=loss)
    assert list(tr.layers) == ["lstm1", "lstm2"]
    cells = [model.lstm1, model.lstm2]
    out, kept = unrolled(cells, "lstm", x.unsqueeze(2), model.linear)
    np.testing.assert_allclose(out.squeeze(2).detach().numpy(), model(x).detach().numpy(), rtol=0, atol=1e-12)
    check_against_reference(tr, ["lstm1", "lstm2"], kept, loss(out), model, atol=1e-6)
    flow = rw.gradient_flow(model, x)                                     # loss="last": out[:, -1].sum()
    last = flow.trace.layers["lstm2"].grads["h"][:, -1]
    np.testing.assert_allclose(last, np.tile(model.linear.weight.detach().numpy(), (3, 1)), rtol=0, atol=1e-6)
    assert set(flow.verdicts) == {"lstm1", "lstm2"}
    ex = rw.explore(model, x, loss=loss)
    assert ex.gradients is not None
    np.testing.assert_array_equal(ex.trace.layers["lstm1"].grads["c"], tr.layers["lstm1"].grads["c"])
    mon = rw.TrainingMonitor(model, probe=(x, loss), every=1)
    out = model(x)
    loss(out).backward()
    mon.step(loss(out))
    step, norms = mon.snapshot
    np.testing.assert_allclose(norms["lstm2"], np.linalg.norm(tr.layers["lstm2"].grads["h"], axis=2).mean(0),
                               rtol=1e-6)
    model.zero_grad(set_to_none=True)
    for p in model.parameters():
        assert p.grad is None
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


class FusedKernelCell(nn.LSTMCell):
    """An LSTMCell whose h_t and c_t leave one operation as two outputs, as CUDA's fused kernel
    returns them: the gradient reaching the returned c_t holds no path through h_t."""

    def forward(self, x, hx=None):
        h, c = hx if hx is not None else (x.new_zeros(x.shape[0], self.hidden_size),) * 2
        return TwoOutputs.apply(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class TwoOutputs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, *inputs):
        ctx.save_for_backward(*inputs)
        return torch._VF.lstm_cell(inputs[0], inputs[1:3], *inputs[3:])

    @staticmethod
    def backward(ctx, grad_h, grad_c):
        inputs = [t.detach().requires_grad_() for t in ctx.saved_tensors]
        with torch.enable_grad():
            h, c = torch._VF.lstm_cell(inputs[0], inputs[1:3], *inputs[3:])
            return torch.autograd.grad((h, c), inputs, (grad_h, grad_c))


def test_a_cell_returning_h_and_c_from_one_fused_operation_gets_every_path_to_c():
    torch.manual_seed(6)
    model = CellStack("lstm", 2, 4, 2, True).double()
    model.cells = nn.ModuleList([FusedKernelCell(2, 4), FusedKernelCell(4, 4)]).double()
    x = torch.randn(3, 5, 2, dtype=torch.double)
    h, c = model.cells[0](x[:, 0])
    assert torch.autograd.grad(h.sum(), c, allow_unused=True)[0] is None   # c's gradient misses the h path
    loss = lambda out: (out ** 2).sum()   # noqa: E731
    tr = rw.trace(model, x, loss=loss)
    out, kept = unrolled(list(model.cells), "lstm", x, model.head)
    check_against_reference(tr, ["cells.0", "cells.1"], kept, loss(out), model, atol=1e-6)


def test_a_loss_with_no_cell_in_the_loop_says_what_was_expected():
    class Plain(nn.Module):   # a recurrence of its own, neither a cell nor a state given to rw.record
        def __init__(self):
            super().__init__()
            self.step = nn.Linear(3, 3)

        def forward(self, xs):
            h = torch.zeros(1, 3)
            for x in xs:
                h = torch.tanh(self.step(x) + h)
            return h

    with pytest.raises(ValueError, match=r"nothing was recorded — Plain called no nn.LSTM / GRU / RNN or "
                                         r"nn.LSTMCell / GRUCell / RNNCell .* and no rw.record\(...\) ran"):
        rw.trace(Plain(), torch.randn(4, 1, 3), loss=lambda h: h.sum())


@settings(max_examples=12, deadline=None)
@given(kind=st.sampled_from(sorted(CELLS)), layers=st.integers(1, 2), units=st.integers(1, 5),
       features=st.integers(1, 3), batch=st.integers(1, 3), steps=st.integers(1, 5), future=st.integers(0, 2),
       bias=st.booleans(), double=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_property_cell_loops_match_the_unrolled_reference(kind, layers, units, features, batch, steps, future,
                                                          bias, double, seed):
    torch.manual_seed(seed)
    dtype = torch.float64 if double else torch.float32
    model = CellStack(kind, features, units, layers, bias).to(dtype)

    class WithFuture(nn.Module):   # the future= argument bound, as a user's lambda would
        def __init__(self):
            super().__init__()
            self.stack = model

        def forward(self, x):
            return self.stack(x, future=future)

    wrapped = WithFuture()
    x = torch.randn(batch, steps, features, dtype=dtype)
    loss = lambda out: (out ** 2).sum() + out[:, -1].sum()   # noqa: E731
    tr = rw.trace(wrapped, x, loss=loss)
    out, kept = unrolled(list(model.cells), kind, x, model.head, future)
    names = [f"stack.cells.{k}" for k in range(layers)]
    assert list(tr.layers) == names
    check_against_reference(tr, names, kept, loss(out), wrapped, atol=1e-5 if double else 1e-4)


class ViewStep(nn.Module):
    """A step module returning output and hidden as views of one tensor."""

    def __init__(self, features=3, units=5, layout="squeeze"):
        super().__init__()
        self.i2h = nn.Linear(features + units, units)
        self.hidden_size = units
        self.layout = layout

    def forward(self, x, hidden):
        h = torch.tanh(self.i2h(torch.cat([x, hidden], 1)))
        if self.layout == "squeeze":        # two views of one (batch, 1, units) tensor
            h = h.unsqueeze(1)
            return h.squeeze(1), h.squeeze(1)
        if self.layout == "same":           # one tensor returned twice
            return h, h
        return h[:, :], h                   # "output-view": the output a view of the hidden


@pytest.mark.parametrize("layout", ["squeeze", "same", "output-view"])
def test_step_module_views_count_the_output_path(layout):
    torch.manual_seed(3)
    model = ViewStep(layout=layout)
    xs = torch.randn(4, 2, 3)
    loss = lambda out: (out ** 2).sum() + out[-1].sum()   # noqa: E731  (out: (time, batch, features))
    tr = rw.trace(model, xs, loss=loss)
    hidden, hs = torch.zeros(2, 5), []
    for x in xs:
        hidden = torch.tanh(model.i2h(torch.cat([x, hidden], 1)))
        hs.append(hidden)
    stacked = torch.stack(hs)
    value = loss(stacked)
    want = torch.stack(torch.autograd.grad(value, hs), 1).numpy()
    got = tr.layers["viewstep"].grads["h"]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_frozen_cells_say_what_a_loss_needs():
    model = Sequence(units=3).double().requires_grad_(False)
    with pytest.raises(ValueError, match=r"^rw.trace: the loss does not depend on the output of any recurrent cell "
                                         r"in the graph; expected cells with parameters that require grad"):
        rw.trace(model, torch.randn(2, 4, dtype=torch.double), loss=lambda out: out.sum())
