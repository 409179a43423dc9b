"""rw.DynamicsView: the payload the browser draws from (one float32 buffer, a JSON index)."""
import dataclasses
import re

import numpy as np
import pytest
import torch
from torch import nn

import rnnwidgets as rw


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    gru = nn.GRU(2, 4, num_layers=2, batch_first=True)
    x = torch.randn(2, 12, 2)
    dyn = rw.dynamics(gru, x, k=3)
    fps = rw.fixed_points(gru, layer="gru.l0", states=dyn, n_init=16, adam_steps=50)
    return dyn, fps


def arrays(view):
    floats = np.frombuffer(view.buffer, dtype="<f4")
    return {name: floats[o:o + n] for name, (o, n) in view.index["arrays"].items()}


def test_payload_holds_what_is_drawn(setup):
    dyn, fps = setup
    view = rw.DynamicsView(dyn, fps, batch=1, t=5)
    assert view.layer == "gru.l0" and view.t == 5
    d = dyn.layers["gru.l0"]
    a = arrays(view)
    np.testing.assert_allclose(a["trajectory"].reshape(12, 3), d.pca.trajectory[1], rtol=1e-6)
    np.testing.assert_allclose(a["sigma_max"], d.singular_values[1, :, 0])
    np.testing.assert_allclose(a["sigma_min"], d.sigma_min[1])
    np.testing.assert_allclose(a["points"].reshape(-1, 3), d.pca.project(fps.states), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(a["stable"], fps.stable)
    np.testing.assert_allclose(a["eig_re"].reshape(len(fps), 4), fps.eigenvalues.real, rtol=1e-6, atol=1e-7)
    nearest = np.linalg.norm(d.states[1][:, None] - fps.states[None], axis=-1).argmin(axis=1)
    np.testing.assert_array_equal(a["nearest"], nearest)
    assert view.index["points"] == len(fps) and view.index["state"] == 4 and view.index["length"] == 12
    np.testing.assert_allclose(view.index["lyapunov"], d.lyapunov[1])


def test_choosing_another_layer_resends_without_the_other_layers_points(setup):
    dyn, fps = setup
    view = rw.DynamicsView(dyn, fps)
    view.layer = "gru.l1"
    assert view.index["points"] == 0 and "points" not in view.index["arrays"]
    np.testing.assert_allclose(arrays(view)["sigma_max"], dyn.layers["gru.l1"].singular_values[0, :, 0])
    assert view.title.startswith("gru.l1")


def test_bad_arguments_get_one_sentence(setup):
    dyn, fps = setup
    with pytest.raises(TypeError, match="expected a rw.Dynamics"):
        rw.DynamicsView(fps)
    with pytest.raises(ValueError, match="the fixed points are of 'gru.l0', which the dynamics do not have"):
        rw.DynamicsView(rw.Dynamics({"gru.l1": dyn.layers["gru.l1"]}), fps)
    with pytest.raises(ValueError, match="one rw.FixedPoints per layer"):
        rw.DynamicsView(dyn, [fps, fps])
    with pytest.raises(TypeError, match="expected a rw.FixedPoints"):
        rw.DynamicsView(dyn, "points")
    with pytest.raises(ValueError, match=r"batch must be in \[0, 2\)"):
        rw.DynamicsView(dyn, batch=2)


def test_save_html_is_one_offline_file(setup, tmp_path):
    dyn, fps = setup
    path = rw.DynamicsView(dyn, fps).save_html(tmp_path / "dyn.html")
    text = path.read_text()
    assert re.search(r'"_view": ?"dynamics"', text) and "rw-dyn-slider" in text   # the state and our bundle


def test_explorer_with_dynamics_mounts_the_panel_and_follows_step_layer_and_element():
    torch.manual_seed(1)
    lstm = nn.LSTM(2, 5, num_layers=2, batch_first=True)
    x = torch.randn(3, 9, 2)
    explorer = rw.explore(lstm, x, dynamics=True)
    panel = explorer.dynamics
    assert isinstance(panel, rw.DynamicsView) and panel in explorer.children and panel in explorer.view.followers
    assert panel.layer == explorer.view.layer == "lstm.l1"
    want = rw.dynamics(lstm, x)
    np.testing.assert_allclose(arrays(panel)["sigma_max"], want.layers["lstm.l1"].singular_values[0, :, 0], rtol=1e-6)
    explorer.select(t=4)
    assert panel.t == 4
    explorer.select(layer="lstm.l0")
    assert panel.layer == "lstm.l0"
    explorer.batch.value = 2
    assert panel.batch == 2
    np.testing.assert_allclose(arrays(panel)["sigma_min"], want.layers["lstm.l0"].sigma_min[2], rtol=1e-5)
    # new inputs: the panel is recomputed, still one panel and one follower of it
    explorer.update(x[:, :6])
    assert explorer.dynamics is not panel and explorer.dynamics.index["steps"] == 6
    assert [c for c in explorer.children if isinstance(c, rw.DynamicsView)] == [explorer.dynamics]
    assert [f for f in explorer.view.followers if isinstance(f, rw.DynamicsView)] == [explorer.dynamics]
    explorer.select(t=2)
    assert explorer.dynamics.t == 2
    with pytest.raises(ValueError, match="the dynamics need the model"):
        rw.explore(explorer.trace, dynamics=True)


def test_explorer_keeps_the_gradient_view_and_the_dynamics_panel_as_followers():
    torch.manual_seed(2)
    rnn = nn.RNN(2, 4, batch_first=True)
    x = torch.randn(1, 7, 2)
    explorer = rw.explore(rnn, x, loss="last", dynamics=True)
    assert explorer.gradients is not None
    for _ in range(2):   # and again after new inputs: each follower once, the current ones
        followers = explorer.view.followers
        cursors = explorer.gradients.cursor_views
        assert len(followers) == len(cursors) + 1 and explorer.dynamics in followers
        assert all(any(f is c for f in followers) for c in cursors)
        explorer.update(x[:, :5])
    assert explorer.dynamics.index["steps"] == 5


def test_explorer_with_fixed_points_draws_them_on_their_layer():
    torch.manual_seed(3)
    gru = nn.GRU(2, 4, num_layers=2, batch_first=True)
    x = torch.randn(2, 8, 2)
    dyn = rw.dynamics(gru, x, k=2)
    fps0 = rw.fixed_points(gru, layer="gru.l0", states=dyn, n_init=8, adam_steps=30)
    fps1 = rw.fixed_points(gru, layer="gru.l1", states=dyn, n_init=8, adam_steps=30)
    explorer = rw.explore(gru, x, dynamics=[fps0, fps1])
    panel = explorer.dynamics
    assert panel.layer == "gru.l1" and panel.index["points"] == len(fps1)
    np.testing.assert_allclose(arrays(panel)["points"].reshape(-1, 3), dyn.layers["gru.l1"].pca.project(fps1.states),
                               rtol=1e-5, atol=1e-6)
    explorer.select(layer="gru.l0")
    assert panel.index["points"] == len(fps0)
    explorer.update(x[:, :5])                           # new inputs keep the fixed points
    assert explorer.dynamics.index["points"] == len(fps0) and explorer.dynamics.index["steps"] == 5
    one = rw.explore(gru, x, dynamics=fps0)             # one FixedPoints: the panel opens on its layer's points
    one.select(layer="gru.l0")
    assert one.dynamics.index["points"] == len(fps0)
    with pytest.raises(TypeError, match="expected True, False, a rw.FixedPoints"):
        rw.explore(gru, x, dynamics="yes")


def test_explorer_dynamics_calls_the_model_as_its_trace_does():
    from tests.models import DecoderRNN, EncoderRNN
    torch.manual_seed(4)
    encoder, decoder = EncoderRNN(12, 5).eval(), DecoderRNN(5, 11, max_length=6).eval()
    source, target = torch.randint(0, 12, (2, 4)), torch.randint(0, 11, (2, 6))
    with torch.no_grad():
        encoder_outputs, encoder_hidden = encoder(source)
    explorer = rw.explore(decoder, encoder_outputs, hidden=encoder_hidden, kwargs={"target_tensor": target},
                          dynamics=True)
    want = rw.dynamics(decoder, encoder_outputs, hidden=encoder_hidden, kwargs={"target_tensor": target})
    np.testing.assert_allclose(arrays(explorer.dynamics)["sigma_max"], want.layers["gru.l0"].singular_values[0, :, 0],
                               rtol=1e-6)
    explorer.update(encoder_outputs.clone())   # recomputed with the same hidden and target: the same numbers
    np.testing.assert_allclose(arrays(explorer.dynamics)["sigma_max"], want.layers["gru.l0"].singular_values[0, :, 0],
                               rtol=1e-6)


@pytest.mark.parametrize("units, expected", [(1, 1), (2, 2), (4, 3)])
def test_the_index_says_which_principal_components_exist(units, expected):
    """A layer of one unit has PC1 alone (pca pads PC2 and PC3 with zeros): the view is told so,
    and its variance explained lists the existing components only."""
    torch.manual_seed(0)
    rnn = nn.RNN(2, units, batch_first=True)
    dyn = rw.dynamics(rnn, torch.randn(1, 9, 2), k=1)
    view = rw.DynamicsView(dyn)
    assert view.index["components"] == expected
    d = dyn.layers["rnn.l0"]
    np.testing.assert_allclose(view.index["explained"], d.pca.explained_variance_ratio[:expected])
    assert len(view.index["explained"]) == expected


def test_a_window_of_steps_shows_the_same_steps_as_the_explorer():
    """rw.explore(model, x, steps=range(120, 180), dynamics=True): at the Explorer's step t (the
    model's step 120 + t) the panel shows the model's step 120 + t of rw.dynamics on the whole
    input, its state the one the Explorer shows there, numbered from 120; forward and reverse
    layers alike, and again after new inputs."""
    torch.manual_seed(5)
    gru = nn.GRU(2, 4, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(2, 200, 2)
    explorer = rw.explore(gru, x, steps=range(120, 180), dynamics=True)
    whole = rw.dynamics(gru, x)
    panel = explorer.dynamics
    assert explorer.view.index["first_step"] == 120
    for name in ("gru.l1", "gru.l0.reverse"):
        explorer.select(layer=name)
        d = whole.layers[name]
        for element in (0, 1):
            explorer.batch.value = element
            got = arrays(panel)
            assert panel.index["steps"] == 60 and panel.index["length"] == 60 and panel.index["first_step"] == 120
            assert panel.index["run_steps"] == 200   # the plane's and the exponents' run
            for t in (0, 1, 37, 59):
                explorer.select(t=t)
                assert panel.t == t
                step = 120 + t
                assert got["sigma_max"][t] == np.float32(d.singular_values[element, step, 0])
                assert got["sigma_min"][t] == np.float32(d.sigma_min[element, step])
                assert got["exponent"][t] == np.float32(d.running_exponent()[element, step])
                np.testing.assert_array_equal(got["trajectory"].reshape(-1, 3)[t],
                                              d.pca.trajectory[element, step].astype(np.float32))
                # the state the Explorer shows at its step t is the one the panel marks
                shown = explorer.trace.layers[name].states["h"][element, t]
                np.testing.assert_allclose(got["trajectory"].reshape(-1, 3)[t], d.pca.project(shown), atol=1e-5)
    explorer.update(x[:, :150])   # new inputs: the window 120–149 of them
    d = rw.dynamics(gru, x[:, :150]).layers["gru.l0.reverse"]
    assert explorer.dynamics.index["steps"] == 30 and explorer.dynamics.index["first_step"] == 120
    np.testing.assert_array_equal(arrays(explorer.dynamics)["sigma_max"], d.singular_values[1, 120:, 0])
    with pytest.raises(ValueError, match=r"^show_dynamics: expected rw.dynamics of the inputs the Explorer's trace ran "
                                         r"on, whose gru.l0 steps 120–149 it shows; the dynamics' gru.l0 has 60 steps"):
        explorer.show_dynamics(rw.dynamics(gru, x[:, 120:180]))


def test_a_view_of_a_window_of_steps(setup):
    dyn, fps = setup
    view = rw.DynamicsView(dyn, fps, batch=1, steps=slice(3, 9))
    d, got = dyn.layers["gru.l0"], arrays(view)
    assert view.index["steps"] == 6 and view.index["first_step"] == 3 and view.index["points"] == len(fps)
    np.testing.assert_array_equal(got["sigma_max"], d.singular_values[1, 3:9, 0])
    whole = arrays(rw.DynamicsView(dyn, fps, batch=1))
    np.testing.assert_array_equal(got["nearest"], whole["nearest"][3:9])
    np.testing.assert_array_equal(got["points"], whole["points"])
    assert rw.DynamicsView(dyn, steps=range(10, 40)).index["steps"] == 2   # cut to the layer's 12 steps
    for bad, message in [((3, 9), r"expected a slice or range, got the tuple \(3, 9\), .*pass steps=slice\(3, 9\)"),
                         (slice(3, 9, 2), "expected a slice or range of consecutive steps"),
                         (slice(5, 2), "expected a slice or range of consecutive steps"),
                         (range(-1, 4), "expected step numbers counted from 0 on")]:
        with pytest.raises((TypeError, ValueError), match="^DynamicsView: steps: " + message):
            rw.DynamicsView(dyn, steps=bad)


class EncoderDecoder(nn.Module):
    """A GRU encoder over the source (5 steps) and a GRU decoder over the target (10 steps)."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.GRU(3, 4, batch_first=True)
        self.decoder = nn.GRU(3, 4, batch_first=True)

    def forward(self, source, target):
        _, h = self.encoder(source)
        return self.decoder(target, h)[0]


def test_a_layer_with_no_steps_in_the_window_says_why_instead_of_empty_plots():
    """rw.explore(steps=slice(6, 10), layers=["decoder"], dynamics=True): the encoder ends at step 4,
    so its panel holds no step; the index carries one sentence (js/src/dynamics.ts writes it as text)."""
    torch.manual_seed(3)
    model, source, target = EncoderDecoder(), torch.randn(2, 5, 3), torch.randn(2, 10, 3)
    explorer = rw.explore(model, source, kwargs={"target": target}, steps=slice(6, 10), layers=["decoder"],
                          dynamics=True)
    panel = explorer.dynamics
    assert list(explorer.trace.layers) == ["decoder.l0"] and set(panel.dynamics.layers) == {"encoder.l0", "decoder.l0"}
    assert panel.layer == "decoder.l0" and panel.index["steps"] == 4 and "empty" not in panel.index
    panel.layer = "encoder.l0"                       # the layer layers= left out, shown in the same window
    assert panel.index["steps"] == 0 and panel.buffer == b""
    assert panel.index["empty"] == ("encoder.l0 has no steps in the window shown (steps 6–9): it runs 5 steps, 0–4, "
                                    "so there is nothing of it to draw here.")
    view = rw.DynamicsView(panel.dynamics, layer="encoder.l0", steps=slice(5, None))
    assert view.index["empty"].startswith("encoder.l0 has no steps in the window shown (steps 5 on): it runs 5 steps")


def test_an_element_that_ends_before_the_window_says_so(setup):
    dyn, fps = setup
    d = dyn.layers["gru.l0"]
    short = type(dyn)(layers={"gru.l0": dataclasses.replace(d, lengths=np.array([12, 3]))})
    view = rw.DynamicsView(short, batch=1, steps=slice(5, 9))
    assert view.index["empty"] == ("Batch element 1 of gru.l0 has no valid steps in the window shown (steps 5–8): "
                                   "its sequence ends at step 2, so there is nothing of it to draw here.")
    view.batch = 0
    assert "empty" not in view.index and view.index["steps"] == 4
