"""A straightforward per-step reference for nn.LSTM / nn.GRU / nn.RNN, written from the PyTorch
documentation's equations: one batch element and one step at a time, every state kept as its own
tensor so autograd can give dL/dh_t for each step. Slow on purpose; only for tests."""
import torch
from torch import nn


def step(mode, w, x, h, c, inner=None, edit=None):
    """One step of one direction: (h, c, gates) from the documented equations; a projected
    LSTM's m_t = o_t tanh(c_t) (h_t = W_hr m_t) goes into ``inner["m"]`` when given.
    ``edit(name, value) -> value``: an intervention on each gate and state as it is computed."""
    edit = edit or (lambda name, value: value)
    if mode == "LSTM":
        i = edit("input", torch.sigmoid(_part(w, x, h, 0, 4)))
        f = edit("forget", torch.sigmoid(_part(w, x, h, 1, 4)))
        g = edit("cell", torch.tanh(_part(w, x, h, 2, 4)))
        o = edit("output", torch.sigmoid(_part(w, x, h, 3, 4)))
        c = edit("c", f * c + i * g)
        h = o * torch.tanh(c)
        if "weight_hr" in w:
            if inner is not None:
                inner["m"] = h
            h = w["weight_hr"] @ h
        return edit("h", h), c, {"input": i, "forget": f, "cell": g, "output": o}
    if mode == "GRU":
        r = edit("reset", torch.sigmoid(_part(w, x, h, 0, 3)))
        z = edit("update", torch.sigmoid(_part(w, x, h, 1, 3)))
        n = edit("new", torch.tanh(_input(w, x, 2, 3) + r * _hidden(w, h, 2, 3)))
        return edit("h", (1 - z) * n + z * h), None, {"reset": r, "update": z, "new": n}
    pre = _part(w, x, h, 0, 1)
    return edit("h", torch.tanh(pre) if mode == "RNN_TANH" else torch.relu(pre)), None, {}


def layer_weights(module, layer, reverse=False):
    """One direction's parameters by PyTorch's names without the suffix: weight_ih, weight_hh,
    bias_ih, bias_hh, weight_hr (those the module has)."""
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    return {k: getattr(module, k + suffix) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
            if hasattr(module, k + suffix)}


def _input(w, x, k, parts):
    rows = slice(k * w["weight_ih"].shape[0] // parts, (k + 1) * w["weight_ih"].shape[0] // parts)
    return w["weight_ih"][rows] @ x + (w["bias_ih"][rows] if "bias_ih" in w else 0)


def _hidden(w, h, k, parts):
    rows = slice(k * w["weight_hh"].shape[0] // parts, (k + 1) * w["weight_hh"].shape[0] // parts)
    return w["weight_hh"][rows] @ h + (w["bias_hh"][rows] if "bias_hh" in w else 0)


def _part(w, x, h, k, parts):
    return _input(w, x, k, parts) + _hidden(w, h, k, parts)


class Reference:
    """Runs ``module`` step by step on x (batch, time, features), natural order, ``lengths`` valid
    steps per element. ``states[name][key][(b, t)]`` holds each step's tensor (name as rw.trace
    names layers), ``output`` is (batch, time, directions*units) zero past each length, ``h_n``
    (and ``c_n``) as the module returns them (batched). ``edit(layer, b, t, name, value) -> value``:
    an intervention on each gate and state of each step as it is computed."""

    def __init__(self, module: nn.RNNBase, x, lengths, name="lstm", h0=None, c0=None, edit=None):
        directions = 2 if module.bidirectional else 1
        width = module.proj_size or module.hidden_size
        batch, steps, _ = x.shape
        zeros_h = x.new_zeros(width)
        zeros_c = x.new_zeros(module.hidden_size)
        self.states = {}
        self.inner = {}   # layer -> {"m": {(b, t): m_t}} of a projected LSTM (the gradients' "m")
        layer_in = {(b, t): x[b, t] for b in range(batch) for t in range(lengths[b])}
        h_n, c_n = [], []
        for layer in range(module.num_layers):
            outs = []
            for d in range(directions):
                w = layer_weights(module, layer, reverse=d == 1)
                layer_name = f"{name}.l{layer}" + (".reverse" if d else "")
                store = {}
                last_h, last_c = [], []
                row = layer * directions + d
                for b in range(batch):
                    h = h0[row, b] if h0 is not None else zeros_h
                    c = c0[row, b] if c0 is not None else zeros_c
                    order = range(lengths[b]) if d == 0 else reversed(range(lengths[b]))
                    for t in order:
                        inner = {}
                        at = (lambda key, value, b=b, t=t, n=layer_name: edit(n, b, t, key, value)) if edit else None
                        h, c_new, gates = step(module.mode, w, layer_in[(b, t)], h, c, inner, at)
                        c = c_new if c_new is not None else c
                        store.setdefault("h", {})[(b, t)] = h
                        if module.mode == "LSTM":
                            store.setdefault("c", {})[(b, t)] = c
                        for key, value in gates.items():
                            store.setdefault(key, {})[(b, t)] = value
                        for key, value in inner.items():
                            self.inner.setdefault(layer_name, {}).setdefault(key, {})[(b, t)] = value
                    last_h.append(h)
                    last_c.append(c)
                self.states[layer_name] = store
                outs.append(store["h"])
                h_n.append(torch.stack(last_h))
                c_n.append(torch.stack(last_c))
            layer_in = {key: torch.cat([o[key] for o in outs]) for key in outs[0]}
        self.output = torch.stack([torch.stack([layer_in.get((b, t), x.new_zeros(width * directions))
                                                for t in range(steps)]) for b in range(batch)])
        self.h_n = torch.stack(h_n)
        self.c_n = torch.stack(c_n) if module.mode == "LSTM" else None
        self.batch, self.steps = batch, steps

    def array(self, layer, key):
        """One quantity as (batch, time, units), zero past each length."""
        store = self.states[layer][key]
        units = next(iter(store.values())).shape[0]
        zero = next(iter(store.values())).new_zeros(units)
        return torch.stack([torch.stack([store.get((b, t), zero) for t in range(self.steps)])
                            for b in range(self.batch)])

    def grads(self, loss, key="h"):
        """dL/d<key>_t for every layer and step, through everything (autograd on the unrolled steps)."""
        names, cells = [], []
        for layer, store in self.states.items():
            for bt, value in {**store, **self.inner.get(layer, {})}.get(key, {}).items():
                names.append((layer, bt))
                cells.append(value)
        found = torch.autograd.grad(loss, cells, allow_unused=True, retain_graph=True)
        out = {}
        for (layer, (b, t)), g, value in zip(names, found, cells):
            if layer not in out:
                out[layer] = torch.zeros(self.batch, self.steps, value.shape[0], dtype=value.dtype)
            if g is not None:
                out[layer][b, t] = g
        return out
