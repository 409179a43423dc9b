"""The one way capture makes a Trace: collect every layer's numpy arrays, then build once.

Every capture path (fused modules, cells in a user's loop, step modules, ``rw.record`` tracks,
gradients and ``param_grads``) fills a ``TraceBuilder`` and calls ``build`` at the end, so the
Trace is validated whole when it is made and nothing fills it afterwards; ``build`` also checks
the tokens and warns about non-finite values the same way for every path.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..tracedata import LayerTrace, Trace
from .finite import warn_non_finite

LAYER_GROUPS = ("states", "gates", "tracks", "grads", "initial")


def normalize_tokens(tokens, caller: str = "rw.trace"):
    """tokens as one list of strings per batch element, or a clear error; a dict (tokens of
    each layer: see ``layer_tokens``) as a dict of those."""
    if tokens is None:
        return None
    if isinstance(tokens, dict):
        return {key: normalize_tokens(value, f"{caller}: tokens[{key!r}]") for key, value in tokens.items()}
    expected = ("a list of strings (batch 1), one list of strings per batch element, or a dict of those by "
                "layer name")
    if isinstance(tokens, str) or not isinstance(tokens, (list, tuple)):
        raise TypeError(f"{caller}: tokens: expected {expected}, got {type(tokens).__name__}")
    if all(isinstance(t, str) for t in tokens):
        return [list(tokens)]
    if all(isinstance(seq, (list, tuple)) and all(isinstance(t, str) for t in seq) for seq in tokens):
        return [list(seq) for seq in tokens]
    raise TypeError(f"{caller}: tokens: expected {expected}, got a {type(tokens).__name__} of other values")


def layer_tokens(tokens: dict, names, caller: str = "rw.trace") -> dict:
    """Layer name -> its tokens, from ``{key: tokens}`` where a key names a layer
    (``"decoder.gru.l0"``) or a module path holding layers (``"decoder"`` covers
    ``decoder.gru.l0``, ``decoder.gru.l1``, ``decoder.gru.l0.reverse``); the longest key that
    names a layer wins. A key that names no layer is refused, listing the layers."""
    def covers(key: str, name: str) -> bool:
        return name == key or name.startswith((key + ".", key + "@"))

    names = list(names)
    for key in tokens:
        if not isinstance(key, str) or not any(covers(key, name) for name in names):
            raise ValueError(f"{caller}: tokens: expected keys naming layers or modules holding them, one of "
                             f"{names}, got {key!r}")
    found = {}
    for name in names:
        keys = [key for key in tokens if covers(key, name)]
        if keys:
            found[name] = tokens[max(keys, key=len)]
    return found


class TraceBuilder:
    """Layers and trace fields as capture collects them; ``build`` makes the Trace once.

    ``layer(name, kind, meta)`` returns that layer's parts: a dict of ``states``, ``gates``,
    ``tracks``, ``grads``, ``initial`` (dicts of numpy arrays), ``meta`` and ``lengths``, filled by the
    capture path until ``build``. Trace fields (``outputs``, ``inputs``, ``tokens``,
    ``lengths``, ``param_grads``, ``meta``) are attributes set the same way; ``tokens`` may be a
    dict of each layer's own tokens (``layer_tokens``).
    """

    def __init__(self, caller: str, model_name: str, source: str):
        self.caller = caller           # the function users called, named in warnings and errors
        self.layers: dict = {}         # name -> parts, in the order the layers are shown
        self.outputs: Optional[np.ndarray] = None
        self.inputs: Optional[np.ndarray] = None
        self.tokens = None
        self.lengths: Optional[np.ndarray] = None  # default: every step of the longest layer, for every element
        self.param_grads: dict = {}
        self.meta: dict = {"source": source, "model": model_name}

    def layer(self, name: str, kind: str, meta: Optional[dict] = None, lengths=None, **groups) -> dict:
        """``lengths``: the layer's own valid steps per batch element, when its time axis is its own."""
        if name in self.layers:
            raise ValueError(f"{self.caller}: two layers named {name!r}")
        parts = {group: dict(groups.pop(group, None) or {}) for group in LAYER_GROUPS}
        if groups:
            raise TypeError(f"unknown layer parts {sorted(groups)}")
        self.layers[name] = layer = {"kind": kind, "meta": dict(meta or {}), "lengths": lengths, **parts}
        return layer

    def build(self, order=None, batch: Optional[int] = None) -> Trace:
        """The Trace, validated whole; ``order``: layer names in display order (default: as added)."""
        names = list(self.layers) if order is None else list(order)
        tokens = normalize_tokens(self.tokens, self.caller)
        own = layer_tokens(tokens, names, self.caller) if isinstance(tokens, dict) else {}
        layers = {name: LayerTrace(name, self.layers[name]["kind"], meta=self.layers[name]["meta"],
                                   lengths=self.layers[name]["lengths"], tokens=own.get(name),
                                   **{g: self.layers[name][g] for g in LAYER_GROUPS}) for name in names}
        first = next(iter(layers.values()), None)
        if first is None:
            raise ValueError("a Trace needs at least one layer")
        lengths = self.lengths
        if lengths is None:
            rows = first.batch if batch is None else batch
            if rows is None:
                raise ValueError(f"layers[{first.name!r}]: expected at least one (batch, time, units) array, got none")
            lengths = np.full(rows, max(lt.steps for lt in layers.values()))
        tr = Trace(layers=layers, lengths=lengths, outputs=self.outputs, inputs=self.inputs,
                   tokens=None if isinstance(tokens, dict) else tokens, param_grads=self.param_grads,
                   meta=self.meta, batch=batch)
        warn_non_finite(f"{self.caller}: {self.meta['model']}", tr.layers.values(), stacklevel=3)
        return tr
