"""rw.fixed_points: the origin of a zero-input tanh RNN, an LSTM's points checked by the module
itself, and the 3-bit flip-flop GRU's 8 attractors with saddles between them."""
import numpy as np
import pytest
import torch
from torch import nn

import rnnwidgets as rw
from rnnwidgets.data.flip_flop import flip_flop
from tests.model_state import assert_untouched, snapshot


@pytest.fixture(autouse=True)
def one_thread(torch_threads):
    """Training on a shared 2-core machine: one thread is many times faster than two fighting."""
    torch_threads(1)


def by_modulus_and_angle(values):
    values = np.asarray(values)
    return values[np.lexsort((np.round(np.angle(values), 8), np.round(np.abs(values), 8)))]


def test_zero_input_tanh_rnn_has_the_origin_with_the_eigenvalues_of_w_hh():
    torch.manual_seed(0)
    rnn = nn.RNN(3, 10, bias=False)
    before = snapshot(rnn)
    fps = rw.fixed_points(rnn, layer="rnn.l0", states=np.zeros((4, 10)), n_init=4)
    assert_untouched(rnn, before)
    assert len(fps) == 1 and np.abs(fps.states[0]).max() < 1e-12 and fps.q[0] <= 1e-10
    want = np.linalg.eigvals(rnn.weight_hh_l0.detach().double().numpy())
    np.testing.assert_allclose(by_modulus_and_angle(fps.eigenvalues[0]), by_modulus_and_angle(want), atol=1e-6)
    assert fps.eigenvalues.dtype == np.complex128 and fps.eigenvalues.shape == (1, 10)
    assert fps.stable[0] == bool((np.abs(want) < 1).all())
    assert len(fps.unstable_modes[0]) == int((np.abs(want) >= 1).sum())


def test_lstm_points_are_fixed_by_the_module_itself():
    torch.manual_seed(1)
    lstm = nn.LSTM(2, 6, num_layers=2).double()
    x = torch.randn(30, 4, 2, dtype=torch.float64)
    tr = rw.trace(lstm, x)
    fps = rw.fixed_points(lstm, layer="lstm.l1", states=tr, n_init=32)
    assert len(fps) >= 1 and fps.states.shape[1] == 12
    for s, q in zip(fps.states, fps.q):
        h, c = torch.tensor(s[:6]), torch.tensor(s[6:])
        one = nn.LSTM(6, 6).double()           # layer 1 on its own; its input (zeros) is the layer below's h
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(one, name + "_l0").copy_(getattr(lstm, name + "_l1"))
            _, (h2, c2) = one(torch.zeros(1, 1, 6, dtype=torch.float64), (h[None, None], c[None, None]))
        moved = torch.cat([h2.flatten(), c2.flatten()]) - torch.tensor(s)
        assert 0.5 * float((moved ** 2).sum()) <= 1e-10 and q <= 1e-10
    # the layer's input defaults to zeros; layer 0 takes the given input
    fps0 = rw.fixed_points(lstm, layer="lstm.l0", input=[0.5, -0.5], states=tr, n_init=16)
    np.testing.assert_array_equal(fps0.meta["input"], [0.5, -0.5])
    cell = _cell(lstm)
    jac = torch.autograd.functional.jacobian(
        lambda s: torch.cat([t.flatten() for t in cell(torch.tensor([[0.5, -0.5]], dtype=torch.float64),
                                                       (s[None, :6], s[None, 6:]))]),
        torch.tensor(fps0.states[0]))
    np.testing.assert_allclose(by_modulus_and_angle(fps0.eigenvalues[0]),
                               by_modulus_and_angle(np.linalg.eigvals(jac.numpy())), atol=1e-8)


def _cell(lstm):
    """Layer 0 of ``lstm`` as an nn.LSTMCell with the same weights."""
    cell = nn.LSTMCell(2, 6).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(lstm, name + "_l0"))
    return cell


class FlipFlopGRU(nn.Module):
    def __init__(self, units=16):
        super().__init__()
        self.gru = nn.GRU(3, units, batch_first=True)
        self.out = nn.Linear(units, 3)

    def forward(self, x):
        return self.out(self.gru(x)[0])


def test_flip_flop_gru_has_eight_attractors_and_saddles_between():
    torch.manual_seed(0)
    model = FlipFlopGRU()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for it in range(400):
        x, y = flip_flop(64, 60, seed=it)
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.03
    x, _ = flip_flop(16, 200, seed=999)
    dyn = rw.dynamics(model, x)
    fps = rw.fixed_points(model, layer="gru.l0", states=dyn, n_init=256, noise=0.05)
    assert (fps.q <= 1e-10).all()
    stable = fps.states[fps.stable]
    readout = model.out(torch.tensor(stable, dtype=torch.float32)).detach().numpy()
    # one attractor per memory: the 8 sign patterns of the 3 bits, each read out near +-1
    assert len(stable) == 8
    assert len({tuple(np.sign(r).astype(int)) for r in readout}) == 8
    assert (np.abs(readout) > 0.5).all()
    # saddles: one unstable direction, and a push either way along it ends in two different attractors
    gru = model.gru
    saddles = np.flatnonzero(fps.saddles)
    assert len(saddles) >= 3
    for i in saddles:
        mode = fps.unstable_modes[i][0].real
        pushed = fps.states[i] + np.array([[1.0], [-1.0]]) * 1e-2 * mode / np.linalg.norm(mode)
        with torch.no_grad():
            _, h = gru(torch.zeros(2, 1000, 3), torch.tensor(pushed, dtype=torch.float32)[None])
        ends = np.linalg.norm(h[0].numpy()[:, None] - stable[None], axis=-1)    # (2, 8)
        assert ends.min(axis=1).max() < 1e-2, ends.min(axis=1)
        assert ends[0].argmin() != ends[1].argmin()
    # each point is fixed by the module itself at zero input
    with torch.no_grad():
        h = torch.tensor(fps.states, dtype=torch.float32)[None]
        moved = gru(torch.zeros(len(fps), 1, 3), h)[1][0] - h[0]
    assert moved.abs().max() < 1e-4


def test_bad_arguments_get_one_sentence():
    gru = nn.GRU(2, 3)
    with pytest.raises(ValueError, match="layer must be one of"):
        rw.fixed_points(gru, layer="lstm.l0")
    with pytest.raises(ValueError, match="input must have 2 values"):
        rw.fixed_points(gru, input=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="states must have 3 values per row"):
        rw.fixed_points(gru, states=np.zeros((5, 4)))


def test_a_wrapped_model_names_its_layers_as_the_module_it_wraps():
    torch.manual_seed(0)
    model = nn.Sequential()
    model.gru = nn.GRU(2, 3)
    wrapped = nn.DataParallel(model)
    fps = rw.fixed_points(wrapped, layer="gru.l0", n_init=4)
    assert fps.layer == "gru.l0"
    np.testing.assert_array_equal(fps.states, rw.fixed_points(model, layer="gru.l0", n_init=4).states)


def test_the_input_may_be_a_tensor_that_requires_grad_or_lives_on_another_device():
    """input= as a user has it: a model's own tensor (an embedding row requires grad; on a GPU it
    is a CUDA tensor): read as its values, the same fixed points as the list of those values."""
    torch.manual_seed(0)
    gru = nn.GRU(2, 3)
    given = torch.tensor([0.5, -0.5], requires_grad=True)
    from_tensor = rw.fixed_points(gru, input=given, n_init=8)
    from_list = rw.fixed_points(gru, input=[0.5, -0.5], n_init=8)
    np.testing.assert_array_equal(from_tensor.states, from_list.states)
    np.testing.assert_array_equal(from_tensor.meta["input"], [0.5, -0.5])
