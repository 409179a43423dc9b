"""rw.trace_dataset: every sequence's steps end to end, the same in memory, spilled and on disk."""
import json

import numpy as np
import pytest
import torch
import zarr
from torch import nn

import rnnwidgets as rw
from rnnwidgets import dataset
from rnnwidgets.data import brackets
from rnnwidgets.dataset import DatasetTrace
from rnnwidgets.fileio import npy_header


class CharLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(len(brackets.VOCAB), 5)
        self.lstm = nn.LSTM(5, 7, num_layers=2, batch_first=True)

    def forward(self, ids):
        return self.lstm(self.embed(ids))[0]


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = CharLSTM()
    inputs, targets, _ = brackets.next_char_data(20, length=12, seed=0)
    batches = [(inputs[i:i + 6], targets[i:i + 6]) for i in range(0, 20, 6)]  # as a DataLoader yields
    return model, inputs, batches


def chars(ids):
    return [list(brackets.decode(row)) for row in ids]


def assert_same(a: DatasetTrace, b: DatasetTrace):
    assert list(a.layers) == list(b.layers) and a.kinds == b.kinds and a.cells == b.cells and a.vocab == b.vocab
    np.testing.assert_array_equal(a.offsets, b.offsets)
    np.testing.assert_array_equal(a.token_ids, b.token_ids)
    assert (a.outputs is None) == (b.outputs is None)
    if a.outputs is not None:
        np.testing.assert_array_equal(a.outputs, b.outputs)
    for name in a.layers:
        assert list(a.layers[name]) == list(b.layers[name])
        for key in a.layers[name]:
            np.testing.assert_array_equal(a.layers[name][key], b.layers[name][key])


def test_steps_equal_rw_trace_of_each_sequence(setup):
    model, inputs, batches = setup
    ds = rw.trace_dataset(model, batches, tokens=chars, progress=False)
    assert (ds.sequences, ds.steps) == (20, 240) and not ds.on_disk
    # each batch traced on its own (float results may differ in the last bit across batch sizes)
    per_batch = [rw.trace(model, x, tokens=chars(x)) for x, _ in batches]
    for name in per_batch[0].layers:
        for key in ("h", "c"):
            expected = np.concatenate([tr.layers[name].states[key].reshape(-1, 7) for tr in per_batch])
            np.testing.assert_array_equal(ds.layers[name][key], expected)
    assert ds.tokens(3) == chars(inputs)[3]
    one = ds.sequence(3)  # a Trace the Explorer opens
    np.testing.assert_array_equal(one.layers["lstm.l1"].states["h"][0], per_batch[0].layers["lstm.l1"].states["h"][3])
    assert one.tokens == [chars(inputs)[3]] and ds.locate(40) == (3, 4)
    assert all(lt.initial == {} for lt in one.layers.values())   # a dataset keeps per-step arrays only


def test_disk_backed_equals_in_memory_and_reopens(setup, tmp_path):
    model, _, batches = setup
    memory = rw.trace_dataset(model, batches, tokens=chars, progress=False)
    on_disk = rw.trace_dataset(model, batches, tokens=chars, path=tmp_path / "direct", progress=False)
    spilled = rw.trace_dataset(model, batches, tokens=chars, max_memory=1000, progress=False)  # past 1 kB: disk
    assert on_disk.on_disk and spilled.on_disk
    assert isinstance(on_disk.layers["lstm.l0"]["h"], zarr.Array)   # read a chunk at a time
    for other in (on_disk, spilled, DatasetTrace.load(tmp_path / "direct"),
                  DatasetTrace.load(memory.save(tmp_path / "saved")), DatasetTrace.load(spilled.save(tmp_path / "copy"))):
        assert_same(memory, other)
    # the temporary folder of a spilled trace goes with it
    folder = spilled.folder
    del spilled, other
    import gc
    gc.collect()
    assert not folder.exists()


def test_a_small_dataset_takes_about_its_own_bytes_on_disk(setup, tmp_path):
    """zarr writes an edge chunk whole: chunks of 16 MB made a few hundred steps take 16 MB an
    array on disk. Written as traced, spilled past max_memory, or saved, a store now holds about
    its arrays' bytes, and a dataset past one chunk still gets whole-size chunks."""
    model, _, batches = setup
    memory = rw.trace_dataset(model, batches, tokens=chars, progress=False)
    held = sum(a.nbytes for quantities in memory.layers.values() for a in quantities.values())
    stores = [rw.trace_dataset(model, batches, tokens=chars, path=tmp_path / "direct", progress=False).folder,
              memory.save(tmp_path / "saved")]
    spilled = rw.trace_dataset(model, batches, tokens=chars, max_memory=1000, progress=False)
    stores.append(spilled.folder)
    for folder in stores:
        on_disk = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        assert held < on_disk < 2 * held + 200_000, (folder, on_disk, held)   # + the zarr.json files
    # past a chunk: the chunk keeps its size, the rows spread over several
    rows = dataset.chunk_rows(7, chunk_bytes=256)
    small_chunks = dataset._trace_batches(model, batches, tokens=chars, max_steps=None, quantities="all",
                                          outputs=None, folder=tmp_path / "chunked", max_memory=0,
                                          compression=None, progress=False, trace_kwargs={}, chunk_bytes=256)
    h = small_chunks.layers["lstm.l0"]["h"]
    assert h.chunks[0] == rows < h.shape[0]
    np.testing.assert_array_equal(np.asarray(h[:]), memory.layers["lstm.l0"]["h"])


def test_a_sequence_opens_with_its_gates_and_the_models_outputs(setup, monkeypatch):
    """What the Explorer of a dataset's sequence needs to show every panel: the gates (kept by
    default) and the model's outputs at each step (its predictions), on disk as in memory."""
    model, inputs, batches = setup
    ds = rw.trace_dataset(model, batches, tokens=chars, progress=False, max_memory=1000)
    assert ds.on_disk and sorted(ds.layers["lstm.l1"]) == ["c", "cell", "forget", "h", "input", "output"]
    one = ds.sequence(8)
    traced = rw.trace(model, batches[1][0])   # sequences 6..11
    np.testing.assert_array_equal(one.outputs[0], traced.outputs[2])
    np.testing.assert_array_equal(one.layers["lstm.l0"].gates["forget"][0], traced.layers["lstm.l0"].gates["forget"][2])
    assert rw.trace_dataset(model, batches, outputs=False, progress=False).outputs is None
    monkeypatch.setattr(dataset, "MAX_KEPT_OUTPUTS", 6)   # outputs of 7 features: more than kept by default
    assert rw.trace_dataset(model, batches, progress=False).outputs is None
    assert rw.trace_dataset(model, batches, outputs=True, progress=False).outputs.shape == (240, 7)


def test_max_steps_gates_and_token_lists(setup):
    model, inputs, batches = setup
    listed = [list(brackets.decode(row)) for row in inputs]
    ds = rw.trace_dataset(model, batches, tokens=listed, max_steps=50, quantities="all", progress=False)
    assert ds.lengths.tolist() == [12, 12, 12, 12, 2] and ds.steps == 50
    assert sorted(ds.layers["lstm.l0"]) == ["c", "cell", "forget", "h", "input", "output"]
    assert ds.tokens(4) == listed[4][:2]
    first = rw.trace(model, batches[0][0])  # the batch holding sequence 4
    np.testing.assert_array_equal(ds.layers["lstm.l0"]["forget"][48:], first.layers["lstm.l0"].gates["forget"][4, :2])


def test_clear_errors(setup):
    model, inputs, batches = setup
    with pytest.raises(ValueError, match="max_steps: expected a positive"):
        rw.trace_dataset(model, batches, max_steps=0, progress=False)
    with pytest.raises(ValueError, match="one token list per sequence"):
        rw.trace_dataset(model, batches, tokens=[["("] * 12], progress=False)
    with pytest.raises(ValueError, match="held no sequences"):
        rw.trace_dataset(model, [], progress=False)
    ds = rw.trace_dataset(model, batches[:1], quantities=("h", "c"), progress=False)   # no gates kept
    with pytest.raises(ValueError, match="quantity: expected one of"):
        ds.values("lstm.l0", "forget")
    with pytest.raises(IndexError, match="sequence: expected 0 <= sequence < 6"):
        ds.sequence(6)


def test_npy_header_is_read_by_numpy(tmp_path):
    path = tmp_path / "a.npy"
    data = np.arange(12, dtype="<f4").reshape(3, 4)
    path.write_bytes(npy_header((3, 4)) + data.tobytes())
    np.testing.assert_array_equal(np.load(path, mmap_mode="r"), data)
    np.testing.assert_array_equal(np.load(path), data)


def test_a_failing_batch_leaves_no_temporary_files(setup, monkeypatch, tmp_path):
    model, inputs, batches = setup
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # where the spilled arrays would go
    bad = [batches[0], torch.full((2, 12), 99)]  # an id outside the embedding
    with pytest.raises(IndexError):
        rw.trace_dataset(model, bad, max_memory=0, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_saved_dataset_trace_is_searched_without_torch(setup, tmp_path):
    import subprocess
    import sys

    model, _, batches = setup
    rw.trace_dataset(model, batches, tokens=chars, path=tmp_path / "ds", progress=False)
    code = ("import sys, rnnwidgets as rw\n"
            f"ds = rw.DatasetTrace.load(r'{tmp_path / 'ds'}')\n"
            "from rnnwidgets.patterns import matches\n"
            "frame = matches(ds, [0], 0.0, layer='lstm.l1')\n"
            "stats = rw.unit_stats(ds)\n"
            "assert 'torch' not in sys.modules and stats.mean.shape == (7, 4), stats.mean.shape\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- nothing lost: saving, replacing, two writers --------------------------------------------

def hidden_files(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_an_interrupted_save_leaves_the_previous_dataset(setup, tmp_path, monkeypatch):
    model, _, batches = setup
    first = rw.trace_dataset(model, batches[:1], tokens=chars, progress=False)
    first.save(tmp_path / "ds")
    second = rw.trace_dataset(model, batches, tokens=chars, progress=False)
    place, calls = dataset._place, []

    def fails_on_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return place(*args, **kwargs)

    monkeypatch.setattr(dataset, "_place", fails_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        second.save(tmp_path / "ds")
    monkeypatch.undo()
    assert_same(DatasetTrace.load(tmp_path / "ds"), first)
    assert hidden_files(tmp_path) == []
    second.save(tmp_path / "ds")  # a complete save replaces it
    assert_same(DatasetTrace.load(tmp_path / "ds"), second)
    assert hidden_files(tmp_path) == []


def test_save_refuses_a_folder_of_other_files(setup, tmp_path):
    model, _, batches = setup
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    ds = rw.trace_dataset(model, batches[:1], progress=False)
    with pytest.raises(FileExistsError, match="holds files and no dataset trace"):
        ds.save(tmp_path / "mine")
    with pytest.raises(FileExistsError, match="holds files and no dataset trace"):
        rw.trace_dataset(model, batches[:1], path=tmp_path / "mine", overwrite=True, progress=False)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


def test_an_occupied_path_is_refused_unless_overwrite(setup, tmp_path):
    model, _, batches = setup
    first = rw.trace_dataset(model, batches[:1], tokens=chars, path=tmp_path / "ds", progress=False)
    with pytest.raises(FileExistsError, match="already holds a dataset trace; pass overwrite=True"):
        rw.trace_dataset(model, batches, path=tmp_path / "ds", progress=False)
    assert_same(DatasetTrace.load(tmp_path / "ds"), first)

    bad = [batches[0], torch.full((2, 12), 99)]  # fails on its second batch: the dataset there stays
    with pytest.raises(IndexError):
        rw.trace_dataset(model, bad, tokens=chars, path=tmp_path / "ds", overwrite=True, progress=False)
    assert_same(DatasetTrace.load(tmp_path / "ds"), first)
    assert hidden_files(tmp_path) == []

    second = rw.trace_dataset(model, batches, tokens=chars, path=tmp_path / "ds", overwrite=True, progress=False)
    assert second.sequences == 20 and second.folder == tmp_path / "ds"
    assert_same(DatasetTrace.load(tmp_path / "ds"), second)
    assert hidden_files(tmp_path) == []
    (tmp_path / "empty").mkdir()  # an empty folder is free
    assert rw.trace_dataset(model, batches[:1], path=tmp_path / "empty", progress=False).sequences == 6


def test_a_dataset_open_on_a_replaced_path_says_so(setup, tmp_path):
    # its chunks are now another dataset's: reading them would be silently wrong
    model, inputs, batches = setup
    old = rw.trace_dataset(model, batches[:1], path=tmp_path / "ds", progress=False)
    rw.trace_dataset(model, batches[1:], path=tmp_path / "ds", overwrite=True, progress=False)
    for read in (lambda: old.values("lstm.l1"), lambda: old.sequence(0), lambda: old.save(tmp_path / "ds")):
        with pytest.raises(RuntimeError, match="was replaced or removed since this DatasetTrace opened it; reopen"):
            read()
    assert DatasetTrace.load(tmp_path / "ds").sequences == 14


def test_a_second_writer_of_a_path_fails_clearly(setup, tmp_path):
    import subprocess
    import sys
    import time

    started, go = tmp_path / "started", tmp_path / "go"
    # the first writer traces one batch, then waits for `go` before its second
    code = f"""
import pathlib, time, torch, rnnwidgets as rw
from tests.test_dataset import CharLSTM
from rnnwidgets.data import brackets
torch.manual_seed(0)
inputs, _, _ = brackets.next_char_data(12, length=12, seed=0)
def batches():
    yield inputs[:6]
    pathlib.Path(r"{started}").touch()
    while not pathlib.Path(r"{go}").exists():
        time.sleep(0.05)
    yield inputs[6:]
rw.trace_dataset(CharLSTM(), batches(), path=r"{tmp_path / 'ds'}", progress=False)
"""
    first = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True,
                             cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    try:
        while not started.exists():
            assert first.poll() is None, first.stderr.read()
            time.sleep(0.05)
        model, _, batches = setup
        with pytest.raises(BlockingIOError, match="another process is writing"):
            rw.trace_dataset(model, batches, path=tmp_path / "ds", progress=False)
        with pytest.raises(BlockingIOError, match="another process is writing"):
            rw.trace_dataset(model, batches, progress=False).save(tmp_path / "ds")
        go.touch()
        assert first.wait(timeout=300) == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
    ds = DatasetTrace.load(tmp_path / "ds")
    assert ds.sequences == 12  # the first writer's rows, and only them
    assert hidden_files(tmp_path) == []


def test_saving_into_its_own_folder_never_writes_an_array_over_another(setup, tmp_path):
    model, _, batches = setup
    rw.trace_dataset(model, batches, tokens=chars, path=tmp_path / "ds", quantities="all", progress=False)
    loaded = DatasetTrace.load(tmp_path / "ds")
    expected = {name: {k: np.array(v) for k, v in q.items()} for name, q in loaded.layers.items()}
    # the same arrays of the store in another order of layers and quantities, and one new array
    layers = {name: dict(reversed(list(q.items()))) for name, q in reversed(list(loaded.layers.items()))}
    extra = np.arange(loaded.steps * 7, dtype=np.float32).reshape(loaded.steps, 7)
    layers["lstm.l0"]["twice_h"] = extra
    shuffled = DatasetTrace(layers, loaded.kinds, loaded.offsets, loaded.token_ids, loaded.vocab,
                            folder=tmp_path / "ds", generation=loaded.generation)
    shuffled.save(tmp_path / "ds")
    shuffled.save(tmp_path / "ds")  # twice: the offsets are in memory, written anew each time
    back = DatasetTrace.load(tmp_path / "ds")
    assert list(back.layers) == ["lstm.l1", "lstm.l0"]
    for name, quantities in expected.items():
        for key, values in quantities.items():
            np.testing.assert_array_equal(back.layers[name][key], values)
    np.testing.assert_array_equal(back.layers["lstm.l0"]["twice_h"], extra)
    np.testing.assert_array_equal(back.token_ids, loaded.token_ids)
    named = {a.path for q in back.layers.values() for a in q.values()}
    group = zarr.open_group(str(tmp_path / "ds"), mode="r")
    assert sorted(group.array_keys()) == sorted(named | {back.token_ids.path, group.attrs["offsets"]})


# ---- broken and hostile dataset folders ---------------------------------------------------------

@pytest.fixture
def saved_ds(setup, tmp_path):
    model, _, batches = setup
    return rw.trace_dataset(model, batches[:1], tokens=chars, path=tmp_path / "ds", progress=False).folder


def edit_header(folder, change):
    meta = json.loads((folder / "zarr.json").read_text())
    change(meta["attributes"])
    (folder / "zarr.json").write_text(json.dumps(meta))


def refused(folder, message):
    with pytest.raises(ValueError, match=message) as caught:
        DatasetTrace.load(folder)
    assert str(caught.value).startswith(str(folder))   # names the store
    return caught.value


def replace_array(folder, name, values):
    group = zarr.open_group(str(folder), mode="r+")
    del group[name]
    group.create_array(name, data=values)


def test_load_never_follows_a_path_out_of_the_folder(saved_ds, tmp_path):
    outside = zarr.open_group(str(tmp_path / "outside"), mode="w")
    outside.create_array("h", data=np.ones((72, 7), np.float32))
    for name in ("../outside/h", str(tmp_path / "outside" / "h"), "l0_q0/c", "..", "", "zarr.json", "nope"):
        edit_header(saved_ds, lambda h: h["layers"][0]["arrays"].__setitem__("h", name))
        refused(saved_ds, "should be the name of an array in the group, got")
    edit_header(saved_ds, lambda h: h["layers"][0]["arrays"].__setitem__("h", "l0_q0"))
    chunk = next(p for p in (saved_ds / "l0_q0").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.unlink()
    chunk.symlink_to(next(p for p in (tmp_path / "outside" / "h").rglob("*") if p.is_file() and p.name != "zarr.json"))
    refused(saved_ds, r"l0_q0/c/.*: expected a plain file or folder \(it is a link\)")


def test_load_refuses_broken_arrays_before_reading_them(saved_ds):
    replace_array(saved_ds, "l0_q0", np.zeros((72, 7), np.int32))
    refused(saved_ds, r"array 'l0_q0' \(lstm.l0\['h'\]\): expected a 2-d array of floats, got shape \(72, 7\) of int32")
    replace_array(saved_ds, "l0_q0", np.zeros((70, 7), np.float32))
    refused(saved_ds, "70 steps where the offsets end at 72")
    replace_array(saved_ds, "l0_q0", np.zeros((72, 7), np.float32))
    replace_array(saved_ds, "token_ids", np.full(72, 10_000, np.int32))
    refused(saved_ds, "token ids outside the vocabulary")
    replace_array(saved_ds, "token_ids", np.zeros(72, np.int32))
    replace_array(saved_ds, "offsets", np.array([], np.int64))
    refused(saved_ds, "expected at least one offset")
    replace_array(saved_ds, "offsets", np.array([0, 80, 72], np.int64))
    refused(saved_ds, "offsets: expected a non-decreasing int array")
    replace_array(saved_ds, "offsets", np.array([0, 72], np.int64))
    ds = DatasetTrace.load(saved_ds)
    chunk = next(p for p in (saved_ds / "l0_q1").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(chunk.read_bytes()[:20])   # a truncated chunk: an error when read, never wrong values
    with pytest.raises(ValueError):
        ds.values("lstm.l0", "c")[:]


def test_load_refuses_a_header_of_the_wrong_types(saved_ds):
    header = saved_ds / "zarr.json"
    good = json.loads(header.read_text())
    header.write_bytes(b"\xff\xfe")
    refused(saved_ds, "not a readable zarr group")
    header.write_text(json.dumps({**good, "attributes": {}}))
    refused(saved_ds, "not a rnnwidgets dataset trace of format 2")
    attrs = good["attributes"]
    for change, message in [({"layers": {}}, "layers should be a non-empty list"),
                            ({"layers": [3]}, r"layers\[0\] should be an object with a string name"),
                            ({"layers": [{**attrs["layers"][0], "kind": "x"}]}, r"layers\[0\].kind should be one of"),
                            ({"layers": [{**attrs["layers"][0], "arrays": ["a"]}]}, r"layers\[0\].arrays should be"),
                            ({"vocab": "abc"}, "vocab should be null or a list of strings"),
                            ({"offsets": 3}, "offsets should be an array name"),
                            ({"generation": None}, "generation should be a string")]:
        header.write_text(json.dumps({**good, "attributes": {**attrs, **change}}))
        refused(saved_ds, message)
    header.write_text(json.dumps(good))
    assert DatasetTrace.load(saved_ds).sequences == 6


def edit_array(folder, name, change):
    meta = json.loads((folder / name / "zarr.json").read_text())
    change(meta)
    (folder / name / "zarr.json").write_text(json.dumps(meta))


def test_arrays_declaring_far_more_than_the_store_holds_are_refused_unread(saved_ds, monkeypatch):
    """A zarr.json of a few bytes may declare terabytes (offsets are read whole, token ids scanned):
    refused from the metadata, before any chunk is read or any memory taken for it."""
    # imported here, not above: a writer process (test_a_second_writer...) imports this file without tests/ on its path
    from allocations import peak_allocated

    good = {n: (saved_ds / n / "zarr.json").read_text() for n in ("offsets", "l0_q0")}
    edit_array(saved_ds, "offsets", lambda m: m.update(shape=[1 << 40]))
    said = r"its arrays declare \d+ bytes where the store holds \d+, more than 200 times: not data a dataset trace " \
        r"holds; refused unread"
    peak = peak_allocated(lambda: refused(saved_ds, said))
    assert peak < 64 << 20, f"{peak / 1e6:.0f} MB allocated to refuse it"
    (saved_ds / "offsets" / "zarr.json").write_text(good["offsets"])
    # one chunk decoded whole: a chunk of 2**34 rows is refused even in a small array
    edit_array(saved_ds, "l0_q0", lambda m: m["chunk_grid"]["configuration"].update(chunk_shape=[1 << 34, 7]))
    refused(saved_ds, r"array 'l0_q0' \(lstm.l0\['h'\]\): expected chunks of at most 268435456 bytes \(each is "
                      r"decoded whole\), got chunks \(17179869184, 7\) of float32")
    (saved_ds / "l0_q0" / "zarr.json").write_text(good["l0_q0"])
    assert DatasetTrace.load(saved_ds).sequences == 6


@pytest.mark.parametrize("change", [
    lambda m: m.update(codecs=[{"name": "numcodecs.pickle"}]),   # a codec that would unpickle: zarr has none
    lambda m: m.update(codecs=[{"name": "no-such-codec"}]),
    lambda m: m.update(shape=[-5, 7]),
    lambda m: m.update(data_type="not-a-type"),
])
def test_a_member_array_zarr_cannot_open_is_refused_naming_the_store(saved_ds, change):
    edit_array(saved_ds, "l0_q0", change)
    error = refused(saved_ds, "not a readable zarr (group|array)")
    assert type(error.__cause__).__module__.split(".")[0] != "zarr"


def test_a_lone_surrogate_in_the_attributes_is_refused(saved_ds):
    edit_header(saved_ds, lambda h: h["vocab"].__setitem__(0, "\ud800"))   # written as a "\ud800" escape
    refused(saved_ds, "its attributes should hold text UTF-8 can encode, got a lone surrogate")


def test_a_damaged_compressed_chunk_is_an_error_naming_its_array_never_wrong_values(saved_ds, tmp_path):
    packed = DatasetTrace.load(saved_ds).save(tmp_path / "packed", compression=True)
    chunk = next(p for p in (packed / "l0_q0").rglob("*") if p.is_file() and p.name != "zarr.json")
    spoiled = bytearray(chunk.read_bytes())
    spoiled[10:30] = b"\xff" * 20
    chunk.write_bytes(bytes(spoiled))
    ds = DatasetTrace.load(packed)   # reading no chunk of the states, it opens
    for read in (lambda: ds.sequence(0), lambda: rw.unit_stats(ds, "lstm.l0")):
        with pytest.raises(ValueError, match=r"l0_q0: rows \d+:\d+ cannot be read, the store is damaged \(RuntimeError: "
                                             r"Zstd decompression error"):
            read()
    chunk.write_bytes(bytes(spoiled[:15]))   # truncated
    with pytest.raises(ValueError, match="l0_q0: rows 0:12 cannot be read, the store is damaged"):
        ds.sequence(0)


def test_a_chunk_file_of_the_wrong_size_is_an_error_naming_its_array(saved_ds):
    """Uncompressed, a chunk is its raw bytes: one cut short or padded cannot be decoded."""
    chunk = next(p for p in (saved_ds / "l0_q0").rglob("*") if p.is_file() and p.name != "zarr.json")
    whole = chunk.read_bytes()
    ds = DatasetTrace.load(saved_ds)
    for spoiled in (whole[:10], whole + bytes(4096)):
        chunk.write_bytes(spoiled)
        with pytest.raises(ValueError, match=r"l0_q0: rows 0:12 cannot be read, the store is damaged"):
            ds.sequence(0)


@pytest.mark.filterwarnings("ignore:Consolidated metadata is currently not part")
def test_consolidated_metadata_is_never_believed_over_the_arrays_own(saved_ds):
    """A group's zarr.json may carry a copy of every array's metadata; zarr would read shapes,
    chunks and even arrays the store does not hold from it. Our stores write none: each array's
    own zarr.json is the one read."""
    zarr.consolidate_metadata(str(saved_ds))
    meta = json.loads((saved_ds / "zarr.json").read_text())
    copies = meta["consolidated_metadata"]["metadata"]
    copies["offsets"]["shape"] = [1 << 40]   # lies about the arrays that are there ...
    copies["l0_q0"]["chunk_grid"]["configuration"]["chunk_shape"] = [1 << 34, 7]
    copies["ghost"] = dict(copies["l0_q1"])   # ... and names one that is not
    (saved_ds / "zarr.json").write_text(json.dumps(meta))
    ds = DatasetTrace.load(saved_ds)
    assert ds.sequences == 6 and ds.layers["lstm.l0"]["h"].chunks[0] < 1 << 34
    edit_header(saved_ds, lambda h: h["layers"][0]["arrays"].__setitem__("h", "ghost"))
    refused(saved_ds, r"lstm.l0\['h'\] should be the name of an array in the group, got 'ghost'")


def test_layers_named_twice_are_refused_never_merged(saved_ds):
    edit_header(saved_ds, lambda h: h["layers"].append(dict(h["layers"][0])))
    refused(saved_ds, r"layers' names should be distinct, got \['lstm.l0', 'lstm.l1', 'lstm.l0'\]")


def test_a_folder_that_only_says_it_is_a_dataset_is_never_replaced(setup, tmp_path):
    """overwrite=True replaces a dataset trace, never the user's files: a zarr.json claiming to be
    one beside other files (or with a file inside an array's folder, or a link) is refused."""
    model, _, batches = setup
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {
        dataset.FORMAT_KEY: dataset.FORMAT_VERSION}}))
    (forged / "thesis.txt").write_text("years of work")
    saved = rw.trace_dataset(model, batches[:1], path=tmp_path / "ds", progress=False).folder
    (saved / "l0_q0" / "notes.txt").write_text("mine")
    (tmp_path / "outside").write_text("mine")
    linked = rw.trace_dataset(model, batches[:1], path=tmp_path / "linked", progress=False).folder
    (linked / "l0_q0" / "c" / "9").symlink_to(tmp_path / "outside")
    for folder in (forged, saved, linked):
        with pytest.raises(FileExistsError, match="holds files and no dataset trace"):
            rw.trace_dataset(model, batches[:1], path=folder, overwrite=True, progress=False)
        with pytest.raises(FileExistsError, match="holds files and no dataset trace"):
            rw.trace_dataset(model, batches[:1], progress=False).save(folder)
    assert (forged / "thesis.txt").read_text() == "years of work" and (saved / "l0_q0" / "notes.txt").exists()
    assert (tmp_path / "outside").read_text() == "mine" and hidden_files(tmp_path) == []


def test_a_dataset_path_in_a_missing_folder_says_so_and_makes_nothing(setup, tmp_path):
    model, _, batches = setup
    for write in (lambda p: rw.trace_dataset(model, batches[:1], path=p, progress=False),
                  lambda p: rw.trace_dataset(model, batches[:1], progress=False).save(p)):
        with pytest.raises(FileNotFoundError, match=r"^(trace_dataset|DatasetTrace.save): .*/no/ds: its folder .*/no "
                                                    r"does not exist; expected the path of a folder in an existing "
                                                    r"folder$"):
            write(tmp_path / "no" / "ds")
        (tmp_path / "file").write_text("x")
        with pytest.raises(FileNotFoundError, match=r"its folder .*/file is not a folder"):
            write(tmp_path / "file" / "ds")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_compressed_chunk_declaring_a_petabyte_is_an_error_naming_its_array(saved_ds, tmp_path):
    """A zstd frame's header says how many bytes it holds, and the codec allocates that many."""
    import struct

    packed = DatasetTrace.load(saved_ds).save(tmp_path / "packed", compression=True)
    chunk = next(p for p in (packed / "l0_q0").rglob("*") if p.is_file() and p.name != "zarr.json")
    # magic, a single-segment frame with an 8-byte content size of 2**50, then one last raw block of 4 bytes
    chunk.write_bytes(b"\x28\xb5\x2f\xfd" + bytes([0b11100000]) + struct.pack("<Q", 1 << 50)
                      + struct.pack("<I", (4 << 3) | 1)[:3] + bytes(4))
    with pytest.raises(ValueError, match=r"l0_q0: rows 0:12 cannot be read, the store is damaged"):
        DatasetTrace.load(packed).sequence(0)


def test_a_pipe_in_the_store_is_refused_before_anything_is_read(saved_ds):
    import os

    chunk = next(p for p in (saved_ds / "l0_q0").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.unlink()
    os.mkfifo(chunk)   # read, it would wait for a writer without end
    refused(saved_ds, r"l0_q0/c/.*: expected a plain file or folder \(it is a pipe, device or socket\)")


def test_a_folder_of_the_earlier_npy_format_says_how_to_recreate_it(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "dataset.json").write_text(json.dumps({"format": 1, "layers": []}))
    np.save(folder / "offsets.npy", np.array([0, 3]))
    with pytest.raises(ValueError, match=r"earlier rnnwidgets format \(.npy files\).*re-create it with "
                                         r"rw.trace_dataset\(model, batches, path='.*old', overwrite=True\)"):
        DatasetTrace.load(folder)
    with pytest.raises(FileExistsError, match="already holds a dataset trace; pass overwrite=True"):
        rw.trace_dataset(None, [], path=folder, progress=False)


def test_progress_has_a_known_total_where_one_can_be_known(setup, capsys):
    model, _, batches = setup
    rw.trace_dataset(model, batches, progress=True)   # a list, as a DataLoader: it has a length
    shown = capsys.readouterr().err
    assert "0/4 batches" in shown and "4/4 batches" in shown
    rw.trace_dataset(model, batches, max_steps=100, progress=True)
    assert "100/100 steps" in capsys.readouterr().err   # stops at max_steps: a total in steps
    rw.trace_dataset(model, iter(batches), progress=True)   # a generator: no length, steps counted
    assert "240 steps" in capsys.readouterr().err


# ---- zarr: chunks, compression, URLs, lazy reading ---------------------------------------------

def test_arrays_are_chunked_along_steps_and_compressed_on_request(setup, tmp_path, monkeypatch):
    model, _, batches = setup
    monkeypatch.setattr(dataset, "CHUNK_BYTES", 7 * 4 * 10)   # 10 steps a chunk: appended over many chunks
    memory = rw.trace_dataset(model, batches, tokens=chars, progress=False)
    plain = rw.trace_dataset(model, batches, tokens=chars, path=tmp_path / "plain", progress=False)
    packed = rw.trace_dataset(model, batches, tokens=chars, path=tmp_path / "packed", compression=True, progress=False)
    h = plain.layers["lstm.l0"]["h"]
    assert h.chunks == (10, 7) and h.compressors == ()
    assert type(packed.layers["lstm.l0"]["h"].compressors[0]).__name__ == "ZstdCodec"
    assert_same(memory, plain)
    assert_same(memory, packed)
    assert_same(memory, DatasetTrace.load(memory.save(tmp_path / "gz", compression="gzip")))
    with pytest.raises(ValueError, match="compression: expected None, True, 'zstd'"):
        rw.trace_dataset(model, batches, path=tmp_path / "x", compression="lz5", progress=False)


def test_a_dataset_trace_at_an_fsspec_url(setup):
    model, _, batches = setup
    url = "memory://rnnwidgets-tests/ds"
    memory = rw.trace_dataset(model, batches, tokens=chars, progress=False)
    remote = rw.trace_dataset(model, batches, tokens=chars, path=url, progress=False)
    assert remote.on_disk and remote.folder == url and isinstance(remote.layers["lstm.l1"]["c"], zarr.Array)
    assert_same(memory, remote)
    assert_same(memory, DatasetTrace.load(url))
    with pytest.raises(FileExistsError, match="already holds a dataset trace; pass overwrite=True"):
        rw.trace_dataset(model, batches, path=url, progress=False)
    smaller = rw.trace_dataset(model, batches[:1], path=url, overwrite=True, progress=False)
    assert smaller.sequences == 6 and DatasetTrace.load(url).sequences == 6
    with pytest.raises(RuntimeError, match="was replaced or removed"):
        remote.values()
    memory.save(url)
    assert_same(memory, DatasetTrace.load(url))
    # overwrite=True removes a dataset's files, never one of the user's beside them
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    fs.pipe(f"{root}/notes.txt", b"mine")
    for write in (lambda: rw.trace_dataset(model, batches[:1], path=url, overwrite=True, progress=False),
                  lambda: memory.save(url)):
        with pytest.raises(FileExistsError, match="holds files and no dataset trace"):
            write()
    assert fs.cat(f"{root}/notes.txt") == b"mine"
    fs.rm(root, recursive=True)


def test_load_reads_no_chunk_of_the_arrays(saved_ds):
    for quantity in ("l0_q0", "l0_q1", "l1_q0", "l1_q1"):   # every state's chunks gone: load never needs them
        for p in (saved_ds / quantity).rglob("*"):
            if p.is_file() and p.name != "zarr.json":
                p.unlink()
    ds = DatasetTrace.load(saved_ds)
    assert ds.sequences == 6 and ds.layers["lstm.l0"]["h"].shape == (72, 7)


def rows_arrays(tmp_path):
    """50 rows of 3 values in memory, and in a zarr group: uncompressed (60 rows, 50 written), ids
    0..49, and compressed; chunks of 8 rows."""
    group = zarr.open_group(str(tmp_path / "g"), mode="w", zarr_format=3)
    values = np.arange(50 * 3, dtype=np.float32).reshape(50, 3)
    raw = group.create_array("raw", shape=(60, 3), chunks=(8, 3), dtype="<f4", fill_value=-1, compressors=None)
    raw[:50] = values   # rows 50..59: a partly written chunk and one never written (the fill value)
    ids = group.create_array("ids", shape=(50,), chunks=(8,), dtype="<i4", fill_value=0, compressors=None)
    ids[:] = np.arange(50)
    packed = group.create_array("packed", shape=(50, 3), chunks=(8, 3), dtype="<f4", compressors=dataset._compressors(True))
    packed[:] = values
    return values, raw, ids, packed


def test_read_rows_reads_uncompressed_chunks_from_their_files_equal_to_zarr(tmp_path, monkeypatch):
    values, raw, ids, packed = rows_arrays(tmp_path)
    assert dataset._raw_chunks(raw) is not None and dataset._raw_chunks(packed) is None
    buffer = np.zeros((100, 3), np.float32)
    for a, b in [(0, 60), (3, 5), (7, 9), (13, 57), (46, 60)]:
        np.testing.assert_array_equal(dataset.read_rows(raw, a, b), raw[a:b])
        np.testing.assert_array_equal(dataset.read_rows(raw, a, b, buffer), raw[a:b])
        np.testing.assert_array_equal(dataset.read_rows(ids, a, min(b, 50)), np.arange(a, min(b, 50)))
    np.testing.assert_array_equal(dataset.read_rows(packed, 5, 20), values[5:20])
    np.testing.assert_array_equal(dataset.read_rows(values, 5, 20), values[5:20])


def test_edits_trace_every_batch_under_them_as_rw_trace_does_and_are_recorded(setup, tmp_path):
    model, inputs, batches = setup
    source = rw.trace(model, inputs[:1].flip(1))   # one sequence: its values patched into every sequence
    edits = [rw.clamp("lstm.l0", "c", units=[1, 3], steps=range(2, 6), value=0.0),
             rw.patch(source, "lstm.l1", "h", units=[0], steps=[4, 7])]
    ds = rw.trace_dataset(model, batches, tokens=chars, progress=False, edits=edits)
    per_batch = [rw.trace(model, x, tokens=chars(x), edits=edits) for x, _ in batches]
    for name in per_batch[0].layers:
        for key in ds.layers[name]:
            expected = np.concatenate([tr.layers[name].quantities()[key].reshape(-1, 7) for tr in per_batch])
            np.testing.assert_array_equal(ds.layers[name][key], expected, err_msg=f"{name} {key}")
    plain = rw.trace_dataset(model, batches, progress=False)
    assert not np.array_equal(plain.layers["lstm.l1"]["h"], ds.layers["lstm.l1"]["h"])
    assert plain.edits == [] and "edits" not in plain.sequence(0).meta
    described = [e.describe() for e in edits]
    assert ds.edits == described == per_batch[0].meta["edits"]
    assert ds.sequence(7).meta["edits"] == described and "edits=2" in repr(ds)
    saved = rw.trace_dataset(model, batches, tokens=chars, progress=False, edits=edits, path=tmp_path / "ds")
    assert saved.edits == described
    assert_same(saved, ds)
    assert DatasetTrace.load(tmp_path / "ds").sequence(0).meta["edits"] == described


def test_an_edit_past_a_short_batchs_end_applies_where_its_steps_are(setup):
    """A batch shorter than all of an edit's steps (the last, here) runs without that edit, the
    other edits still on; an edit with no step in any batch is refused in one sentence."""
    model, inputs, batches = setup
    short = (inputs[18:20, :8], None)                          # 8 steps; the others have 12
    batches = [*batches[:3], short]
    late, early = rw.clamp("lstm.l0", "c", [1], range(9, 11), 0.0), rw.clamp("lstm.l1", "h", [0], [2], 5.0)
    ds = rw.trace_dataset(model, [(x, t) if t is not None else x for x, t in batches], progress=False,
                          edits=[late, early])
    per_batch = [rw.trace(model, x, edits=[late, early]) for x, _ in batches[:3]] + \
                [rw.trace(model, short[0], edits=[early])]
    for name in per_batch[0].layers:
        for key in ds.layers[name]:
            expected = np.concatenate([tr.layers[name].quantities()[key].reshape(-1, 7) for tr in per_batch])
            np.testing.assert_array_equal(ds.layers[name][key], expected, err_msg=f"{name} {key}")
    assert ds.edits == [late.describe(), early.describe()]
    past = rw.clamp("lstm.l0", "c", [1], range(12, 14), 0.0)
    with pytest.raises(ValueError, match=r"^trace_dataset: rw.clamp\('lstm.l0', 'c', units=\[1\], steps=\[12, 13\], "
                                         r"value=\[0.0\]\) names no step of 'lstm.l0' in any batch, the longest of "
                                         r"which ran 12 steps; expected steps in \[0, 12\)$"):
        rw.trace_dataset(model, batches, progress=False, edits=[early, past])
    with pytest.raises(ValueError, match=r"names no layer of this run"):   # still refused at once
        rw.trace_dataset(model, batches, progress=False, edits=[rw.clamp("lstm.l7", "h", [0], [1], 0.0)])


def test_edits_without_one_meaning_for_every_sequence_are_refused(setup):
    model, inputs, batches = setup
    with pytest.raises(ValueError, match=r"picks batch elements \[1\], which the dataset's batches do not share; "
                                         r"expected an edit of every sequence \(no batch=\)"):
        rw.trace_dataset(model, batches, progress=False, edits=[rw.clamp("lstm.l0", "h", [0], None, 0.0, batch=1)])
    source = rw.trace(model, inputs[:3])
    with pytest.raises(ValueError, match="a source of 3 sequences, which do not line up with the dataset's batches; "
                                         "expected a source trace of one sequence"):
        rw.trace_dataset(model, batches, progress=False, edits=[rw.patch(source, "lstm.l0", "h", [0], [1])])
    with pytest.raises(TypeError, match="trace_dataset: edits: expected a list of rw.clamp"):
        rw.trace_dataset(model, batches, progress=False, edits=["lstm.l0"])


def test_an_lstm_traced_without_gates_reaches_the_view_as_an_lstm(setup, tmp_path):
    """The cell view draws the equations the payload names (js/src/cellview.ts templateOf): an
    LSTM traced with quantities=("h", "c") must still arrive as an LSTM, its gates listed."""
    from rnnwidgets import kinds
    from rnnwidgets.widgets import payload

    model, _, batches = setup
    ds = rw.trace_dataset(model, batches[:1], quantities=("h", "c"), progress=False)
    ds.save(tmp_path / "ds")
    for source in (ds, DatasetTrace.load(tmp_path / "ds")):
        index, _ = payload.build_payload(source.sequence(1))
        for entry in index["layers"]:
            assert entry["kind"] == "lstm" and entry["recurrence"] == kinds.describe("lstm")
            assert entry["recurrence"]["gates"] == ["input", "forget", "cell", "output"]
            assert sorted(q["name"] for q in entry["quantities"]) == ["c", "h"]   # no gate was recorded


class CellLoop(nn.Module):
    """A cell of ``kind`` stepped in the user's own loop (a Trace layer of kind "cell")."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind, self.cell = kind, {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn": nn.RNNCell}[kind](3, 5)

    def forward(self, x):
        state, outs = None, []
        for t in range(x.shape[1]):
            state = self.cell(x[:, t], state)
            outs.append(state[0] if self.kind == "lstm" else state)
        return torch.stack(outs, 1)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("quantities", [("h", "c"), "all"])
def test_cells_in_the_users_loop_keep_their_own_kind_in_a_dataset(kind, quantities, tmp_path):
    """A dataset of an nn.LSTMCell loop reaches the cell view as an LSTM (meta["cell"]), whatever
    it kept, in memory, saved and loaded; a header naming another cell is refused."""
    from rnnwidgets import kinds
    from rnnwidgets.widgets import payload

    torch.manual_seed(0)
    model = CellLoop(kind)
    batches = [torch.randn(2, 6, 3) for _ in range(2)]
    ds = rw.trace_dataset(model, batches, quantities=quantities, progress=False)
    assert set(ds.kinds.values()) == {"cell"} and set(ds.cells.values()) == {kind}
    ds.save(tmp_path / "ds")
    for source in (ds, DatasetTrace.load(tmp_path / "ds")):
        seq = source.sequence(3)
        assert {lt.meta.get("cell") for lt in seq.layers.values()} == {kind}
        index, _ = payload.build_payload(seq)
        assert [entry["recurrence"] for entry in index["layers"]] == [kinds.describe(kind)]
    group = zarr.open_group(str(tmp_path / "ds"), mode="r+")
    header = group.attrs.asdict()
    header["layers"][0]["cell"] = "<b>lstm</b>"
    group.attrs.put(header)
    with pytest.raises(ValueError, match=r"layers\[0\]\.cell should be one of \('lstm', 'gru', 'rnn'\)"):
        DatasetTrace.load(tmp_path / "ds")
    with pytest.raises(ValueError, match="cells: expected, for layers of kind 'cell'"):
        DatasetTrace(ds.layers, ds.kinds, ds.offsets, cells={name: "lstmcell" for name in ds.layers})


def test_map_rows_reads_what_is_asked_equal_to_zarr(tmp_path):
    values, raw, ids, packed = rows_arrays(tmp_path)
    assert dataset.map_rows(packed, 0, 10) is None and dataset.map_rows(values, 0, 10) is None
    rng = np.random.default_rng(0)
    for a, b in [(0, 60), (3, 5), (7, 9), (13, 57), (46, 60)]:
        mapped, want = dataset.map_rows(raw, a, b), raw[a:b]
        assert len(mapped) == b - a and mapped.shape == want.shape
        np.testing.assert_array_equal(mapped.columns([0, 2]), want[:, [0, 2]])
        for rows in (np.arange(b - a), rng.integers(0, b - a, 7), np.sort(rng.integers(0, b - a, 5)), []):
            np.testing.assert_array_equal(mapped.take(rows), want[rows])
            out = np.full((len(rows), 3), np.nan, np.float32)
            assert mapped.take(rows, out) is out
            np.testing.assert_array_equal(out, want[rows])
        with pytest.raises(IndexError, match="expected indices"):
            mapped.take([b - a])
        np.testing.assert_array_equal(dataset.map_rows(ids, a, min(b, 50)).take([0, min(b, 50) - a - 1]),
                                      [a, min(b, 50) - 1])
