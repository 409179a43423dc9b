"""The Trace: the one data model every view reads.

numpy only (no torch), float32 arrays laid out (batch, time, units). Saved as one ``.npz``
file holding the arrays plus a JSON header, so a trace reopens without torch or pickle.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from .fileio import atomic_write
from .kinds import KINDS, is_reverse, last_forward_layer  # noqa: F401  (re-exported)

FORMAT_VERSION = 1
GROUPS = ("states", "gates", "tracks", "grads", "initial")   # a LayerTrace's arrays, as a file stores them


def _as_steps(name: str, array) -> np.ndarray:
    """A per-step array as float32 (batch, time, features), or a clear error."""
    a = np.asarray(array, dtype=np.float32)
    if a.ndim != 3:
        raise ValueError(f"{name}: expected a (batch, time, features) array, got shape {a.shape}")
    return a


def _as_initial(layer: str, key: str, array, states: dict) -> np.ndarray:
    """An initial state as float32 (batch, units) matching ``states[key]``, or a clear error."""
    where = f"LayerTrace {layer!r}: initial[{key!r}]"
    if key not in states:
        raise ValueError(f"{where}: expected a key of the layer's states {sorted(states)}, got {key!r}")
    a = np.asarray(array, dtype=np.float32)
    batch, _, units = states[key].shape
    if a.shape != (batch, units):
        raise ValueError(f"{where}: expected a (batch, units) array of shape ({batch}, {units}), the batch and "
                         f"width of states[{key!r}], got shape {a.shape}")
    return a


@dataclass
class LayerTrace:
    """One recurrent layer (one direction) over the whole sequence.

    ``states``: "h" (and "c" for LSTM); ``gates``: LSTM "input" "forget" "cell" "output",
    GRU "reset" "update" "new"; ``tracks``: any other per-step tensor (submodule outputs,
    ``rw.record``); ``grads``: dL/d<state> through time. Every array is (batch, time, units).
    ``meta`` holds what a view may want to show (module path, layer index, direction, sizes).

    ``initial``: the state the recurrence started from, per batch element, as (batch, units)
    arrays keyed like ``states`` ("h", "c"; each as wide as that state): the state fed into
    the layer's first step in the order it processes them — before step 0 for a forward layer,
    into step ``length_b - 1`` for a reverse one. It is the hidden the user gave (zeros when
    none was); empty when capture had no tensor to take it from.
    """

    name: str
    kind: str
    states: dict = field(default_factory=dict)
    gates: dict = field(default_factory=dict)
    tracks: dict = field(default_factory=dict)
    grads: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    initial: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"LayerTrace {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        for group in ("states", "gates", "tracks", "grads"):
            arrays = getattr(self, group)
            for key in list(arrays):
                arrays[key] = _as_steps(f"{self.name}.{group}[{key!r}]", arrays[key])
        for key in list(self.initial):
            self.initial[key] = _as_initial(self.name, key, self.initial[key], self.states)

    @property
    def h(self) -> np.ndarray:
        return self.states["h"]

    @property
    def reverse(self) -> bool:
        """Whether the layer runs backward in time (a bidirectional module's second direction)."""
        return is_reverse(self.name)

    @property
    def units(self) -> int:
        return self.states["h"].shape[2]

    def quantities(self) -> dict:
        """Every (batch, time, units) array of this layer by a display name: h, c, gates, tracks."""
        out = dict(self.states)
        out.update(self.gates)
        out.update(self.tracks)
        return out

    def __repr__(self):
        shape = "x".join(str(n) for n in self.states["h"].shape) if "h" in self.states else "?"
        return (f"LayerTrace({self.name!r}, kind={self.kind!r}, h={shape}, gates={sorted(self.gates)}, "
                f"tracks={sorted(self.tracks)}, grads={sorted(self.grads)})")


@dataclass
class Trace:
    """What a recurrent model did at every step, for every layer.

    ``layers``: name -> LayerTrace in forward order ("<module path>.l<k>", "+.reverse" for the
    backward direction); ``outputs``: the model's own output per step (batch, time, features) or
    None; ``tokens``: one list of strings per batch element, or None; ``lengths``: valid steps per
    batch element; ``param_grads``: parameter name -> {"norm", "mean_abs", "max_abs"} when a loss
    was given; ``inputs``: the input features per step when they are numeric, else None.
    """

    layers: dict
    lengths: np.ndarray
    outputs: Optional[np.ndarray] = None
    tokens: Optional[list] = None
    inputs: Optional[np.ndarray] = None
    param_grads: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.layers:
            raise ValueError("a Trace needs at least one layer")
        self.lengths = np.asarray(self.lengths, dtype=np.int64)
        if self.outputs is not None:
            self.outputs = _as_steps("outputs", self.outputs)
        if self.inputs is not None:
            self.inputs = _as_steps("inputs", self.inputs)
        batch, steps = self.batch, self.steps
        if self.lengths.shape != (batch,):
            raise ValueError(f"lengths: expected shape ({batch},), got {self.lengths.shape}")
        if self.tokens is not None:
            self.tokens = [[str(tok) for tok in seq] for seq in self.tokens]
            if len(self.tokens) != batch:
                raise ValueError(f"tokens: expected one list per batch element ({batch}), got {len(self.tokens)}")
            for b, seq in enumerate(self.tokens):
                if len(seq) < int(self.lengths[b]) or len(seq) > steps:
                    raise ValueError(f"tokens[{b}]: expected {int(self.lengths[b])} tokens (its length), got {len(seq)}")

    @property
    def first(self) -> LayerTrace:
        return next(iter(self.layers.values()))

    @property
    def batch(self) -> int:
        return self.first.states["h"].shape[0]

    @property
    def steps(self) -> int:
        return self.first.states["h"].shape[1]

    def __repr__(self):
        names = ", ".join(self.layers)
        return f"Trace(batch={self.batch}, steps={self.steps}, layers=[{names}])"

    # ---- saving -------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the trace to one ``.npz`` file (no pickle); reopen with ``Trace.load``."""
        path = Path(path)
        arrays = {"lengths": self.lengths}
        if self.outputs is not None:
            arrays["outputs"] = self.outputs
        if self.inputs is not None:
            arrays["inputs"] = self.inputs
        layers = []
        for i, lt in enumerate(self.layers.values()):
            entry = {"name": lt.name, "kind": lt.kind, "meta": lt.meta}
            for group in GROUPS:
                entry[group] = list(getattr(lt, group))
                for j, (key, value) in enumerate(getattr(lt, group).items()):
                    arrays[f"l{i}/{group}/{j}"] = value
            layers.append(entry)
        header = {"format": FORMAT_VERSION, "layers": layers, "tokens": self.tokens,
                  "param_grads": self.param_grads, "meta": self.meta}
        arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
        with atomic_write(path) as f:   # an interrupted save leaves the previous file as it was
            np.savez_compressed(f, **arrays)
        return path

    @classmethod
    def load(cls, path) -> "Trace":
        with np.load(Path(path), allow_pickle=False) as data:
            header = json.loads(bytes(data["header"]).decode("utf-8"))
            if header.get("format") != FORMAT_VERSION:
                raise ValueError(f"{path}: not a rnnwidgets trace of format {FORMAT_VERSION}")
            layers = {}
            for i, entry in enumerate(header["layers"]):
                entry.setdefault("initial", [])   # a file written before initial states were kept
                groups = {group: {key: data[f"l{i}/{group}/{j}"] for j, key in enumerate(entry[group])}
                          for group in GROUPS}
                layers[entry["name"]] = LayerTrace(entry["name"], entry["kind"], meta=entry["meta"], **groups)
            return cls(layers=layers, lengths=data["lengths"],
                       outputs=data["outputs"] if "outputs" in data else None,
                       inputs=data["inputs"] if "inputs" in data else None,
                       tokens=header["tokens"], param_grads=header["param_grads"], meta=header["meta"])
