"""Running a model under edits (``rw.clamp``, ``rw.patch``: edits.py), so they act inside the recurrence.

- A fused nn.LSTM / GRU / RNN layer that an edit names runs as the step loop here instead of its
  kernel (``EditedLayers``, a ``LayerByLayer`` run_layer): each step computes its gates, applies
  the gate edits, updates the state from them, applies the state edits, and carries the edited
  state to the next step (the previous one for a reverse direction); its output, edited, goes to
  the next layer and on to the model's output, since the module's forward is ours while the
  model runs (fused.py). Every layer, direction, ``batch_first``, ``proj_size`` and
  PackedSequence. Where every element runs every step, only the span from the first edited step
  to the last runs as our loop, the steps before and after by the native kernel with their gates
  recomputed (``spans``). Layers no edit names run as without edits.
- Cells in the user's loop and the model as a step module: forward hooks (``EditHooks``) put in
  before the recording's, returning the cell's step recomputed with the edits (cells.py's
  equations) or the step's hidden with its states edited, so the recording, the next step and
  the model all see the edited values.

Steps count along the Trace's time axis: a module called several times in one run (a decoder
fed one token at a time, ``rw.generate``) counts on from the steps of its earlier calls, as the
Trace joins them.
"""
from __future__ import annotations

import warnings
from typing import Any, Optional

import torch
from torch import nn

from ..kinds import GRU_GATES, LSTM_GATES, layer_name, module_label
from .cells import cell_equations, cell_kind, hook_cells, remove_hooks
from .convert import reverse_valid, steps_buffer
from .edits import LayerEdits, widths_of
from .fused import KIND, NATIVE, Direction, LayerRun, affine, gru_gates, lstm_gates
from .gradients import stats


class EditedLayers:
    """A ``LayerByLayer`` run_layer: layers that ``edits`` name run as our edited step loop, the
    others by ``fallback`` (default ``LayerRun.forward``). ``seen``: every layer name that ran
    -> its steps over all its calls, and "<name>@<call>" -> the steps of each later call.

    Run with gradients enabled, an edited layer runs every step as our loop in the graph (its
    input and initial state not detached; ``anchor``, a scalar that requires grad, joins its
    initial state so its steps are in the graph whatever the model's ``requires_grad`` flags),
    and ``live`` keeps each such run with its per-step tensors for ``backward``."""

    def __init__(self, who: str, edits: list, fallback=None, anchor: Optional[torch.Tensor] = None):
        self.who, self.edits, self.anchor = who, edits, anchor
        self.fallback = fallback or (lambda run, x, hx: run.forward(x, hx))
        self.offsets: dict = {}     # (module path, layer) -> steps of its earlier calls
        self.seen: dict = {}
        self.live: list = []        # (run, per direction {"h"/"c"/"m": [step tensors]}) of edited runs with grad

    def __call__(self, run: LayerRun, x, hx):
        key = (run.module_path, run.layer)
        offset = self.offsets.get(key, 0)
        steps, batch = run.padded(run.x).shape[:2]
        self.offsets[key] = offset + steps
        names = [layer_name(run.module_path, run.layer, d == 1) for d in range(run.direction_count)]
        self.seen.update(dict.fromkeys(names, offset + steps))
        if run.call:   # a module called again: each call addressed alone as "<name>@<call>", its first "@0"
            self.seen.update({f"{n}@{run.call}": steps for n in names})
            if run.call == 1:
                self.seen.update({f"{n}@0": offset for n in names})
        module = run.module
        kind = KIND[module.mode]
        widths = widths_of(kind, module.hidden_size, module.proj_size or None)
        plans = [LayerEdits(self.who, n, self.edits, kind, widths, batch, run.x, call=run.call, offset=offset,
                            count=steps) for n in names]
        if not any(plans):
            return self.fallback(run, x, hx)
        if torch.is_grad_enabled():
            result, live = edited_layer_with_grad(run, x, hx, plans, offset, self.anchor)
            self.live.append((run, live))
            return result
        return edited_layer(run, x, hx, plans, offset)


def backward(model: nn.Module, value: torch.Tensor, anchor: torch.Tensor, live: list) -> dict:
    """``gradients.backward`` for a run with edited layers (``EditedLayers.live``): the one
    ``torch.autograd.grad`` call also gives dL/d of every step's h, c (and a projected LSTM's m)
    of the edited layers, the state as the recurrence carries it on after the edit, set as their
    runs' ``grads``; a clamped value is a constant, so nothing flows back through it. Returns
    the parameters' gradient statistics; ``.grad`` fields are never touched."""
    if not value.requires_grad:
        raise ValueError("rw.trace: the loss does not depend on the output of any recurrent module")
    params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    wanted = [t for _, directions in live for per in directions for ts in per.values() for t in ts
              if t.requires_grad]
    found = torch.autograd.grad(value, [anchor] + [p for _, p in params] + wanted, allow_unused=True)[1:]
    by_id = {id(t): g for t, g in zip(wanted, found[len(params):])}
    for run, directions in live:
        run.grads = [{key: torch.stack([g if (g := by_id.get(id(t))) is not None else torch.zeros_like(t)
                                        for t in ts]).detach()
                      for key, ts in per.items()} for per in directions]
    return {name: stats(g if g is not None else torch.zeros_like(p)) for (name, p), g in zip(params, found)}


def edited_layer_with_grad(run: LayerRun, x: torch.Tensor, hx, plans: list, offset: int,
                           anchor: Optional[torch.Tensor]) -> tuple:
    """``edited_layer`` in the graph: every step by our loop from the live input and initial state,
    so autograd differentiates the edited recurrence (a clamp's ``torch.where`` passes no
    gradient to what it replaced). Returns (what the kernel returns, per direction the per-step
    tensors {"h", "c", "m"} in the order the steps are read)."""
    module = run.module
    lstm = module.mode == "LSTM"
    h0_all = run.user_order(hx[0] if lstm else hx)
    if anchor is not None:
        h0_all = h0_all + anchor.to(h0_all.dtype) * 0
    c0_all = run.user_order(hx[1]) if lstm else None
    lengths = run.lengths()
    steps_in = run.padded(x)
    per_direction = len(run.weights) // run.direction_count
    found, outputs, h_n, c_n, lives = [], [], [], [], []
    for d, plan in enumerate(plans):
        reverse = d == 1
        x_d = reverse_valid(steps_in, lengths) if reverse else steps_in
        weights = run.weights[d * per_direction:(d + 1) * per_direction]
        c0 = c0_all[d] if c0_all is not None else None
        live: dict = {}
        h, c, gates = direction_loop(module, weights, x_d, h0_all[d], c0, lengths, plan, offset, reverse, live=live)
        direction = Direction(run, reverse, lengths, x_d.detach(), h, h0_all[d].detach(), gates, c,
                              c0.detach() if c0 is not None else None)
        found.append(direction)
        lives.append(live)
        last = direction.last_steps()
        h_steps = torch.stack(live["h"])
        h_n.append(h_steps[last])
        if lstm:
            c_n.append(torch.stack(live["c"])[last])
        outputs.append(direction.natural(h_steps))
    out = run.kernel_layout(torch.cat(outputs, 2))
    h_last = run.kernel_order(torch.stack(h_n))
    result = (out, h_last, run.kernel_order(torch.stack(c_n))) if lstm else (out, h_last)
    run._recomputed = found
    return result, lives


def edited_layer(run: LayerRun, x: torch.Tensor, hx, plans: list, offset: int) -> tuple:
    """One layer run (both directions) by the edited step loop: what the kernel returns, with
    ``run``'s Directions set (so nothing is recomputed)."""
    module = run.module
    lstm = module.mode == "LSTM"
    h0_all = run.user_order(hx[0] if lstm else hx).detach()
    c0_all = run.user_order(hx[1]).detach() if lstm else None
    lengths = run.lengths()
    steps_in = run.padded(x.detach())                          # (time, batch, features), user batch order
    steps = steps_in.shape[0]
    full = bool((lengths == steps).all())
    per_direction = len(run.weights) // run.direction_count
    found, outputs, h_n, c_n = [], [], [], []
    with torch.no_grad():
        for d, plan in enumerate(plans):
            reverse = d == 1
            x_d = reverse_valid(steps_in, lengths) if reverse else steps_in
            weights = run.weights[d * per_direction:(d + 1) * per_direction]
            c0 = c0_all[d] if c0_all is not None else None
            if full:
                h, c, gates = spans(run, d, weights, x_d, h0_all[d], c0, lengths, plan, offset)
            else:
                h, c, gates = direction_loop(module, weights, x_d, h0_all[d], c0, lengths, plan, offset, reverse)
            direction = Direction(run, reverse, lengths, x_d, h, h0_all[d], gates, c, c0)
            found.append(direction)
            last = direction.last_steps()
            h_n.append(h[last])
            if c is not None:
                c_n.append(c[last])
            outputs.append(direction.natural(h))
        out = run.kernel_layout(torch.cat(outputs, 2))
        h_last = run.kernel_order(torch.stack(h_n))
        result = (out, h_last, run.kernel_order(torch.stack(c_n))) if lstm else (out, h_last)
    run._recomputed = found
    return result


def spans(run: LayerRun, d: int, weights: list, x: torch.Tensor, h0: torch.Tensor, c0: Optional[torch.Tensor],
          lengths: torch.Tensor, plan: LayerEdits, offset: int) -> tuple:
    """``direction_loop`` for a direction whose elements all run every step, with the steps before
    the first edited one and after the last run by the native kernel (their gates recomputed at
    once, fused.py): an edit of a few steps costs a few steps of our loop."""
    steps = x.shape[0]
    reverse = d == 1
    local = [steps - 1 - s for s in plan.local_steps(offset, steps)] if reverse else plan.local_steps(offset, steps)
    first, last = (min(local), max(local) + 1) if local else (steps, steps)
    pieces = []
    h_prev, c_prev = h0, c0
    for start, stop, edited in ((0, first, False), (first, last, True), (last, steps, False)):
        if start == stop:
            continue
        if edited:
            piece = direction_loop(run.module, weights, x[start:stop], h_prev, c_prev, lengths.clamp(max=stop - start),
                                   plan, offset, reverse, start=start, steps=steps)
        else:
            piece = native_span(run, d, weights, x[start:stop], h_prev, c_prev)
        pieces.append(piece)
        h_prev, c_prev = piece[0][-1], (piece[1][-1] if piece[1] is not None else None)
    if len(pieces) == 1:
        return pieces[0]
    h = torch.cat([p[0] for p in pieces])
    c = torch.cat([p[1] for p in pieces]) if c0 is not None else None
    gates = {name: torch.cat([p[2][name] for p in pieces]) for name in pieces[0][2]}
    return h, c, gates


def native_span(run: LayerRun, d: int, weights: list, x: torch.Tensor, h0: torch.Tensor,
                c0: Optional[torch.Tensor]) -> tuple:
    """(h, c, gates) of steps no edit touches: the native kernel of one direction from (h0, c0),
    its gates recomputed from its own h (fused.py)."""
    module = run.module
    # a step of a (time, batch, units) view is strided; cuDNN takes only contiguous states
    hx = [h0.unsqueeze(0).contiguous(), c0.unsqueeze(0).contiguous()] if c0 is not None else \
        h0.unsqueeze(0).contiguous()
    with warnings.catch_warnings():   # cuDNN copies one direction's weights out of the flat buffer
        warnings.filterwarnings("ignore", message="RNN module weights are not part")
        kernel: Any = NATIVE[module.mode]
        h = kernel(x, hx, weights, module.bias, 1, 0.0, False, False, False)[0]
    lengths = torch.full((x.shape[1],), x.shape[0], dtype=torch.long, device=x.device)
    direction = Direction(run, d == 1, lengths, x, h, h0)
    if module.mode == "LSTM":
        assert c0 is not None
        lstm_gates(direction, c0)
    elif module.mode == "GRU":
        gru_gates(direction)
    return direction.h, direction.c, direction.gates


def direction_loop(module: nn.RNNBase, weights: list, x: torch.Tensor, h0: torch.Tensor, c0: Optional[torch.Tensor],
                   lengths: torch.Tensor, plan: LayerEdits, offset: int, reverse: bool, start: int = 0,
                   steps: Optional[int] = None, live: Optional[dict] = None) -> tuple:
    """(h, c, gates) of one direction, each (time, batch, ·) in the order the steps are read
    (``x``'s), edits applied as each step computes its values. Past an element's length its state
    is carried unchanged (a PackedSequence's shorter elements). ``x`` may be the steps from
    ``start`` on of a direction of ``steps`` steps, all elements running all of them. The
    buffers hold values only; ``live`` (a dict, with gradients enabled) gets each step's tensors
    as computed, in the graph: "h", "c" and a projected LSTM's "m" (h_t = W_hr m_t)."""
    mode = module.mode
    w_ih, w_hh = weights[0], weights[1]
    b_ih, b_hh = (weights[2], weights[3]) if module.bias else (None, None)
    w_hr = weights[-1] if getattr(module, "proj_size", 0) else None
    count, batch = x.shape[:2]
    units = module.hidden_size
    full = bool((lengths == count).all())
    valid_rows = torch.arange(count, device=x.device).unsqueeze(1) < lengths.unsqueeze(0)     # (time, batch)
    lengths_np = lengths.cpu().numpy() if steps is None else steps
    names = {"LSTM": LSTM_GATES, "GRU": GRU_GATES}.get(mode, ())
    h = steps_buffer(x, h0.shape[1])
    c = steps_buffer(x, units) if mode == "LSTM" else None
    gates = {name: steps_buffer(x, units) for name in names}
    if mode == "LSTM":
        gi = affine(x, w_ih, b_ih + b_hh if b_ih is not None else None)
    else:
        gi = affine(x, w_ih, b_ih)
    w_hh_t = w_hh.t()
    h_prev, c_prev = h0, c0
    values: tuple
    for s in range(count):
        # the natural step each element is at: s forward; its length - 1 - s backward
        t = offset + start + s if not reverse else offset + lengths_np - 1 - start - s
        valid = None if full else valid_rows[s].cpu().numpy()

        def edit(quantity, value, t=t, valid=valid):
            return plan.apply(quantity, value, t, valid)

        if mode == "LSTM":
            pre = torch.addmm(gi[s], h_prev, w_hh_t)
            i, f, g, o = pre.chunk(4, 1)
            i, f, g, o = (edit(n, v) for n, v in zip(LSTM_GATES, (i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid())))
            c_t = edit("c", f * c_prev + i * g)
            h_t = o * c_t.tanh()
            if w_hr is not None:
                if live is not None:
                    live.setdefault("m", []).append(h_t)
                h_t = h_t @ w_hr.t()
            h_t = edit("h", h_t)
            values = (i, f, g, o)
        elif mode == "GRU":
            gh = torch.addmm(b_hh, h_prev, w_hh_t) if b_hh is not None else h_prev @ w_hh_t
            x_r, x_z, x_n = gi[s].chunk(3, 1)
            h_r, h_z, h_n = gh.chunk(3, 1)
            r = edit("reset", (x_r + h_r).sigmoid())
            z = edit("update", (x_z + h_z).sigmoid())
            n = edit("new", (x_n + r * h_n).tanh())
            h_t = edit("h", torch.lerp(n, h_prev, z))              # (1 - z) n + z h_{t-1}
            values = (r, z, n)
        else:
            pre = gi[s] + h_prev @ w_hh_t
            if b_hh is not None:
                pre = pre + b_hh
            h_t = edit("h", pre.tanh() if mode == "RNN_TANH" else pre.relu())
            values = ()
        if live is not None:   # as the step computed them: every later use reads these where the step is valid
            live.setdefault("h", []).append(h_t)
            if c is not None:
                live.setdefault("c", []).append(c_t)
        if not full:   # past its length an element keeps its state
            keep = valid_rows[s].unsqueeze(1)
            h_t = torch.where(keep, h_t, h_prev)
            if c is not None:
                c_t = torch.where(keep, c_t, c_prev)  # type: ignore[arg-type]  # an LSTM carries c
        h[s] = h_t.detach()
        if c is not None:
            c[s] = c_t.detach()
        for name, value in zip(names, values):
            gates[name][s] = value.detach()
        h_prev, c_prev = h_t, (c_t if c is not None else None)
    return h, c, gates


class EditHooks:
    """Forward hooks applying ``edits`` to cells in the user's loop (each call one step) and to
    the model called as a step module (its returned hidden, states "h" and "c"), put in before a
    recording's own hooks so it records the edited values. ``seen``: the layer names that ran
    -> their steps."""

    def __init__(self, who: str, model: nn.Module, edits: list, is_step=lambda args: True):
        self.who, self.model, self.edits, self.is_step = who, model, edits, is_step
        self.calls: dict = {}
        self.seen: dict = {}
        self.plans: dict = {}
        self._handles: list = []

    def __enter__(self) -> "EditHooks":
        self._handles.extend(hook_cells(self.model, self._cell_hook))
        if not cell_kind(self.model):
            root = module_label("", type(self.model).__name__)
            self._handles.append(self.model.register_forward_hook(self._step_hook(root)))
        return self

    def __exit__(self, *exc):
        remove_hooks(self._handles)
        return False

    def _step(self, name: str) -> int:
        t = self.calls[name] = self.calls.get(name, -1) + 1
        self.seen[name] = t + 1
        return t

    def _cell_hook(self, name: str, kind: str):
        def hook(cell, args, kwargs, output):
            t = self._step(name)
            if not any(e.layer == name for e in self.edits):
                return None
            x = args[0] if args else kwargs["input"]
            hx = args[1] if len(args) > 1 else kwargs.get("hx")
            plan = self.plan(name, kind, cell.hidden_size, output)
            batched = x.dim() == 2
            x_ = x if batched else x.unsqueeze(0)
            returned = output if isinstance(output, tuple) else (output,)
            if hx is None:
                prev = [torch.zeros_like(r if batched else r.unsqueeze(0)) for r in returned]
            else:
                prev = [p if batched else p.unsqueeze(0) for p in (hx if isinstance(hx, tuple) else (hx,))]

            def edit(quantity, value):       # (1, batch, units): this one step
                return plan.apply(quantity, value[0], t).unsqueeze(0)

            states, _ = cell_equations(cell, kind, x_.unsqueeze(0), prev[0].unsqueeze(0),
                                       prev[1].unsqueeze(0) if kind == "lstm" else None, edit)
            found = [states[k][0] if batched else states[k][0, 0] for k in (("h", "c") if kind == "lstm" else ("h",))]
            return tuple(found) if kind == "lstm" else found[0]
        return hook

    def plan(self, name: str, kind: str, hidden: int, output) -> LayerEdits:
        if name not in self.plans:
            first = output[0] if isinstance(output, tuple) else output
            batch = first.shape[0] if first.dim() == 2 else 1
            self.plans[name] = LayerEdits(self.who, name, self.edits, kind, widths_of(kind, hidden), batch, first)
        return self.plans[name]

    def _step_hook(self, name: str):
        def hook(module, args, output):
            if not (isinstance(output, (tuple, list)) and len(output) == 2 and self.is_step(args)):
                return None
            t = self._step(name)
            if not any(e.layer == name for e in self.edits):
                return None
            hidden = output[1]
            parts = list(hidden) if isinstance(hidden, (tuple, list)) else [hidden]
            if not all(isinstance(p, torch.Tensor) for p in parts[:2]):
                return None
            rows = [per_batch_view(p, args) for p in parts]
            batch = rows[0].shape[0]
            widths = {k: r.shape[1] for k, r in zip(("h", "c"), rows)}
            if name not in self.plans:
                self.plans[name] = LayerEdits(self.who, name, self.edits, "custom", widths, batch, rows[0])
            plan = self.plans[name]
            edited = [from_rows(plan.apply(k, r, t), p) if k in widths else p
                      for k, r, p in zip(("h", "c"), rows, parts)] + parts[2:]
            new_hidden = type(hidden)(edited) if isinstance(hidden, (tuple, list)) else edited[0]
            return type(output)((output[0], new_hidden)) if isinstance(output, tuple) else [output[0], new_hidden]
        return hook


def per_batch_view(state: torch.Tensor, args) -> torch.Tensor:
    """A step module's state laid out (batch, features) as a recording keeps it (recording.per_batch):
    (batch, ...) flattened, (layers, batch, units) moved, a batch-1 state flattened."""
    x = next((a for a in args if isinstance(a, torch.Tensor) and a.dim() in (1, 2)), None)
    batch = 1 if x is None or x.dim() == 1 else x.shape[0]
    if state.dim() >= 1 and state.shape[0] == batch:
        return state.reshape(batch, -1)
    if state.dim() == 3 and state.shape[1] == batch:
        return state.transpose(0, 1).reshape(batch, -1)
    return state.reshape(1, -1)


def from_rows(rows: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The inverse of ``per_batch_view``: ``rows`` (batch, features) in ``like``'s shape."""
    batch = rows.shape[0]
    if like.dim() >= 1 and like.shape[0] == batch:
        return rows.reshape(like.shape)
    if like.dim() == 3 and like.shape[1] == batch:
        return rows.reshape(batch, like.shape[0], like.shape[2]).transpose(0, 1)
    return rows.reshape(like.shape)
