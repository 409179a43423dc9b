"""Trace -> the Explorer's payload for one batch element.

One float32 buffer (little-endian bytes) holds every (time, units) array of that element, each
C-order so the browser reads unit u at step t at ``t * units + u``; a small JSON index says where
each array starts (in float32 values) and how to colour it. The browser makes zero-copy views.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import numpy as np

from ..trace import Trace

SIGMOID_GATES = frozenset({"input", "forget", "output", "reset", "update"})
TOP_K = 5

Labels = Union[Sequence[str], Callable[[int], str], None]


def _max_abs(array: np.ndarray) -> float:
    finite = np.abs(array[np.isfinite(array)])
    return float(finite.max()) if finite.size else 0.0


def colour_scale(name: str, array: np.ndarray) -> dict:
    """How to colour a quantity, over the whole trace so batch elements compare.

    Sigmoid gates: 0..1. Everything that can go negative (h, c, tanh candidates, most tracks):
    diverging, symmetric around 0. Non-negative tracks (e.g. a ReLU): sequential from 0.
    """
    if name in SIGMOID_GATES:
        return {"scale": "sequential", "vmin": 0.0, "vmax": 1.0}
    top = _max_abs(array) or 1.0
    finite = array[np.isfinite(array)]
    if name not in ("h", "c", "cell", "new") and finite.size and finite.min() >= 0:
        return {"scale": "sequential", "vmin": 0.0, "vmax": top}
    return {"scale": "diverging", "vmin": -top, "vmax": top}


def trace_scales(trace: Trace) -> dict:
    """(layer name, quantity name) -> colour scale, computed once per trace."""
    return {(lt.name, name): colour_scale(name, array)
            for lt in trace.layers.values() for name, array in lt.quantities().items()}


def is_output_head(trace: Trace) -> bool:
    """Whether ``trace.outputs`` are a head's scores (worth a softmax) and not just a layer's h."""
    out = trace.outputs
    if out is None or out.shape[2] < 2:
        return False
    return not any(lt.states["h"].shape == out.shape and np.array_equal(lt.states["h"], out)
                   for lt in trace.layers.values())


def label_of(labels: Labels, i: int) -> str:
    if labels is None:
        return str(i)
    if callable(labels):
        return str(labels(i))
    return str(labels[i]) if 0 <= i < len(labels) else str(i)


def top_predictions(scores: np.ndarray, labels: Labels, k: int = TOP_K):
    """Softmax top-k of (time, classes) scores: ids into a compact label list, probabilities, labels."""
    k = min(k, scores.shape[1])
    scores = scores.astype(np.float64)
    shifted = scores - np.max(scores, axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    top_probs = np.take_along_axis(probs, top, axis=1)
    used, compact = np.unique(top, return_inverse=True)
    return (compact.reshape(top.shape).astype(np.float32), top_probs.astype(np.float32),
            [label_of(labels, int(i)) for i in used])


def build_payload(trace: Trace, batch: int = 0, labels: Labels = None,
                  scales: Optional[dict] = None) -> tuple[dict, bytes]:
    """The JSON index and the float32 bytes of batch element ``batch``."""
    if not 0 <= batch < trace.batch:
        raise IndexError(f"batch element {batch} is out of range: the trace holds {trace.batch}")
    scales = scales if scales is not None else trace_scales(trace)
    chunks, offset = [], 0

    def put(array: np.ndarray, name: str, scale: dict) -> dict:
        nonlocal offset
        array = np.ascontiguousarray(array, dtype="<f4")
        entry = {"name": name, "offset": offset, "steps": int(array.shape[0]),
                 "units": int(array.shape[1]), **scale}
        chunks.append(array)
        offset += array.size
        return entry

    layers = [{"name": lt.name, "kind": lt.kind,
               "quantities": [put(array[batch], name, scales[(lt.name, name)])
                              for name, array in lt.quantities().items()]}
              for lt in trace.layers.values()]
    inputs = None
    if trace.tokens is None and trace.inputs is not None:
        top = _max_abs(trace.inputs) or 1.0
        inputs = put(trace.inputs[batch], "inputs", {"scale": "diverging", "vmin": -top, "vmax": top})
    predictions = None
    if is_output_head(trace):
        ids, probs, names = top_predictions(trace.outputs[batch], labels)
        predictions = {"k": int(ids.shape[1]), "ids": put(ids, "ids", {})["offset"],
                       "probs": put(probs, "probs", {})["offset"], "labels": names}
    index = {"steps": trace.steps, "length": int(trace.lengths[batch]), "layers": layers,
             "inputs": inputs, "predictions": predictions}
    buffer = np.concatenate([c.ravel() for c in chunks]).tobytes() if chunks else b""
    return index, buffer
