"""The gradients of a model's trainable parameters, read without changing them: each one's norm
now, or from hooks at the end of every backward pass (what ``rw.TrainingMonitor`` charts)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch


def grad_norm(grad: torch.Tensor) -> torch.Tensor:
    """The L2 norm of a gradient (dense or sparse) as a float64 0-d tensor on its device."""
    values = grad.detach().coalesce().values() if grad.is_sparse else grad.detach()
    # accumulated in float64 (float32 on MPS, which has none): a half-precision gradient of finite
    # elements can have a norm past float16's range, and float32 squares overflow past 1e19
    dtype = torch.float32 if values.device.type == "mps" else torch.float64
    return torch.linalg.vector_norm(values, dtype=dtype).double()


class ParameterGradients:
    """The trainable parameters of ``model`` (``names`` in ``named_parameters`` order) and their
    gradients. ``norms()`` reads them now; ``attach(report)`` calls ``report(index, norm)`` as
    each parameter's gradient is accumulated, until ``detach()``. ``.grad`` is never written."""

    def __init__(self, model: torch.nn.Module):
        self._params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        self.names = [name for name, _ in self._params]
        self._hooks: list = []

    @property
    def attached(self) -> bool:
        return bool(self._hooks)

    def norms(self) -> tuple[np.ndarray, np.ndarray]:
        """(L2 norm of each parameter's gradient, whether it has one)."""
        grads = [p.grad for _, p in self._params]
        has = np.array([g is not None for g in grads], dtype=bool)
        norms = np.zeros(len(grads))
        if has.any():
            each = [grad_norm(g) for g in grads if g is not None]
            norms[has] = torch.stack([n.to(each[0].device) for n in each]).tolist()   # one sync
        return norms, has

    def attach(self, report: Callable[[int, float], None]) -> None:
        if self._hooks:
            return
        try:
            for index, (_, p) in enumerate(self._params):
                self._hooks.append(p.register_post_accumulate_grad_hook(
                    lambda p, index=index: report(index, float(grad_norm(p.grad)))))
        except BaseException:  # all or nothing: a retry must not find some parameters hooked
            self.detach()
            raise

    def detach(self) -> None:
        hooks, self._hooks = self._hooks, []
        for hook in hooks:
            hook.remove()
