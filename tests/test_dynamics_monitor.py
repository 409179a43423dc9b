"""TrainingMonitor(..., dynamics=True): the probe batch's largest Lyapunov exponent per layer at each
probe snapshot, equal to rw.dynamics of the model as it stood, charted against the training step."""
import numpy as np
import pytest
import torch

import rnnwidgets as rw


class FakeClock:
    def __call__(self):
        return 0.0


def test_monitor_tracks_the_largest_lyapunov_exponent_of_the_probe():
    torch.manual_seed(0)
    model = torch.nn.GRU(3, 6, num_layers=2, batch_first=True)
    x = torch.randn(4, 15, 3)
    mon = rw.TrainingMonitor(model, probe=x, every=2, dynamics=True, clock=FakeClock())
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    expected = {"gru.l0": [], "gru.l1": []}
    for i in range(6):
        opt.zero_grad()
        loss = model(x)[0].pow(2).mean()
        loss.backward()
        mon.step(loss)
        if (i + 1) % 2 == 0:     # the snapshot is of the model before this step's update
            dyn = rw.dynamics(model, x, k=1)
            for name in expected:
                expected[name].append(dyn.layers[name].lyapunov[:, 0].mean())
        opt.step()
    mon.flush()
    assert list(mon.lyapunov) == ["gru.l0", "gru.l1"]
    for row, (name, want) in enumerate(expected.items()):
        steps, values = mon.lyapunov[name].points()
        np.testing.assert_array_equal(steps, [2, 4, 6])
        np.testing.assert_allclose(values, want, rtol=1e-6)
        np.testing.assert_allclose(mon.lyapunov_chart.y[row], want, rtol=1e-6)
    assert len(set(np.round(expected["gru.l0"], 6))) == 3, "training moved the exponent: the chart follows it"
    assert list(mon.lyapunov_chart.labels) == ["gru.l0", "gru.l1"]
    np.testing.assert_array_equal(mon.lyapunov_chart.x, [2, 4, 6])
    assert mon.lyapunov_chart in mon.children


def test_dynamics_needs_a_probe_and_is_off_by_default():
    with pytest.raises(ValueError, match="dynamics=True needs probe="):
        rw.TrainingMonitor(torch.nn.GRU(3, 6), dynamics=True)
    mon = rw.TrainingMonitor(torch.nn.GRU(3, 6), probe=torch.randn(2, 5, 3))
    assert not mon.dynamics and not hasattr(mon, "lyapunov_chart")


def test_monitor_calls_the_model_as_the_probe_trace_does():
    from tests.models import DecoderRNN, EncoderRNN
    torch.manual_seed(1)
    encoder, decoder = EncoderRNN(12, 5).eval(), DecoderRNN(5, 11, max_length=6)
    source, target = torch.randint(0, 12, (3, 4)), torch.randint(0, 11, (3, 6))
    with torch.no_grad():
        encoder_outputs, encoder_hidden = encoder(source)
    mon = rw.TrainingMonitor(decoder, probe=encoder_outputs, every=1, dynamics=True, clock=FakeClock(),
                             hidden=encoder_hidden, kwargs={"target_tensor": target})
    want = rw.dynamics(decoder, encoder_outputs, hidden=encoder_hidden, kwargs={"target_tensor": target}, k=1)
    loss = decoder(encoder_outputs, encoder_hidden, target)[0].exp().pow(2).mean()
    loss.backward()
    mon.step(loss)
    mon.flush()
    _, values = mon.lyapunov["gru.l0"].points()
    np.testing.assert_allclose(values, [want.layers["gru.l0"].lyapunov[:, 0].mean()], rtol=1e-6)
