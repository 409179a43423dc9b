"""Traces of a whole dataset: ``rw.trace_dataset`` runs ``rw.trace`` batch by batch and keeps every
sequence's steps end to end.

A ``DatasetTrace`` holds, per layer and quantity, one float32 array (total_steps, units): the
valid steps of every sequence concatenated in order, with ``offsets`` saying where each sequence
starts. Up to ``max_memory`` bytes stay in RAM; past that every array goes to a zarr (v3) store,
chunked along steps and appended as the batches arrive, so 10 million steps x 512 units never
need to fit in memory. Tokens are stored as int32 ids into ``vocab``.

Saved as a zarr group (a local folder, or any fsspec URL such as ``s3://bucket/ds``): one array
per quantity plus ``offsets`` and ``token_ids``, the layers and vocabulary in the group's
attributes; ``DatasetTrace.load`` reopens it lazily (chunks are read when sliced).
"""
from __future__ import annotations

import contextlib
import functools
import itertools
import json
import math
import os
import re
import secrets
import shutil
import stat
import sys
import tempfile
import weakref
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Literal, Optional, Sequence, Union

import numpy as np

from .fileio import INFLATION_CHECKED_FROM, MAX_INFLATION, WriterLock, building_folder, check_folder, swap_in
from .kinds import CELL_KINDS, KINDS
from .tracedata import LayerTrace, Trace, last_forward_layer

FORMAT_VERSION = 2
FORMAT_KEY = "rnnwidgets_dataset"  # the group attribute holding the format version
LEGACY_HEADER = "dataset.json"  # format 1: .npy files and this header
DEFAULT_MAX_MEMORY = 1 << 30
MAX_KEPT_OUTPUTS = 1024  # outputs=None keeps a model's per-step outputs up to this many features (a head's scores)
CHUNK_BYTES = 16 << 20  # one chunk of a (steps, units) array: a few steps' worth of every unit
ARRAY_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
MAX_CHUNK_BYTES = 256 << 20  # a loaded store's chunks (ours are CHUNK_BYTES): each one is decoded whole when read


def chunk_rows(units: int, itemsize: int = 4, chunk_bytes: Optional[int] = None, rows: Optional[int] = None) -> int:
    """Steps per chunk of a (steps, units) array of about ``chunk_bytes`` (CHUNK_BYTES), and no
    more than the array's ``rows`` where they are known: zarr writes an edge chunk whole, so a
    100-step array in 16 MB chunks would take 16 MB on disk."""
    step = max(1, (chunk_bytes or CHUNK_BYTES) // (max(units, 1) * itemsize))
    return step if rows is None else min(step, max(1, rows))


def _rows(array, a: Optional[int] = None, b: Optional[int] = None) -> np.ndarray:
    """Rows [a, b) of a dataset array as numpy; a zarr chunk that cannot be decoded (a damaged or
    truncated store) is a ValueError naming the array and its rows, not the codec's bare error."""
    if isinstance(array, np.ndarray):
        return array[a:b]
    try:
        return np.asarray(array[a:b])
    except MemoryError as e:
        # rows that fit in a few chunks' memory cannot run out of it: a chunk's codec frame declared
        # more than its chunk holds (zstd allocates what its frame header says)
        rows = len(range(*slice(a, b).indices(array.shape[0]))) if array.ndim else 1
        if rows * array.dtype.itemsize * math.prod(array.shape[1:]) > 2 * MAX_CHUNK_BYTES:
            raise
        error: Exception = e
    except Exception as e:   # a codec's error (zstd, gzip, blosc), a chunk file of the wrong size
        error = e
    where = getattr(array, "store_path", None) or getattr(array, "path", "a zarr array")
    detail = f"{type(error).__name__}: {error}" if str(error) else f"a chunk declares more bytes than it holds: " \
        f"{type(error).__name__}"
    raise ValueError(f"{where}: rows {a or 0}:{array.shape[0] if b is None else b} cannot be read, the store is "
                     f"damaged ({detail})")


def _is_url(path) -> bool:
    return isinstance(path, str) and "://" in path


def _open_group(where, mode: Literal["r", "r+", "a", "w", "w-"]):
    import zarr

    # each array's own zarr.json, never a consolidated copy at the group's (which could say
    # other shapes and name arrays the store does not hold); our stores write none
    return zarr.open_group(where if _is_url(where) else str(where), mode=mode, zarr_format=3, use_consolidated=False)


def _compressors(compression):
    """zarr's ``compressors`` for ``compression``: None/False (off: fastest), True (zstd), a codec
    name ("zstd", "gzip", "blosc"), or a zarr codec."""
    if compression is None or compression is False:
        return None
    from zarr import codecs

    if compression is True or compression == "zstd":
        return codecs.ZstdCodec(level=3)
    if compression == "gzip":
        return codecs.GzipCodec()
    if compression == "blosc":
        return codecs.BloscCodec()
    if isinstance(compression, str):
        raise ValueError("compression: expected None, True, 'zstd', 'gzip', 'blosc' or a zarr codec, "
                         f"got {compression!r}")
    return compression


class _Column:
    """One growing (steps, units) array: chunks in memory until spilled, then appended to a zarr
    array a whole chunk at a time (a partly filled chunk waits in memory until it is full)."""

    def __init__(self, units: int, dtype: str = "<f4", chunk_bytes: Optional[int] = None):
        self.units, self.dtype = units, np.dtype(dtype)
        self.chunks: list = []  # rows not written yet
        self.held = 0  # their count
        self.rows = 0
        self.target: Optional[tuple] = None  # (group, name, compression) once spilled
        self.array = None  # made at the first write
        self.step = chunk_rows(units, self.dtype.itemsize, chunk_bytes)

    @property
    def shape(self) -> tuple:
        return (self.rows, self.units) if self.units else (self.rows,)

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        self.rows += rows.shape[0]
        self.held += rows.shape[0]
        self.chunks.append(rows)
        if self.target is not None and self.held >= self.step:
            self._flush(whole_chunks_only=True)

    def spill(self, group, name: str, compression) -> None:
        """From now on rows go to array ``name`` of ``group``; the ones held so far are written first."""
        self.target = (group, name, compression)
        self._flush(whole_chunks_only=True)

    def _make_array(self):
        # made at the first write, not at spill: a column that never fills a chunk gets chunks
        # only as tall as its rows (chunk_rows)
        assert self.target is not None, "spill() names the array before rows are flushed to it"
        group, name, compression = self.target
        step = min(self.step, max(1, self.rows))
        self.array = group.create_array(name, shape=(0, self.units) if self.units else (0,),
                                        chunks=(step, self.units) if self.units else (step,), dtype=self.dtype,
                                        compressors=_compressors(compression), fill_value=0)

    def _flush(self, whole_chunks_only: bool) -> None:
        if self.array is None and (self.held >= self.step or not whole_chunks_only):
            self._make_array()
        if not self.chunks:
            return
        pending = np.concatenate(self.chunks)
        written = self.rows - self.held
        n = (len(pending) // self.step) * self.step if whole_chunks_only else len(pending)
        if n:
            assert self.array is not None
            self.array.resize((written + n, *self.array.shape[1:]))
            self.array[written:written + n] = pending[:n]
        self.chunks = [pending[n:]] if n < len(pending) else []
        self.held = len(pending) - n

    def finish(self):
        if self.target is None:
            if not self.chunks:
                return np.zeros(self.shape, self.dtype)
            return np.concatenate(self.chunks).reshape(self.shape)
        self._flush(whole_chunks_only=False)
        return self.array


class DatasetTrace:
    """Every sequence of a dataset, traced: per layer, per quantity, (total_steps, units) float32.

    ``layers``: layer name -> {quantity name ("h", "c", gate names) -> array}; ``kinds``: layer
    name -> kind ("lstm", ...); ``offsets``: int64 (sequences + 1,), sequence i is steps
    ``offsets[i]:offsets[i + 1]``; ``token_ids``: int32 (total_steps,) into ``vocab`` or None;
    ``outputs``: the model's own output at each step (total_steps, features) or None.
    ``layer_offsets``: layer name -> its own offsets, for a layer with its own time axis (a
    decoder run for more steps than its encoder read): its arrays hold every step of every
    sequence of that layer (``offsets_of(layer)``); the other layers, tokens and ``lengths``
    follow ``offsets``.
    Arrays are numpy arrays, or zarr arrays read a chunk at a time (``on_disk``; ``folder`` is
    their store: a local path or an fsspec URL).
    """

    def __init__(self, layers: dict, kinds: dict, offsets, token_ids=None, vocab: Optional[list] = None,
                 folder=None, generation: Optional[str] = None, layer_offsets: Optional[dict] = None,
                 outputs=None, edits: Optional[list] = None, cells: Optional[dict] = None):
        self.layers, self.kinds = layers, kinds
        # a layer of cells in the user's loop (kind "cell"): the cell's own kind, as its Trace's
        # meta["cell"] says ("lstm" for an nn.LSTMCell), so its views draw that cell's equations
        self.cells = dict(cells or {})
        wrong = {n: c for n, c in self.cells.items() if kinds.get(n) != "cell" or c not in CELL_KINDS}
        if wrong:
            raise ValueError(f"cells: expected, for layers of kind 'cell', one of {CELL_KINDS}, got {wrong!r}")
        self.outputs = outputs
        # the edits (rw.clamp / rw.patch) every sequence was traced under, as a Trace's meta["edits"] lists them
        self.edits = list(edits or [])
        if not all(isinstance(e, dict) for e in self.edits):
            raise ValueError(f"edits: expected a list of edits as plain data (Edit.describe()), got {edits!r}")
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.layer_offsets = {name: np.asarray(o, dtype=np.int64) for name, o in (layer_offsets or {}).items()}
        self.token_ids, self.vocab = token_ids, vocab
        self.folder = folder  # where the arrays live (a Path or an fsspec URL), or None when in memory
        self.generation = generation  # the store's own id: a store written over since has another
        if not layers:
            raise ValueError("a DatasetTrace needs at least one layer")
        named = [("offsets", self.offsets), *((f"layer_offsets[{n!r}]", o) for n, o in self.layer_offsets.items())]
        for name, offs in named:
            if offs.ndim != 1 or offs.size == 0 or offs[0] != 0 or np.any(np.diff(offs) < 0):
                raise ValueError(f"{name}: expected a non-decreasing int array starting at 0")
            if offs.shape != self.offsets.shape:
                raise ValueError(f"{name}: expected one offset per sequence plus the total, {self.offsets.shape}, "
                                 f"got shape {offs.shape}")
        unknown = sorted(set(self.layer_offsets) - set(layers))
        if unknown:
            raise ValueError(f"layer_offsets: expected names of layers {list(layers)}, got {unknown}")
        for name, quantities in layers.items():
            steps = int(self.offsets_of(name)[-1])
            for key, array in quantities.items():
                if len(array.shape) != 2 or array.shape[0] != steps:
                    raise ValueError(f"{name}[{key!r}]: expected ({steps}, units), got shape {array.shape}")
        if (token_ids is None) != (vocab is None):
            raise ValueError("token_ids and vocab go together: give both or neither")
        if token_ids is not None and tuple(token_ids.shape) != (self.steps,):
            raise ValueError(f"token_ids: expected shape ({self.steps},), got {token_ids.shape}")
        if outputs is not None and (len(outputs.shape) != 2 or outputs.shape[0] != self.steps):
            raise ValueError(f"outputs: expected ({self.steps}, features), got shape {outputs.shape}")

    # ---- shape ----------------------------------------------------------------------------
    @property
    def steps(self) -> int:
        return int(self.offsets[-1])

    def offsets_of(self, layer: str) -> np.ndarray:
        """Where each sequence starts in ``layer``'s arrays, plus their total: its own offsets when
        its time axis is its own, else ``offsets``."""
        return self.layer_offsets.get(layer, self.offsets)

    @property
    def sequences(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def on_disk(self) -> bool:
        return self.folder is not None

    @property
    def default_layer(self) -> str:
        """The last forward layer: what the model hands on (as the Explorer picks)."""
        return last_forward_layer(self.layers)

    def values(self, layer: Optional[str] = None, quantity: str = "h") -> np.ndarray:
        """The (total_steps, units) array of one layer's quantity, or a clear error."""
        layer = layer or self.default_layer
        if layer not in self.layers:
            raise ValueError(f"layer: expected one of {list(self.layers)}, got {layer!r}")
        if quantity not in self.layers[layer]:
            raise ValueError(f"quantity: expected one of {list(self.layers[layer])} for {layer}, got {quantity!r}")
        self.check_current()
        return self.layers[layer][quantity]

    def __repr__(self):
        where = f"on disk at {self.folder}" if self.on_disk else "in memory"
        layers = ", ".join(f"{n}: {sorted(q)}" for n, q in self.layers.items())
        edited = f", edits={len(self.edits)}" if self.edits else ""
        return f"DatasetTrace(sequences={self.sequences}, steps={self.steps}, {where}, layers=[{layers}]{edited})"

    # ---- sequences --------------------------------------------------------------------------
    def locate(self, step: int) -> tuple:
        """(sequence, position in it) of a step of the concatenated dataset."""
        if not 0 <= step < self.steps:
            raise IndexError(f"step: expected 0 <= step < {self.steps}, got {step}")
        seq = int(np.searchsorted(self.offsets, step, side="right")) - 1
        return seq, int(step - self.offsets[seq])

    def tokens(self, sequence: int, start: int = 0, end: Optional[int] = None) -> Optional[list]:
        """The tokens of one sequence (positions [start, end)), or None without tokens."""
        self._check_sequence(sequence)
        if self.token_ids is None:
            return None
        first = int(self.offsets[sequence])
        stop = int(self.offsets[sequence + 1]) if end is None else first + end
        assert self.vocab is not None   # token ids come with their vocabulary
        return [self.vocab[i] for i in self.token_ids[first + start:stop]]

    def sequence(self, i: int) -> Trace:
        """Sequence ``i`` as a one-element Trace (batch 1), for ``rw.explore``.

        Its layers have no ``initial`` state: a DatasetTrace keeps per-step arrays only (an
        initial row per sequence, layer and state is 1/length of the arrays again, on disk too,
        and zeros unless ``rw.trace`` was given a hidden)."""
        self._check_sequence(i)
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        self.check_current()
        layers = {}
        for name, quantities in self.layers.items():
            own = name in self.layer_offsets   # a layer with its own time axis: its own steps
            la, lb = (int(x) for x in self.offsets_of(name)[i:i + 2])
            states = {k: _rows(v, la, lb)[None] for k, v in quantities.items() if k in ("h", "c")}
            gates = {k: _rows(v, la, lb)[None] for k, v in quantities.items() if k not in ("h", "c")}
            layers[name] = LayerTrace(name, self.kinds[name], states=states, gates=gates,
                                      lengths=np.array([lb - la]) if own else None,
                                      meta={"cell": self.cells[name]} if name in self.cells else {})
        tokens = [self.tokens(i)] if self.token_ids is not None else None
        outputs = None if self.outputs is None else _rows(self.outputs, a, b)[None]
        meta: dict = {"dataset_sequence": i}
        if self.edits:
            meta["edits"] = self.edits
        return Trace(layers=layers, lengths=np.array([b - a]), outputs=outputs, tokens=tokens, meta=meta)

    def _check_sequence(self, i: int) -> None:
        if not 0 <= i < self.sequences:
            raise IndexError(f"sequence: expected 0 <= sequence < {self.sequences}, got {i}")

    # ---- saving -----------------------------------------------------------------------------
    def check_current(self) -> None:
        """A clear error when this DatasetTrace's store was written over or removed since it was
        opened (its chunks would be another dataset's): reopen it then."""
        if self.folder is None or self.generation is None:
            return
        try:
            now = _open_group(self.folder, "r").attrs.get("generation")
        except Exception:  # removed, or unreadable: not the store this trace opened
            now = None
        if now != self.generation:
            raise RuntimeError(f"{self.folder} was replaced or removed since this DatasetTrace opened it; "
                               f"reopen it with rw.DatasetTrace.load({str(self.folder)!r})")

    def save(self, path, *, compression=None):
        """Write the dataset trace as a zarr group at ``path`` (a folder, or an fsspec URL); reopen
        with ``load``. ``compression``: None (off, fastest), True or "zstd", "gzip", "blosc", or a
        zarr codec.

        At a local path, a folder holding a previous dataset trace is replaced once the new one is
        complete; a folder holding anything else is refused. At a URL the previous dataset trace
        is removed first (object stores have no rename). Saved into its own store, only the
        attributes and the arrays not yet there are written, each under a name no other array has."""
        if self.folder is not None:
            self.check_current()
        if _is_url(path):
            if self.folder is not None and str(self.folder) == path:
                self._write_store(_open_group(path, "r+"), compression)
                return path
            _clear_url(path, "DatasetTrace.save", overwrite=True)
            self._write_store(_open_group(path, "w"), compression, generation=secrets.token_hex(8))
            return path
        path = Path(path)
        check_folder(path, "DatasetTrace.save", "folder")
        with WriterLock(path, "DatasetTrace.save"):
            if self.folder is not None and not _is_url(self.folder) and path.is_dir() \
                    and path.resolve() == Path(self.folder).resolve():
                self._write_store(_open_group(path, "r+"), compression)
                return path
            _check_free(path, "DatasetTrace.save", overwrite=True)
            built = building_folder(path)
            try:
                self._write_store(_open_group(built, "w"), compression, generation=secrets.token_hex(8))
                swap_in(built, path)
            except BaseException:
                shutil.rmtree(built, ignore_errors=True)
                raise
        return path

    def _write_store(self, group, compression, generation: Optional[str] = None) -> None:
        """Every array into ``group``, then the attributes that name them. Arrays already in the
        group's store stay where they are; the others go to names no array there has, so no array
        is ever written over another. Arrays the previous attributes named and these do not are
        removed last. ``generation``: a new store's id (None: this trace's own store, kept)."""
        previous = _named_arrays(group.attrs.asdict())
        taken = set(group.array_keys())
        layers = []
        for i, (name, quantities) in enumerate(self.layers.items()):
            arrays = {key: _place(group, array, f"l{i}_q{j}", taken, compression)
                      for j, (key, array) in enumerate(quantities.items())}
            entry = {"name": name, "kind": self.kinds[name], "arrays": arrays}
            if name in self.cells:
                entry["cell"] = self.cells[name]
            if name in self.layer_offsets:
                entry["offsets"] = _place(group, self.layer_offsets[name], f"l{i}_offsets", taken, None)
            layers.append(entry)
        offsets = _place(group, self.offsets, "offsets", taken, None)
        token_ids = None if self.token_ids is None else _place(group, self.token_ids, "token_ids", taken, compression)
        outputs = None if self.outputs is None else _place(group, self.outputs, "outputs", taken, compression)
        header = {FORMAT_KEY: FORMAT_VERSION, "generation": generation or self.generation,
                  "layers": layers, "vocab": self.vocab, "offsets": offsets, "token_ids": token_ids,
                  "outputs": outputs, "edits": self.edits or None}
        group.attrs.put(header)
        for stale in previous - _named_arrays(header):
            with contextlib.suppress(KeyError, FileNotFoundError):
                del group[stale]

    @classmethod
    def load(cls, path) -> "DatasetTrace":
        """Reopen a saved dataset trace (a folder or an fsspec URL), lazily: its arrays are zarr
        arrays whose chunks are read when sliced.

        A store that is broken, inconsistent or hostile gives a ValueError naming it and what is
        wrong: every array is one of the group's own (a plain name, never a path elsewhere), a
        local folder holds no links, shapes, dtypes, chunk sizes and token ids are checked before use,
        and arrays declaring far more bytes than the store holds are refused before any is read. A
        folder of the earlier .npy format says how to re-create it."""
        where = path if _is_url(path) else Path(path)
        stored: Optional[int] = None   # the bytes the store holds, once known
        if not _is_url(path):
            if (where / LEGACY_HEADER).is_file():
                raise ValueError(f"{where}: a dataset trace of an earlier rnnwidgets format (.npy files), which this "
                                 f"version no longer reads; re-create it with rw.trace_dataset(model, batches, "
                                 f"path={str(where)!r}, overwrite=True)")
            if not (where / "zarr.json").is_file():
                raise FileNotFoundError(f"{where}: not a saved rnnwidgets dataset trace (no zarr.json)")
            stored = _refuse_links(where)
        try:
            group = _open_group(where, "r")
        except FileNotFoundError:
            raise FileNotFoundError(f"{where}: not a saved rnnwidgets dataset trace (no zarr group)") from None
        except Exception as e:  # zarr's own errors for a malformed zarr.json
            raise ValueError(f"{where}: not a readable zarr group ({type(e).__name__}: {e})") from None
        header = _read_header(group.attrs.asdict(), where)
        try:
            names = set(group.array_keys())
        except Exception as e:  # zarr's own errors for a member's malformed zarr.json
            raise ValueError(f"{where}: not a readable zarr group ({type(e).__name__}: {e})") from None
        opened: dict = {}

        def open_array(name, what: str):
            """The group's own array ``name``, its metadata checked: nothing of it is read yet."""
            if not isinstance(name, str) or not ARRAY_NAME.match(name) or name not in names:
                raise ValueError(f"{where}: {what} should be the name of an array in the group, got {name!r}")
            if name not in opened:
                try:
                    found = group[name]
                    chunk_bytes = math.prod(found.chunks) * found.dtype.itemsize
                except Exception as e:  # an unknown codec, a negative shape, a malformed zarr.json
                    raise ValueError(f"{where}: array {name!r} ({what}) is not a readable zarr array "
                                     f"({type(e).__name__}: {e})") from None
                if chunk_bytes > MAX_CHUNK_BYTES:
                    raise ValueError(f"{where}: array {name!r} ({what}): expected chunks of at most {MAX_CHUNK_BYTES} "
                                     f"bytes (each is decoded whole), got chunks {found.chunks} of {found.dtype}")
                opened[name] = found
            return opened[name]

        # every array the header names, checked before any is read: their declared sizes against
        # the bytes the store holds, so a few bytes cannot declare terabytes to be read (a zip bomb)
        roles = {a: f"{entry['name']}[{key!r}]" for entry in header["layers"] for key, a in entry["arrays"].items()}
        roles.update({entry.get("offsets"): f"{entry['name']} offsets" for entry in header["layers"]})
        roles.update({header.get(k): k.replace("_", " ") for k in ("offsets", "token_ids", "outputs")})
        declared = sum(math.prod(open_array(n, roles.get(n, "an array")).shape) * opened[n].dtype.itemsize
                       for n in sorted(_named_arrays(header)))
        if stored is None and _is_url(where):
            stored = _stored_bytes(str(where))
        if stored is not None and declared > INFLATION_CHECKED_FROM and declared > MAX_INFLATION * max(stored, 1):
            raise ValueError(f"{where}: its arrays declare {declared} bytes where the store holds {stored}, more than "
                             f"{MAX_INFLATION} times: not data a dataset trace holds; refused unread")

        def array(name, kinds: str, ndim: int, what: str):
            found = open_array(name, what)
            if found.dtype.kind not in kinds or found.ndim != ndim:
                wanted = {"f": "floats", "iu": "integers"}[kinds]
                raise ValueError(f"{where}: array {name!r} ({what}): expected a {ndim}-d array of {wanted}, "
                                 f"got shape {found.shape} of {found.dtype}")
            return found

        offsets = _rows(array(header["offsets"], "iu", 1, "offsets"))
        if offsets.size == 0:
            raise ValueError(f"{where}: offsets: expected at least one offset (0), got none")
        steps = int(offsets[-1])

        def stepped(name, kinds, ndim, what):
            found = array(name, kinds, ndim, what)
            if found.shape[0] != steps:
                raise ValueError(f"{where}: array {name!r} ({what}): {found.shape[0]} steps where the offsets "
                                 f"end at {steps}")
            return found

        layer_offsets = {entry["name"]: _rows(array(entry["offsets"], "iu", 1, f"{entry['name']} offsets"))
                         for entry in header["layers"] if "offsets" in entry}

        def layer_array(entry, key, a):
            own = layer_offsets.get(entry["name"])
            if own is None:
                return stepped(a, "f", 2, f"{entry['name']}[{key!r}]")
            return array(a, "f", 2, f"{entry['name']}[{key!r}]")   # checked against its own offsets below

        layers = {entry["name"]: {key: layer_array(entry, key, a) for key, a in entry["arrays"].items()}
                  for entry in header["layers"]}
        kinds = {entry["name"]: entry["kind"] for entry in header["layers"]}
        cells = {entry["name"]: entry["cell"] for entry in header["layers"] if "cell" in entry}
        token_ids = None
        if header["vocab"] is not None:
            token_ids = stepped(header["token_ids"], "iu", 1, "token ids")
            _check_token_ids(token_ids, len(header["vocab"]), where)
        outputs = None if header.get("outputs") is None else stepped(header["outputs"], "f", 2, "outputs")
        try:
            return cls(layers, kinds, offsets, token_ids, header["vocab"], folder=where,
                       generation=header["generation"], layer_offsets=layer_offsets, outputs=outputs,
                       edits=header.get("edits"), cells=cells)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from e


def _read_header(header: dict, where) -> dict:
    """A dataset trace's group attributes, of the types ``save`` writes, or a clear error."""
    if header.get(FORMAT_KEY) != FORMAT_VERSION:
        raise ValueError(f"{where}: not a rnnwidgets dataset trace of format {FORMAT_VERSION}")
    try:   # "\ud800" escapes: text no page can show
        json.dumps(header, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{where}: its attributes should hold text UTF-8 can encode, got a lone surrogate (a "
                         f"\\ud800 escape)") from None

    def expect(ok: bool, field: str, wanted: str):
        if not ok:
            raise ValueError(f"{where}: {field} should be {wanted}")

    layers = header.get("layers")
    expect(isinstance(layers, list) and len(layers) > 0, "layers", "a non-empty list")
    assert isinstance(layers, list)
    for i, entry in enumerate(layers):
        expect(isinstance(entry, dict) and isinstance(entry.get("name"), str), f"layers[{i}]",
               "an object with a string name")
        expect(entry.get("kind") in KINDS, f"layers[{i}].kind", f"one of {KINDS}")
        expect(entry.get("cell", "lstm") in CELL_KINDS, f"layers[{i}].cell", f"one of {CELL_KINDS}")
        arrays = entry.get("arrays")
        expect(isinstance(arrays, dict) and all(isinstance(a, str) for a in arrays.values()), f"layers[{i}].arrays",
               "an object of array names")
        expect(isinstance(entry.get("offsets", ""), str), f"layers[{i}].offsets", "an array name")
    names = [entry["name"] for entry in layers]
    expect(len(set(names)) == len(names), "layers' names", f"distinct, got {names}")
    vocab = header.get("vocab")
    expect(vocab is None or (isinstance(vocab, list) and all(isinstance(t, str) for t in vocab)), "vocab",
           "null or a list of strings")
    expect(isinstance(header.get("offsets"), str), "offsets", "an array name")
    expect(vocab is None or isinstance(header.get("token_ids"), str), "token_ids", "an array name")
    expect(isinstance(header.get("generation"), str), "generation", "a string")
    expect(header.get("outputs") is None or isinstance(header.get("outputs"), str), "outputs", "null or an array name")
    edits = header.get("edits")
    expect(edits is None or (isinstance(edits, list) and all(isinstance(e, dict) for e in edits)), "edits",
           "null or a list of objects")
    return header


def _check_token_ids(token_ids, vocab: int, where) -> None:
    """Every token id indexes the vocabulary: checked a chunk at a time, never read whole."""
    step = token_ids.chunks[0]
    for a in range(0, token_ids.shape[0], step):
        ids = _rows(token_ids, a, a + step)
        if ids.size and not (0 <= int(ids.min()) and int(ids.max()) < vocab):
            raise ValueError(f"{where}: token ids outside the vocabulary of {vocab} tokens")


def _refuse_links(folder: Path) -> int:
    """A local store is a tree of plain files and folders: a link could point anywhere. Returns the
    bytes its files hold."""
    stored = 0
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            if os.path.islink(os.path.join(root, name)):
                raise ValueError(f"{folder}: {os.path.relpath(os.path.join(root, name), folder)}: expected a plain "
                                 f"file or folder (it is a link)")
        for name in files:
            info = os.lstat(os.path.join(root, name))
            if not stat.S_ISREG(info.st_mode):   # a pipe would be read without end
                raise ValueError(f"{folder}: {os.path.relpath(os.path.join(root, name), folder)}: expected a plain "
                                 f"file or folder (it is a pipe, device or socket)")
            stored += info.st_size
    return stored


def _stored_bytes(url: str) -> Optional[int]:
    """The bytes a store at an fsspec URL holds, or None where the filesystem cannot say."""
    try:
        import fsspec

        fs, root = fsspec.core.url_to_fs(url)
        return int(fs.du(root, total=True))
    except Exception:
        return None


def _named_arrays(header: dict) -> set:
    """The arrays a dataset header names (none when it is not one)."""
    try:
        names = {a for entry in header["layers"] for a in (*entry["arrays"].values(), entry.get("offsets"))}
        names |= {header.get("offsets"), header.get("token_ids"), header.get("outputs")}
        return {n for n in names if isinstance(n, str)}
    except (KeyError, TypeError, AttributeError):
        return set()


def _in_store(array, group) -> Optional[str]:
    """The name of ``array`` in ``group`` when it is one of that group's own arrays, else None."""
    store_path = getattr(array, "store_path", None)
    if store_path is None or store_path.store != group.store:
        return None
    name = array.path.rsplit("/", 1)[-1]
    return name if name in group.array_keys() else None


def _place(group, array, stem: str, taken: set, compression) -> str:
    """The name of ``array`` in ``group``: its own when it is already there, else a new one
    (``stem``, or with a number when that is taken), copied a chunk at a time."""
    own = _in_store(array, group)
    if own is not None:
        return own
    name, k = stem, 1
    while name in taken:
        name, k = f"{stem}_{k}", k + 1
    taken.add(name)
    units = array.shape[1:]
    step = chunk_rows(int(np.prod(units)) if units else 1, array.dtype.itemsize, rows=array.shape[0])
    target = group.create_array(name, shape=array.shape, chunks=(step, *units), dtype=array.dtype,
                                compressors=_compressors(compression), fill_value=0)
    for a in range(0, array.shape[0], step):
        target[a:a + step] = np.asarray(array[a:a + step])
    return name


def _is_dataset_store(folder: Path) -> bool:
    """A folder holding a dataset trace and nothing else (so replacing it loses nothing of the
    user's): this format's group, its attributes saying so, and the files of its arrays alone
    (``<array>/zarr.json``, ``<array>/c/<chunk numbers>``); or the earlier format's header and .npy files."""
    if (folder / LEGACY_HEADER).is_file():
        return all(p.is_file() and not p.is_symlink() and (p.name == LEGACY_HEADER or p.suffix == ".npy")
                   for p in folder.iterdir())
    try:
        if FORMAT_KEY not in json.loads((folder / "zarr.json").read_text(encoding="utf-8")).get("attributes", {}):
            return False
    except (OSError, ValueError, AttributeError, RecursionError):
        return False
    for root, dirs, files in os.walk(folder):
        parts = Path(root).relative_to(folder).parts
        for name in dirs + files:
            if os.path.islink(os.path.join(root, name)):
                return False
        if any(not _store_path(parts + (name,), folder=False) for name in files) or \
                any(not _store_path(parts + (name,), folder=True) for name in dirs):
            return False
    return True


def _store_path(parts: tuple, folder: bool) -> bool:
    """Whether a file or folder at ``parts`` (relative to a store's folder) is one a dataset store
    holds: its ``zarr.json``, an array's folder, its ``zarr.json``, its ``c`` and chunk numbers."""
    if not ARRAY_NAME.match(parts[0]) and parts != ("zarr.json",):
        return False
    if len(parts) == 1:
        return folder != (parts[0] == "zarr.json")
    if parts[1:] == ("zarr.json",):
        return not folder
    return parts[1] == "c" and all(p.isdigit() for p in parts[2:]) and (folder or len(parts) > 2)


def _check_free(target: Path, who: str, overwrite: bool) -> None:
    """That ``target`` may receive a dataset trace: absent, an empty folder, or (with ``overwrite``)
    a previous dataset trace; never a folder of other files, which replacing it would destroy."""
    if not (target.exists() or target.is_symlink()):
        return
    if not target.is_dir() or target.is_symlink():
        raise FileExistsError(f"{who}: {target} exists and is not a folder; choose a new or empty folder")
    if not any(target.iterdir()):
        return
    if not _is_dataset_store(target):
        raise FileExistsError(f"{who}: {target} holds files and no dataset trace (or files beside one), which "
                              f"replacing it would destroy; choose a new or empty folder")
    if not overwrite:
        raise FileExistsError(f"{who}: {target} already holds a dataset trace; pass overwrite=True to replace it "
                              f"(once the new one is complete), or choose another path")


def _clear_url(url: str, who: str, overwrite: bool) -> None:
    """``_check_free`` at an fsspec URL; a previous dataset trace there is removed (with ``overwrite``)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    if not fs.exists(root) or not fs.ls(root):
        return
    try:
        attrs = _open_group(url, "r").attrs.asdict()
    except Exception:
        attrs = {}
    # a dataset's files alone, as _is_dataset_store asks of a folder: the removal below is recursive
    inside = [PurePosixPath(f).relative_to(PurePosixPath(root)).parts for f in fs.find(root)]
    if FORMAT_KEY not in attrs or not all(parts and _store_path(parts, folder=False) for parts in inside):
        raise FileExistsError(f"{who}: {url} holds files and no dataset trace (or files beside one), which "
                              f"replacing it would destroy; choose a new or empty location")
    if not overwrite:
        raise FileExistsError(f"{who}: {url} already holds a dataset trace; pass overwrite=True to replace it, "
                              f"or choose another location")
    fs.rm(root, recursive=True)


# ---- tracing a dataset --------------------------------------------------------------------------
Tokens = Union[Callable, Sequence, None]


def _batch_call(call, batch) -> tuple:
    """A batch's model inputs and the keywords ``rw.trace`` takes for the rest of the call: the batch
    itself, the first item of an ``(inputs, targets, ...)`` tuple as a DataLoader over a
    TensorDataset yields, with the items the forward needs after its input passed on (``(ids,
    lengths)`` to ``forward(ids, lengths)``), or a dict matched to the forward's parameters by
    name (capture/call.py's ``unpack``)."""
    from .capture.call import unpack

    inputs, kwargs = unpack(call, batch)
    return inputs, ({"kwargs": {**kwargs, **call.kwargs}} if kwargs else {})


def _dataset_edits(edits) -> list:
    """``edits`` for ``trace_dataset``: checked as ``rw.trace`` checks them, and each one meaning the
    same for every sequence, or a clear error. A ``batch=`` picks elements of one batch, which a
    dataset's batches do not share; a patch takes its values from a source of one sequence (into
    every sequence, step t from its step t), as a source of several has no sequence per batch."""
    from .capture.edits import check_edits

    edits = check_edits("trace_dataset", edits)
    for edit in edits:
        if edit.batch is not None:
            raise ValueError(f"trace_dataset: {edit!r} picks batch elements {list(edit.batch)}, which the dataset's "
                             f"batches do not share; expected an edit of every sequence (no batch=)")
        if edit.source is not None and edit.source.layers[edit.layer].batch != 1:
            raise ValueError(f"trace_dataset: {edit!r} takes values from a source of "
                             f"{edit.source.layers[edit.layer].batch} sequences, which do not line up with the "
                             f"dataset's batches; expected a source trace of one sequence (patched into every one)")
    return edits


class _EditsWhereStepsAre:
    """A dataset's edits apply to every sequence at the steps it has: a batch shorter than all of
    an edit's steps (often the last) is traced without that edit, and only an edit that named no
    step of any batch traced is an error (as rw.trace says of one run)."""

    def __init__(self, edits) -> None:
        self.edits = list(edits or [])
        self.applied: set = set()     # ids of the edits some batch ran with
        self.longest: dict = {}       # id of an edit left out -> the most steps its layer ran

    def __call__(self, trace, *args, **kwargs):
        """``trace(*args, **kwargs)`` (one batch) under the edits whose steps it has."""
        from .capture.edits import NoStepEdited

        if not self.edits:
            return trace(*args, **kwargs)
        edits = list(self.edits)
        while True:
            try:
                tr = trace(*args, **{**kwargs, "edits": edits})
            except NoStepEdited as error:
                if not any(e is error.edit for e in edits):
                    raise
                edits = [e for e in edits if e is not error.edit]
                self.longest[id(error.edit)] = max(self.longest.get(id(error.edit), 0), error.steps)
                continue
            self.applied.update(id(e) for e in edits)
            return tr

    def check_all_applied(self) -> None:
        for edit in self.edits:
            if id(edit) not in self.applied:
                count = self.longest[id(edit)]
                raise ValueError(f"trace_dataset: {edit!r} names no step of {edit.layer!r} in any batch, the "
                                 f"longest of which ran {count} steps; expected steps in [0, {count})")


def _quantities(lt: LayerTrace, wanted) -> dict:
    available = {**lt.states, **lt.gates}
    if wanted == "all":
        return available
    return {k: available[k] for k in wanted if k in available}


def trace_dataset(model, batches: Iterable, tokens: Tokens = None, *, max_steps: Optional[int] = None,
                  quantities: Union[Sequence[str], str] = "all", outputs: Optional[bool] = None,
                  path=None, overwrite: bool = False,
                  max_memory: int = DEFAULT_MAX_MEMORY, compression=None, progress: bool = True,
                  client=None, **trace_kwargs) -> DatasetTrace:
    """Trace every sequence of a dataset with ``rw.trace``, batch by batch, into one DatasetTrace.

    ``batches``: an iterable of model inputs, of ``(inputs, targets, ...)`` tuples (a DataLoader),
    of ``(ids, lengths, ...)`` tuples whose items after the first the forward needs, or of dicts
    matched to the forward's parameters by name (the README's "Your model").
    ``tokens``: a function from one batch's inputs to one list of strings per element (say,
    ``lambda ids: [list(decode(row)) for row in ids]``), or one list of strings per sequence in
    order, or None; they label the steps ``lengths`` counts (with an encoder and its decoder,
    the layers without their own time axis). ``max_steps``: stop once this many steps are traced
    (the last sequence cut at that many steps in every layer). Every layer keeps every valid step
    of every sequence on its own time axis (``Trace.layer_lengths``): a decoder run for 10 steps
    after an encoder over 7 keeps its 10 (``DatasetTrace.offsets_of``).
    ``quantities``: which of each layer's states and gates to keep ("all", the default: every one,
    so a sequence opens in the Explorer with its gates; ``("h", "c")`` keeps a third of an LSTM's).
    ``outputs``: keep the model's own output at every step (its predictions in the Explorer);
    None keeps them when they have at most MAX_KEPT_OUTPUTS features (a head's scores over a
    small vocabulary, not a word model's 33,000).
    ``path``: a new or empty folder, or an fsspec URL (``"s3://bucket/ds"``), to write the arrays
    to as they come: a zarr group, chunked along steps, reopened lazily. A local folder is built
    beside it and takes its place once complete; a folder already holding a dataset trace is
    refused unless ``overwrite=True``, and is replaced only then. One process at a time writes a
    path: another gets a clear error. (At a URL, ``overwrite=True`` removes the previous dataset
    trace first: object stores have no rename.) ``compression``: None (off, fastest), True or
    "zstd", "gzip", "blosc", or a zarr codec. Without ``path`` the arrays stay in memory until
    they pass ``max_memory`` bytes, then move to a temporary folder (removed when the
    DatasetTrace is garbage collected; ``save`` it to keep it). ``trace_kwargs`` go to ``rw.trace``.
    ``edits=[rw.clamp(...), rw.patch(...)]`` among them: every batch is traced under them, each
    sequence alike (no ``batch=``; a patch from a source trace of one sequence), and the
    DatasetTrace records them (``edits``, saved with it, and each ``sequence(i)``'s meta). An
    edit applies at the steps a batch has: a batch shorter than all its steps runs without it, and
    only an edit with no step in any batch is an error (with a client, in any batch of a shard).
    ``client``: a ``dask.distributed`` Client whose workers trace the batches, shards of a few
    batches each, every worker writing its own region of the one store at ``path`` (a folder or
    URL every worker reaches); the model is sent to each worker once. None (the default): the
    active Client when there is one, a ``path`` is given and ``tokens`` is not a list, else this
    process; False: always this process. The result equals a trace made in this process.
    """
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps: expected a positive number of steps or None, got {max_steps}")
    if tokens is not None and not callable(tokens) and not isinstance(tokens, (list, tuple)):
        raise TypeError(f"tokens: expected a function of a batch's inputs, a list of token lists, or None; "
                        f"got {type(tokens).__name__}")
    _compressors(compression)  # a bad value fails before any tracing
    if "edits" in trace_kwargs:
        trace_kwargs["edits"] = _dataset_edits(trace_kwargs["edits"])
    run = dict(tokens=tokens, max_steps=max_steps, quantities=quantities, outputs=outputs, max_memory=max_memory,
               compression=compression, progress=progress, trace_kwargs=trace_kwargs)
    client = _workers(client, path, tokens)
    if path is None:
        return _trace_batches(model, batches, folder=None, **run)
    work = _trace_batches if client is None else functools.partial(_trace_on_workers, client)
    if _is_url(path):
        _clear_url(path, "trace_dataset", overwrite)
        work(model, batches, folder=path, **run)
        return DatasetTrace.load(path)
    target = Path(path)
    check_folder(target, "trace_dataset", "folder")
    with WriterLock(target, "trace_dataset"):
        _check_free(target, "trace_dataset", overwrite)
        built = building_folder(target)
        try:
            work(model, batches, folder=built, **run)
            swap_in(built, target)
        except BaseException:
            shutil.rmtree(built, ignore_errors=True)
            raise
    return DatasetTrace.load(target)


def _trace_batches(model, batches: Iterable, *, tokens: Tokens, max_steps: Optional[int], quantities,
                   outputs: Optional[bool], folder, max_memory: int, compression, progress: bool,
                   trace_kwargs: dict, chunk_bytes: Optional[int] = None) -> DatasetTrace:
    """``trace_dataset``'s work: into ``folder`` (an empty one or a URL, its arrays written as they come),
    or in memory until ``max_memory``, then into a temporary folder. ``chunk_bytes``: of a chunk
    (CHUNK_BYTES)."""
    from .capture import trace as capture_trace

    columns: dict = {}
    kinds: dict = {}
    cells: dict = {}
    token_column = _Column(0, "<i4", chunk_bytes) if tokens is not None else None
    vocab: dict = {}
    lengths: list = []  # steps kept of each sequence
    layer_lengths: dict = {}  # layer name -> steps kept of each sequence on its own time axis
    done = 0  # their sum
    spilled = False
    group = None
    temporary = None
    from .capture.call import ModelCall, unwrap

    call = ModelCall(unwrap(model), trace_kwargs.get("args", ()), trace_kwargs.get("kwargs"), who="trace_dataset")
    bar = _ProgressBar(batches, max_steps, progress)
    edit_where_steps_are = _EditsWhereStepsAre(trace_kwargs.get("edits"))
    try:
        for batch in batches:
            inputs, rest = _batch_call(call, batch)
            tr = edit_where_steps_are(capture_trace, model, inputs, tokens=tokens(inputs) if callable(tokens) else None,
                                      **{**trace_kwargs, **rest})
            batch_tokens = tr.tokens if callable(tokens) else _listed_tokens(tokens, len(lengths), tr)
            if tokens is not None and batch_tokens is None:
                raise ValueError("trace_dataset: tokens: expected one list of strings per sequence, labelling the "
                                 "steps of the layers without their own time axis; a dict of tokens per layer is "
                                 "not kept in a dataset trace")
            for b in range(len(tr.lengths)):
                if max_steps is not None and done >= max_steps:
                    break
                n = int(tr.lengths[b]) if max_steps is None else min(int(tr.lengths[b]), max_steps - done)
                cut = max_steps is not None and n < int(tr.lengths[b])
                for lt in tr.layers.values():
                    kinds.setdefault(lt.name, lt.kind)
                    if lt.kind == "cell" and lt.meta.get("cell") in CELL_KINDS:
                        cells.setdefault(lt.name, lt.meta["cell"])
                    own = int(tr.layer_lengths(lt.name)[b])   # every valid step of this layer, on its own axis
                    own = min(own, n) if cut else own
                    layer_lengths.setdefault(lt.name, []).append(own)
                    for key, array in _quantities(lt, quantities).items():
                        column = columns.setdefault((lt.name, key), _Column(array.shape[2], chunk_bytes=chunk_bytes))
                        column.append(array[b, :own])
                # the outputs label the dataset's steps only where every layer shares one time axis
                kept = tr.outputs if all(lt.steps == tr.steps for lt in tr.layers.values()) else None
                if kept is not None and kept.shape[1] >= n and (outputs or (outputs is None and
                                                                           kept.shape[2] <= MAX_KEPT_OUTPUTS)):
                    columns.setdefault(("", "outputs"), _Column(kept.shape[2])).append(kept[b, :n])
                if token_column is not None:
                    assert batch_tokens is not None   # a token column is kept only with tokens
                    token_column.append(np.array([vocab.setdefault(tok, len(vocab)) for tok in batch_tokens[b][:n]],
                                                 dtype=np.int32))
                lengths.append(n)
                done += n
                bar.steps(n)
            bar.batch()
            if not spilled and (folder is not None or _held_bytes(columns) > max_memory):
                if folder is None:
                    folder = temporary = Path(tempfile.mkdtemp(prefix="rnnwidgets-dataset-"))
                group = _open_group(folder, "w")
                _spill(columns, token_column, group, compression)
                spilled = True
            if max_steps is not None and done >= max_steps:
                break
    except BaseException:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        raise
    finally:
        bar.close()
    if not lengths:
        raise ValueError("trace_dataset: the batches held no sequences")
    edit_where_steps_are.check_all_applied()
    layers: dict = {}
    kept = columns.pop(("", "outputs"), None)   # the model's outputs: not a layer's
    kept = kept.finish() if kept is not None and kept.rows == done else None   # (every step, or none)
    for (name, key), column in columns.items():
        layers.setdefault(name, {})[key] = column.finish()
    token_ids = token_column.finish() if token_column is not None else None
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    own_offsets = {name: np.concatenate([[0], np.cumsum(n)]) for name, n in layer_lengths.items() if n != lengths}
    ds = DatasetTrace(layers, kinds, offsets, token_ids, list(vocab) if tokens is not None else None,
                      folder=folder if spilled else None, generation=secrets.token_hex(8) if spilled else None,
                      layer_offsets=own_offsets, outputs=kept,
                      edits=[e.describe() for e in trace_kwargs.get("edits") or []], cells=cells)
    if spilled:
        ds._write_store(group, compression)  # the arrays are in place already: this writes offsets and attributes
    if temporary is not None:
        weakref.finalize(ds, shutil.rmtree, temporary, True)
    return ds


def _held_bytes(columns: dict) -> int:
    return sum(column.rows * column.units * 4 for column in columns.values())


def _spill(columns: dict, token_column: Optional[_Column], group, compression) -> None:
    """Move every column to its array in ``group`` (named as ``save`` names them)."""
    names = list(dict.fromkeys(name for name, _ in columns))
    per_layer: dict = {}
    for (name, _), column in columns.items():
        j = per_layer.setdefault(name, 0)
        per_layer[name] += 1
        column.spill(group, f"l{names.index(name)}_q{j}", compression)
    if token_column is not None:
        token_column.spill(group, "token_ids", compression)


def _listed_tokens(tokens: Optional[Sequence], first: int, tr: Trace):
    """The next ``tr.batch`` sequences' tokens from a list of one token list per sequence."""
    if tokens is None:
        return None
    batch = len(tr.lengths)
    if first + batch > len(tokens):
        raise ValueError(f"tokens: expected one token list per sequence; the batches hold more than {len(tokens)}")
    chosen = [[str(tok) for tok in seq] for seq in tokens[first:first + batch]]
    for b, seq in enumerate(chosen):
        if len(seq) < int(tr.lengths[b]):
            raise ValueError(f"tokens[{first + b}]: expected {int(tr.lengths[b])} tokens (its length), got {len(seq)}")
    return chosen


class _ProgressBar:
    """``trace_dataset``'s progress with a known total where there is one: batches of a loader with a
    length ("3/50 batches"), else steps up to ``max_steps``, else steps counted without a total."""

    def __init__(self, batches, max_steps: Optional[int], enabled: bool):
        from tqdm.auto import tqdm

        try:
            total = len(batches) if max_steps is None else None
        except TypeError:  # a generator: no length
            total = None
        self.by_batch = total is not None
        total = total if self.by_batch else max_steps
        unit = "batches" if self.by_batch else "steps"
        known = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} " + unit + " [{elapsed}<{remaining}]"
        self.bar = tqdm(total=total, unit=" " + unit, desc="trace_dataset", disable=not enabled,
                        bar_format=known if total is not None else None)

    def steps(self, n: int) -> None:
        if not self.by_batch:
            self.bar.update(n)

    def batch(self, n: int = 1) -> None:
        if self.by_batch:
            self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


# ---- tracing on a dask.distributed cluster ------------------------------------------------------
SHARD_BATCHES = 8  # batches a worker traces at once when the loader's length is unknown
SHARD_CHUNK_BYTES = 1 << 20  # a shard's chunks: small, as a shard's last chunk is written whole


def _workers(client, path, tokens):
    """The Client whose workers trace, or None to trace in this process (see ``trace_dataset``)."""
    if client is False:
        return None
    if client is None:
        if path is None or isinstance(tokens, (list, tuple)) or "distributed" not in sys.modules:
            return None
        try:
            return sys.modules["distributed"].default_client()
        except ValueError:  # no Client made in this process
            return None
    if path is None:
        raise ValueError("trace_dataset(client=...): expected path=, a folder or URL every worker can write to")
    if isinstance(tokens, (list, tuple)):
        raise ValueError("trace_dataset(client=...): tokens: expected a function of a batch's inputs (each worker "
                         "labels its own batches), got a list; pass client=False to trace here")
    return client


def _trace_on_workers(client, model, batches: Iterable, *, tokens: Tokens, max_steps: Optional[int], quantities,
                      outputs: Optional[bool], folder, max_memory: int, compression, progress: bool,
                      trace_kwargs: dict) -> DatasetTrace:
    """``_trace_batches`` on the workers of ``client``, into the empty store ``folder``: each worker
    traces shards of consecutive batches into a store of its own under ``folder/_shards``, then
    each chunk of the final arrays is filled by one task from the shards (every task its own
    region, no two writing one chunk), and the shards are removed."""
    from distributed import wait

    group = _open_group(folder, "w")
    shared = client.scatter(_Shipped(model), broadcast=True, hash=False)  # sent to each worker once
    try:
        per_shard = max(1, -(-len(batches) // (4 * max(1, len(client.scheduler_info()["workers"])))))  # type: ignore[arg-type]
    except TypeError:  # no length
        per_shard = SHARD_BATCHES
    bar = _ProgressBar(batches, max_steps, progress)
    pending: list = []
    shards: list = []
    sizes: dict = {}   # a shard's future's key -> its batches
    done = 0   # steps of the shards traced so far

    def collect(which):
        nonlocal done
        for future in which:
            ds = future.result()
            bar.batch(sizes[future.key])
            bar.steps(ds.steps)
            done += ds.steps

    try:
        shard: list = []
        for batch in itertools.chain(batches, [None]):
            if batch is not None:
                shard.append(batch)
            if shard and (len(shard) == per_shard or batch is None):
                where = f"{str(folder).rstrip('/')}/_shards/{len(shards)}"
                future = client.submit(_trace_shard, shared, shard, tokens=tokens, max_steps=max_steps,
                                       quantities=quantities, outputs=outputs, folder=where, max_memory=max_memory,
                                       compression=compression, progress=False, trace_kwargs=trace_kwargs,
                                       pure=False)
                sizes[future.key] = len(shard)
                shards.append(future)
                pending.append(future)
                shard = []
                if len(pending) >= 2 * len(client.scheduler_info()["workers"]):
                    finished = wait(pending, return_when="FIRST_COMPLETED").done
                    collect(finished)
                    pending = [f for f in pending if f not in finished]
                if max_steps is not None and done >= max_steps:
                    break
        collect(pending)
        parts = [future.result() for future in shards]
        if not parts:
            raise ValueError("trace_dataset: the batches held no sequences")
        ds = _merge_shards(client, parts, group, folder, max_steps, compression)
    finally:
        bar.close()
        client.cancel(shards)
        _remove(f"{str(folder).rstrip('/')}/_shards")
    return ds


class _Shipped:
    """The model as pickle sends it (distributed's own serializer of torch modules walks their
    ``__dict__`` and fails on an LSTM's weak references to its weights)."""

    def __init__(self, model):
        self.model = model


def _trace_shard(shipped: _Shipped, batches: list, **run) -> DatasetTrace:
    """One worker's shard: ``_trace_batches`` into its own store."""
    return _trace_batches(shipped.model, batches, chunk_bytes=SHARD_CHUNK_BYTES, **run)


def _remove(where: str) -> None:
    import fsspec

    fs, root = fsspec.core.url_to_fs(where)
    if fs.exists(root):
        fs.rm(root, recursive=True)


def _merge_shards(client, parts: list, group, folder, max_steps: Optional[int], compression) -> DatasetTrace:
    """One DatasetTrace in ``group`` of the shards' sequences in order (cut at ``max_steps`` as
    ``_trace_batches`` cuts): its arrays created here, each chunk filled on a worker."""
    first = parts[0]
    lengths = np.concatenate([p.lengths for p in parts])
    own = {name: np.concatenate([np.diff(p.offsets_of(name)) for p in parts]) for name in first.layers}
    if max_steps is not None and lengths.sum() > max_steps:
        kept = int(np.searchsorted(np.cumsum(lengths), max_steps))  # the sequence reaching max_steps
        n = int(max_steps - lengths[:kept].sum())
        cut = n < lengths[kept]
        lengths = np.append(lengths[:kept], n)
        own = {name: np.append(o[:kept], min(int(o[kept]), n) if cut else o[kept]) for name, o in own.items()}
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    own_offsets = {name: np.concatenate([[0], np.cumsum(o)]) for name, o in own.items()}
    vocab: dict = {}
    maps = []   # per shard: its token ids -> the merged vocabulary's
    for p in parts:
        maps.append(np.array([vocab.setdefault(tok, len(vocab)) for tok in (p.vocab or [])], dtype=np.int32))
    jobs: list = []   # (target, a, b, pieces): rows [a, b) of a target, whole chunks of it

    def gather(target, arrays, layer_offsets, mapped=False):
        """Jobs filling ``target`` chunk by chunk from the shards' ``arrays``."""
        starts = np.concatenate([[0], np.cumsum([a.shape[0] for a in arrays])])  # each shard's first row in it
        rows = int(layer_offsets[-1])
        for a in range(0, rows, target.chunks[0]):
            b = min(rows, a + target.chunks[0])
            pieces = [(arrays[k], max(a, starts[k]) - starts[k], min(b, starts[k + 1]) - starts[k],
                       maps[k] if mapped else None)
                      for k in range(len(parts)) if starts[k] < b and starts[k + 1] > a]
            jobs.append((target, a, b, pieces))

    layers: dict = {}
    for i, (name, quantities) in enumerate(first.layers.items()):
        for j, (key, array) in enumerate(quantities.items()):
            rows = int(own_offsets[name][-1])
            target = group.create_array(f"l{i}_q{j}", shape=(rows, array.shape[1]),
                                        chunks=(chunk_rows(array.shape[1], rows=rows), array.shape[1]),
                                        dtype=array.dtype,
                                        compressors=_compressors(compression), fill_value=0)
            gather(target, [p.layers[name][key] for p in parts], own_offsets[name])
            layers.setdefault(name, {})[key] = target
    token_ids = None
    if first.token_ids is not None:
        steps = int(offsets[-1])
        token_ids = group.create_array("token_ids", shape=(steps,), chunks=(chunk_rows(0, rows=steps),),
                                       dtype="<i4", compressors=_compressors(compression), fill_value=0)
        gather(token_ids, [p.token_ids for p in parts], offsets, mapped=True)
    kept_outputs = None   # the model's outputs, on the dataset's steps: kept when every shard kept them
    if all(p.outputs is not None for p in parts):
        width = first.outputs.shape[1]
        kept_outputs = group.create_array("outputs", shape=(int(offsets[-1]), width),
                                          chunks=(chunk_rows(width, rows=int(offsets[-1])), width),
                                          dtype=first.outputs.dtype,
                                          compressors=_compressors(compression), fill_value=0)
        gather(kept_outputs, [p.outputs for p in parts], offsets)
    # a task per CHUNK_BYTES * 4 or so of chunks: few tasks for a small dataset, bounded memory for a large one
    tasks, batch, held = [], [], 0
    for job in jobs:
        batch.append(job)
        held += (job[2] - job[1]) * int(np.prod(job[0].shape[1:])) * job[0].dtype.itemsize
        if held >= 4 * CHUNK_BYTES or job is jobs[-1]:
            tasks.append(client.submit(_fill, batch, pure=False))
            batch, held = [], 0
    for future in tasks:
        future.result()
    _remove(f"{str(folder).rstrip('/')}/_shards")   # before the group lists its members
    own_offsets = {name: o for name, o in own_offsets.items() if not np.array_equal(o, offsets)}
    ds = DatasetTrace(layers, first.kinds, offsets, token_ids, list(vocab) if first.vocab is not None else None,
                      folder=folder, generation=secrets.token_hex(8), layer_offsets=own_offsets, outputs=kept_outputs,
                      edits=first.edits, cells=first.cells)
    ds._write_store(group, compression)
    return ds


def _fill(jobs: list) -> None:
    """Rows [a, b) of each job's target (whole chunks of it) from the shards' pieces (array, start,
    end, token id map or None), in order."""
    for target, a, b, pieces in jobs:
        target[a:b] = np.concatenate([np.asarray(array[s:e]) if ids is None else ids[np.asarray(array[s:e])]
                                      for array, s, e, ids in pieces])


# ---- reading a store's rows ---------------------------------------------------------------------
def read_rows(array, a: int, b: int, out: Optional[np.ndarray] = None) -> np.ndarray:
    """Rows [a, b) of a dataset array as numpy, into ``out`` (a buffer reused by the caller, at
    least that long) when given. An uncompressed array of a local store is read straight from its
    chunks' files (each file is the chunk's bytes in C order): zarr's pipeline copies a chunk
    twice over, which made reading a store three times a numpy pass over the same data. Any other
    array is read through zarr."""
    if isinstance(array, np.ndarray):
        return array[a:b]
    folder = _raw_chunks(array)
    if folder is None:
        return _rows(array, a, b)
    per_chunk = array.chunks[0]
    shape = (b - a, *array.shape[1:])
    block = out[:b - a] if out is not None and len(out) >= b - a and out.dtype == array.dtype \
        and out.shape[1:] == shape[1:] else np.empty(shape, array.dtype)
    row_bytes = array.dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
    for i in range(a // per_chunk, -(-b // per_chunk)):
        lo, hi = max(a, i * per_chunk), min(b, (i + 1) * per_chunk)
        target = block[lo - a:hi - a]
        name = _chunk_file(folder, array, i)
        try:
            with open(name, "rb", buffering=0) as f:
                f.seek((lo - i * per_chunk) * row_bytes)
                if f.readinto(target.reshape(-1).view(np.uint8).data) != target.nbytes:
                    raise ValueError(f"{name}: shorter than a chunk of {array.dtype} ({per_chunk} rows)")
        except FileNotFoundError:   # a chunk never written: the fill value
            target[...] = array.metadata.fill_value
    return block


def _chunk_file(folder: Path, array, i: int) -> Path:
    """The file of chunk ``i`` (along the first axis) of an array chunked along it only."""
    return folder / "c" / str(i) / "/".join(["0"] * (array.ndim - 1)) if array.ndim > 1 else folder / "c" / str(i)


def _raw_chunks(array) -> Optional[Path]:
    """The folder of a zarr v3 array whose chunks are files of raw little-endian C-order bytes (a
    local store, no compression or filters, chunks along the first axis only), else None."""
    from zarr.codecs import BytesCodec
    from zarr.storage import LocalStore

    try:
        meta = array.metadata
        if not isinstance(array.store, LocalStore) or getattr(meta, "zarr_format", None) != 3:
            return None
        codecs = meta.codecs
        if len(codecs) != 1 or not isinstance(codecs[0], BytesCodec) or array.dtype.byteorder == ">" \
                or (codecs[0].endian is not None and codecs[0].endian.value != "little") \
                or tuple(array.chunks[1:]) != tuple(array.shape[1:]) \
                or getattr(meta.chunk_key_encoding, "separator", None) != "/" \
                or type(meta.chunk_key_encoding).__name__ != "DefaultChunkKeyEncoding":
            return None
        return Path(array.store.root) / array.path
    except AttributeError:   # another kind of array
        return None


class MappedRows:
    """Rows [a, b) of an uncompressed array of a local store, its chunks' files memory-mapped:
    nothing is read until asked for, and then only the pages asked for (the page cache's own
    pages, no copy). ``columns(cols)`` copies a few columns of every row, ``take(rows)`` a few
    rows (numbered from ``a``); the rows the store never wrote read as the fill value."""

    def __init__(self, array, folder: Path, a: int, b: int):
        import mmap

        self.a, self.b, self.shape = a, b, (b - a, *array.shape[1:])
        self.dtype = array.dtype
        rows = array.chunks[0]
        self.pieces: list = []   # (first row, view of the rows) per chunk, in order
        for i in range(a // rows, -(-b // rows)):
            lo, hi = max(a, i * rows), min(b, (i + 1) * rows)
            name = _chunk_file(folder, array, i)
            try:
                with open(name, "rb", buffering=0) as f:
                    size = os.fstat(f.fileno()).st_size
                    whole = rows * array.dtype.itemsize * int(np.prod(array.shape[1:], dtype=np.int64))
                    if size < whole:
                        raise ValueError(f"{name}: shorter than a chunk of {array.dtype} ({rows} rows)")
                    mapped = mmap.mmap(f.fileno(), whole, access=mmap.ACCESS_READ)
                chunk = np.frombuffer(mapped, array.dtype, count=whole // array.dtype.itemsize)
                view = chunk.reshape(rows, *array.shape[1:])[lo - i * rows:hi - i * rows]
            except FileNotFoundError:   # a chunk never written: the fill value, without memory
                view = np.broadcast_to(np.asarray(array.metadata.fill_value, array.dtype), (hi - lo, *array.shape[1:]))
            self.pieces.append((lo - a, view))
        self.firsts = np.array([first for first, _ in self.pieces], dtype=np.int64)

    def __len__(self) -> int:
        return self.b - self.a

    def columns(self, cols) -> np.ndarray:
        """(rows, len(cols)): the columns ``cols`` of every row."""
        return np.concatenate([view[:, cols] for _, view in self.pieces])

    def take(self, rows, out: Optional[np.ndarray] = None) -> np.ndarray:
        """The rows ``rows`` (numbered from ``a``), as ``values[a:b][rows]``, into ``out`` when
        given (a buffer reused by the caller: fresh memory costs a page fault per 4 KiB, and a
        dask worker returns freed memory to the system at once)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows: expected indices in [0, {len(self)})")
        if out is None:
            out = np.empty((len(rows), *self.shape[1:]), self.dtype)
        piece = np.searchsorted(self.firsts, rows, side="right") - 1
        if np.any(np.diff(piece) < 0):   # each chunk's rows together, then back in the order asked
            order = np.argsort(piece, kind="stable")
            gathered = self.take(rows[order])
            out[order] = gathered
            return out
        bounds = np.searchsorted(piece, np.arange(len(self.pieces) + 1))
        for (first, view), lo, hi in zip(self.pieces, bounds[:-1], bounds[1:]):
            if hi > lo:   # mode="clip": no buffered copy (the rows are checked above)
                np.take(view, rows[lo:hi] - first, axis=0, out=out[lo:hi], mode="clip")
        return out


def map_rows(array, a: int, b: int) -> Optional[MappedRows]:
    """Rows [a, b) of a dataset array mapped from its chunks' files (see ``MappedRows``) when it
    is an uncompressed array of a local store, else None (read it with ``read_rows``)."""
    folder = _raw_chunks(array) if not isinstance(array, np.ndarray) else None
    return None if folder is None else MappedRows(array, folder, a, b)
