"""The flip-flop task: pulses of +-1, targets that hold each channel's last pulse, determinism."""
import numpy as np
import pytest
import torch

from rnnwidgets.data.flip_flop import flip_flop


def held_by_loop(pulses):
    """The reference: per sequence and channel, remember the sign of the last pulse."""
    out = np.zeros_like(pulses)
    for i in range(pulses.shape[0]):
        for b in range(pulses.shape[2]):
            last = 0.0
            for t in range(pulses.shape[1]):
                if pulses[i, t, b] != 0:
                    last = pulses[i, t, b]
                out[i, t, b] = last
    return out


def test_targets_hold_the_sign_of_each_channels_last_pulse():
    inputs, targets = flip_flop(6, 40, bits=3, p=0.2, seed=4)
    assert inputs.shape == targets.shape == (6, 40, 3)
    assert inputs.dtype == targets.dtype == torch.float32
    assert set(inputs.unique().tolist()) == {-1.0, 0.0, 1.0}
    np.testing.assert_array_equal(targets.numpy(), held_by_loop(inputs.numpy()))


def test_pulse_rate_bits_and_determinism():
    inputs, _ = flip_flop(200, 100, bits=2, p=0.1, seed=0)
    assert inputs.shape[2] == 2
    assert (inputs != 0).float().mean().item() == pytest.approx(0.1, abs=0.01)
    again = flip_flop(200, 100, bits=2, p=0.1, seed=0)
    assert torch.equal(inputs, again[0])
    assert not torch.equal(inputs, flip_flop(200, 100, bits=2, p=0.1, seed=1)[0])
    every_step, held = flip_flop(3, 5, bits=1, p=1.0, seed=2)
    assert (every_step != 0).all() and torch.equal(every_step, held)


@pytest.mark.parametrize("args", [dict(n=0, steps=5), dict(n=2, steps=0), dict(n=2, steps=5, bits=0),
                                  dict(n=2, steps=5, p=0.0), dict(n=2, steps=5, p=1.5)])
def test_bad_sizes_get_one_sentence(args):
    with pytest.raises(ValueError, match=r"^flip_flop: expected n, steps, bits >= 1 and 0 < p <= 1, got "):
        flip_flop(**args)
