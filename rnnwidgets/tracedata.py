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

from .fileio import MAX_INFLATION, NpzArchive, atomic_write, check_replaceable
from .kinds import KINDS, is_reverse, last_forward_layer  # noqa: F401  (re-exported)

FORMAT_VERSION = 1
GROUPS = ("states", "gates", "tracks", "grads", "initial")   # a LayerTrace's arrays, as a file stores them
PARAM_STATS = ("norm", "mean_abs", "max_abs")   # what param_grads holds of each parameter's gradient
HEADER_CHECKED_FROM = 4 << 20   # a header past this many bytes must not pack far tighter than the file
LAYER_META = {"cell": str, "direction": str, "call": int, "calls": int, "layer": int}   # read by views and capture


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


def _as_lengths(where: str, lengths, batch, steps: int) -> np.ndarray:
    """Valid steps per batch element as int64 (batch,), each in [0, steps], or a clear error."""
    lengths = np.asarray(lengths)
    whole = np.issubdtype(lengths.dtype, np.integer) or np.array_equal(lengths, np.round(lengths))
    if lengths.size and not whole:
        raise ValueError(f"{where}: expected whole numbers of steps, got {lengths.tolist()}")
    lengths = lengths.astype(np.int64)
    if lengths.shape != (batch,):
        raise ValueError(f"{where}: expected shape ({batch},), got {lengths.shape}")
    bad = lengths[(lengths < 0) | (lengths > steps)]
    if bad.size:
        raise ValueError(f"{where}: expected each in [0, {steps}] (the valid steps of each batch element), "
                         f"got {bad.tolist()}")
    return lengths


def _as_tokens(where: str, tokens, batch) -> list:
    """Tokens as one list of strings per batch element, or a clear error."""
    tokens = [[str(tok) for tok in seq] for seq in tokens]
    if len(tokens) != batch:
        raise ValueError(f"{where}: expected one list per batch element ({batch}), got {len(tokens)}")
    for b, seq in enumerate(tokens):   # a lone surrogate cannot be sent to the page, saved or shown
        try:
            "".join(seq).encode("utf-8")
        except UnicodeEncodeError:
            t = next(t for t, tok in enumerate(seq) if not _encodable(tok))
            raise ValueError(f"{where}[{b}][{t}]: expected text UTF-8 can encode, got {seq[t]!r} (a lone surrogate, "
                             f"as bytes decoded with errors='surrogateescape' give; decode with errors='replace')"
                             ) from None
    return tokens


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def tokens_fit(tokens: list, lengths: np.ndarray, steps: int) -> bool:
    """Whether every element's tokens label a time axis of ``steps`` steps: at least its valid steps."""
    return all(int(n) <= len(seq) <= steps for seq, n in zip(tokens, lengths))


STEP_GROUPS = ("states", "gates", "tracks", "grads")   # a LayerTrace's (batch, time, units) arrays


def _gate_width(kind: str, states: dict, meta: dict):
    """How wide a layer's gates must be: an LSTM's as its cell state c (h may be a narrower
    projection), every other kind with gates as its h; None where no rule applies."""
    if kind == "lstm":
        key = "c"
    elif kind in ("gru", "rnn") or (kind == "cell" and meta.get("cell") in ("gru", "rnn")):
        key = "h"
    elif kind == "cell":
        key = "c" if "c" in states else "h"
    else:
        return None
    return states[key].shape[2] if key in states else None


@dataclass
class LayerTrace:
    """One recurrent layer (one direction) over the whole sequence.

    ``states``: "h" (and "c" for LSTM); ``gates``: LSTM "input" "forget" "cell" "output",
    GRU "reset" "update" "new"; ``tracks``: any other per-step tensor (submodule outputs,
    ``rw.record``); ``grads``: dL/d<state> through time. Every array is (batch, time, units),
    and every array of one layer has the same batch and the same number of steps (``batch``,
    ``steps``); gates are as wide as the state they update, a gradient as its state.
    ``meta`` holds what a view may want to show (module path, layer index, direction, sizes).

    ``initial``: the state the recurrence started from, per batch element, as (batch, units)
    arrays keyed like ``states`` ("h", "c"; each as wide as that state): the state fed into
    the layer's first step in the order it processes them — before step 0 for a forward layer,
    into step ``length_b - 1`` for a reverse one. It is the hidden the user gave (zeros when
    none was); empty when capture had no tensor to take it from.

    Each layer has its own time axis (an encoder over the source, its decoder over the target):
    ``lengths``, when set, are the valid steps of each batch element of this layer, each in
    ``[0, steps]`` (None: the trace's ``lengths``, cut at this layer's steps: see
    ``Trace.layer_lengths``); ``tokens``, when set, one list of strings per batch element
    labelling this layer's own steps (None: the trace's tokens where they fit: see
    ``Trace.layer_tokens``).

    Validated at construction; code that changes the arrays afterwards calls ``validate()``.
    """

    name: str
    kind: str
    states: dict = field(default_factory=dict)
    gates: dict = field(default_factory=dict)
    tracks: dict = field(default_factory=dict)
    grads: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    initial: dict = field(default_factory=dict)
    lengths: Optional[np.ndarray] = None
    tokens: Optional[list] = None

    def __post_init__(self):
        self.validate()

    def validate(self) -> "LayerTrace":
        """Check the layer whole (converting arrays to float32); a clear ValueError when not."""
        if self.kind not in KINDS:
            raise ValueError(f"LayerTrace {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        shape = None   # (batch, steps), and the array that set it
        for group in STEP_GROUPS:
            arrays = getattr(self, group)
            for key in list(arrays):
                where = f"{self.name}.{group}[{key!r}]"
                arrays[key] = a = _as_steps(where, arrays[key])
                if shape is None:
                    shape = (a.shape[:2], where)
                elif a.shape[:2] != shape[0]:
                    raise ValueError(f"LayerTrace {self.name!r}: {group}[{key!r}]: expected (batch, steps) "
                                     f"{shape[0]} like {shape[1]}, got shape {a.shape}")
        for key, grad in self.grads.items():
            if key in self.states and grad.shape != self.states[key].shape:
                raise ValueError(f"LayerTrace {self.name!r}: grads[{key!r}]: expected the shape of states[{key!r}] "
                                 f"{self.states[key].shape}, got {grad.shape}")
        width = _gate_width(self.kind, self.states, self.meta)
        for key, gate in self.gates.items():
            if width is not None and gate.shape[2] != width:
                raise ValueError(f"LayerTrace {self.name!r}: gates[{key!r}]: expected {width} units, as wide as the "
                                 f"state it updates, got shape {gate.shape}")
        for key in list(self.initial):
            self.initial[key] = _as_initial(self.name, key, self.initial[key], self.states)
        if self.lengths is not None:
            self.lengths = _as_lengths(f"LayerTrace {self.name!r}: lengths", self.lengths, self.batch, self.steps)
        if self.tokens is not None:
            self.tokens = _as_tokens(f"LayerTrace {self.name!r}: tokens", self.tokens, self.batch)
        return self

    @property
    def h(self) -> np.ndarray:
        return self.states["h"]

    def _arrays(self):
        return (a for group in STEP_GROUPS for a in getattr(self, group).values())

    @property
    def batch(self) -> Optional[int]:
        """Batch elements of every array of the layer; None when it has no arrays."""
        return next((a.shape[0] for a in self._arrays()), None)

    @property
    def steps(self) -> int:
        """This layer's own number of steps (layers of one Trace may differ); 0 with no arrays."""
        return next((a.shape[1] for a in self._arrays()), 0)

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
    None; ``tokens``: one list of strings per batch element, or None; ``param_grads``: parameter
    name -> {"norm", "mean_abs", "max_abs"} when a loss was given; ``inputs``: the input features
    per step when they are numeric, else None.

    ``batch``: how many sequences; by default the first layer's. Every layer has it, except a
    module's later call kept apart (``meta["call"]`` >= 1), which may have run on another batch,
    and a layer of tracks only (``rw.record`` outside any module: a value shared by the batch).
    Layers may differ in steps (an encoder over 7 source tokens, its decoder run for 10 steps):
    each layer keeps its own time axis (``LayerTrace.steps``, ``layer_lengths(name)``,
    ``layer_tokens(name)``); ``steps`` is the longest layer's. ``lengths``: the valid steps of
    each batch element, each in ``[0, steps]``, for the layers that carry none of their own (cut
    at a layer's own steps). ``outputs`` and ``inputs`` have ``batch`` rows and at most ``steps``
    steps. ``tokens``: labels shared by every layer whose time axis they fit (``tokens[b]`` holds
    at least that layer's valid steps and at most its steps); at least one layer must fit them.
    A layer's own ``LayerTrace.tokens`` take its place for that layer.

    Validated whole at construction; code that changes it afterwards calls ``validate()``.
    """

    layers: dict
    lengths: np.ndarray
    outputs: Optional[np.ndarray] = None
    tokens: Optional[list] = None
    inputs: Optional[np.ndarray] = None
    param_grads: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    batch: Optional[int] = None

    def __post_init__(self):
        self.validate()

    def validate(self) -> "Trace":
        """Check the trace whole — every layer, and lengths, outputs, inputs and tokens against
        them — converting arrays to their stored dtypes; a clear ValueError when it does not hold."""
        if not self.layers:
            raise ValueError("a Trace needs at least one layer")
        for name, lt in self.layers.items():
            if not isinstance(lt, LayerTrace):
                raise ValueError(f"layers[{name!r}]: expected a LayerTrace, got {type(lt).__name__}")
            lt.validate()
            if lt.batch is None:
                raise ValueError(f"layers[{name!r}]: expected at least one (batch, time, units) array, got none")
        batch = self.first.batch if self.batch is None else self.batch
        assert batch is not None  # every layer holds arrays: checked above
        self.batch = int(batch)
        for name, lt in self.layers.items():
            if lt.batch != self.batch and not lt.meta.get("call") and lt.states:
                raise ValueError(f"layers[{name!r}]: expected batch {self.batch} like the trace, got {lt.batch}")
        batch, steps = self.batch, self.steps
        self.lengths = _as_lengths("lengths", self.lengths, batch, steps)
        for group in ("outputs", "inputs"):
            value = getattr(self, group)
            if value is not None:
                value = _as_steps(group, value)
                if value.shape[0] != batch or value.shape[1] > steps:
                    raise ValueError(f"{group}: expected a (batch, time, features) array with batch {batch} and "
                                     f"at most {steps} steps, got shape {value.shape}")
                setattr(self, group, value)
        for name, lt in self.layers.items():
            if lt.tokens is not None and not tokens_fit(lt.tokens, self.layer_lengths(name), lt.steps):
                raise ValueError(f"layers[{name!r}].tokens: expected between its valid steps "
                                 f"{self.layer_lengths(name).tolist()} and its {lt.steps} steps per batch element, "
                                 f"got {[len(seq) for seq in lt.tokens]} tokens")
        if self.tokens is not None:
            self.tokens = _as_tokens("tokens", self.tokens, batch)
            axes = {(lt.steps, tuple(self.layer_lengths(name).tolist())) for name, lt in self.layers.items()}
            if len(axes) == 1 and not any(self._shares_tokens(name) for name in self.layers):
                ((steps, lengths),) = axes   # one time axis: say which element is off
                b = next(b for b, seq in enumerate(self.tokens) if not lengths[b] <= len(seq) <= steps)
                raise ValueError(f"tokens[{b}]: expected {lengths[b]} tokens (its length), got {len(self.tokens[b])}")
            if not any(self._shares_tokens(name) for name in self.layers):
                listed = ", ".join(f"{name!r} {lt.steps} steps (valid {self.layer_lengths(name).tolist()})"
                                   for name, lt in self.layers.items())
                raise ValueError(f"tokens: expected one label per valid step of a layer ({listed}), got "
                                 f"{[len(seq) for seq in self.tokens]} tokens per batch element; for layers with "
                                 f"their own steps pass tokens={{layer name: tokens, ...}}")
        return self

    def layer_lengths(self, name: str) -> np.ndarray:
        """The valid steps of each batch element in layer ``name``: its own, else the trace's cut
        at its steps."""
        lt = self.layers[name]
        return lt.lengths if lt.lengths is not None else np.minimum(self.lengths, lt.steps)

    def layer_tokens(self, name: str) -> Optional[list]:
        """The labels of layer ``name``'s steps (one list per batch element): its own, else the
        trace's when they fit its time axis, else None (shown by step number)."""
        lt = self.layers[name]
        if lt.tokens is not None:
            return lt.tokens
        return self.tokens if self._shares_tokens(name) else None

    def _shares_tokens(self, name: str) -> bool:
        lt = self.layers[name]
        return (self.tokens is not None and lt.tokens is None and lt.batch == self.batch
                and tokens_fit(self.tokens, self.layer_lengths(name), lt.steps))

    @property
    def first(self) -> LayerTrace:
        return next(iter(self.layers.values()))

    @property
    def steps(self) -> int:
        """The longest layer's steps: the time axis ``lengths`` counts along."""
        return max(lt.steps for lt in self.layers.values())

    def __repr__(self):
        names = ", ".join(self.layers)
        return f"Trace(batch={self.batch}, steps={self.steps}, layers=[{names}])"

    # ---- saving -------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the trace to one ``.npz`` file (no pickle); reopen with ``Trace.load``. The file is
        written beside ``path`` and renamed over it once whole; an existing file is replaced only
        when it is a .npz archive (a previous save), never a folder or another kind of file."""
        path = Path(path)
        check_replaceable(path, "Trace.save", (b"pk\x03\x04", b"pk\x05\x06"), "a .npz archive (a saved trace)",
                          members=".npy")
        arrays = {"lengths": self.lengths}
        if self.outputs is not None:
            arrays["outputs"] = self.outputs
        if self.inputs is not None:
            arrays["inputs"] = self.inputs
        layers = []
        for i, lt in enumerate(self.layers.values()):
            entry = {"name": lt.name, "kind": lt.kind, "meta": lt.meta, "tokens": lt.tokens}
            if lt.lengths is not None:
                arrays[f"l{i}/lengths"] = lt.lengths
            for group in GROUPS:
                entry[group] = list(getattr(lt, group))
                for j, value in enumerate(getattr(lt, group).values()):
                    arrays[f"l{i}/{group}/{j}"] = value
            layers.append(entry)
        header = {"format": FORMAT_VERSION, "layers": layers, "tokens": self.tokens,
                  "param_grads": self.param_grads, "meta": self.meta,
                  "shapes": {name: list(a.shape) for name, a in arrays.items()}}  # checked before reading
        arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
        with atomic_write(path) as f:   # an interrupted save leaves the previous file as it was
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]  # numpy's stub reads **arrays as allow_pickle
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
            for i, entry in enumerate(header["layers"]):
                if f"l{i}/lengths" in data:
                    shape = data.check(f"l{i}/lengths", "iu", 1, f"the steps of each sequence in {entry['name']}")
                    if shape[0] != batch:
                        raise ValueError(f"{path}: array 'l{i}/lengths' has batch {shape[0]}, lengths has {batch}")
            for name, (ndim, what) in wanted.items():
                shape = data.check(name, "f", ndim, what)
                if shape[0] != batch:
                    raise ValueError(f"{path}: array {name!r} ({what}) has batch {shape[0]}, lengths has {batch}")
            for i, entry in enumerate(header["layers"]):   # steps only an array with data can say
                shapes_of = [data.checked[f"l{i}/{g}/{j}"][1]
                             for g in STEP_GROUPS for j in range(len(entry.get(g, [])))]
                if shapes_of and all(s[2] == 0 for s in shapes_of) and any(s[1] > 0 for s in shapes_of):
                    raise ValueError(f"{path}: layer {entry['name']!r}: expected at least one unit in its arrays, "
                                     f"got shapes {shapes_of} (steps without any values)")
            shapes = header.get("shapes")
            for name, (_, shape) in data.checked.items():
                if shapes is not None and name != "header" and shapes.get(name) != list(shape):
                    raise ValueError(f"{path}: array {name!r} has shape {shape}, its header says {shapes.get(name)}")
            data.check_inflation()
            try:
                layers = {}
                for i, entry in enumerate(header["layers"]):
                    groups = {group: {key: data.read(f"l{i}/{group}/{j}") for j, key in enumerate(entry.get(group, []))}
                              for group in GROUPS}
                    own = f"l{i}/lengths"   # absent from files of layers without their own time axis
                    layers[entry["name"]] = LayerTrace(entry["name"], entry["kind"], meta=entry["meta"], **groups,
                                                       lengths=data.read(own) if own in data else None,
                                                       tokens=entry.get("tokens"))
                return cls(layers=layers, lengths=data.read("lengths"),
                           outputs=data.read("outputs") if "outputs" in wanted else None,
                           inputs=data.read("inputs") if "inputs" in wanted else None,
                           tokens=header.get("tokens"), param_grads=header["param_grads"], meta=header["meta"])
            except ValueError as e:
                if str(e).startswith(str(path)):
                    raise
                raise ValueError(f"{path}: {e}") from e


def _read_header(data: NpzArchive, path: Path) -> dict:
    """A trace file's JSON header, its fields of the types ``save`` writes, or a clear error."""
    (size,) = data.check("header", "u", 1, "the JSON header")
    data.check_inflation()
    # Parsed, JSON takes up to ~25 times its text in memory ("[]," is a 56-byte list): a header of
    # 63 MB of "[]," packs into 61 KB and would take 1.5 GB. Tokens that pack as well come with
    # arrays of as many steps, so the whole file is compared.
    if size > HEADER_CHECKED_FROM and size > MAX_INFLATION * data.size:
        raise ValueError(f"{path}: its JSON header would inflate to {size} bytes from a file of {data.size}, more "
                         f"than {MAX_INFLATION} times: not a header a trace holds (a JSON bomb?); refused unread")
    try:
        header = json.loads(bytes(data.read("header")).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ValueError(f"{path}: its header is not JSON text ({type(e).__name__})") from None
    if not isinstance(header, dict) or type(header.get("format")) is not int or header["format"] != FORMAT_VERSION:
        raise ValueError(f"{path}: not a rnnwidgets trace of format {FORMAT_VERSION}")
    if not _encodable(json.dumps(header, ensure_ascii=False)):   # "\ud800" escapes: text no page can show
        raise ValueError(f"{path}: its header should hold text UTF-8 can encode, got a lone surrogate (a \\ud800 "
                         f"escape)")

    def expect(ok: bool, field: str, wanted: str):
        if not ok:
            raise ValueError(f"{path}: its header's {field} should be {wanted}")

    layers = header.get("layers")
    expect(isinstance(layers, list) and len(layers) > 0, "layers", "a non-empty list")
    assert isinstance(layers, list)  # expect raised otherwise
    for i, entry in enumerate(layers):
        expect(isinstance(entry, dict), f"layers[{i}]", "an object")
        expect(isinstance(entry.get("name"), str) and isinstance(entry.get("kind"), str),
               f"layers[{i}] name and kind", "strings")
        expect(isinstance(entry.get("meta"), dict), f"layers[{i}].meta", "an object")
        for key, kind in LAYER_META.items():   # the fields code reads of a layer's meta, of the types capture writes
            value = entry["meta"].get(key)
            expect(value is None or (isinstance(value, kind) and not isinstance(value, bool)),
                   f"layers[{i}].meta[{key!r}]", f"null or {'a whole number' if kind is int else 'a string'}")
        for group in GROUPS:
            keys = entry.get(group, [])   # "initial" is absent from files written before it was kept
            expect(isinstance(keys, list) and all(isinstance(k, str) for k in keys) and len(set(keys)) == len(keys),
                   f"layers[{i}].{group}", "a list of distinct strings")
    names = [entry["name"] for entry in layers]
    expect(len(set(names)) == len(names), "layer names", f"distinct, got {names}")
    def token_lists(tokens) -> bool:
        return tokens is None or (isinstance(tokens, list) and all(
            isinstance(seq, list) and all(isinstance(t, str) for t in seq) for seq in tokens))

    for i, entry in enumerate(layers):
        expect(token_lists(entry.get("tokens")), f"layers[{i}].tokens", "null or one list of strings per sequence")
    expect(token_lists(header.get("tokens")), "tokens", "null or one list of strings per sequence")
    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    grads = header.get("param_grads")   # parameter -> its gradient's {"norm", "mean_abs", "max_abs"}
    expect(isinstance(grads, dict) and all(isinstance(g, dict) and set(g) >= set(PARAM_STATS) and all(
        number(g[k]) for k in PARAM_STATS) for g in grads.values()), "param_grads",
        "an object giving each parameter's 'norm', 'mean_abs' and 'max_abs' as numbers")
    meta = header.get("meta")
    expect(isinstance(meta, dict), "meta", "an object")
    assert isinstance(meta, dict)
    selection = meta.get("selection")   # where a window of steps starts: the views number steps from it
    steps = selection.get("steps") if isinstance(selection, dict) else None
    expect(selection is None or (isinstance(selection, dict) and (steps is None or (
        isinstance(steps, list) and len(steps) == 2 and type(steps[0]) is int and steps[0] >= 0
        and (steps[1] is None or type(steps[1]) is int)))),
        "meta.selection", "null or an object whose steps are null or [first, stop], whole numbers (stop may be null)")
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
