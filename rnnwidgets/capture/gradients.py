"""Gradients through time for fused modules: dL/dh_t (and dL/dc_t) at every step of every layer.

One ``torch.autograd.grad`` call (never ``.backward()``, so ``.grad`` fields stay as they are)
gives the parameter gradients and, for each layer run, the *direct* gradient reaching its
output sequence and final state from everything downstream (the next layer, the head, h_n).
The part that travels back through the layer's own recurrence is added here by a backward scan
over time in the order the kernel read the steps, using the gates recomputed in ``fused``:
everything per step that does not depend on the gradient is computed for all steps at once, so
the scan itself is one matmul and a few elementwise ops per step.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from .convert import reverse_valid


def loss_value(loss, output, last_run) -> torch.Tensor:
    """The scalar to differentiate: ``loss(output)``, or for ``"last"`` the sum of the last valid
    step of the model's first output (all of it when that output has no time dimension)."""
    if loss != "last":
        value = loss(output)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise ValueError(f"rw.trace: loss(output) must return a scalar tensor, got "
                             f"{tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__}")
        return value.reshape(())
    out = output[0] if isinstance(output, (tuple, list)) and output else output
    if isinstance(out, PackedSequence):
        padded, lengths = pad_packed_sequence(out, batch_first=True)
        last = (lengths - 1).to(padded.device)
        return padded[torch.arange(padded.shape[0], device=padded.device), last].sum()
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"rw.trace: loss=\"last\" needs a tensor output, got {type(out).__name__}; pass a callable")
    steps, batch = last_run.padded(last_run.x).shape[:2]
    if out.dim() == 3:
        return (out[:, -1] if last_run.module.batch_first else out[-1]).sum()
    if out.dim() == 2 and batch == 1 and out.shape[0] == steps:   # unbatched (time, features)
        return out[-1].sum()
    return out.sum()


def backward(model: nn.Module, value: torch.Tensor, runs: list):
    """One autograd pass. Returns (direct, param_grads): ``direct[i]`` holds run i's direct
    gradients "out" (time, batch, directions*units) and "h_n"/"c_n" (directions, batch, units),
    user batch order; ``param_grads`` maps parameter name -> {"norm", "mean_abs", "max_abs"}."""
    if not value.requires_grad:
        raise ValueError("rw.trace: the loss does not depend on anything that requires grad "
                         "(all parameters frozen and inputs without requires_grad?)")
    params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    wanted = [r.out for r in runs] + [r.h_n for r in runs] + [r.c_n for r in runs if r.c_n is not None]
    found = torch.autograd.grad(value, wanted + [p for _, p in params], allow_unused=True)
    found = [g if g is not None else torch.zeros_like(t) for g, t in zip(found, wanted + [p for _, p in params])]
    outs, h_ns = found[:len(runs)], found[len(runs):2 * len(runs)]
    c_ns = iter(found[2 * len(runs):len(wanted)])
    direct = []
    for run, out, h_n in zip(runs, outs, h_ns):
        grads = {"out": run.padded(out), "h_n": run.user_order(h_n)}
        if run.c_n is not None:
            grads["c_n"] = run.user_order(next(c_ns))
        direct.append(grads)
    param_grads = {name: stats(g) for (name, _), g in zip(params, found[len(wanted):])}
    return direct, param_grads


def stats(g: torch.Tensor) -> dict:
    g = g.detach().double()
    return {"norm": float(g.norm()), "mean_abs": float(g.abs().mean()), "max_abs": float(g.abs().max())}


def through_time(direction, direct: dict) -> dict:
    """{"h": dL/dh_t, "c": dL/dc_t (LSTM)} for every step, (time, batch, units) in the direction's
    processing order (see ``fused.Direction``); zero past each element's length."""
    run, d = direction.run, int(direction.reverse)
    width = direction.h.shape[2]
    from_output = direct["out"][..., d * width:(d + 1) * width]
    from_output = reverse_valid(from_output, direction.lengths) if direction.reverse else from_output
    # the final state leaves after each element's last processed step
    last = (direction.lengths - 1, torch.arange(direction.lengths.shape[0], device=direction.lengths.device))
    total = from_output.clone().index_put_(last, direct["h_n"][d], accumulate=True)
    mode = run.module.mode
    if mode == "LSTM":
        from_c = torch.zeros_like(direction.c).index_put_(last, direct["c_n"][d], accumulate=True)
        return lstm_scan(direction, total, from_c)
    if mode == "GRU":
        return {"h": gru_scan(direction, total)}
    return {"h": rnn_scan(direction, total)}


def lstm_scan(direction, from_h: torch.Tensor, from_c: torch.Tensor) -> dict:
    """h_t = W_hr(o_t tanh c_t) (no W_hr without projection), c_t = f_t c_{t-1} + i_t g_t."""
    i, f, g, o = (direction.gates[k] for k in ("input", "forget", "cell", "output"))
    weights = direction.weights
    w_hh = weights[1]
    w_hr = weights[-1] if direction.run.module.proj_size else None
    tanh_c = torch.tanh(direction.c)
    via_h = o * (1 - tanh_c * tanh_c)                           # dc_t / dm_t, m_t = o_t tanh c_t
    to_pre_c = torch.stack([g * i * (1 - i), direction.c_prev * f * (1 - f), i * (1 - g * g)], 2)
    to_pre_o = tanh_c * o * (1 - o)
    steps, batch, units = direction.c.shape
    grad_h = torch.empty_like(from_h)
    grad_c = torch.empty_like(from_c)
    pre = from_h.new_zeros(batch, 4, units)                     # dL/d(gate pre-activations) of step t+1
    for t in range(steps - 1, -1, -1):
        dh = grad_h[t]
        if t == steps - 1:
            dh.copy_(from_h[t])
        else:
            torch.addmm(from_h[t], pre.view(batch, -1), w_hh, out=dh)
        dm = dh @ w_hr if w_hr is not None else dh
        dc = torch.mul(dm, via_h[t], out=grad_c[t])
        dc += from_c[t]
        if t < steps - 1:
            dc.addcmul_(grad_c[t + 1], f[t + 1])
        torch.mul(dc.unsqueeze(1), to_pre_c[t], out=pre[:, :3])
        torch.mul(dm, to_pre_o[t], out=pre[:, 3])
    return {"h": grad_h, "c": grad_c}


def gru_scan(direction, from_h: torch.Tensor) -> torch.Tensor:
    """h_t = (1 - z_t) n_t + z_t h_{t-1}, n_t = tanh(W_in x_t + b_in + r_t (W_hn h_{t-1} + b_hn))."""
    r, z, n = (direction.gates[k] for k in ("reset", "update", "new"))
    w_hh = direction.weights[1]
    through_n = (1 - z) * (1 - n * n)                           # dn_pre_t / dh_t
    to_pre = torch.stack([through_n * direction.hidden_new * r * (1 - r),
                          (direction.h_prev - n) * z * (1 - z),
                          through_n * r], 2)                    # dh_t -> the W_hh h_{t-1} terms r, z, n
    steps, batch, units = from_h.shape
    grad_h = torch.empty_like(from_h)
    for t in range(steps - 1, -1, -1):
        if t == steps - 1:
            grad_h[t].copy_(from_h[t])
            continue
        pre = (grad_h[t + 1].unsqueeze(1) * to_pre[t + 1]).view(batch, -1)
        torch.addmm(from_h[t], pre, w_hh, out=grad_h[t])
        grad_h[t].addcmul_(grad_h[t + 1], z[t + 1])
    return grad_h


def rnn_scan(direction, from_h: torch.Tensor) -> torch.Tensor:
    """h_t = tanh or relu(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""
    h = direction.h
    slope = 1 - h * h if direction.run.module.nonlinearity == "tanh" else (h > 0).to(h.dtype)
    w_hh = direction.weights[1]
    steps = from_h.shape[0]
    grad_h = torch.empty_like(from_h)
    grad_h[steps - 1].copy_(from_h[steps - 1])
    for t in range(steps - 2, -1, -1):
        torch.addmm(from_h[t], grad_h[t + 1] * slope[t + 1], w_hh, out=grad_h[t])
    return grad_h
