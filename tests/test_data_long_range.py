"""The adding problem: shapes, markers one in each half, exact targets, determinism."""
import pytest
import torch

from rnnwidgets.data import adding_problem


def test_adding_problem():
    inputs, targets = adding_problem(50, 20, seed=1)
    assert inputs.shape == (50, 20, 2) and targets.shape == (50, 1)
    assert inputs.dtype == targets.dtype == torch.float32
    values, markers = inputs[..., 0], inputs[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert (markers.sum(1) == 2).all() and set(markers.unique().tolist()) == {0.0, 1.0}
    assert (markers[:, :10].sum(1) == 1).all() and (markers[:, 10:].sum(1) == 1).all()
    torch.testing.assert_close(targets[:, 0], (values * markers).sum(1))
    again = adding_problem(50, 20, seed=1)
    assert torch.equal(inputs, again[0]) and torch.equal(targets, again[1])
    assert not torch.equal(inputs, adding_problem(50, 20, seed=2)[0])
    with pytest.raises(ValueError, match="steps >= 2"):
        adding_problem(5, 1)
