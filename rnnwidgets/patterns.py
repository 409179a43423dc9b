"""Patterns across a dataset trace: select-and-match (LSTMVis) and unit-token co-clustering (RNNVis).

Select (the hypothesis): in one sequence, a range of steps [start, end) and a threshold θ pick
the units that are *on* (value > θ) at every step of the range and *off* (value <= θ) at the step
just before and the step just after it (where those exist).

Match: the other places in the dataset where those units show the same on/off pattern. A
candidate is a maximal run of steps [s, e) inside one sequence where at least ``min_on`` of the
selected units (all of them by default) are on at each step. A unit *switches with* the run when
it is on at every step of it and off at the step just before and just after it (where those
exist), as the selection rule asks of the selected units: a unit on all the time never does.
With S the selected units, P those switching with the run, L its length and L0 the selection's,

    score = |S ∩ P| / |S ∪ P|  ×  min(L, L0) / max(L, L0)      (in [0, 1]; the second factor only with L0)

so a run as long as the selection, where exactly the selected units switch, scores 1; a selected
unit that does not switch, another unit that switches too, or a length unlike the selection's
each lower it. Matches are ranked by score, then by position. Step ranges are half-open
everywhere, as Python's slices: [start, end) holds steps start .. end - 1 (``values[start:end]``).

unit_stats: each unit's expected response to each token (RNNVis): its mean value at the steps
where that token is the input, and its mean change (value minus the previous step's value; the
first step of a sequence compares with 0, the default initial state).

Arrays in memory are scanned with numpy, block by block. Arrays in a store (zarr, from
``rw.trace_dataset(path=...)`` or ``DatasetTrace.load``) are scanned as dask computations on
dask's default scheduler, each task a few blocks of whole sequences read one at a time, so no
more than a block per worker thread is in memory at once; a match maps an uncompressed local
store's chunk files and reads only the selected units' columns and the rows in and around the
runs. Both run the same code on each block: their results are equal.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .dataset import DatasetTrace, map_rows, read_rows

CHUNK_STEPS = 1 << 20  # steps scanned at once in memory
BLOCK_BYTES = 64 << 20  # a block of a store read at once: whole sequences of about this many bytes
TASK_BYTES = 256 << 20  # a dask task's consecutive blocks of a store: about this many bytes


# ---- select ---------------------------------------------------------------------------------------
def select_units(values: np.ndarray, start: int, end: int, threshold: float) -> np.ndarray:
    """The units (sorted indices) on over steps [start, end) of ``values`` (time, units) and off
    at the step just before and just after the range (where those exist)."""
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"values: expected a (time, units) array, got shape {values.shape}")
    steps = values.shape[0]
    if not 0 <= start < end <= steps:
        raise ValueError(f"range: expected 0 <= start < end <= {steps}, got [{start}, {end})")
    chosen = (values[start:end] > threshold).all(axis=0)
    if start > 0:
        chosen &= values[start - 1] <= threshold
    if end < steps:
        chosen &= values[end] <= threshold
    return np.flatnonzero(chosen)


# ---- match ----------------------------------------------------------------------------------------
def _check_units(units, width: int) -> np.ndarray:
    units = np.unique(np.asarray(units, dtype=np.int64))
    if units.size == 0:
        raise ValueError("units: expected at least one selected unit (no unit is on over the range "
                         "and off around it at this threshold)")
    if units[0] < 0 or units[-1] >= width:
        raise ValueError(f"units: expected unit indices in [0, {width}), got {units.tolist()}")
    return units


def match_runs(values, offsets: np.ndarray, units, threshold: float, min_on: Optional[int] = None):
    """The matches as arrays over the concatenated steps: (start, end, selected_on, extra_on),
    runs in step order, ``end`` exclusive; ``selected_on`` / ``extra_on``: how many selected /
    other units switch with the run (on over it, off just around it). ``values``:
    (total_steps, units), numpy or a store's array (scanned with dask); ``offsets``: sequence
    starts plus the total. Vectorised over blocks of whole sequences."""
    units = _check_units(units, values.shape[1])
    need = len(units) if min_on is None else int(min_on)
    if not 1 <= need <= len(units):
        raise ValueError(f"min_on: expected 1 <= min_on <= {len(units)} (the selected units), got {min_on}")
    parts = [part for part in _per_block(_match_block, values, offsets, _block_steps(values), units, threshold, need,
                                         mapped=True)
             if part is not None]
    if not parts:
        return tuple(np.zeros(0, dtype=np.int64) for _ in range(4))
    return tuple(np.concatenate(out).astype(np.int64) for out in zip(*parts))


def _match_block(chunk, a: int, b: int, offsets: np.ndarray, units, threshold: float, need: int):
    """match_runs over steps [a, b) (whole sequences; ``chunk`` their values, numpy or a store's
    ``MappedRows``; ``offsets`` the ones within [a, b]), or None without a run. Only the selected
    units' columns and the rows in and around the runs are read."""
    count = np.count_nonzero(_columns(chunk, units) > threshold, axis=1)
    hit = count >= need
    # a run starts where the pattern is on and was off the step before or a sequence begins
    first = np.zeros(b - a, dtype=bool)
    first[offsets[(offsets >= a) & (offsets < b)] - a] = True
    starts = np.flatnonzero(hit & (first | ~np.roll(hit, 1)))
    last = np.zeros(b - a, dtype=bool)
    last[offsets[(offsets > a) & (offsets <= b)] - a - 1] = True
    ends = np.flatnonzero(hit & (last | ~np.roll(hit, -1))) + 1
    if starts.size == 0:
        return None
    on = _switching(chunk, starts, ends, ~first[starts], ~last[ends - 1], threshold)
    selected_on = np.count_nonzero(on[:, units], axis=1)
    return starts + a, ends + a, selected_on, on.sum(axis=1) - selected_on


def match_scores(selected: int, selected_on, extra_on, lengths, length: Optional[int] = None) -> np.ndarray:
    """The module doc's score of each run: |S ∩ P| / |S ∪ P|, times min(L, L0) / max(L, L0)
    with the selection's ``length`` L0."""
    selected_on, extra_on = np.asarray(selected_on), np.asarray(extra_on)
    score = selected_on / (selected + extra_on)
    if length is not None:
        lengths = np.asarray(lengths)
        score = score * np.minimum(lengths, length) / np.maximum(lengths, length)
    return score


def _block_steps(values) -> int:
    """Steps per block: CHUNK_STEPS in memory, about BLOCK_BYTES of a store's array."""
    if isinstance(values, np.ndarray):
        return CHUNK_STEPS
    return max(1, min(CHUNK_STEPS, BLOCK_BYTES // (values.shape[1] * values.dtype.itemsize)))


def _per_block(fn, values, offsets: np.ndarray, steps: int, *args, extra=None, mapped: bool = False) -> list:
    """``fn(block, a, b, offsets within [a, b], *args)`` for each block [a, b) of whole sequences,
    in order: a numpy loop over arrays in memory, else dask tasks, each reading a run of
    consecutive blocks of the store (about TASK_BYTES) one at a time and running ``fn`` on each.
    Reading inside the task keeps one block per worker thread in memory and sends back only
    ``fn``'s small results: on a ``dask.distributed`` Client (used when one is active) the blocks
    are read on the workers, never in the notebook, whose graph holds the store's address, not its
    data; a few large tasks rather than one per block keep the graph and the scheduler's work per
    search small. ``extra``: a (total_steps,) array whose block is passed after ``b`` too.
    ``mapped``: ``fn`` takes a store's block as ``MappedRows`` too (its chunks' files mapped, read
    only where ``fn`` looks), where the store allows."""
    ranges = list(_chunks(offsets, steps))

    def within(a, b):
        return offsets[(offsets >= a) & (offsets <= b)]

    if isinstance(values, np.ndarray) and (extra is None or isinstance(extra, np.ndarray)):
        return [fn(values[a:b], a, b, *([extra[a:b]] if extra is not None else []), within(a, b), *args)
                for a, b in ranges]
    import dask

    def source(array, a, b):   # what a task is sent: a numpy array's block, or a store's array (its address)
        return (array[a:b], 0) if isinstance(array, np.ndarray) else (array, a)

    row_bytes = int(np.prod(values.shape[1:], dtype=np.int64)) * values.dtype.itemsize
    groups: list = [[]]
    for a, b in ranges:   # consecutive blocks of about TASK_BYTES a task
        if groups[-1] and (b - groups[-1][0][0]) * row_bytes > TASK_BYTES:
            groups.append([])
        groups[-1].append((a, b))
    task = dask.delayed(_read_then, pure=True)
    tasks = [task(fn, mapped, [(a, b, [source(v, a, b) for v in (values, *([extra] if extra is not None else []))],
                                within(a, b)) for a, b in group], *args)
             for group in groups]
    return [result for results in dask.compute(*tasks) for result in results]


def _read_then(fn, mapped: bool, blocks: list, *args) -> list:
    """One task: for each block (a, b, sources, offsets within [a, b]), in order, the block [a, b)
    of each source (array, where the block starts in it) read here (a store's chunks then, into
    this thread's buffers, reused from block to block: fresh memory costs a page fault per 4 KiB;
    or, with ``mapped``, their files mapped where the store allows, so ``fn`` reads only what it
    looks at), then ``fn`` over the block; ``fn`` returns no view of them. ``fn``'s results."""
    results = []
    for a, b, sources, offsets in blocks:
        read = [array[start:start + b - a] if isinstance(array, np.ndarray)
                else (mapped and map_rows(array, start, start + b - a))
                or read_rows(array, start, start + b - a, _buffer(i, b - a, array.shape[1:], array.dtype))
                for i, (array, start) in enumerate(sources)]
        results.append(fn(read[0], a, b, *read[1:], offsets, *args))
        del read   # a block's mapped files are let go before the next block's
    return results


_held = threading.local()


def _buffer(i, rows: int, shape: tuple, dtype) -> np.ndarray:
    """This thread's buffer ``i``, of at least ``rows`` rows of ``shape`` and ``dtype``."""
    held = _held.__dict__.setdefault("buffers", {})
    buffer = held.get(i)
    if buffer is None or len(buffer) < rows or buffer.shape[1:] != tuple(shape) or buffer.dtype != dtype:
        buffer = held[i] = np.empty((rows + rows // 4, *shape), dtype)
    return buffer[:rows]


def _chunks(offsets: np.ndarray, steps: Optional[int] = None):
    """[a, b) ranges of whole sequences of about ``steps`` (CHUNK_STEPS) steps (a longer sequence alone)."""
    steps = CHUNK_STEPS if steps is None else steps
    a, i = 0, 0
    n = len(offsets) - 1
    while i < n:
        j = max(i + 1, int(np.searchsorted(offsets, offsets[i] + steps, side="right")) - 1)
        j = min(j, n)
        b = int(offsets[j])
        if b > a:
            yield a, b
        a, i = b, j


def _columns(chunk, cols) -> np.ndarray:
    """Columns ``cols`` of every row of a block (numpy, or a store's ``MappedRows``)."""
    return chunk[:, cols] if isinstance(chunk, np.ndarray) else chunk.columns(cols)


def _take(chunk, rows, out: np.ndarray) -> np.ndarray:
    """Rows ``rows`` of a block (numpy, or a store's ``MappedRows``) into ``out``."""
    if isinstance(chunk, np.ndarray):
        return np.take(chunk, rows, axis=0, out=out, mode="clip")   # rows within the block: no check
    return chunk.take(rows, out)


def _switching(chunk, starts: np.ndarray, ends: np.ndarray, before: np.ndarray, after: np.ndarray,
               threshold: float) -> np.ndarray:
    """(runs, units) bool: which units switch with each run [start, end) of the block: above the
    threshold at every step of it, and not above it at the step before (where ``before``) and after
    (where ``after``). Only those rows are read, into one buffer (a store's block: this thread's,
    reused); a sparse (runs x steps) product counts each unit's on steps per run
    (np.minimum.reduceat over many short runs is 20x slower, a cumulative sum along steps 40x)."""
    from scipy import sparse

    lengths = ends - starts
    total, runs = int(lengths.sum()), len(starts)
    first = np.concatenate([[0], np.cumsum(lengths)])  # where each run begins among the gathered steps
    exact = np.float32 if lengths.max() < 2 ** 24 else np.float64  # counts stay exact integers
    shape, dtype = (total + 2 * runs, chunk.shape[1]), chunk.dtype
    rows = np.empty(shape, dtype) if isinstance(chunk, np.ndarray) else _buffer(-1, shape[0], shape[1:], dtype)
    _take(chunk, np.repeat(starts - first[:-1], lengths) + np.arange(total), rows[:total])
    _take(chunk, np.maximum(starts - 1, 0), rows[total:total + runs])
    _take(chunk, np.minimum(ends, len(chunk) - 1), rows[total + runs:total + 2 * runs])
    above = np.greater(rows[:total + 2 * runs], threshold, out=rows[:total + 2 * runs])   # 1 where on, else 0
    per_run = sparse.csr_matrix((np.ones(total, exact), np.arange(total), first), shape=(runs, total))
    on = (per_run @ above[:total].astype(exact, copy=False)) == lengths[:, None]
    on &= ~((above[total:total + runs] > 0) & before[:, None])
    on &= ~((above[total + runs:] > 0) & after[:, None])
    return on


def matches(ds: DatasetTrace, units, threshold: float, *, layer: Optional[str] = None, quantity: str = "h",
            length: Optional[int] = None, min_on: Optional[int] = None, context: int = 3,
            limit: Optional[int] = 100):
    """The places in ``ds`` where the selected ``units`` are on together (see the module doc), best
    first, as a pandas DataFrame: sequence, start, end (the run is steps [start, end) of its
    sequence: end excluded, as in ``tokens[start:end]``), score (in [0, 1], the module doc's),
    selected_on and extra_on (selected and other units switching with the run), text (the run's
    tokens with ``context`` tokens either side, the run in [brackets]). ``length``: the
    selection's length, scoring runs of another length lower. ``limit``: at most this many rows
    (None: all)."""
    import pandas as pd

    values = ds.values(layer, quantity)
    layer = layer or ds.default_layer
    offsets = ds.offsets_of(layer)   # the layer's own time axis (a decoder's steps), else the dataset's
    starts, ends, selected_on, extra_on = match_runs(values, offsets, units, threshold, min_on)
    score = match_scores(len(np.unique(np.asarray(units))), selected_on, extra_on, ends - starts, length)
    order = np.lexsort((starts, -score))
    if limit is not None:
        order = order[:limit]
    sequence = np.searchsorted(offsets, starts[order], side="right") - 1
    first = offsets[sequence]
    frame = pd.DataFrame({"sequence": sequence, "start": starts[order] - first, "end": ends[order] - first,
                          "score": score[order], "selected_on": selected_on[order], "extra_on": extra_on[order]})
    labelled = layer not in ds.layer_offsets   # the tokens label the dataset's steps, not a layer's own
    frame["text"] = _snippets(ds, offsets, sequence, starts[order], ends[order], context) if labelled \
        else [""] * len(frame)
    return frame


def _snippets(ds: DatasetTrace, offsets: np.ndarray, sequence: np.ndarray, starts: np.ndarray, ends: np.ndarray,
              context: int) -> list:
    """``snippet`` of each run [start, end) (steps of the dataset) of its sequence, the tokens of
    every run read at once (a store's chunks once, not once a run)."""
    if ds.token_ids is None:
        return [""] * len(starts)
    assert ds.vocab is not None   # token ids come with their vocabulary
    lo = np.maximum(offsets[sequence], starts - context)
    hi = np.minimum(offsets[sequence + 1], ends + context)
    lengths = hi - lo
    steps = np.repeat(lo - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(int(lengths.sum()))
    ids = _token_ids_at(ds.token_ids, steps).tolist()
    vocab, texts, k = ds.vocab, [], 0
    for a, s, e, b in zip(lo.tolist(), starts.tolist(), ends.tolist(), hi.tolist()):
        words = [vocab[i] for i in ids[k:k + b - a]]
        texts.append(f"{''.join(words[:s - a])}[{''.join(words[s - a:e - a])}]{''.join(words[e - a:])}")
        k += b - a
    return texts


def _token_ids_at(token_ids, steps: np.ndarray) -> np.ndarray:
    """``token_ids[steps]`` of a numpy or store's array, in one read."""
    if isinstance(token_ids, np.ndarray) or len(steps) == 0:
        return np.asarray(token_ids)[steps]
    a, b = int(steps.min()), int(steps.max()) + 1
    mapped = map_rows(token_ids, a, b)
    if mapped is not None:
        return mapped.take(steps - a)
    return np.asarray(token_ids.get_coordinate_selection(steps))


def snippet(ds: DatasetTrace, sequence: int, start: int, end: int, context: int = 3) -> str:
    """The tokens of [start, end) in brackets, with ``context`` tokens either side ("" without tokens)."""
    tokens = ds.tokens(sequence)
    if tokens is None:
        return ""
    before = "".join(tokens[max(0, start - context):start])
    after = "".join(tokens[end:end + context])
    return f"{before}[{''.join(tokens[start:end])}]{after}"


# ---- units x tokens (RNNVis) ----------------------------------------------------------------------
@dataclass
class UnitStats:
    """Each unit's expected response per token: ``mean`` and ``change`` are (units, tokens);
    ``counts[j]``: how often ``tokens[j]`` occurs."""

    tokens: list
    counts: np.ndarray
    mean: np.ndarray
    change: np.ndarray

    def frame(self, which: str = "mean"):
        """One of the matrices as a DataFrame: a row per unit, a column per token."""
        import pandas as pd

        if which not in ("mean", "change"):
            raise ValueError(f"which: expected 'mean' or 'change', got {which!r}")
        return pd.DataFrame(getattr(self, which), columns=self.tokens).rename_axis("unit")


def unit_stats(ds: DatasetTrace, layer: Optional[str] = None, quantity: str = "h") -> UnitStats:
    """Each unit's mean value and mean change in value at each token of the dataset trace."""
    if ds.token_ids is None:
        raise ValueError("unit_stats: the dataset trace has no tokens; pass tokens= to rw.trace_dataset")
    assert ds.vocab is not None   # token ids come with their vocabulary
    values = ds.values(layer, quantity)
    if (layer or ds.default_layer) in ds.layer_offsets:
        raise ValueError(f"unit_stats: {layer or ds.default_layer} has its own time axis, which the dataset's tokens "
                         f"do not label; expected one of the layers the tokens label "
                         f"{[n for n in ds.layers if n not in ds.layer_offsets]}")
    vocab = len(ds.vocab)
    units = values.shape[1]
    # float64 sums of a block: both paths add the same blocks in the same order (equal results)
    steps = max(1, min(CHUNK_STEPS, BLOCK_BYTES // (units * 8)))
    sums = np.zeros((vocab, units), dtype=np.float64)
    change_sums = np.zeros((vocab, units), dtype=np.float64)
    counts = np.zeros(vocab, dtype=np.int64)
    for block_sums, block_changes, block_counts in _per_block(_unit_block, values, ds.offsets, steps, vocab,
                                                              extra=ds.token_ids):
        sums += block_sums
        change_sums += block_changes
        counts += block_counts
    per = np.maximum(counts, 1)[:, None]
    return UnitStats(list(ds.vocab), counts, (sums / per).T.astype(np.float32),
                     (change_sums / per).T.astype(np.float32))


def _unit_block(chunk, a: int, b: int, ids, offsets: np.ndarray, vocab: int):
    """unit_stats' sums over steps [a, b) (whole sequences): per token, the values, the changes
    and the count."""
    from scipy import sparse

    chunk = np.asarray(chunk, dtype=np.float64)
    ids = np.asarray(ids)
    steps = np.arange(b - a)
    onehot = sparse.csr_matrix((np.ones(b - a), (ids, steps)), shape=(vocab, b - a))
    # the previous step's value, summed per token without a shifted copy of the block: step t-1
    # counts for token ids[t], except where a sequence starts (from the zero state)
    later = np.ones(b - a, dtype=bool)
    later[offsets[offsets < b] - a] = False
    previous = sparse.csr_matrix((np.ones(int(later.sum())), (ids[later], steps[later] - 1)), shape=(vocab, b - a))
    sums = onehot @ chunk
    return sums, sums - previous @ chunk, np.bincount(ids, minlength=vocab)


@dataclass
class CoClusters:
    """Groups of units and of tokens that go together. ``unit_labels[u]`` / ``token_labels[j]``:
    each one's cluster; ``unit_order`` / ``token_order``: units and tokens sorted by cluster (for a
    matrix drawn ordered by cluster); ``top_tokens[k]``: cluster k's tokens, strongest first."""

    tokens: list
    matrix: np.ndarray
    unit_labels: np.ndarray
    token_labels: np.ndarray
    unit_order: np.ndarray
    token_order: np.ndarray
    top_tokens: list

    def units_of(self, cluster: int) -> np.ndarray:
        return np.flatnonzero(self.unit_labels == cluster)


def cocluster(stats: UnitStats, n_clusters: int = 3, which: str = "mean", min_count: int = 1,
              seed: int = 0) -> CoClusters:
    """Spectral co-clustering (scikit-learn) of the units x tokens response matrix.

    Edge weights are the responses' magnitudes (a unit that goes strongly negative at a token
    belongs with it as much as one that goes positive); tokens seen fewer than ``min_count`` times
    are left out.
    """
    from sklearn.cluster import SpectralCoclustering

    if which not in ("mean", "change"):
        raise ValueError(f"which: expected 'mean' or 'change', got {which!r}")
    keep = np.flatnonzero(stats.counts >= min_count)
    matrix = getattr(stats, which)[:, keep]
    if not 2 <= n_clusters <= min(matrix.shape):
        raise ValueError(f"n_clusters: expected 2 <= n_clusters <= {min(matrix.shape)} "
                         f"(units x kept tokens = {matrix.shape}), got {n_clusters}")
    bad = ~np.isfinite(matrix)
    if bad.any():
        units = np.flatnonzero(bad.any(axis=1))
        raise ValueError(f"cocluster: expected finite responses, got NaN or inf in the {which} of units "
                         f"{units[:10].tolist()}{' ...' if len(units) > 10 else ''} (the dataset trace holds "
                         f"non-finite values there)")
    weights = np.abs(matrix).astype(np.float64) + 1e-9  # the algorithm needs no all-zero row or column
    model = SpectralCoclustering(n_clusters=n_clusters, random_state=seed).fit(weights)
    tokens = [stats.tokens[j] for j in keep]
    unit_labels, token_labels = model.row_labels_, model.column_labels_
    top_tokens = []
    for k in range(n_clusters):
        columns = np.flatnonzero(token_labels == k)
        rows = unit_labels == k
        strength = weights[rows][:, columns].mean(axis=0) if rows.any() else np.zeros(len(columns))
        top_tokens.append([tokens[j] for j in columns[np.argsort(-strength, kind="stable")]])
    return CoClusters(tokens, matrix, unit_labels, token_labels, np.argsort(unit_labels, kind="stable"),
                      np.argsort(token_labels, kind="stable"), top_tokens)
