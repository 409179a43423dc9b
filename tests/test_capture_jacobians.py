"""The step Jacobian's recurrences: sigma_min through the closed-form inverse, and the structured
J J^T, each against the dense Jacobian."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

import rnnwidgets as rw
from rnnwidgets.capture import spectra


@pytest.mark.parametrize("make", [lambda: nn.LSTM(3, 24, batch_first=True), lambda: nn.RNN(3, 24, batch_first=True),
                                  lambda: nn.RNN(3, 24, nonlinearity="relu", batch_first=True)])
def test_sigma_min_through_the_inverse_equals_svdvals(make, monkeypatch):
    # the closed-form J^{-1} (LSTM: W_o^{-1} and diagonals; RNN: W^{-1}) iterated to sigma_max(J^{-1}),
    # against svdvals of the dense Jacobian, float32 as users run it; and with no iteration allowed
    # every step takes the dense fallback, to the same numbers
    from rnnwidgets.capture import jacobians
    torch.manual_seed(7)
    module = make()
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(3.0)
    x = torch.randn(3, 12, 3)
    d = rw.dynamics(module, x, k=2).layers[type(module).__name__.lower() + ".l0"]
    double = copy.deepcopy(module).double()
    rec = jacobians.module_recurrence(double)
    s_prev = torch.from_numpy(spectra.previous_state(rw.trace(double, x.double()).layers[d.name], None)).double()
    want = torch.linalg.svdvals(rec.jacobian(x.double(), s_prev)).numpy()
    assert d.sigma_min.shape == (3, 12) and d.sigma_min.dtype == np.float32
    np.testing.assert_allclose(d.sigma_min, want[..., -1], rtol=1e-3, atol=1e-6 * want[..., 0].max())
    if "relu" in repr(module):
        assert (d.sigma_min == 0).any()            # a dead unit: J is singular
    monkeypatch.setattr(jacobians, "INVERSE_ITERATIONS", 0)
    dense = rw.dynamics(module, x, k=2).layers[d.name]
    np.testing.assert_allclose(dense.sigma_min, d.sigma_min, rtol=1e-3, atol=1e-6 * want[..., 0].max())


@pytest.mark.parametrize("make", [lambda: nn.LSTM(3, 5), lambda: nn.LSTM(3, 5, proj_size=2), lambda: nn.GRU(3, 5),
                                  lambda: nn.RNN(3, 5), lambda: nn.RNN(3, 5, nonlinearity="relu")])
def test_jacobian_gram_is_the_jacobian_and_its_gram(make):
    # the structured J J^T (LSTM: M M^T plus diagonals; RNN: slope slope^T * W W^T) against the dense product
    from rnnwidgets.capture.jacobians import module_recurrence
    torch.manual_seed(0)
    rec = module_recurrence(make().double())
    x = torch.randn(2, 3, 3, dtype=torch.float64)
    s = torch.randn(2, 3, rec.state_size, dtype=torch.float64)
    jac, gram = rec.jacobian_gram(x, s)
    want = rec.jacobian(x, s)
    torch.testing.assert_close(jac, want, rtol=0, atol=0)
    torch.testing.assert_close(gram, want @ want.transpose(-1, -2), rtol=1e-12, atol=1e-12)
