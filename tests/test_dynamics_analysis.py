"""The numpy side of the dynamics: the Lyapunov QR, the PCA plane, deduplication and the
eigen-decomposition of fixed points, each against values worked by hand or numpy directly."""
import numpy as np
import pytest

from rnnwidgets.dynamics_analysis import PCA, FixedPoints, LyapunovQR, deduplicate, eigen, pca


def test_lyapunov_qr_equals_one_qr_of_the_whole_product_and_tends_to_the_log_of_a_diagonal_map():
    jac = np.diag([2.0, 0.5, 0.25])
    qr = LyapunovQR(batch=2, state_size=3, k=5, seed=1)
    assert qr.k == 3
    valid = np.ones((2, 40), bool)
    valid[1] = False                                            # an element with no valid step
    qr.update(np.broadcast_to(jac, (2, 40, 3, 3)).copy(), valid)
    out = qr.exponents()
    # the sums of log |R_ii| step by step are those of one QR of J^40 Q_0 (Q_0 the same start)
    start = np.linalg.qr(np.random.default_rng(1).standard_normal((3, 3)))[0]
    whole = np.log(np.abs(np.diagonal(np.linalg.qr(np.linalg.matrix_power(jac, 40) @ start)[1]))) / 40
    np.testing.assert_allclose(out[0], np.sort(whole)[::-1], rtol=1e-10)
    np.testing.assert_allclose(out[0], np.log([2.0, 0.5, 0.25]), atol=0.05)
    assert np.isnan(out[1]).all() and qr.count.tolist() == [40, 0]


def test_pca_equals_numpy_over_the_valid_steps_and_leaves_padding_nan():
    rng = np.random.default_rng(0)
    states = rng.standard_normal((2, 6, 4)) * [3.0, 1.0, 0.5, 0.1]
    plane = pca(states, lengths=[6, 4])
    rows = np.concatenate([states[0], states[1, :4]])
    values = np.sort(np.linalg.eigvalsh(np.cov(rows.T)))[::-1][:3]
    np.testing.assert_allclose(plane.explained_variance, values, rtol=1e-10)
    np.testing.assert_allclose(plane.explained_variance_ratio, values / np.trace(np.cov(rows.T)), rtol=1e-10)
    np.testing.assert_allclose(plane.mean, rows.mean(0))
    assert np.isnan(plane.trajectory[1, 4:]).all() and np.isfinite(plane.trajectory[1, :4]).all()
    np.testing.assert_allclose(plane.project(states[0]), plane.trajectory[0])
    components, variance, trajectory = plane
    assert components is plane.components and variance is plane.explained_variance
    loadings = np.abs(plane.components).argmax(axis=0)
    assert (plane.components[loadings, [0, 1, 2]] > 0).all()     # the largest loading of each is positive


def test_pca_of_fewer_units_than_components_pads_with_zeros():
    plane = pca(np.arange(10.0).reshape(1, 5, 2))
    assert isinstance(plane, PCA) and plane.components.shape == (2, 3)
    np.testing.assert_array_equal(plane.components[:, 2], [0, 0])
    assert plane.explained_variance[2] == 0
    assert pca(np.ones((1, 3, 2))).explained_variance_ratio.tolist() == [0, 0, 0]


def test_deduplicate_keeps_the_lowest_q_of_each_cluster():
    states = np.array([[0.0, 0.0], [0.05, 0.0], [1.0, 1.0], [1.0, 1.02], [5.0, 5.0]])
    q = np.array([0.3, 0.1, 0.2, 0.2, 0.9])
    assert deduplicate(states, q, tol=0.1).tolist() == [1, 2, 4]
    assert deduplicate(states, q, tol=0.0).tolist() == [1, 2, 3, 0, 4]


def test_eigen_orders_by_modulus_and_finds_the_unstable_modes():
    jacobians = np.array([np.diag([0.5, -2.0]), np.diag([0.9, 0.1]), np.diag([3.0, 1.5])])
    values, stable, modes = eigen(jacobians)
    np.testing.assert_array_equal(values, [[-2.0, 0.5], [0.9, 0.1], [3.0, 1.5]])
    assert stable.tolist() == [False, True, False]
    np.testing.assert_array_equal(np.abs(modes[0]), [[0.0, 1.0]])
    assert modes[1].shape == (0, 2) and modes[2].shape == (2, 2)
    fp = FixedPoints("rnn.l0", np.zeros((3, 2)), np.zeros(3), values, stable, modes)
    assert fp.saddles.tolist() == [True, False, False] and len(fp) == 3
    assert repr(fp) == "FixedPoints('rnn.l0', n=3, stable=1, unstable=2)"


@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_running_exponent_averages_log_sigma_max_in_the_order_the_layer_runs(direction):
    from rnnwidgets.dynamics_analysis import LayerDynamics
    sv = np.array([[[np.e], [np.e ** 3], [np.e ** 5]]], dtype=np.float32)
    layer = LayerDynamics("rnn.l0", "rnn", sv, np.zeros((1, 1)), pca(np.zeros((1, 3, 2))), np.zeros((1, 3, 2)),
                          np.array([3]), meta={"direction": direction})
    want = [1, 2, 3] if direction == "forward" else [3, 4, 5]
    np.testing.assert_allclose(layer.running_exponent()[0], want, rtol=1e-6)
    np.testing.assert_array_equal(layer.sigma_max, sv[..., 0])
