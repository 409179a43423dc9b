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

from .fileio import NpzArchive, atomic_write
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
                  "param_grads": self.param_grads, "meta": self.meta,
                  "shapes": {name: list(a.shape) for name, a in arrays.items()}}  # checked before reading
        arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
        with atomic_write(path) as f:   # an interrupted save leaves the previous file as it was
            np.savez_compressed(f, **arrays)
        return path

    @classmethod
    def load(cls, path) -> "Trace":
        """Reopen a trace written by ``save``. A file that is not one, or is broken, inconsistent or
        hostile, gives a ValueError naming the file and what is wrong; every array's shape and size
        are checked against the file's header before it is inflated."""
        path = Path(path)
        with NpzArchive(path) as data:
            header = _read_header(data, path)
            wanted = _wanted_arrays(header, data)
            batch = data.check("lengths", "iu", 1, "the steps of each sequence")[0]
            for name, (ndim, what) in wanted.items():
                shape = data.check(name, "f", ndim, what)
                if shape[0] != batch:
                    raise ValueError(f"{path}: array {name!r} ({what}) has batch {shape[0]}, lengths has {batch}")
            shapes = header.get("shapes")
            for name, (info, shape) in data.checked.items():
                if shapes is not None and name != "header" and shapes.get(name) != list(shape):
                    raise ValueError(f"{path}: array {name!r} has shape {shape}, its header says {shapes.get(name)}")
            data.check_inflation()
            try:
                layers = {}
                for i, entry in enumerate(header["layers"]):
                    groups = {group: {key: data.read(f"l{i}/{group}/{j}") for j, key in enumerate(entry.get(group, []))}
                              for group in GROUPS}
                    layers[entry["name"]] = LayerTrace(entry["name"], entry["kind"], meta=entry["meta"], **groups)
                return cls(layers=layers, lengths=data.read("lengths"),
                           outputs=data.read("outputs") if "outputs" in wanted else None,
                           inputs=data.read("inputs") if "inputs" in wanted else None,
                           tokens=header["tokens"], param_grads=header["param_grads"], meta=header["meta"])
            except ValueError as e:
                if str(e).startswith(str(path)):
                    raise
                raise ValueError(f"{path}: {e}") from e


def _read_header(data: NpzArchive, path: Path) -> dict:
    """A trace file's JSON header, its fields of the types ``save`` writes, or a clear error."""
    data.check("header", "u", 1, "the JSON header")
    data.check_inflation()
    try:
        header = json.loads(bytes(data.read("header")).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ValueError(f"{path}: its header is not JSON text ({type(e).__name__})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: not a rnnwidgets trace of format {FORMAT_VERSION}")

    def expect(ok: bool, field: str, wanted: str):
        if not ok:
            raise ValueError(f"{path}: its header's {field} should be {wanted}")

    layers = header.get("layers")
    expect(isinstance(layers, list) and len(layers) > 0, "layers", "a non-empty list")
    for i, entry in enumerate(layers):
        expect(isinstance(entry, dict), f"layers[{i}]", "an object")
        expect(isinstance(entry.get("name"), str) and isinstance(entry.get("kind"), str),
               f"layers[{i}] name and kind", "strings")
        expect(isinstance(entry.get("meta"), dict), f"layers[{i}].meta", "an object")
        for group in GROUPS:
            keys = entry.get(group, [])   # "initial" is absent from files written before it was kept
            expect(isinstance(keys, list) and all(isinstance(k, str) for k in keys), f"layers[{i}].{group}",
                   "a list of strings")
    tokens = header.get("tokens")
    expect(tokens is None or (isinstance(tokens, list) and all(
        isinstance(seq, list) and all(isinstance(t, str) for t in seq) for seq in tokens)),
        "tokens", "null or one list of strings per sequence")
    expect(isinstance(header.get("param_grads"), dict), "param_grads", "an object")
    expect(isinstance(header.get("meta"), dict), "meta", "an object")
    shapes = header.get("shapes")
    expect(shapes is None or (isinstance(shapes, dict) and all(
        isinstance(v, list) and all(isinstance(n, int) for n in v) for v in shapes.values())),
        "shapes", "an object of lists of integers")
    return header


def _wanted_arrays(header: dict, data: NpzArchive) -> dict:
    """The arrays a trace file's header says it holds: name -> (dimensions, what it is)."""
    wanted = {name: (3, f"the model's {name}") for name in ("outputs", "inputs") if name in data}
    for i, entry in enumerate(header["layers"]):
        for group in GROUPS:
            for j, key in enumerate(entry.get(group, [])):
                wanted[f"l{i}/{group}/{j}"] = (2 if group == "initial" else 3, f"{entry['name']} {group}[{key!r}]")
    return wanted
