"""``rw.attribution``: how much each input step contributed to one prediction.

Integrated gradients (Sundararajan et al. 2017) and gradient x input, over the embedding for
token inputs (the ``nn.Embedding`` that reads them, as Captum's ``LayerIntegratedGradients`` on
that layer) and over the features otherwise. The interpolation points run as one batch of
batch x steps, in one forward and one backward; the points are Gauss-Legendre's on [0, 1], as
Captum's default, so the two agree to float precision for the same ``steps`` and baseline.

The forward and backward run with cuDNN off: cuDNN's RNN backward refuses eval mode ("cudnn RNN
backward can only be called in training mode"), PyTorch's own kernels do not. Gradients come from
``torch.autograd.grad`` (no ``.grad`` is touched), hooks are removed, and the model is left as
found (untouched.py).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Optional, Union

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from .call import ModelCall, ids_explained, refuse_scripted, unpack, unwrap
from .fused import fused_modules
from .gradients import first_output
from .untouched import eval_mode, kept

METHODS = ("integrated_gradients", "gradient_x_input")
WHO = "rw.attribution"


def attribution(model, inputs, t: Optional[int] = None, target: Union[int, Callable, None] = None, *,
                method: str = "integrated_gradients", steps: int = 32, baseline=None, layer: Optional[str] = None,
                points_per_pass: Optional[int] = None, hidden=None, args=(), kwargs=None) -> np.ndarray:
    """How much each input step contributed to the prediction at step ``t``: a float32 array
    (batch, time), one number per input step, summed over the embedding dimensions (token inputs)
    or over the features (float inputs) of that step. For a unidirectional model the steps after
    ``t`` get 0.

    - ``t``: the step of the model's output to explain (its first output, a tensor with the time
      axis where the inputs have it, or flattened to (time * batch, classes) rows in the inputs'
      order, as a word language model's); None: the last step, or the whole output when it has no
      time axis (a classifier of the sequence).
    - ``target``: the class index whose output is explained (an int, or one per batch element);
      None: the class the model predicts there (an output of one score per sequence, (batch,): that
      score); or a callable on that output (the model's whole
      output when ``t`` is None) returning one scalar per batch element (or their sum).
    - ``method``: ``"integrated_gradients"`` ((x - baseline) times the gradient averaged along the
      straight path from the baseline, ``steps`` Gauss-Legendre points; the attributions of a
      sequence add up to f(x) - f(baseline)) or ``"gradient_x_input"`` (x times the gradient at x).
    - ``baseline`` (integrated gradients): None, zeros (the zero embedding for tokens); a number or
      a tensor of the inputs' shape (for tokens: token ids, embedded as the inputs are, e.g. the
      padding id).
    - ``layer``: the module path of the embedding to attribute over, when the one that reads the
      token inputs is not the one meant.
    - ``points_per_pass``: interpolation points per forward and backward (None: all ``steps`` in
      one, batch x steps sequences), to bound memory on long sequences or large batches.
    - ``hidden``, ``args``, ``kwargs`` and tuple / dict batches as for ``rw.trace`` (the README's
      "Your model"). The interpolation points run as one batch of batch x steps: ``hidden`` and
      tensors of ``args`` / ``kwargs`` that have the batch are repeated along it.

    The inputs: token ids (batch, time) or (time, batch), features (batch, time, features) or
    (time, batch, features), as the model's recurrent module reads them; (batch, time) floats of
    one value a step that the model expands itself; or one sequence without a batch axis, (time,)
    ids or (time, features) that the module reads unbatched, explained as a batch of one (the
    interpolation points then run one at a time).

    Runs in eval mode (no dropout), on the CPU or CUDA; the model is left as found.
    """
    model = unwrap(model)
    refuse_scripted(WHO, model, children=False)     # its forward's signature and hooks are TorchScript's
    if not isinstance(model, nn.Module):
        raise TypeError(f"{WHO}: expected a torch.nn.Module as the model, got {type(model).__name__}")
    if method not in METHODS:
        raise ValueError(f"{WHO}: method: expected one of {list(METHODS)}, got {method!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"{WHO}: steps: expected a positive number of interpolation points, got {steps!r}")
    if points_per_pass is not None and (isinstance(points_per_pass, bool) or not isinstance(points_per_pass, int)
                                        or points_per_pass < 1):
        raise ValueError(f"{WHO}: points_per_pass: expected a positive number or None, got {points_per_pass!r}")
    if torch.is_inference_mode_enabled():
        raise RuntimeError(f"{WHO}: needs gradients, which torch.inference_mode() turns off; expected a call "
                           "outside inference_mode")
    call = ModelCall(model, args, kwargs, who=WHO)
    inputs, spread = unpack(call, inputs, strict=True)
    if spread:
        call = ModelCall(model, args, {**spread, **call.kwargs}, who=WHO)
    if call.is_step_module() and not fused_modules(model):
        raise ValueError(f"{WHO}: expected a model whose forward takes the whole sequence; "
                         f"{call.forward_text()} reads as one step at a time")
    run = Runner(model, call, inputs, hidden)
    with kept(model), eval_mode(model), torch.enable_grad(), without_cudnn():
        try:
            with ids_explained(WHO, model, [inputs, *call.args, *call.kwargs.values()]):
                return run.attribute(t, target, method, steps, baseline, layer, points_per_pass)
        except RuntimeError as e:
            if not call.is_step_module():
                raise
            raise RuntimeError(f"{WHO}: expected a model whose forward takes the whole sequence; "
                               f"{call.forward_text()} failed on it, as a model reading one step at a time "
                               f"does ({str(e).splitlines()[0]})") from e


@contextmanager
def without_cudnn():
    """cuDNN off for the block, every other cuDNN setting as it was (``torch.backends.cudnn.flags``
    would also reset benchmark, deterministic and TF32 for its duration)."""
    before = torch.backends.cudnn.enabled
    torch.backends.cudnn.enabled = False
    try:
        yield
    finally:
        torch.backends.cudnn.enabled = before


def gauss_legendre(steps: int) -> tuple[list, list]:
    """(alphas, weights) of the Gauss-Legendre rule with ``steps`` points on [0, 1] (Captum's default)."""
    x, w = np.polynomial.legendre.leggauss(steps)
    return list(0.5 * (x + 1)), list(0.5 * w)


class Runner:
    """One model call on ``inputs``, and the same call on batch x steps copies of them."""

    def __init__(self, model: nn.Module, call: ModelCall, inputs, hidden):
        if isinstance(inputs, PackedSequence) or not isinstance(inputs, torch.Tensor):
            raise TypeError(f"{WHO}: expected the inputs as a tensor of token ids or features, "
                            f"got {type(inputs).__name__}")
        self.model, self.call, self.inputs, self.hidden = model, call, inputs, hidden
        self.tokens = not inputs.is_floating_point()
        fused = fused_modules(model)
        self.fused = bool(fused)
        batch_first = fused[0][1].batch_first if fused else True
        if inputs.dim() < 1 or (not self.tokens and inputs.dim() < 2):
            per_step = "" if self.tokens else ", features"
            raise ValueError(f"{WHO}: expected inputs with a time axis, (batch, time{per_step}) or "
                             f"(time, batch{per_step}), got shape {tuple(inputs.shape)}")
        # one sequence without a batch axis: token ids (time,), or features (time, features) that
        # the model's recurrent module reads unbatched, as nn.LSTM does a 2-D input
        self.batch_dim: Optional[int] = None
        self.unbatched = inputs.dim() == 1 or (not self.tokens and inputs.dim() == 2 and self.reads_unbatched())
        if self.unbatched:
            self.time_dim, self.batch = 0, 1
        else:
            self.batch_dim, self.time_dim = (0, 1) if batch_first else (1, 0)
            self.batch = inputs.shape[self.batch_dim]

    def reads_unbatched(self) -> bool:
        """Whether the first recurrent module the model calls on the inputs gets one unbatched
        sequence (nn.LSTM / GRU / RNN a 2-D input, a cell a 1-D one), as (time, features) inputs
        are; else the 2-D inputs are (batch, time) of one feature a step, expanded by the model."""
        seen: list = []

        def record(module, args):
            if not seen and args and isinstance(args[0], torch.Tensor):
                seen.append(args[0].dim() == (1 if isinstance(module, nn.RNNCellBase) else 2))

        handles = [m.register_forward_pre_hook(record) for m in self.model.modules()
                   if isinstance(m, (nn.RNNBase, nn.RNNCellBase))]
        try:
            with torch.no_grad():
                self.forward(1)
        finally:
            for h in handles:
                h.remove()
        return bool(seen and seen[0])

    # ---- calls ------------------------------------------------------------------------------
    def forward(self, copies: int, x: Optional[torch.Tensor] = None, replace: Optional[tuple] = None):
        """The model's output on ``copies`` copies of the inputs along the batch (or on ``x``, that
        many batches long), hidden and the args / kwargs tensors that have the batch repeated as
        many times; ``replace`` (module, tensor): that module's output replaced by the tensor."""
        x = self.repeat(self.inputs, self.batch_dim, copies) if x is None else x
        hidden = None if self.hidden is None else repeat_state(self.hidden, copies)
        call = self.call if copies == 1 else ModelCall(
            self.model, tuple(self.repeat_arg(a, copies) for a in self.call.args),
            {k: self.repeat_arg(v, copies) for k, v in self.call.kwargs.items()}, who=WHO)
        args, kwargs = call.whole(x, hidden, fused=self.fused).at(x)
        handle = None
        if replace is not None:
            module, value = replace
            handle = module.register_forward_hook(lambda _m, _i, _o: value)
        try:
            return self.model(*args, **kwargs)
        finally:
            if handle is not None:
                handle.remove()

    @staticmethod
    def repeat(x: torch.Tensor, dim: Optional[int], copies: int) -> torch.Tensor:
        # each sequence's copies side by side (b0 b0 .. b1 b1 ..): lengths sorted longest first stay
        # sorted, for a model that packs with enforce_sorted=True
        return x if copies == 1 or dim is None else x.repeat_interleave(copies, dim=dim)

    def repeat_arg(self, value, copies: int):
        """A tensor argument with the batch repeated along it: dim 0 ((batch,) lengths, (batch, ...)), or
        dim 1 for (time, batch, ...) beside time-major inputs (bentrevett's Seq2Seq's ``trg``)."""
        if not isinstance(value, torch.Tensor) or value.dim() == 0:
            return value
        first = value.shape[0] == self.batch
        second = value.dim() >= 2 and value.shape[1] == self.batch and self.batch_dim == 1
        if second and (not first or value.dim() == self.inputs.dim()):
            return self.repeat(value, 1, copies)
        return self.repeat(value, 0, copies) if first else value

    def embedding(self, layer: Optional[str]) -> tuple:
        """(module, its output on the inputs, the model's output): the nn.Embedding named by
        ``layer``, else the first one called on the token inputs themselves."""
        if layer is not None:
            try:
                chosen = self.model.get_submodule(layer)
            except AttributeError:
                raise ValueError(f"{WHO}: layer: expected a module path in the model, got {layer!r}") from None
            candidates = [chosen]
        else:
            candidates = [m for m in self.model.modules() if isinstance(m, nn.Embedding)]
            if not candidates:
                raise ValueError(f"{WHO}: token inputs are attributed over their embedding, but the model has no "
                                 "nn.Embedding (one that one-hot encodes them inside has none to attribute over); "
                                 "pass layer='<path of the module that embeds them>' or float features")
        seen: list = []

        def record(module, args, output):
            reads = layer is not None or (args and isinstance(args[0], torch.Tensor)
                                          and args[0].shape == self.inputs.shape and torch.equal(args[0], self.inputs))
            if reads and isinstance(output, torch.Tensor):
                seen.append((module, output.detach()))

        handles = [m.register_forward_hook(record) for m in candidates]
        try:
            with torch.no_grad():
                output = self.forward(1)
        finally:
            for h in handles:
                h.remove()
        if not seen:
            what = f"module {layer!r} was not called" if layer is not None else "no nn.Embedding reads them"
            raise ValueError(f"{WHO}: token inputs are attributed over their embedding, but {what}; pass "
                             "layer='<module path of the embedding>' or float features")
        module, emb = seen[0]
        if emb.shape[:self.inputs.dim()] != self.inputs.shape:
            raise ValueError(f"{WHO}: the embedding's output {tuple(emb.shape)} does not start with the inputs' "
                             f"shape {tuple(self.inputs.shape)}")
        return module, emb, output

    # ---- the attribution --------------------------------------------------------------------
    def attribute(self, t, target, method, steps, baseline, layer, points) -> np.ndarray:
        if self.tokens:
            module, x, output = self.embedding(layer)
            base = self.token_baseline(module, x, baseline)
        else:
            module = None
            x = self.inputs.detach()
            with torch.no_grad():
                output = self.forward(1)
            base = self.feature_baseline(x, baseline)
        pick = self.target_of(output, t, target)
        if method == "gradient_x_input":
            alphas, weights, base = [1.0], [1.0], torch.zeros_like(x)
        else:
            alphas, weights = gauss_legendre(steps)
        delta = x - base
        per_pass = len(alphas) if points is None else points
        if self.unbatched:      # one sequence without a batch axis to stack the points along
            per_pass = 1
        try:
            mean_grad = self.mean_grad(x, base, delta, module, pick, alphas, weights, per_pass)
        except RuntimeError as e:
            if per_pass == 1 or not any(word in str(e) for word in ("size", "shape", "view")):
                raise       # not a batch the model cannot take: its own error
            # a model that runs only at its own batch size (Udacity's Simple RNN .view()s a batch_first
            # output, which torch leaves non-contiguous above batch 1): the points one a pass, as it ran
            mean_grad = self.mean_grad(x, base, delta, module, pick, alphas, weights, 1)
        per_value = delta * mean_grad
        if self.unbatched:
            return per_value.reshape(x.shape[0], -1).sum(dim=1)[None].detach().float().cpu().numpy()  # (1, T)
        per_step = per_value.reshape(*x.shape[:2], -1).sum(dim=2)           # (B, T) or (T, B)
        if self.batch_dim == 1:
            per_step = per_step.t()
        return per_step.detach().float().cpu().numpy()

    def mean_grad(self, x, base, delta, module, pick, alphas, weights, per_pass: int) -> torch.Tensor:
        """The weighted sum of the gradients at every point, ``per_pass`` points a forward."""
        mean_grad = torch.zeros_like(x)
        for start in range(0, len(alphas), per_pass):
            mean_grad += self.weighted_grad(x, base, delta, module, pick, alphas[start:start + per_pass],
                                            weights[start:start + per_pass])
        return mean_grad

    def weighted_grad(self, x, base, delta, module, pick, alphas, weights) -> torch.Tensor:
        """Sum over ``alphas`` of weight x the gradient at base + alpha (x - base): one forward and
        one backward of batch x len(alphas) sequences."""
        bd = self.batch_dim         # (.., batch x alphas, ..): sequence b's point a at b * len(alphas) + a
        if bd is None:              # one sequence without a batch axis: one point a pass
            path = (base + alphas[0] * delta).requires_grad_(True)
        else:
            path = torch.stack([base + a * delta for a in alphas], dim=bd + 1).flatten(bd, bd + 1).requires_grad_(True)
        if module is not None:
            out = self.forward(len(alphas), replace=(module, path))
        else:
            out = self.forward(len(alphas), x=path)
        value = pick(out)
        if not value.requires_grad:
            raise ValueError(f"{WHO}: the explained output does not depend on the inputs")
        (grad,) = torch.autograd.grad(value, [path])
        if bd is None:
            return grad * weights[0]
        shape = list(x.shape)
        shape[bd:bd + 1] = [self.batch, len(alphas)]
        w = torch.tensor(weights, dtype=grad.dtype, device=grad.device).view(
            [1] * (bd + 1) + [len(alphas)] + [1] * (len(shape) - bd - 2))
        return (grad.reshape(shape) * w).sum(dim=bd + 1)                        # x's shape

    def token_baseline(self, module: nn.Module, emb: torch.Tensor, baseline) -> torch.Tensor:
        if baseline is None:
            return torch.zeros_like(emb)
        ids = baseline if isinstance(baseline, torch.Tensor) else torch.full_like(self.inputs, int(baseline))
        if ids.shape != self.inputs.shape or ids.is_floating_point():
            raise ValueError(f"{WHO}: baseline: expected token ids of the inputs' shape {tuple(self.inputs.shape)} "
                             f"or one id, got {tuple(ids.shape)} {ids.dtype}")
        with torch.no_grad():
            return module(ids.to(self.inputs.device)).detach()

    def feature_baseline(self, x: torch.Tensor, baseline) -> torch.Tensor:
        if baseline is None:
            return torch.zeros_like(x)
        if isinstance(baseline, (int, float)):
            return torch.full_like(x, float(baseline))
        if not isinstance(baseline, torch.Tensor) or baseline.shape != x.shape:
            raise ValueError(f"{WHO}: baseline: expected a number or a tensor of the inputs' shape {tuple(x.shape)}, "
                             f"got {getattr(baseline, 'shape', type(baseline).__name__)}")
        return baseline.to(x.device, x.dtype)

    def target_of(self, output, t: Optional[int], target) -> Callable:
        """The function from the model's output to the scalar whose gradient is taken."""
        out = first_output(output)
        if isinstance(out, PackedSequence):
            raise TypeError(f"{WHO}: the model's output is a PackedSequence; pass target= a callable on it")
        steps = self.inputs.shape[self.time_dim]
        # a language model's logits flattened to (time * batch, vocab) rows, in the inputs' order
        flat = out.dim() == 2 and steps > 1 and out.shape[0] == steps * self.batch
        # (batch, time) values in, (batch, time [+ future]) out: one value a step, as the input
        per_value = (not self.tokens and not self.unbatched and self.inputs.dim() == 2 and out.dim() == 2
                     and out.shape[1] >= steps)
        timed = flat or per_value or (out.dim() >= 3 and out.shape[self.time_dim] == steps)
        if t is not None and not timed and not callable(target):
            raise ValueError(f"{WHO}: t: the model's output {tuple(out.shape)} has no time axis of {steps} steps; "
                             "leave t=None to explain the whole output")
        if t is not None:
            if isinstance(t, bool) or not isinstance(t, int) or not -steps <= t < steps:
                raise ValueError(f"{WHO}: t: expected a step in 0..{steps - 1}, got {t!r}")
            t = t % steps

        def at_t(output):
            o = first_output(output)
            if flat:
                o = o.unflatten(0, (steps, -1) if self.time_dim == 0 else (-1, steps))
            if timed:
                return o.select(self.time_dim, steps - 1 if t is None else t)
            return o[None] if self.unbatched and o.dim() == 1 else o   # one sequence's (classes,)

        if callable(target):
            if t is None:
                return lambda output: scalar(target(output))
            return lambda output: scalar(target(at_t(output)))
        prediction = at_t(output)                                              # (B, classes)
        if prediction.dim() == 1 and prediction.shape[0] == self.batch and target in (None, 0):
            return lambda output: at_t(output).sum()           # one score per sequence (a sigmoid's): itself
        if prediction.dim() != 2 or prediction.shape[0] != self.batch:
            raise ValueError(f"{WHO}: target: expected an output of (batch, classes) at the step, got "
                             f"{tuple(prediction.shape)}; pass target= a callable")
        if target is None:
            index = prediction.argmax(dim=1)
        else:
            index = torch.as_tensor(target, device=prediction.device).long().reshape(-1).expand(self.batch)
            if not bool(((index >= 0) & (index < prediction.shape[1])).all()):
                raise ValueError(f"{WHO}: target: expected class indices in 0..{prediction.shape[1] - 1}, "
                                 f"got {target!r}")

        def pick(output):
            p = at_t(output)                                                   # (copies * B, classes)
            return p.gather(1, index.repeat_interleave(p.shape[0] // self.batch).unsqueeze(1)).sum()
        return pick


def scalar(value) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{WHO}: target(output) must return a tensor, got {type(value).__name__}")
    return value.sum()


def repeat_state(hidden, copies: int):
    """A state repeated along its batch: (layers, batch, units) for a fused module, else dim 0."""
    if isinstance(hidden, torch.Tensor):
        return hidden.repeat_interleave(copies, dim=1 if hidden.dim() == 3 else 0) if copies > 1 else hidden
    return type(hidden)(repeat_state(h, copies) for h in hidden)
