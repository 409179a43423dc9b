"""``rw.dynamics``: the step Jacobian's top and smallest singular values at every step, finite-time Lyapunov
exponents and the PCA plane of the states, for every recurrent layer a Trace has.

The model runs once through ``rw.trace`` (its states and initial states); each fused module's
and cell's input is taken on the way by a forward pre-hook (removed after). Then, per layer and
direction, the Jacobians J_t = dF/ds_{t-1} at the traced states are formed in closed form for a
chunk of steps at a time (never the whole stack) as operators (products with J and J^T in
closed form, jacobians.py): their top singular values by Lanczos, each step certified by its
residual (large states; the few steps not certified, and small states, from the eigenvalues of
J J^T), their smallest from J^{-1}, and the chunk's products handed to the Lyapunov QR
accumulation in the order the layer runs. Each layer's Jacobian holds the layer
below fixed (its input is an input).
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from ..dynamics_analysis import Dynamics, LayerDynamics, LyapunovQR, pca
from ..kinds import previous
from .api import trace
from .call import ModelCall, unpack, unwrap
from .fused import CALL_OBSERVERS
from .jacobians import AutogradStep, DenseOperator, dense_extremes, recurrences
from .untouched import eval_mode

# bytes of Jacobians formed at once (the chunk of steps is sized to fit); forming them and their
# Gram matrices takes a few times this at the peak
CHUNK_BYTES = 16 * 2 ** 20


def dynamics(model: nn.Module, inputs, hidden=None, k: int = 8, *, args=(), kwargs=None) -> Dynamics:
    """The dynamics of every recurrent layer of ``model`` on ``inputs``: per layer
    ``singular_values`` (batch, time, k), ``lyapunov`` (batch, k), ``pca``.

    ``inputs``, ``hidden``, ``args``, ``kwargs`` (and tuple or dict batches) follow ``rw.trace``'s
    convention (capture/call.py). Each layer keeps its own time axis and valid steps
    (``Trace.layer_lengths``): an encoder over the source, its decoder over the target. A module
    called once per step (a decoder) is one trajectory through its calls, each call starting from
    the state it was given.

    Supported: nn.LSTM (with proj_size), nn.GRU, nn.RNN (tanh, relu), every layer and direction;
    nn.LSTMCell / nn.GRUCell / nn.RNNCell driven by the model's own loop; a step module
    ``forward(input, hidden)`` through autograd. The model is left as found.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"rw.dynamics: expected a torch.nn.Module as the model, got {type(model).__name__}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"rw.dynamics: k must be a positive integer (how many singular values), got {k!r}")
    model = unwrap(model)
    maps = recurrences(model)
    modules = {id(m) for m, _ in maps.values()}
    calls: dict = {}
    handles = []

    def keep(module, args, kwargs):
        calls.setdefault(id(module), []).append((args, kwargs))

    def observe(module, input, hx):     # a fused module's call, also one made as module.forward(...)
        if id(module) in modules:
            calls.setdefault(id(module), []).append(((input, hx), {}))

    try:
        for m in model.modules():
            if id(m) in modules and not isinstance(m, nn.RNNBase):
                handles.append(m.register_forward_pre_hook(keep, with_kwargs=True))
        CALL_OBSERVERS.append(observe)
        tr = trace(model, inputs, hidden=hidden, args=args, kwargs=kwargs)
    finally:
        CALL_OBSERVERS.remove(observe)
        for h in handles:
            h.remove()

    layers, skipped, inner = {}, [], []
    # numpy's BLAS (the Lyapunov QR, the PCA) on as many threads as torch has: a BLAS pool wider than
    # the user asked torch for spins against it on a busy machine
    with threadpool_limits(torch.get_num_threads(), user_api="blas"):
        for name, lt in tr.layers.items():
            base = name.split("@")[0]
            lengths = tr.layer_lengths(name)
            reverse = lt.meta.get("direction") == "reverse"
            order = run_order(lengths, lt.steps, reverse)
            if base in maps:
                module, rec = maps[base]
                found = calls.get(id(module), [])
                if isinstance(module, nn.RNNBase):
                    x, s_prev, order = fused_parts(tr, lt, module, rec, module_calls(tr, module, base, lt, found))
                else:
                    x, s_prev = cell_calls(found, rec)
                if rec.w_hh.dtype not in (torch.float32, torch.float64):
                    rec = rec.to(torch.float32)     # half precision: eigvalsh and numpy need float32 at least
                dtype, device = rec.w_hh.dtype, rec.w_hh.device
                step_spectrum, step_bytes = rec.spectrum, rec.step_bytes(k)
            elif name == tr.first.name and "step_module" in lt.meta and maps:
                inner.append(name)      # a step module around an nn.GRU / cell: those layers hold its dynamics
                continue
            elif name == tr.first.name and "step_module" in lt.meta:
                x, s_prev, step_spectrum, dtype, device = step_module_parts(model, inputs, hidden, args, kwargs, lt)
                step_bytes = None
            else:
                skipped.append(name)
                continue
            valid = np.arange(lt.steps)[None, :] < lengths[:, None]
            with torch.no_grad() if base in maps else eval_mode(model):
                sv, smin, ly = spectra(step_spectrum, torch.as_tensor(x).to(device, dtype),
                                       torch.as_tensor(s_prev).to(device, dtype), order, valid, k, step_bytes)
            states = np.concatenate([lt.states[key] for key in ("h", "c") if key in lt.states], axis=-1)
            layers[name] = LayerDynamics(name, lt.kind, sv, ly, pca(lt.h, lengths), states, lengths.copy(),
                                         meta=dict(lt.meta), sigma_min=smin)
    if skipped:
        warnings.warn(f"rw.dynamics: no step map for {skipped} (recorded tracks, not a recurrence); left out",
                      stacklevel=2)
    if inner and layers:
        warnings.warn(f"rw.dynamics: {inner[0]} (the step module's whole state) left out; the recurrent modules it "
                      f"calls give the dynamics: {sorted(layers)}", stacklevel=2)
    if not layers:
        raise ValueError(f"rw.dynamics: {type(model).__name__} has no recurrent layer whose step could be "
                         "differentiated (nn.LSTM / nn.GRU / nn.RNN, a cell, or a step module forward(input, hidden))")
    return Dynamics(layers, tr)


# ---- each layer's inputs and the states its steps started from ---------------------------------------
def module_calls(tr, module: nn.RNNBase, base: str, lt, found: list) -> list:
    """The calls of ``module`` that made layer ``lt``: all of them, in order, for calls joined along
    time (``meta["calls"]``), else its own (``meta["call"]``). The trace's run is the last one the
    hooks saw (a model first tried whole and then driven step by step ran twice)."""
    prefix = base.rsplit(".l", 1)[0] + ".l"
    names = [n for n in tr.layers if n.startswith(prefix)]
    total = max(max(tr.layers[n].meta.get("calls", 1), tr.layers[n].meta.get("call", 0) + 1) for n in names)
    if len(found) < total:
        raise ValueError(f"rw.dynamics: {base.rsplit('.l', 1)[0]} ran {len(found)} times, but its trace holds "
                         f"{total} calls; expected the model to call it the same way each run")
    run = found[len(found) - total:]
    if "calls" in lt.meta:
        return run[:lt.meta["calls"]]
    return [run[lt.meta.get("call", 0)]]


def module_input(module: nn.RNNBase, args, kwargs) -> torch.Tensor:
    """A fused module's input as (batch, time, features) in the user's batch order."""
    x = args[0] if args else kwargs["input"]
    if isinstance(x, PackedSequence):
        return pad_packed_sequence(x, batch_first=True)[0]
    if x.dim() == 2:                                   # unbatched (time, features)
        return x.unsqueeze(0)
    return x if module.batch_first else x.transpose(0, 1)


def given_state(module: nn.RNNBase, rec, lt, call, batch: int) -> np.ndarray:
    """The state (batch, state_size) one call gave this layer and direction: its hx row, or zeros."""
    args, kwargs = call
    hx = args[1] if len(args) > 1 else kwargs.get("hx")
    if hx is None:
        return np.zeros((batch, rec.state_size), dtype=lt.h.dtype)
    row = lt.meta["layer"] * (2 if module.bidirectional else 1) + int(lt.meta.get("direction") == "reverse")
    parts = hx if isinstance(hx, tuple) else (hx,)
    rows = [p[row] if p.dim() == 3 else p[row].unsqueeze(0) for p in parts]    # (batch, ·); unbatched: one row
    return torch.cat([r.detach().to(torch.float32) for r in rows], dim=-1).cpu().numpy()


def fused_parts(tr, lt, module: nn.RNNBase, rec, segments: list):
    """(x (B, T, F), s_prev (B, T, S), run order (B, T)) of one layer of a fused module over its calls:
    layer 0 reads each call's input, layer k the layer below's h (both directions side by side);
    each call's steps start from the state that call was given and run in its own direction."""
    layer = lt.meta["layer"]
    base, _, call = lt.name.partition("@")
    if layer == 0:
        x = torch.cat([module_input(module, *c).detach() for c in segments], dim=1)
    else:
        below = base.rsplit(".l", 1)[0] + f".l{layer - 1}"
        suffix = "@" + call if call else ""
        parts = [tr.layers[below + suffix].h] + ([tr.layers[below + ".reverse" + suffix].h] if module.bidirectional
                                                   else [])
        x = torch.from_numpy(np.concatenate(parts, axis=-1))
    reverse = lt.meta.get("direction") == "reverse"
    keys = [key for key in ("h", "c") if key in lt.states]
    states = np.concatenate([lt.states[key] for key in keys], axis=-1)            # (B, T, S)
    lengths = tr.layer_lengths(lt.name)
    batch, steps = states.shape[:2]
    s_prev, order = np.zeros_like(states), np.zeros((batch, steps), dtype=np.int64)
    offset = 0
    for c in segments:
        n = module_input(module, *c).shape[1] if len(segments) > 1 else steps
        own = lengths if len(segments) == 1 else np.full(batch, n)
        part = slice(offset, offset + n)
        s_prev[:, part] = previous(states[:, part], given_state(module, rec, lt, c, batch), reverse, own)
        order[:, part] = offset + run_order(own, n, reverse)
        offset += n
    return x, s_prev, order


def previous_state(lt, lengths) -> np.ndarray:
    """s at the start of each step, (batch, time, state): h (and c), from the traced states."""
    keys = [k for k in ("h", "c") if k in lt.states]
    return np.concatenate([previous(lt.states[k], lt.initial.get(k), lt.reverse, lengths) for k in keys], axis=-1)


def cell_calls(found: list, rec):
    """A cell's inputs and the states each call started from, (batch, time, ·), from its calls."""
    xs, prevs = [], []
    for args, kwargs in found:
        x = args[0] if args else kwargs["input"]
        hx = args[1] if len(args) > 1 else kwargs.get("hx")
        x = x.unsqueeze(0) if x.dim() == 1 else x
        if hx is None:
            parts = [torch.zeros(x.shape[0], rec.state_size, dtype=x.dtype, device=x.device)]
        else:
            parts = [p.unsqueeze(0) if p.dim() == 1 else p for p in (hx if isinstance(hx, tuple) else (hx,))]
        xs.append(x.detach())
        prevs.append(torch.cat([p.detach() for p in parts], dim=-1))
    return torch.stack(xs, dim=1), torch.stack(prevs, dim=1)


def step_module_parts(model, inputs, hidden, args, kwargs, lt):
    """(x, s_prev, spectrum, dtype, device) for a step module, differentiated through torch.func,
    called as ``rw.trace`` calls it (its other arguments held fixed)."""
    from .step_module import split_steps
    call = ModelCall(model, args, kwargs, who="rw.dynamics")
    inputs, spread = unpack(call, inputs, strict=True)
    if spread:
        call = ModelCall(model, args, {**spread, **call.kwargs}, who="rw.dynamics")
    params = [p for p in model.parameters() if p.is_floating_point()]
    dtype = params[0].dtype if params else torch.get_default_dtype()
    device = params[0].device if params else torch.device("cpu")
    x = torch.stack([s.to(device, dtype) for s in split_steps(inputs)], dim=1)
    keys = [k for k in ("h", "c") if k in lt.states]
    s_prev = previous_state(lt, None)
    like = tuple(torch.from_numpy(lt.states[k][:, 0]) for k in keys)
    step = AutogradStep(model, like if len(keys) > 1 else like[0],
                        call.bind(x[:, 0], like if len(keys) > 1 else like[0]))

    def spectrum(xc, sc, k):
        lead = sc.shape[:-1]
        flat = step.jacobian(xc.reshape(-1, xc.shape[-1]), sc.reshape(-1, sc.shape[-1]), repeat=lead[1])
        top, bottom = dense_extremes(flat, k)
        return DenseOperator(flat), top.reshape(*lead, -1), bottom.reshape(lead)
    return x, s_prev, spectrum, dtype, device


# ---- spectra and exponents ------------------------------------------------------------------------
def run_order(lengths: np.ndarray, steps: int, reverse: bool) -> np.ndarray:
    """(batch, steps) index of the step each element runs p-th: p forward; length-1-p reversed
    (past the length: p itself, masked)."""
    p = np.arange(steps)[None, :].repeat(len(lengths), 0)
    if not reverse:
        return p
    back = np.asarray(lengths)[:, None] - 1 - p
    return np.where(back >= 0, back, p)


def spectra(step_spectrum, x: torch.Tensor, s_prev: torch.Tensor, order: np.ndarray, valid: np.ndarray, k: int,
            step_bytes=None):
    """(singular values float32 (B, T, k), sigma_min float32 (B, T), Lyapunov exponents float64 (B, k))
    of one layer.

    ``step_spectrum(x, s, k)`` maps (B, c, ·) to the steps' Jacobians as an operator over the B * c
    steps flattened (jacobians.py's StepOperator or DenseOperator), their k largest singular values
    (B, c, k) and their smallest (B, c). ``order`` (B, T): the step each element runs p-th;
    ``valid`` (B, T): the steps it runs. Steps go in that order, ``chunk`` at a time, so no more
    than about CHUNK_BYTES (``step_bytes`` a step: the memory its spectrum needs, a dense
    Jacobian's by default) exist at once; the Lyapunov directions are carried through each chunk's
    Jacobians by the operator's products.
    """
    batch, steps, size = s_prev.shape
    k = min(k, size)
    valid_run = np.take_along_axis(valid, order, axis=1)      # whether the p-th step run is valid
    index = torch.from_numpy(order).to(x.device)
    xs = torch.gather(x, 1, index[..., None].expand(-1, -1, x.shape[-1]))
    ss = torch.gather(s_prev, 1, index[..., None].expand(-1, -1, size))
    chunk = max(1, CHUNK_BYTES // (batch * (step_bytes or size * size * s_prev.element_size())))
    top = torch.empty(batch, steps, k, dtype=s_prev.dtype, device=s_prev.device)
    bottom = torch.empty(batch, steps, dtype=s_prev.dtype, device=s_prev.device)
    qr = LyapunovQR(batch, size, k)
    for p0 in range(0, steps, chunk):
        p1 = min(steps, p0 + chunk)
        op, top[:, p0:p1], bottom[:, p0:p1] = step_spectrum(xs[:, p0:p1], ss[:, p0:p1], k)
        qr.advance(products(op, p1 - p0, s_prev.dtype), valid_run[:, p0:p1])
    sv = np.full((batch, steps, k), np.nan, dtype=np.float32)
    smin = np.full((batch, steps), np.nan, dtype=np.float32)
    found, least = top.cpu().numpy(), bottom.cpu().numpy()
    rows, cols = np.nonzero(valid_run)
    sv[rows, order[rows, cols]] = found[rows, cols]
    smin[rows, order[rows, cols]] = least[rows, cols]
    return sv, smin, qr.exponents()


def products(op, chunk: int, dtype):
    """LyapunovQR.advance's ``product`` for the operator of a chunk of steps (B * chunk of them,
    element b's p-th at b * chunk + p): J q in the Jacobians' own precision; explicit Jacobians
    (small states, step modules) multiply in numpy, as LyapunovQR.update does."""
    if isinstance(op, DenseOperator):
        jac = op.jac.cpu().numpy()
        return lambda p, rows, q: jac[rows * chunk + p] @ q.astype(jac.dtype)

    def product(p: int, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
        step = op.select(torch.from_numpy(rows * chunk + p))
        rows_k = torch.from_numpy(q).mT.to(device=op.device, dtype=dtype, memory_format=torch.contiguous_format)
        moved = step.apply(rows_k)                                            # rows: the k directions
        return moved.mT.cpu().numpy()
    return product
