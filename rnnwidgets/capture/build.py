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
    """tokens as one list of strings per batch element, or a clear error."""
    if tokens is None:
        return None
    expected = "a list of strings (batch 1) or one list of strings per batch element"
    if isinstance(tokens, str) or not isinstance(tokens, (list, tuple)):
        raise TypeError(f"{caller}: tokens: expected {expected}, got {type(tokens).__name__}")
    if all(isinstance(t, str) for t in tokens):
        return [list(tokens)]
    if all(isinstance(seq, (list, tuple)) and all(isinstance(t, str) for t in seq) for seq in tokens):
        return [list(seq) for seq in tokens]
    raise TypeError(f"{caller}: tokens: expected {expected}, got a {type(tokens).__name__} of other values")


class TraceBuilder:
    """Layers and trace fields as capture collects them; ``build`` makes the Trace once.

    ``layer(name, kind, meta)`` returns that layer's parts: a dict of ``states``, ``gates``,
    ``tracks``, ``grads``, ``initial`` (dicts of numpy arrays) and ``meta``, filled by the
    capture path until ``build``. Trace fields (``outputs``, ``inputs``, ``tokens``,
    ``lengths``, ``param_grads``, ``meta``) are attributes set the same way.
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

    def layer(self, name: str, kind: str, meta: Optional[dict] = None, **groups) -> dict:
        if name in self.layers:
            raise ValueError(f"{self.caller}: two layers named {name!r}")
        parts = {group: dict(groups.pop(group, None) or {}) for group in LAYER_GROUPS}
        if groups:
            raise TypeError(f"unknown layer parts {sorted(groups)}")
        self.layers[name] = layer = {"kind": kind, "meta": dict(meta or {}), **parts}
        return layer

    def build(self, order=None, batch: Optional[int] = None) -> Trace:
        """The Trace, validated whole; ``order``: layer names in display order (default: as added)."""
        names = list(self.layers) if order is None else list(order)
        layers = {name: LayerTrace(name, self.layers[name]["kind"], meta=self.layers[name]["meta"],
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
                   tokens=normalize_tokens(self.tokens, self.caller), param_grads=self.param_grads,
                   meta=self.meta, batch=batch)
        warn_non_finite(f"{self.caller}: {self.meta['model']}", tr.layers.values(), stacklevel=3)
        return tr
