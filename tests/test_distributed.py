"""Dataset traces on a dask.distributed cluster (a LocalCluster of two worker processes): traced on
the workers equal to traced here; matches over a store four times a worker's memory limit."""
import sys

import numpy as np
import pytest
import torch
import zarr
from torch import nn
from worker_memory import peak_memory

import rnnwidgets as rw
from rnnwidgets import patterns
from rnnwidgets.data import brackets
from rnnwidgets.dataset import DatasetTrace, chunk_rows

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow


def two_workers(**kwargs):
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       **kwargs)
    return cluster, distributed.Client(cluster)


class Decoder(nn.Module):
    """An encoder and a decoder run for its own number of steps (a layer with its own time axis)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(len(brackets.VOCAB), 5)
        self.encoder = nn.LSTM(5, 7, batch_first=True)
        self.decoder = nn.GRU(3, 7, batch_first=True)

    def forward(self, ids):
        _, (h, _) = self.encoder(self.embed(ids))
        return self.decoder(torch.zeros(ids.shape[0], 4, 3), h)[0]


def chars(ids):
    return [list(brackets.decode(row)) for row in ids]


@pytest.fixture(scope="module")
def client():
    cluster, client = two_workers()
    yield client
    client.close()
    cluster.close()


def assert_same(a: DatasetTrace, b: DatasetTrace):
    assert list(a.layers) == list(b.layers) and a.kinds == b.kinds and a.vocab == b.vocab
    np.testing.assert_array_equal(a.offsets, b.offsets)
    assert a.layer_offsets.keys() == b.layer_offsets.keys()
    for name in a.layer_offsets:
        np.testing.assert_array_equal(a.layer_offsets[name], b.layer_offsets[name])
    np.testing.assert_array_equal(a.token_ids, b.token_ids)
    assert (a.outputs is None) == (b.outputs is None)
    if a.outputs is not None:                       # the model's outputs at every step, kept alike
        np.testing.assert_array_equal(a.outputs, b.outputs)
    for name in a.layers:
        assert list(a.layers[name]) == list(b.layers[name])
        for key in a.layers[name]:
            np.testing.assert_array_equal(a.layers[name][key], b.layers[name][key])


@pytest.mark.parametrize("max_steps", [None, 150])
def test_a_dataset_traced_on_workers_equals_one_traced_here(client, tmp_path, monkeypatch, max_steps):
    from rnnwidgets import dataset

    monkeypatch.setattr(dataset, "CHUNK_BYTES", 7 * 4 * 16)   # chunks of 16 steps: shards meet inside chunks
    torch.manual_seed(0)
    model = Decoder()
    inputs, _, _ = brackets.next_char_data(40, length=12, seed=1)
    batches = [inputs[i:i + 6] for i in range(0, 40, 6)]
    torch.set_num_threads(1)   # as each worker: the same float results
    here = rw.trace_dataset(model, batches, tokens=chars, quantities="all", max_steps=max_steps,
                            path=tmp_path / "here", client=False, progress=False)
    workers = rw.trace_dataset(model, batches, tokens=chars, quantities="all", max_steps=max_steps,
                               path=tmp_path / "workers", client=client, progress=False)
    assert here.layer_offsets and len(batches) > 4   # several shards, a layer of its own time axis
    assert_same(here, workers)
    assert not (tmp_path / "workers" / "_shards").exists()
    # with a Client active, a path given and tokens a function, the workers trace without being asked
    traced = []
    monkeypatch.setattr(distributed.Client, "submit", lambda self, fn, *a, **k: traced.append(fn.__name__)
                        or submit(self, fn, *a, **k))
    assert_same(here, rw.trace_dataset(model, batches, tokens=chars, quantities="all", max_steps=max_steps,
                                       path=tmp_path / "auto", progress=False))
    assert "_trace_shard" in traced


submit = distributed.Client.submit


def test_edits_on_the_workers_act_and_are_recorded_as_here(client, tmp_path):
    torch.manual_seed(0)
    model = Decoder()
    inputs, _, _ = brackets.next_char_data(40, length=12, seed=1)
    batches = [inputs[i:i + 6] for i in range(0, 40, 6)]
    edits = [rw.clamp("encoder.l0", "c", [2], range(3, 8), 0.0), rw.clamp("decoder.l0", "h", [0], None, 0.5)]
    torch.set_num_threads(1)   # as each worker: the same float results
    here = rw.trace_dataset(model, batches, edits=edits, path=tmp_path / "here", client=False, progress=False)
    workers = rw.trace_dataset(model, batches, edits=edits, path=tmp_path / "workers", client=client,
                               progress=False)
    assert_same(here, workers)
    assert workers.edits == here.edits == [e.describe() for e in edits]
    assert np.all(np.asarray(workers.layers["decoder.l0"]["h"])[:, 0] == np.float32(0.5))


def test_a_model_defined_in_the_notebook_is_sent_to_the_workers(client, tmp_path):
    class Local(nn.Module):   # not importable by name on a worker: sent by value
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNN(2, 3, batch_first=True)

        def forward(self, x):
            return self.rnn(x)[0]

    torch.manual_seed(0)
    batches = [torch.randn(2, 5, 2) for _ in range(3)]
    workers = rw.trace_dataset(Local(), batches, path=tmp_path / "w", client=client, progress=False)
    assert workers.steps == 30 and workers.layers["rnn.l0"]["h"].shape == (30, 3)
    with pytest.raises(ValueError, match="expected path="):
        rw.trace_dataset(Local(), batches, client=client, progress=False)
    with pytest.raises(ValueError, match="tokens: expected a function"):
        rw.trace_dataset(Local(), batches, tokens=[["a"] * 5] * 6, path=tmp_path / "x", client=client, progress=False)


LIMIT = 256 << 20   # each worker's memory limit


def big_store(folder, steps: int, units: int) -> DatasetTrace:
    """A store of ``steps`` x ``units`` float32 written a chunk at a time (never whole in memory)."""
    group = zarr.open_group(str(folder), mode="w", zarr_format=3)
    rows = chunk_rows(units)
    h = group.create_array("l0_q0", shape=(steps, units), chunks=(rows, units), dtype="<f4", fill_value=0)
    rng = np.random.default_rng(0)
    block = np.tanh(rng.standard_normal((rows // 8 + 1, units), dtype=np.float32).repeat(8, axis=0)[:rows]
                    + 0.3 * rng.standard_normal((rows, units), dtype=np.float32))
    for a in range(0, steps, rows):
        h[a:a + rows] = np.roll(block, a // rows, axis=1)[:steps - a]
    offsets = np.append(np.arange(0, steps, 100), steps)
    ds = DatasetTrace({"lstm.l0": {"h": h}}, {"lstm.l0": "lstm"}, offsets, folder=folder, generation="g")
    ds._write_store(group, None)
    return DatasetTrace.load(folder)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak memory read from /proc")
def test_matches_over_a_store_four_times_the_workers_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(patterns, "BLOCK_BYTES", 8 << 20)
    monkeypatch.setattr(patterns, "TASK_BYTES", 32 << 20)   # a task: four blocks, read one at a time
    units = 512
    steps = -(-4 * LIMIT // (units * 4))  # four times a worker's memory
    store = big_store(tmp_path / "big", steps, units)
    assert store.values().nbytes >= 4 * LIMIT
    cluster, client = two_workers(memory_limit=LIMIT)
    try:
        reads = []   # the notebook reads no chunk of the values: the workers do
        getitem = zarr.Array.__getitem__
        monkeypatch.setattr(zarr.Array, "__getitem__", lambda self, key: reads.append(self.path) or getitem(self, key))
        client.run(peak_memory, reset=True)
        with distributed.get_task_stream(client) as tasks:
            found = patterns.match_runs(store.values(), store.offsets, [0, 7, 14], 0.3)
        peaks = client.run(peak_memory)
        assert len(found[0]) > 1000
        assert "l0_q0" not in reads
        ran = [t for t in tasks.data if t["key"].startswith("_read_then")]
        assert len(ran) >= store.steps * units * 4 // (32 << 20) and len({t["worker"] for t in ran}) == 2
        for peak in peaks.values():   # bounded: a few blocks above a worker at rest, under its limit
            assert peak < 0.8 * LIMIT, peaks
    finally:
        client.close()
        cluster.close()
    monkeypatch.undo()
    want = patterns.match_runs(store.values()[:200_000], store.offsets[store.offsets <= 200_000], [0, 7, 14], 0.3)
    n = len(want[0])
    for a, b in zip(want, found):
        np.testing.assert_array_equal(a, b[:n])
