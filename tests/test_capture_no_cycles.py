"""A result let go of frees its memory at once: nothing a capture entry point leaves behind waits
for Python's cyclic collector. A reference cycle through a layer's tensors kept a 400 MB trace's
arrays (which share their memory) alive after ``del``, until the collector happened to run; in
a loop of traces the process grew to several traces' worth."""
import gc

import pytest
import torch
from torch import nn

import rnnwidgets as rw
from tests.public_models import MorvanRNN, PackedBiLSTM, TrevettDecoder, TrevettEncoder, TrevettSeq2Seq


@pytest.fixture
def no_collector():
    """Python's cyclic collector off while a test runs; what it would find afterwards is kept."""
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was:
            gc.enable()


def tensors_left_to_the_collector() -> list:
    gc.collect()
    found = [tuple(o.shape) for o in gc.garbage if isinstance(o, torch.Tensor)]
    gc.garbage.clear()
    return found


def lstm_loss(output):
    return output[0].square().mean()


class CellLoop(nn.Module):
    """An LSTMCell stepped in Python, as tutorials write it."""

    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(8, 16)

    def forward(self, x):
        state = None
        outs = []
        for x_t in x:
            state = self.cell(x_t, state)
            outs.append(state[0])
        return torch.stack(outs)


def calls():
    torch.manual_seed(0)
    lstm = nn.LSTM(8, 16, num_layers=2).eval()
    gru = nn.GRU(8, 16, bidirectional=True, batch_first=True).eval()
    relu = nn.RNN(8, 16, nonlinearity="relu").eval()
    proj = nn.LSTM(8, 16, proj_size=4).eval()
    x = torch.randn(12, 3, 8)
    packed = PackedBiLSTM(20, 8, 16, 3).eval()
    tokens, lengths = torch.randint(1, 20, (3, 9)), torch.tensor([9, 5, 2])
    s2s = TrevettSeq2Seq(TrevettEncoder(12, 6, 10, 2, 0.5), TrevettDecoder(12, 6, 10, 2, 0.5), torch.device("cpu"))
    src, trg = torch.randint(0, 12, (7, 3)), torch.randint(0, 12, (5, 3))
    cells = CellLoop()
    return {
        "lstm": lambda: rw.trace(lstm, x),
        "lstm with a loss": lambda: rw.trace(lstm, x, loss=lstm_loss),
        "lstm with a clamp": lambda: rw.trace(lstm, x, edits=[rw.clamp("lstm.l0", "h", [1], range(2, 6), 0.0)]),
        "lstm, h and c only": lambda: rw.trace(lstm, x, quantities=("h", "c")),
        "lstm, a window of steps": lambda: rw.trace(lstm, x, steps=slice(2, 7)),
        "bidirectional gru, batch first": lambda: rw.trace(gru, x.transpose(0, 1), loss=lstm_loss),
        "relu rnn": lambda: rw.trace(relu, x),
        "proj_size": lambda: rw.trace(proj, x, loss=lstm_loss),
        "packed with lengths": lambda: rw.trace(packed, tokens, kwargs={"text_lengths": lengths},
                                                loss=lambda out: out.square().mean()),
        "forward(x, h_state)": lambda: rw.trace(MorvanRNN(), torch.randn(2, 10, 1), torch.zeros(1, 2, 32)),
        "seq2seq": lambda: rw.trace(s2s, src, kwargs={"trg": trg, "teacher_forcing_ratio": 0.5}),
        "an LSTMCell loop": lambda: rw.trace(cells, x, loss=lambda out: out.square().mean()),
        "gradient_flow": lambda: rw.gradient_flow(lstm, x, loss=lstm_loss),
        "dynamics": lambda: rw.dynamics(gru, x.transpose(0, 1), k=2),
    }


@pytest.mark.parametrize("name", list(calls()))
def test_a_result_let_go_of_leaves_no_tensor_for_the_cyclic_collector(name, no_collector):
    call = calls()[name]
    call()                                   # a first call's one-time setup is not the result's
    tensors_left_to_the_collector()
    result = call()
    assert result is not None
    del result
    assert tensors_left_to_the_collector() == []


def test_repeated_traces_do_not_pile_up_their_arrays(no_collector):
    """The memory of each trace let go of is free before the next: with the collector off, the
    number of live tensors the traces made stays flat."""
    torch.manual_seed(0)
    lstm = nn.LSTM(8, 16, num_layers=2).eval()
    x = torch.randn(12, 3, 8)
    rw.trace(lstm, x)

    def live_tensors():
        return sum(isinstance(o, torch.Tensor) for o in gc.get_objects())
    before = live_tensors()
    for _ in range(5):
        rw.trace(lstm, x, loss=lstm_loss)
    assert live_tensors() == before
