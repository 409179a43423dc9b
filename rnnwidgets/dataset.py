"""Traces of a whole dataset: ``rw.trace_dataset`` runs ``rw.trace`` batch by batch and keeps every
sequence's steps end to end.

A ``DatasetTrace`` holds, per layer and quantity, one float32 array (total_steps, units): the
valid steps of every sequence concatenated in order, with ``offsets`` saying where each sequence
starts. Up to ``max_memory`` bytes stay in RAM; past that every array goes to a ``.npy`` file on
disk written as the batches arrive and opened memory-mapped, so 10 million steps x 512 units
never need to fit in memory. Tokens are stored as int32 ids into ``vocab``.

Saved as a folder: ``dataset.json`` (layers, vocab, format) and one ``.npy`` per array; reopened
memory-mapped with ``DatasetTrace.load``.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import struct
import tempfile
import weakref
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence, Union

import numpy as np

from .fileio import WriterLock, atomic_write, building_folder, check_npy_file, swap_in, write_text
from .kinds import KINDS
from .tracedata import LayerTrace, Trace, last_forward_layer

FORMAT_VERSION = 1
HEADER = "dataset.json"
NPY_HEADER_BYTES = 128  # room kept at the front of a growing .npy file for its header
DEFAULT_MAX_MEMORY = 1 << 30


def npy_header(shape: tuple, dtype: str = "<f4") -> bytes:
    """A .npy (format 1.0) header of exactly NPY_HEADER_BYTES, written once the row count is known."""
    text = "{'descr': '%s', 'fortran_order': False, 'shape': %r, }" % (dtype, tuple(int(n) for n in shape))
    body = NPY_HEADER_BYTES - 10
    if len(text) + 1 > body:
        raise ValueError(f"shape {shape} does not fit a {NPY_HEADER_BYTES}-byte .npy header")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", body) + (text.ljust(body - 1) + "\n").encode("latin1")


class _Column:
    """One growing (steps, units) array: chunks in memory until spilled, then appended to a .npy file."""

    def __init__(self, units: int, dtype: str = "<f4"):
        self.units, self.dtype = units, np.dtype(dtype)
        self.chunks: list = []
        self.rows = 0
        self.file = None
        self.path: Optional[Path] = None

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        self.rows += rows.shape[0]
        if self.file is not None:
            self.file.write(rows.tobytes())
        else:
            self.chunks.append(rows)

    def spill(self, path: Path) -> None:
        """From now on rows go to ``path``; the ones held so far are written there first."""
        self.path = path
        self.file = open(path, "wb")
        self.file.write(b"\0" * NPY_HEADER_BYTES)
        for chunk in self.chunks:
            self.file.write(chunk.tobytes())
        self.chunks = []

    def finish(self) -> np.ndarray:
        shape = (self.rows, self.units) if self.units else (self.rows,)
        if self.file is None:
            if not self.chunks:
                return np.zeros(shape, self.dtype)
            return np.concatenate(self.chunks).reshape(shape)
        self.file.seek(0)
        self.file.write(npy_header(shape, self.dtype.str))
        self.file.close()
        return _map(self.path)


class DatasetTrace:
    """Every sequence of a dataset, traced: per layer, per quantity, (total_steps, units) float32.

    ``layers``: layer name -> {quantity name ("h", "c", gate names) -> array}; ``kinds``: layer
    name -> kind ("lstm", ...); ``offsets``: int64 (sequences + 1,), sequence i is steps
    ``offsets[i]:offsets[i + 1]``; ``token_ids``: int32 (total_steps,) into ``vocab`` or None.
    Arrays are numpy arrays or read-only memory maps (``on_disk``).
    """

    def __init__(self, layers: dict, kinds: dict, offsets, token_ids=None, vocab: Optional[list] = None,
                 folder: Optional[Path] = None):
        self.layers, self.kinds = layers, kinds
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.token_ids, self.vocab = token_ids, vocab
        self.folder = folder  # where the arrays live on disk, or None when they are in memory
        if not layers:
            raise ValueError("a DatasetTrace needs at least one layer")
        if self.offsets.ndim != 1 or self.offsets[0] != 0 or np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets: expected a non-decreasing int array starting at 0")
        for name, quantities in layers.items():
            for key, array in quantities.items():
                if array.ndim != 2 or array.shape[0] != self.steps:
                    raise ValueError(f"{name}[{key!r}]: expected ({self.steps}, units), got shape {array.shape}")
        if (token_ids is None) != (vocab is None):
            raise ValueError("token_ids and vocab go together: give both or neither")
        if token_ids is not None and token_ids.shape != (self.steps,):
            raise ValueError(f"token_ids: expected shape ({self.steps},), got {token_ids.shape}")

    # ---- shape ----------------------------------------------------------------------------
    @property
    def steps(self) -> int:
        return int(self.offsets[-1])

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
        return self.layers[layer][quantity]

    def __repr__(self):
        where = f"on disk at {self.folder}" if self.on_disk else "in memory"
        layers = ", ".join(f"{n}: {sorted(q)}" for n, q in self.layers.items())
        return f"DatasetTrace(sequences={self.sequences}, steps={self.steps}, {where}, layers=[{layers}])"

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
        return [self.vocab[i] for i in self.token_ids[first + start:stop]]

    def sequence(self, i: int) -> Trace:
        """Sequence ``i`` as a one-element Trace (batch 1), for ``rw.explore``.

        Its layers have no ``initial`` state: a DatasetTrace keeps per-step arrays only (an
        initial row per sequence, layer and state is 1/length of the arrays again, on disk too,
        and zeros unless ``rw.trace`` was given a hidden)."""
        self._check_sequence(i)
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        layers = {}
        for name, quantities in self.layers.items():
            states = {k: np.asarray(v[a:b])[None] for k, v in quantities.items() if k in ("h", "c")}
            gates = {k: np.asarray(v[a:b])[None] for k, v in quantities.items() if k not in ("h", "c")}
            layers[name] = LayerTrace(name, self.kinds[name], states=states, gates=gates)
        tokens = [self.tokens(i)] if self.token_ids is not None else None
        return Trace(layers=layers, lengths=np.array([b - a]), tokens=tokens, meta={"dataset_sequence": i})

    def _check_sequence(self, i: int) -> None:
        if not 0 <= i < self.sequences:
            raise IndexError(f"sequence: expected 0 <= sequence < {self.sequences}, got {i}")

    # ---- saving -----------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the dataset trace to folder ``path`` (one .npy per array); reopen with ``load``.

        A folder holding a previous dataset trace is replaced once the new one is complete (a
        DatasetTrace still open on it keeps reading its own arrays); a folder holding anything
        else is refused. Saved into its own folder, only the header and the arrays not yet there
        are written, each array under a name no other file has."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with WriterLock(path, "DatasetTrace.save"):
            if self.folder is not None and path.is_dir() and path.resolve() == Path(self.folder).resolve():
                self._write_folder(path)
                return path
            _check_free(path, "DatasetTrace.save", overwrite=True)
            built = building_folder(path)
            try:
                self._write_folder(built)
                swap_in(built, path)
            except BaseException:
                shutil.rmtree(built, ignore_errors=True)
                raise
        return path

    def _write_folder(self, folder: Path) -> None:
        """Every array into ``folder``, then the header that names them. Arrays already in
        ``folder`` (memory-mapped from it) stay where they are; the others go to names no file
        there has, so no array is ever written over another. Files the previous header named and
        this one does not are removed last."""
        previous = _named_files(folder)
        taken = {p.name for p in folder.iterdir()}
        layers = []
        for i, (name, quantities) in enumerate(self.layers.items()):
            files = {key: _place(folder, array, f"l{i}_q{j}", taken) for j, (key, array) in enumerate(quantities.items())}
            layers.append({"name": name, "kind": self.kinds[name], "files": files})
        header = {"format": FORMAT_VERSION, "layers": layers, "vocab": self.vocab,
                  "offsets": _place(folder, self.offsets, "offsets", taken),
                  "token_ids": None if self.token_ids is None else _place(folder, self.token_ids, "token_ids", taken)}
        write_text(folder / HEADER, json.dumps(header))
        for stale in previous - _named_files(folder):
            with contextlib.suppress(FileNotFoundError):
                (folder / stale).unlink()

    @classmethod
    def load(cls, path) -> "DatasetTrace":
        """Reopen a saved dataset trace, its arrays memory-mapped (read-only).

        A folder that is broken, inconsistent or hostile gives a ValueError naming the file and what
        is wrong: every array file is a plain file in the folder (never a path elsewhere, never a
        link), and its header and size are checked before it is mapped."""
        path = Path(path)
        header_file = path / HEADER
        if not header_file.is_file():
            raise FileNotFoundError(f"{path}: not a saved rnnwidgets dataset trace (no {HEADER})")
        header = _read_dataset_header(header_file)
        offsets_file = _array_file(path, header.get("offsets", "offsets.npy"), "offsets")
        check_npy_file(offsets_file, "iu", 1, "where each sequence starts")
        offsets = np.load(offsets_file)
        if offsets.size == 0:
            raise ValueError(f"{offsets_file}: expected at least one offset (0), got none")
        steps = int(offsets[-1])

        def mapped(name, kinds: str, ndim: int, what: str) -> np.ndarray:
            file = _array_file(path, name, what)
            shape = check_npy_file(file, kinds, ndim, what)
            if shape[0] != steps:
                raise ValueError(f"{file} ({what}): {shape[0]} steps where the offsets end at {steps}")
            return _map(file)

        layers = {entry["name"]: {key: mapped(f, "f", 2, f"{entry['name']}[{key!r}]") for key, f in entry["files"].items()}
                  for entry in header["layers"]}
        kinds = {entry["name"]: entry["kind"] for entry in header["layers"]}
        token_ids = None
        if header["vocab"] is not None:
            token_ids = mapped(header.get("token_ids", "token_ids.npy"), "iu", 1, "token ids")
            if token_ids.size and not (0 <= int(token_ids.min()) and int(token_ids.max()) < len(header["vocab"])):
                raise ValueError(f"{path}: token ids outside the vocabulary of {len(header['vocab'])} tokens")
        try:
            return cls(layers, kinds, offsets, token_ids, header["vocab"], folder=path)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e


def _read_dataset_header(file: Path) -> dict:
    """A dataset trace's ``dataset.json``, its fields of the types ``save`` writes, or a clear error."""
    try:
        header = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ValueError(f"{file}: not JSON text ({type(e).__name__})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION:
        raise ValueError(f"{file}: not a rnnwidgets dataset trace of format {FORMAT_VERSION}")

    def expect(ok: bool, field: str, wanted: str):
        if not ok:
            raise ValueError(f"{file}: {field} should be {wanted}")

    layers = header.get("layers")
    expect(isinstance(layers, list) and len(layers) > 0, "layers", "a non-empty list")
    for i, entry in enumerate(layers):
        expect(isinstance(entry, dict) and isinstance(entry.get("name"), str), f"layers[{i}]",
               "an object with a string name")
        expect(entry.get("kind") in KINDS, f"layers[{i}].kind", f"one of {KINDS}")
        files = entry.get("files")
        expect(isinstance(files, dict) and all(isinstance(f, str) for f in files.values()), f"layers[{i}].files",
               "an object of file names")
    vocab = header.get("vocab")
    expect(vocab is None or (isinstance(vocab, list) and all(isinstance(t, str) for t in vocab)), "vocab",
           "null or a list of strings")
    for key in ("offsets", "token_ids"):
        expect(isinstance(header.get(key, ""), str) or (key == "token_ids" and header[key] is None), key, "a file name")
    return header


def _array_file(folder: Path, name: str, what: str) -> Path:
    """The file ``name`` in ``folder``: a plain name of a .npy file there, never a path elsewhere."""
    if not isinstance(name, str) or Path(name).name != name or name in (".", "..") or not name.endswith(".npy"):
        raise ValueError(f"{folder / HEADER}: {what} should be the name of a .npy file in the folder, got {name!r}")
    return folder / name


def _map(file: Path) -> np.memmap:
    """A read-only memory map of a .npy file, remembering which file it maps (its device and inode)."""
    array = np.load(file, mmap_mode="r")
    array.file_id = _file_id(file)
    return array


def _file_id(file) -> Optional[tuple]:
    try:
        st = os.stat(file)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _mapped_file(array) -> Optional[Path]:
    """The file ``array`` maps while it is still the file at that path (not replaced since), else None."""
    source, file_id = getattr(array, "filename", None), getattr(array, "file_id", None)
    if source is None or file_id is None or _file_id(source) != file_id:
        return None
    return Path(source)


def _place(folder: Path, array: np.ndarray, stem: str, taken: set) -> str:
    """The name of ``array``'s .npy file in ``folder``: its own when it is memory-mapped from there,
    else a new one (``stem``.npy, or with a number when that is taken), written whole."""
    source = _mapped_file(array)
    if source is not None and source.parent.resolve() == folder.resolve():
        return source.name  # already there: written as the trace was made, or loaded from here
    name, k = f"{stem}.npy", 1
    while name in taken:
        name, k = f"{stem}_{k}.npy", k + 1
    taken.add(name)
    with atomic_write(folder / name) as f:
        if source is not None:  # a memory map of a file still there: copy the file, never load it
            with open(source, "rb") as src:
                shutil.copyfileobj(src, f, 1 << 24)
        else:  # in memory, or mapped from a file since replaced: written through the mapping
            np.save(f, array)
    return name


def _named_files(folder: Path) -> set:
    """The files a dataset header in ``folder`` names (none when there is no readable header)."""
    try:
        header = json.loads((folder / HEADER).read_text(encoding="utf-8"))
        names = {f for entry in header["layers"] for f in entry["files"].values()}
        names |= {header.get("offsets", "offsets.npy"), header.get("token_ids") or "token_ids.npy"}
        return {n for n in names if isinstance(n, str)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


def _check_free(target: Path, who: str, overwrite: bool) -> None:
    """That ``target`` may receive a dataset trace: absent, an empty folder, or (with ``overwrite``)
    a previous dataset trace; never a folder of other files, which replacing it would destroy."""
    if not (target.exists() or target.is_symlink()):
        return
    if not target.is_dir() or target.is_symlink():
        raise FileExistsError(f"{who}: {target} exists and is not a folder; choose a new or empty folder")
    if not any(target.iterdir()):
        return
    if not (target / HEADER).is_file():
        raise FileExistsError(f"{who}: {target} holds files and no dataset trace ({HEADER}); "
                              f"choose a new or empty folder")
    if not overwrite:
        raise FileExistsError(f"{who}: {target} already holds a dataset trace; pass overwrite=True to replace it "
                              f"(once the new one is complete), or choose another path")


# ---- tracing a dataset --------------------------------------------------------------------------
Tokens = Union[Callable, Sequence, None]


def _batch_inputs(batch):
    """A batch's model inputs: the batch itself, or the first item of an (inputs, targets, ...) tuple
    as a DataLoader over a TensorDataset yields."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def _quantities(lt: LayerTrace, wanted) -> dict:
    available = {**lt.states, **lt.gates}
    if wanted == "all":
        return available
    return {k: available[k] for k in wanted if k in available}


def trace_dataset(model, batches: Iterable, tokens: Tokens = None, *, max_steps: Optional[int] = None,
                  quantities: Union[Sequence[str], str] = ("h", "c"), path=None, overwrite: bool = False,
                  max_memory: int = DEFAULT_MAX_MEMORY, progress: bool = True, **trace_kwargs) -> DatasetTrace:
    """Trace every sequence of a dataset with ``rw.trace``, batch by batch, into one DatasetTrace.

    ``batches``: an iterable of model inputs, or of ``(inputs, targets, ...)`` tuples (a DataLoader).
    ``tokens``: a function from one batch's inputs to one list of strings per element (say,
    ``lambda ids: [list(decode(row)) for row in ids]``), or one list of strings per sequence in
    order, or None. ``max_steps``: stop once this many steps are traced (the last sequence cut).
    ``quantities``: which of each layer's states and gates to keep ("all" for every one).
    ``path``: a new or empty folder to write the arrays to as they come (memory-mapped). They are
    written to a folder beside it, which takes its place once complete; a folder already holding
    a dataset trace is refused unless ``overwrite=True``, and is replaced only then. One process
    at a time writes a path: another gets a clear error. Without ``path`` the arrays stay in
    memory until they pass ``max_memory`` bytes, then move to a temporary folder (removed when
    the DatasetTrace is garbage collected; ``save`` it to keep it). ``trace_kwargs`` go to ``rw.trace``.
    """
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps: expected a positive number of steps or None, got {max_steps}")
    if tokens is not None and not callable(tokens) and not isinstance(tokens, (list, tuple)):
        raise TypeError(f"tokens: expected a function of a batch's inputs, a list of token lists, or None; "
                        f"got {type(tokens).__name__}")
    run = dict(tokens=tokens, max_steps=max_steps, quantities=quantities, max_memory=max_memory,
               progress=progress, trace_kwargs=trace_kwargs)
    if path is None:
        return _trace_batches(model, batches, folder=None, **run)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with WriterLock(target, "trace_dataset"):
        _check_free(target, "trace_dataset", overwrite)
        built = building_folder(target)
        try:
            _trace_batches(model, batches, folder=built, **run)
            swap_in(built, target)
        except BaseException:
            shutil.rmtree(built, ignore_errors=True)
            raise
    return DatasetTrace.load(target)


def _trace_batches(model, batches: Iterable, *, tokens: Tokens, max_steps: Optional[int], quantities,
                   folder: Optional[Path], max_memory: int, progress: bool, trace_kwargs: dict) -> DatasetTrace:
    """``trace_dataset``'s work: into ``folder`` (an empty one, its arrays written as they come),
    or in memory until ``max_memory``, then into a temporary folder."""
    from .capture import trace as capture_trace

    columns: dict = {}
    kinds: dict = {}
    token_column = _Column(0, "<i4") if tokens is not None else None
    vocab: dict = {}
    lengths: list = []  # steps kept of each sequence
    done = 0  # their sum
    spilled = False
    temporary = None
    bar = _ProgressBar(batches, max_steps, progress)
    try:
        for batch in batches:
            inputs = _batch_inputs(batch)
            tr = capture_trace(model, inputs, tokens=tokens(inputs) if callable(tokens) else None, **trace_kwargs)
            batch_tokens = tr.tokens if callable(tokens) else _listed_tokens(tokens, len(lengths), tr)
            for b in range(tr.batch):
                if max_steps is not None and done >= max_steps:
                    break
                n = int(tr.lengths[b]) if max_steps is None else min(int(tr.lengths[b]), max_steps - done)
                for lt in tr.layers.values():
                    kinds.setdefault(lt.name, lt.kind)
                    for key, array in _quantities(lt, quantities).items():
                        column = columns.setdefault((lt.name, key), _Column(array.shape[2]))
                        column.append(array[b, :n])
                if token_column is not None:
                    token_column.append(np.array([vocab.setdefault(tok, len(vocab)) for tok in batch_tokens[b][:n]],
                                                 dtype=np.int32))
                lengths.append(n)
                done += n
                bar.steps(n)
            bar.batch()
            if not spilled and (folder is not None or _held_bytes(columns) > max_memory):
                if folder is None:
                    folder = temporary = Path(tempfile.mkdtemp(prefix="rnnwidgets-dataset-"))
                _spill(columns, token_column, folder)
                spilled = True
            if max_steps is not None and done >= max_steps:
                break
    except BaseException:
        for column in [*columns.values(), token_column]:
            if column is not None and column.file is not None:
                column.file.close()
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        raise
    finally:
        bar.close()
    if not lengths:
        raise ValueError("trace_dataset: the batches held no sequences")
    layers: dict = {}
    for (name, key), column in columns.items():
        layers.setdefault(name, {})[key] = column.finish()
    token_ids = token_column.finish() if token_column is not None else None
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    ds = DatasetTrace(layers, kinds, offsets, token_ids, list(vocab) if tokens is not None else None,
                      folder=folder if spilled else None)
    if spilled:
        ds.save(folder)  # the arrays are in place already: this writes the header and offsets
    if temporary is not None:
        weakref.finalize(ds, shutil.rmtree, temporary, True)
    return ds


def _held_bytes(columns: dict) -> int:
    return sum(column.rows * column.units * 4 for column in columns.values())


def _spill(columns: dict, token_column: Optional[_Column], folder: Path) -> None:
    """Move every column to its .npy file in ``folder`` (named as ``save`` names them)."""
    names = list(dict.fromkeys(name for name, _ in columns))
    per_layer: dict = {}
    for (name, key), column in columns.items():
        j = per_layer.setdefault(name, 0)
        per_layer[name] += 1
        column.spill(folder / f"l{names.index(name)}_q{j}.npy")
    if token_column is not None:
        token_column.spill(folder / "token_ids.npy")


def _listed_tokens(tokens: Optional[Sequence], first: int, tr: Trace):
    """The next ``tr.batch`` sequences' tokens from a list of one token list per sequence."""
    if tokens is None:
        return None
    if first + tr.batch > len(tokens):
        raise ValueError(f"tokens: expected one token list per sequence; the batches hold more than {len(tokens)}")
    chosen = [[str(tok) for tok in seq] for seq in tokens[first:first + tr.batch]]
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

    def batch(self) -> None:
        if self.by_batch:
            self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
