"""Select-and-match against a brute-force reference; unit-token statistics and co-clustering."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnwidgets import patterns
from rnnwidgets.dataset import DatasetTrace
from rnnwidgets.patterns import cocluster, match_runs, match_scores, matches, select_units, snippet, unit_stats


def reference_runs(values, offsets, units, threshold, min_on):
    """Maximal runs where >= min_on selected units are on, one step at a time in plain Python, with
    how many selected and other units switch with each (on over it, off just around it)."""
    out = []
    for s in range(len(offsets) - 1):
        t, end = int(offsets[s]), int(offsets[s + 1])
        while t < end:
            if sum(values[t, u] > threshold for u in units) < min_on:
                t += 1
                continue
            a = t
            while t < end and sum(values[t, u] > threshold for u in units) >= min_on:
                t += 1
            # switching with the run: on over it, off at the step before and after (inside the sequence)
            on = [u for u in range(values.shape[1]) if all(values[k, u] > threshold for k in range(a, t))
                  and not (a > int(offsets[s]) and values[a - 1, u] > threshold)
                  and not (t < end and values[t, u] > threshold)]
            chosen = sum(u in units for u in on)
            out.append((a, t, chosen, len(on) - chosen))
    return out


@st.composite
def datasets(draw):
    lengths = draw(st.lists(st.integers(0, 9), min_size=1, max_size=6))
    width = draw(st.integers(1, 5))
    steps = sum(lengths)
    values = np.array(draw(st.lists(st.sampled_from([-1.0, 0.0, 0.5, 1.0]), min_size=steps * width,
                                    max_size=steps * width)), dtype=np.float32).reshape(steps, width)
    units = draw(st.lists(st.integers(0, width - 1), min_size=1, max_size=width, unique=True))
    min_on = draw(st.integers(1, len(units)))
    return values, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), sorted(units), min_on


@settings(max_examples=200, deadline=None)
@given(datasets(), st.sampled_from([-0.5, 0.0, 0.7]), st.sampled_from([3, 1 << 20]))
def test_match_runs_equal_brute_force(data, threshold, chunk):
    values, offsets, units, min_on = data
    patterns.CHUNK_STEPS, before = chunk, patterns.CHUNK_STEPS  # small chunks: runs never cross them
    try:
        got = list(zip(*(a.tolist() for a in match_runs(values, offsets, units, threshold, min_on))))
    finally:
        patterns.CHUNK_STEPS = before
    assert got == reference_runs(values, offsets, units, threshold, min_on)


def test_select_units_on_over_range_off_around():
    values = np.array([[0, 0, 1, 0], [1, 1, 1, 0], [1, 1, 1, 1], [0, 1, 0, 1]], dtype=np.float32)
    # unit 0: off, on, on, off -> selected; unit 1: on after the range; unit 2: on before; unit 3: off inside
    assert select_units(values, 1, 3, 0.5).tolist() == [0]
    assert select_units(values, 0, 4, -1.0).tolist() == [0, 1, 2, 3]  # no step before or after
    with pytest.raises(ValueError, match="expected 0 <= start < end <= 4"):
        select_units(values, 2, 2, 0.5)


def small_dataset(values, offsets, tokens):
    vocab = sorted(set(tokens))
    ids = np.array([vocab.index(t) for t in tokens], dtype=np.int32)
    return DatasetTrace({"rnn.l0": {"h": values}}, {"rnn.l0": "rnn"}, offsets, ids, vocab)


def test_matches_ranked_frame_with_text():
    # unit 0 and 1 are the hypothesis; unit 2 switches with the second run; unit 3 is always on
    h = np.array([[0, 0, 0, 1], [1, 1, 0, 1], [1, 1, 0, 1], [0, 0, 0, 1],
                  [1, 1, 1, 1], [0, 0, 0, 1], [1, 1, 0, 1]], dtype=np.float32)
    ds = small_dataset(h, [0, 4, 7], list("xaaxbyc"))
    frame = matches(ds, [0, 1], 0.5, length=2, context=1)
    # [1, 3): exactly the selection (1); [2, 3) of sequence 1: half its length (0.5); [0, 1): a
    # third unit switches too (2/3) and half the length (1/3); the always-on unit 3 costs nothing
    assert frame[["sequence", "start", "end"]].values.tolist() == [[0, 1, 3], [1, 2, 3], [1, 0, 1]]
    np.testing.assert_allclose(frame["score"], [1, 0.5, 1 / 3])
    assert frame["text"].tolist() == ["x[aa]x", "y[c]", "[b]y"]
    assert frame["selected_on"].tolist() == [2, 2, 2] and frame["extra_on"].tolist() == [0, 0, 1]
    # without the selection's length, only the units count
    np.testing.assert_allclose(matches(ds, [0, 1], 0.5)["score"], [1, 1, 2 / 3])
    with pytest.raises(ValueError, match="at least one selected unit"):
        matches(ds, [], 0.5)
    with pytest.raises(ValueError, match=r"unit indices in \[0, 4\)"):
        matches(ds, [4], 0.5)


def test_match_scores_rank_what_the_integer_score_tied():
    """The integer score (selected - extra on over the run) gave every match of a one-unit
    selection beside an always-on unit 0 (the tutorial's case); the score ranks them."""
    assert match_scores(1, [1, 1, 1], [0, 1, 0], [4, 4, 2], length=4).tolist() == [1.0, 0.5, 0.5]
    assert match_scores(2, [2, 1], [0, 0], [3, 3]).tolist() == [1.0, 0.5]


def test_unit_stats_equal_per_token_loop():
    rng = np.random.default_rng(0)
    h = rng.normal(size=(11, 3)).astype(np.float32)
    tokens = list("abcabbacbca")
    ds = small_dataset(h, [0, 5, 11], tokens)
    stats = unit_stats(ds)
    previous = np.vstack([np.zeros(3), h[:-1]])
    previous[5] = 0  # the second sequence starts from the zero state
    for j, tok in enumerate(stats.tokens):
        at = [t for t, x in enumerate(tokens) if x == tok]
        assert stats.counts[j] == len(at)
        np.testing.assert_allclose(stats.mean[:, j], h[at].mean(axis=0), rtol=1e-5)
        np.testing.assert_allclose(stats.change[:, j], (h[at] - previous[at]).mean(axis=0), rtol=1e-5, atol=1e-6)
    assert stats.frame("change").shape == (3, 3)


def test_cocluster_of_non_finite_values_says_which_units_in_one_sentence():
    rng = np.random.default_rng(0)
    h = rng.normal(size=(11, 4)).astype(np.float32)
    h[3, 2], h[7, 0] = np.nan, np.inf   # a dataset trace of a model that diverged
    ds = small_dataset(h, [0, 5, 11], list("abcabbacbca"))
    with pytest.raises(ValueError, match=r"^cocluster: expected finite responses, got NaN or inf in the mean of "
                                         r"units \[0, 2\] \(the dataset trace holds non-finite values there\)$"):
        cocluster(unit_stats(ds), n_clusters=2)


def test_cocluster_recovers_planted_blocks():
    rng = np.random.default_rng(1)
    units, vocab, groups = 12, 9, 3
    unit_group = rng.permutation(np.arange(units) % groups)
    token_group = rng.permutation(np.arange(vocab) % groups)
    tokens = [f"w{j}" for j in range(vocab)]
    ids = rng.integers(0, vocab, size=3000)
    # a unit responds (strongly, either sign) only to the tokens of its own group
    sign = np.where(rng.random(units) < 0.5, -1.0, 1.0)
    h = (token_group[ids][:, None] == unit_group[None, :]) * sign * 2.0 + rng.normal(0, 0.1, (len(ids), units))
    ds = small_dataset(h.astype(np.float32), [0, len(ids)], [tokens[i] for i in ids])
    stats = unit_stats(ds)
    found = cocluster(stats, n_clusters=groups)
    planted_of_token = {tok: token_group[int(tok[1:])] for tok in stats.tokens}
    for k in range(groups):
        group = unit_group[found.units_of(k)]
        assert len(set(group)) == 1 and (unit_group == group[0]).sum() == len(group)  # one whole planted group
        assert sorted(found.top_tokens[k]) == sorted(t for t in stats.tokens if planted_of_token[t] == group[0])
    assert sorted(found.unit_order.tolist()) == list(range(units))


# ---- a store: dask computations equal to numpy, a block at a time ---------------------------------

@pytest.fixture
def stored(tmp_path, monkeypatch):
    """The same dataset in memory and in a zarr store of many chunks, scanned in many small blocks."""
    from rnnwidgets import dataset

    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 40, size=300)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    h = np.tanh(rng.standard_normal((offsets[-1], 16)).astype(np.float32))
    tokens = [str(t) for t in rng.integers(0, 9, size=offsets[-1])]
    memory = small_dataset(h, offsets, tokens)
    monkeypatch.setattr(dataset, "CHUNK_BYTES", 16 * 4 * 100)   # 100 steps a chunk
    monkeypatch.setattr(patterns, "BLOCK_BYTES", 16 * 4 * 200)  # blocks of about 200 steps
    monkeypatch.setattr(patterns, "TASK_BYTES", 16 * 4 * 600)   # tasks of about 3 blocks
    return memory, DatasetTrace.load(memory.save(tmp_path / "ds"))


def test_a_store_is_scanned_with_dask_a_block_at_a_time_equal_to_numpy(stored, monkeypatch):
    import dask

    memory, store = stored
    import zarr
    assert isinstance(store.values(), zarr.Array)
    computed, blocks = [], []
    compute, block = dask.compute, patterns._match_block
    monkeypatch.setattr(dask, "compute", lambda *a, **k: computed.append(len(a)) or compute(*a, **k))
    monkeypatch.setattr(patterns, "_match_block", lambda chunk, *a: blocks.append(chunk.shape[0]) or block(chunk, *a))
    mapped, read = [], []   # a match maps the uncompressed store's chunk files; it reads no whole block
    map_rows, read_rows = patterns.map_rows, patterns.read_rows
    monkeypatch.setattr(patterns, "map_rows", lambda *a: mapped.append(a[1:]) or map_rows(*a))
    monkeypatch.setattr(patterns, "read_rows", lambda *a: read.append(a[1:3]) or read_rows(*a))
    for units, threshold, min_on in [([0, 3], 0.2, None), ([1, 5, 9], 0.0, 2), ([7], -0.5, None)]:
        want = match_runs(memory.values(), memory.offsets, units, threshold, min_on)
        assert not computed   # arrays in memory: numpy
        blocks.clear()
        got = match_runs(store.values(), store.offsets, units, threshold, min_on)
        assert max(blocks) < 250 < store.steps   # never the whole array
        assert len(computed) == 1 and computed.pop() > 5   # one dask task per few blocks
        assert len(want[0]) > 10
        assert mapped and not read
        mapped.clear()
        for a, b in zip(want, got):
            np.testing.assert_array_equal(a, b)
        shown = matches(store, units, threshold, length=3, limit=None)
        assert shown.equals(matches(memory, units, threshold, length=3, limit=None))
        assert shown["text"].tolist() == [snippet(memory, int(q), int(a), int(b)) for q, a, b in
                                          zip(shown["sequence"], shown["start"], shown["end"])]
        computed.clear()
    for ds in (memory, store):   # no match at all: empty arrays
        assert [len(a) for a in match_runs(ds.values(), ds.offsets, [0], 2.0)] == [0, 0, 0, 0]
    a, b = unit_stats(memory), unit_stats(store)
    assert computed
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.change, b.change)
    np.testing.assert_array_equal(cocluster(a).unit_labels, cocluster(b).unit_labels)
