"""Cells in a loop: which modules count as cells, each call kept as it happened (the hidden it was
given where it is not the previous call's output), and the one sentence or warning when a cell
cannot be recorded as the standard equations give it."""
import warnings

import pytest
import torch
from models import LoopOfCell
from torch import nn

from rnnwidgets.capture import trace
from rnnwidgets.capture.cells import CellCalls, cell_kind, hook_cells, remove_hooks
from rnnwidgets.capture.recording import recording


def test_cell_kind_names_the_three_cells_and_nothing_else():
    assert [cell_kind(m) for m in (nn.LSTMCell(2, 3), nn.GRUCell(2, 3), nn.RNNCell(2, 3))] == ["lstm", "gru", "rnn"]
    assert cell_kind(nn.LSTM(2, 3)) is None and cell_kind(nn.Linear(2, 3)) is None


def test_hook_cells_hooks_every_cell_by_its_layer_name_and_removes_them():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Sequential(nn.Linear(3, 3), nn.GRUCell(3, 4))
            self.dec = nn.LSTMCell(4, 4)
            self.lstm = nn.LSTM(3, 4)              # a fused layer: not a cell

        def forward(self, x):
            h = self.enc[1](self.enc[0](x))
            return self.dec(h)

    model, calls = Two(), []

    def make_hook(name, kind):
        def hook(cell, args, kwargs, output):
            calls.append((name, kind, type(cell).__name__, args[0].shape[-1]))
        return hook
    handles = hook_cells(model, make_hook)
    model(torch.randn(2, 3))
    assert calls == [("enc.1", "gru", "GRUCell", 3), ("dec", "lstm", "LSTMCell", 4)]
    remove_hooks(handles)
    assert handles == []
    model(torch.randn(2, 3))
    assert len(calls) == 2
    cell = nn.RNNCell(3, 4)                        # the model itself a cell: named as the model
    handles = hook_cells(cell, make_hook)
    cell(torch.randn(2, 3))
    assert calls[2:] == [("rnncell", "rnn", "RNNCell", 3)] and len(handles) == 1
    remove_hooks(handles)


def test_calls_keep_the_previous_state_of_every_step():
    torch.manual_seed(0)
    cell = nn.LSTMCell(2, 3)
    calls = CellCalls(cell)
    xs = torch.randn(4, 5, 2)
    h0 = (torch.randn(5, 3), torch.randn(5, 3))
    hx, outs = h0, []
    for t, x in enumerate(xs):
        if t == 2:
            hx = (torch.ones(5, 3), torch.zeros(5, 3))           # a state the loop sets itself
        given = hx
        hx = cell(x, hx)
        calls.add(x, given, hx)
        outs.append(hx)
    assert sorted(calls.given) == [0, 2]
    x, states, previous = calls.tensors("cell")
    assert torch.equal(x, xs)
    assert torch.equal(states["h"], torch.stack([o[0] for o in outs]).detach())
    want_h = [h0[0], outs[0][0], torch.ones(5, 3), outs[2][0]]
    assert torch.equal(previous["h"], torch.stack(want_h).detach())
    assert torch.equal(previous["c"][2], torch.zeros(5, 3))
    calls.add(torch.randn(2, 2), None, cell(torch.randn(2, 2)))
    with pytest.raises(ValueError, match=r"^rw.recording: cell 'cell' was called with batch sizes \[2, 5\]; "):
        calls.tensors("cell")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_a_cell_in_a_loop_given_another_dtype(dtype):
    with pytest.raises(TypeError, match=rf"^rw.recording: cell 'cell' has torch.float32 weights but got a {dtype} "
                                        rf"input; expected the cell's dtype"):
        trace(LoopOfCell(), torch.randn(4, 2, 3, dtype=dtype))


def test_a_cell_whose_forward_differs_from_the_equations_is_flagged():
    class Leaky(nn.GRUCell):
        def forward(self, x, h=None):
            return 0.5 * super().forward(x, h)

    cell = Leaky(2, 3)
    with pytest.warns(UserWarning, match="do not reproduce its output 'h'"):
        with recording(cell):
            h = cell(torch.randn(4, 2))
            cell(torch.randn(4, 2), h)
    plain = nn.GRUCell(2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with recording(plain):
            plain(torch.randn(4, 2))
