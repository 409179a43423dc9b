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


@pytest.mark.parametrize("make", [lambda: nn.LSTM(3, 5), lambda: nn.LSTM(3, 5, proj_size=2), lambda: nn.GRU(3, 5),
                                  lambda: nn.RNN(3, 5), lambda: nn.RNN(3, 5, nonlinearity="relu")])
def test_operator_products_are_the_jacobians(make):
    # J V and J^T V in closed form (one matmul with the recurrent weights) against the dense Jacobian
    from rnnwidgets.capture.jacobians import module_recurrence
    torch.manual_seed(0)
    rec = module_recurrence(make().double())
    x = torch.randn(6, 3, dtype=torch.float64)
    s = torch.randn(6, rec.state_size, dtype=torch.float64)
    op, jac = rec.operator(x, s), rec.jacobian(x, s)
    v = torch.randn(6, 4, rec.state_size, dtype=torch.float64)
    torch.testing.assert_close(op.apply(v), v @ jac.mT, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(op.apply_t(v), v @ jac, rtol=1e-12, atol=1e-12)
    pick = torch.tensor([4, 1])
    torch.testing.assert_close(op.select(pick).apply(v[pick]), v[pick] @ jac[pick].mT, rtol=1e-12, atol=1e-12)


def lanczos_counts(monkeypatch):
    """Count the steps lanczos_top sees and certifies during a run."""
    from rnnwidgets.capture import jacobians
    seen = {"steps": 0, "certified": 0}
    real = jacobians.lanczos_top

    def counted(op, k, **kwargs):
        values, certified = real(op, k, **kwargs)
        seen["steps"] += len(certified)
        seen["certified"] += int(certified.sum())
        return values, certified
    monkeypatch.setattr(jacobians, "lanczos_top", counted)
    return seen


def autograd_spectra(module, x, name):
    """{(b, t): svdvals of torch.autograd.functional.jacobian of one step} of a one-layer module, and the
    Jacobians, at the traced states (x: (batch, time, features), batch_first)."""
    lt = rw.trace(module, x).layers[name]
    lstm = isinstance(module, nn.LSTM)
    width = module.hidden_size
    jacs = {}
    for b in range(x.shape[0]):
        for t in range(x.shape[1]):
            if t:
                s = torch.cat([torch.from_numpy(lt.states[key][b, t - 1]) for key in (("h", "c") if lstm else ("h",))])
            else:
                s = torch.zeros(2 * width if lstm else width)

            def one(s, b=b, t=t):
                hidden = (s[None, None, :width], s[None, None, width:]) if lstm else s[None, None]
                out = module(x[b, t][None, None], hidden)[1]
                return torch.cat([out[0].reshape(-1), out[1].reshape(-1)]) if lstm else out.reshape(-1)
            jacs[(b, t)] = torch.autograd.functional.jacobian(one, s)
    return jacs


@pytest.mark.parametrize("make", [lambda: nn.LSTM(3, 64, batch_first=True),
                                  lambda: nn.RNN(3, 128, batch_first=True)])
def test_lanczos_top_k_equals_autograd_and_certifies(make, monkeypatch):
    # a state of 128: the top k by Lanczos, certified step by step; against svdvals of autograd's
    # Jacobian of one step, float32 as users run it; the Lyapunov QR through the closed-form products
    # against the same QR over autograd's Jacobians
    torch.manual_seed(8)
    module = make()
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(2.0)
    seen = lanczos_counts(monkeypatch)
    x = torch.randn(2, 6, 3)
    name = type(module).__name__.lower() + ".l0"
    d = rw.dynamics(module, x, k=8).layers[name]
    assert seen["steps"] == 12 and seen["certified"] >= 10
    jacs = autograd_spectra(module, x, name)
    for (b, t), jac in jacs.items():
        values = torch.linalg.svdvals(jac.double()).numpy()
        np.testing.assert_allclose(d.singular_values[b, t], values[:8], rtol=1e-4, err_msg=f"{b} {t}")
        np.testing.assert_allclose(d.sigma_min[b, t], values[-1], rtol=1e-4, atol=1e-6 * values[0])
    for b in range(2):
        q = np.linalg.qr(np.random.default_rng(0).standard_normal((jacs[(b, 0)].shape[0], 8)))[0]
        sums = np.zeros(8)
        for t in range(6):
            q, r = np.linalg.qr(jacs[(b, t)].double().numpy() @ q)
            sums += np.log(np.abs(np.diag(r)))
        np.testing.assert_allclose(d.lyapunov[b], np.sort(sums / 6)[::-1], rtol=1e-5, atol=1e-6)   # float32 products


def test_steps_lanczos_does_not_certify_take_the_dense_route(monkeypatch):
    # a tolerance no residual meets: every step falls back to the eigenvalues of J J^T, to the same numbers
    from rnnwidgets.capture import jacobians
    torch.manual_seed(9)
    lstm = nn.LSTM(3, 64, batch_first=True)
    x = torch.randn(2, 5, 3)
    certified = rw.dynamics(lstm, x, k=4).layers["lstm.l0"]
    seen = lanczos_counts(monkeypatch)
    monkeypatch.setattr(jacobians, "LANCZOS_TOL", 0.0)
    dense = rw.dynamics(lstm, x, k=4).layers["lstm.l0"]
    assert seen == {"steps": 10, "certified": 0}
    np.testing.assert_allclose(dense.singular_values, certified.singular_values, rtol=1e-5)
    np.testing.assert_allclose(dense.lyapunov, certified.lyapunov, rtol=1e-6)


def test_a_multiple_singular_value_is_found_with_its_multiplicity(monkeypatch):
    # zero input, zero bias, the state at 0: J = 0.9 Q (Q orthogonal), every singular value 0.9; each
    # Lanczos step breaks down (an invariant subspace) and restarts, so all k copies are found and certified
    torch.manual_seed(10)
    rnn = nn.RNN(2, 128, bias=False, batch_first=True).double()
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(0.9 * torch.linalg.qr(torch.randn(128, 128, dtype=torch.float64))[0])
    seen = lanczos_counts(monkeypatch)
    d = rw.dynamics(rnn, torch.zeros(2, 4, 2, dtype=torch.float64), k=8).layers["rnn.l0"]
    assert seen == {"steps": 8, "certified": 8}
    np.testing.assert_allclose(d.singular_values, 0.9, rtol=1e-6)
    np.testing.assert_allclose(d.lyapunov, np.log(0.9), rtol=1e-10)


@pytest.mark.parametrize("make", [lambda: nn.LSTM(3, 5), lambda: nn.LSTM(3, 5, proj_size=2), lambda: nn.GRU(3, 5),
                                  lambda: nn.RNN(3, 5), lambda: nn.RNN(3, 5, nonlinearity="relu")])
def test_gram_product_is_jt_j_of_the_jacobian(make):
    # the fused J^T J q Lanczos takes (one vector per step, two matmuls) against the dense Jacobian and
    # against apply_t(apply(q)); the dense operator's the same
    from rnnwidgets.capture.jacobians import DenseOperator, module_recurrence
    torch.manual_seed(1)
    rec = module_recurrence(make().double())
    x = torch.randn(7, 3, dtype=torch.float64)
    s = torch.randn(7, rec.state_size, dtype=torch.float64)
    op, jac = rec.operator(x, s), rec.jacobian(x, s)
    q = torch.randn(7, rec.state_size, dtype=torch.float64)
    want = (q[:, None] @ jac.mT @ jac)[:, 0]
    torch.testing.assert_close(op.gram(q), want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(op.gram(q), op.apply_t(op.apply(q[:, None]))[:, 0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(DenseOperator(jac).gram(q), want, rtol=1e-12, atol=1e-12)
    pick = torch.tensor([True, False, True, True, False, False, True])
    torch.testing.assert_close(op.select(pick).gram(q[pick]), want[pick], rtol=1e-12, atol=1e-12)


def test_tridiagonal_top_equals_scipy_per_step(monkeypatch):
    # the Ritz checks' batch of top-k eigenpairs (LAPACK's MRRR, called directly) against scipy's
    # eigh_tridiagonal one tridiagonal at a time: the values, and the vectors up to sign (what the
    # residual estimate reads is their last entry); a multiple eigenvalue (a split tridiagonal) gives
    # the same eigenspace; a failed solve takes scipy's route, to the same numbers
    from scipy.linalg import eigh_tridiagonal

    from rnnwidgets.capture import jacobians
    rng = np.random.default_rng(3)
    n, m, k = 9, 40, 8
    d, e = rng.standard_normal((n, m)), rng.standard_normal((n, m))
    d[-1], e[-1] = np.tile([2.0, 1.0], m // 2), np.tile([0.0, 0.0], m // 2)   # eigenvalues 2 and 1, each m/2 times
    e_before = e.copy()
    theta, y = jacobians.tridiagonal_top(d, e, k)
    np.testing.assert_array_equal(e, e_before)                # the caller's off-diagonals are left alone
    assert theta.shape == (n, k) and y.shape == (n, m, k)
    for i in range(n):
        want, vectors = eigh_tridiagonal(d[i], e[i, :m - 1], select="i", select_range=(m - k, m - 1))
        np.testing.assert_allclose(theta[i], want, rtol=1e-12, atol=1e-12)
        overlap = y[i].T @ vectors                            # orthogonal: the same subspace, each vector up to sign
        np.testing.assert_allclose(overlap.T @ overlap, np.eye(k), atol=1e-10)
        if i < n - 1:                                         # distinct eigenvalues: each vector up to sign
            np.testing.assert_allclose(np.abs(y[i][-1]), np.abs(vectors[-1]), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(theta[-1], 2.0)

    def failing(*names_and_arrays):
        (stemr,) = real(*names_and_arrays)
        return (lambda *args, **kwargs: (*stemr(*args, **kwargs)[:3], 1),)
    from scipy.linalg import lapack
    real = lapack.get_lapack_funcs
    monkeypatch.setattr(lapack, "get_lapack_funcs", failing)
    theta_fallback, y_fallback = jacobians.tridiagonal_top(d[:3], e[:3], k)
    np.testing.assert_allclose(theta_fallback, theta[:3], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.abs(y_fallback[:, -1]), np.abs(y[:3, -1]), rtol=1e-8, atol=1e-12)


def test_lanczos_top_counts_the_products_each_step_took():
    # ``iterations``: each certified step's count is where a Ritz check certified it (the first check,
    # then every LANCZOS_CHECK); the values are svdvals' to the tolerance
    from rnnwidgets.capture import jacobians
    torch.manual_seed(4)
    rec = jacobians.module_recurrence(nn.LSTM(3, 64))
    x, s = torch.randn(10, 3), torch.randn(10, rec.state_size)
    iterations = torch.full((10,), -1, dtype=torch.int64)
    values, certified = jacobians.lanczos_top(rec.operator(x, s), 8, iterations=iterations)
    assert bool(certified.all())
    first = max(4 * 8, 32)
    assert ((iterations >= first) & ((iterations - first) % jacobians.LANCZOS_CHECK == 0)).all(), iterations
    want = torch.linalg.svdvals(rec.jacobian(x, s).double())[:, :8]
    torch.testing.assert_close(values.double(), want, rtol=1e-4, atol=0)
