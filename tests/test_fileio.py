"""Files are never lost and files read are data: atomic writes of every file we write, and
Trace files that are broken or hostile refused with a clear error before they are inflated."""
import io
import json
import os
import stat
import zipfile

import numpy as np
import pytest
from allocations import peak_allocated

from rnnwidgets import LayerTrace, Trace, fileio, tracedata
from rnnwidgets.fileio import npy_header


def small_trace(seed=0, units=3):
    rng = np.random.default_rng(seed)
    lt = LayerTrace("lstm.l0", "lstm", states={"h": rng.normal(size=(2, 4, units)), "c": rng.normal(size=(2, 4, units))})
    return Trace(layers={lt.name: lt}, lengths=[4, 3], tokens=[list("abcd"), list("xyz")])


def assert_same_trace(a: Trace, b: Trace):
    assert list(a.layers) == list(b.layers) and a.tokens == b.tokens
    np.testing.assert_array_equal(a.lengths, b.lengths)
    for name in a.layers:
        for key in a.layers[name].states:
            np.testing.assert_array_equal(a.layers[name].states[key], b.layers[name].states[key])


def leftovers(folder):
    """Files a write left beside its target (temporary files, lock files)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---- atomic writes ---------------------------------------------------------------------------

@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, OSError(28, "No space left on device")])
def test_an_interrupted_trace_save_leaves_the_previous_file(tmp_path, monkeypatch, interrupt):
    path = small_trace(0).save(tmp_path / "t.npz")
    before = path.read_bytes()
    savez = np.savez_compressed

    def fails_midway(f, **arrays):
        savez(f, **arrays)  # the whole archive written to the file, then the interruption
        raise interrupt

    monkeypatch.setattr(tracedata.np, "savez_compressed", fails_midway)
    with pytest.raises(type(interrupt) if isinstance(interrupt, Exception) else interrupt):
        small_trace(1).save(path)
    assert path.read_bytes() == before
    assert_same_trace(Trace.load(path), small_trace(0))
    assert leftovers(tmp_path) == []


def test_a_trace_save_replaces_the_file_and_keeps_its_permissions(tmp_path):
    path = small_trace(0).save(tmp_path / "t.npz")
    os.chmod(path, 0o640)
    small_trace(1).save(path)
    assert_same_trace(Trace.load(path), small_trace(1))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and leftovers(tmp_path) == []


def test_a_new_file_gets_the_umask_permissions_as_open_would(tmp_path):
    umask = os.umask(0o022)
    try:
        path = fileio.write_text(tmp_path / "new.txt", "x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 and path.read_text() == "x"


def test_atomic_write_refuses_appending_modes(tmp_path):
    with pytest.raises(ValueError, match="expected mode 'w' or 'wb'"):
        with fileio.atomic_write(tmp_path / "x", "ab"):
            pass


# ---- broken and hostile trace files ------------------------------------------------------------

def npy_bytes(array) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def members(path) -> tuple:
    """(arrays, header) of a saved trace file."""
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    return arrays, json.loads(bytes(arrays.pop("header")).decode("utf-8"))


def rewrite(path, arrays, header):
    """A trace file holding ``arrays`` and ``header`` (a dict, or raw bytes for the header member)."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode("utf-8")
    np.savez_compressed(path, header=np.frombuffer(raw, dtype=np.uint8), **arrays)
    return path


@pytest.fixture
def saved(tmp_path):
    return small_trace().save(tmp_path / "t.npz")


def refused(path, message):
    with pytest.raises(ValueError, match=message) as caught:
        Trace.load(path)
    assert str(caught.value).startswith(f"{path}: ")   # names the file
    assert not isinstance(caught.value.__cause__, (zipfile.BadZipFile, EOFError, KeyError, AttributeError,
                                                   RecursionError))
    return caught.value


def test_a_truncated_or_corrupted_file_is_refused_clearly(saved, tmp_path):
    data = saved.read_bytes()
    cut = tmp_path / "cut.npz"
    for size in (0, 10, len(data) // 2, len(data) - 30):
        cut.write_bytes(data[:size])
        refused(cut, "not a .npz archive, or a truncated one")
    (tmp_path / "text.npz").write_text("just some text")
    refused(tmp_path / "text.npz", "not a .npz archive")

    arrays, header = members(saved)
    stored = tmp_path / "stored.npz"
    np.savez(stored, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)  # not deflated
    spoiled = bytearray(stored.read_bytes())
    at = spoiled.index(arrays["l0/states/0"].tobytes()[:16])
    spoiled[at:at + 16] = b"\xff" * 16
    stored.write_bytes(bytes(spoiled))
    refused(stored, r"array 'l0/states/0' .*Bad CRC-32")


def test_missing_arrays_and_inconsistent_shapes_are_named(saved, tmp_path):
    arrays, header = members(saved)
    refused(rewrite(tmp_path / "a.npz", {k: v for k, v in arrays.items() if k != "l0/states/1"}, header),
            r"missing array 'l0/states/1' \(lstm.l0 states\['c'\]\)")
    refused(rewrite(tmp_path / "b.npz", {k: v for k, v in arrays.items() if k != "lengths"}, header),
            "missing array 'lengths'")
    refused(rewrite(tmp_path / "c.npz", {**arrays, "l0/states/1": np.zeros((3, 4, 3), np.float32)}, header),
            r"array 'l0/states/1' \(lstm.l0 states\['c'\]\) has batch 3, lengths has 2")
    refused(rewrite(tmp_path / "d.npz", {**arrays, "l0/states/1": np.zeros((2, 9, 3), np.float32)}, header),
            r"array 'l0/states/1' has shape \(2, 9, 3\), its header says \[2, 4, 3\]")
    refused(rewrite(tmp_path / "e.npz", {**arrays, "l0/states/0": np.zeros((2, 4, 3), np.int64)}, header),
            r"expected a 3-d array of floats, got shape \(2, 4, 3\) of int64")
    refused(rewrite(tmp_path / "f.npz", {**arrays, "l0/states/0": np.zeros((2, 4), np.float32)}, header),
            "expected a 3-d array of floats")
    obj = tmp_path / "g.npz"
    np.savez(obj, header=np.frombuffer(json.dumps(header).encode(), np.uint8),
             **{**arrays, "lengths": np.array([4, "x"], dtype=object)}, allow_pickle=True)
    refused(obj, "expected a plain C-ordered array of numbers")


def test_a_member_declaring_more_bytes_than_its_shape_is_refused(saved, tmp_path):
    arrays, header = members(saved)
    path = rewrite(tmp_path / "t.npz", arrays, header)
    with zipfile.ZipFile(path, "a") as z:   # a second, longer member under the same name wins on read
        bigger = io.BytesIO()
        np.save(bigger, arrays["l0/states/0"])
        with pytest.warns(UserWarning, match="Duplicate name"):
            z.writestr("l0/states/0.npy", bigger.getvalue() + b"\0" * 4096)
    refused(path, r"array 'l0/states/0' \(lstm.l0 states\['h'\]\): the archive declares \d+ bytes where its "
                  r"shape \(2, 4, 3\) of float32 needs \d+")


def test_a_zip_bomb_is_refused_before_it_is_inflated(saved, tmp_path):
    arrays, header = members(saved)
    del header["shapes"]   # a crafted file's header need not say anything
    steps = (1 << 30) // 4  # one GiB of float32 zeros, about a megabyte deflated
    header["layers"][0]["states"] = ["h"]
    header["tokens"] = None
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("header.npy", npy_bytes(np.frombuffer(json.dumps(header).encode(), np.uint8)))
        z.writestr("lengths.npy", npy_bytes(np.array([3], np.int64)))
        with z.open("l0/states/0.npy", "w", force_zip64=True) as f:
            f.write(npy_header((1, steps, 1)))
            zeros = bytes(1 << 24)
            for _ in range((steps * 4) // len(zeros)):
                f.write(zeros)
    assert path.stat().st_size < 4 << 20
    peak = peak_allocated(lambda: refused(path, "would inflate from .* more than 200 times: not data a trace holds"))
    assert peak < 16 << 20, f"{peak / 1e6:.0f} MB allocated to refuse it"


def test_a_header_of_the_wrong_types_is_refused_clearly(saved, tmp_path):
    arrays, header = members(saved)

    def variant(name, **changes):
        return rewrite(tmp_path / f"{name}.npz", arrays, {**header, **changes})

    refused(rewrite(tmp_path / "bytes.npz", arrays, b"\xff\xfe not text"), "its header is not JSON text")
    refused(rewrite(tmp_path / "deep.npz", arrays, b"[" * 200_000 + b"]" * 200_000), "its header is not JSON text")
    refused(rewrite(tmp_path / "list.npz", arrays, b"[1, 2]"), "not a rnnwidgets trace of format 1")
    refused(variant("layers", layers="lstm"), "its header's layers should be a non-empty list")
    refused(variant("nolayers", layers=[]), "its header's layers should be a non-empty list")
    refused(variant("entry", layers=[7]), r"its header's layers\[0\] should be an object")
    refused(variant("name", layers=[{**header["layers"][0], "name": 3}]), r"layers\[0\] name and kind should be strings")
    refused(variant("meta", layers=[{**header["layers"][0], "meta": None}]), r"layers\[0\].meta should be an object")
    refused(variant("keys", layers=[{**header["layers"][0], "states": "h"}]), r"layers\[0\].states should be a list")
    refused(variant("kind", layers=[{**header["layers"][0], "kind": "transformer"}]), "kind must be one of")
    refused(variant("tokens", tokens=[[1, 2, 3, 4], [5, 6, 7]]), "tokens should be null or one list of strings")
    refused(variant("grads", param_grads=[]), "param_grads should be an object")
    refused(variant("tmeta", meta="x"), "meta should be an object")
    refused(variant("shapes", shapes={"lengths": "2"}), "shapes should be an object of lists of integers")
    # what the Trace constructor refuses comes back naming the file
    refused(variant("count", tokens=[list("abcd")]), r"tokens: expected one list per batch element \(2\), got 1")


def test_lengths_out_of_range_are_refused_naming_the_file(saved, tmp_path):
    with pytest.raises(ValueError, match="lengths"):
        Trace(layers={"x": LayerTrace("x", "rnn", states={"h": np.zeros((1, 4, 2))})}, lengths=[99])
    arrays, header = members(saved)
    for bad in ([-3, 2], [99, 2]):
        refused(rewrite(tmp_path / "l.npz", {**arrays, "lengths": np.array(bad)}, {**header, "tokens": None}),
                "length")


def test_steps_that_disagree_within_a_layer_are_refused_naming_the_file(saved, tmp_path):
    h, c = np.zeros((1, 4, 2)), np.zeros((1, 9, 2))
    with pytest.raises(ValueError, match="steps"):
        LayerTrace("x", "lstm", states={"h": h, "c": c})
    arrays, header = members(saved)
    del header["shapes"]   # a file written before shapes were kept: the constructor still checks them
    refused(rewrite(tmp_path / "h.npz", {**arrays, "l0/states/1": np.zeros((2, 9, 3), np.float32)}, header),
            "lstm.l0")


# ---- what a save may replace, and what a load opens ---------------------------------------------

def test_an_interrupt_inside_the_writer_leaves_the_previous_file(tmp_path, monkeypatch):
    path = small_trace(0).save(tmp_path / "t.npz")
    before = path.read_bytes()

    def interrupted(fd):   # the whole new file written to the temporary file, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        small_trace(1).save(path)
    assert path.read_bytes() == before and leftovers(tmp_path) == []


def test_a_trace_save_never_replaces_a_folder_or_another_kind_of_file(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (store / "zarr.json").write_text("{}")
    with pytest.raises(IsADirectoryError, match="Trace.save: .*store is a folder: expected the path of a file"):
        small_trace().save(store)
    page, notes = tmp_path / "page.html", tmp_path / "notes.npz"
    page.write_text("<!DOCTYPE html><html></html>")
    notes.write_text("not an archive")
    for path in (page, notes):
        with pytest.raises(FileExistsError, match=r"Trace.save: .* exists and is not a .npz archive \(a saved trace\)"):
            small_trace().save(path)
    assert page.read_text() == "<!DOCTYPE html><html></html>" and notes.read_text() == "not an archive"
    assert (store / "zarr.json").read_text() == "{}" and leftovers(tmp_path) == []
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    assert_same_trace(Trace.load(small_trace(2).save(empty)), small_trace(2))   # an empty file holds nothing
    assert_same_trace(Trace.load(small_trace(3).save(empty)), small_trace(3))   # a previous trace is replaced
    link = tmp_path / "link.npz"
    link.symlink_to(empty)
    small_trace(4).save(link)   # the link itself is replaced: what it pointed to is left as it was
    assert not link.is_symlink() and Trace.load(empty).first.h.tolist() == small_trace(3).first.h.tolist()


def test_atomic_write_refuses_a_folder(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder: expected the path of a file to write"):
        fileio.write_text(tmp_path, "x")


def test_loading_a_folder_says_what_was_expected(tmp_path):
    with pytest.raises(ValueError, match=r"expected a .npz file \(as Trace.save writes\), got a folder; a dataset "
                                         r"trace's folder opens with rw.DatasetTrace.load"):
        Trace.load(tmp_path)


def test_steps_without_any_values_are_refused_before_they_are_read(saved, tmp_path):
    """Arrays of no units may declare any number of steps in a few bytes (2**40 here): refused."""
    arrays, header = members(saved)
    header = {**header, "tokens": None, "layers": [{**header["layers"][0], "states": ["h"], "gates": []}]}
    del header["shapes"]
    path = tmp_path / "empty.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("header.npy", npy_bytes(np.frombuffer(json.dumps(header).encode(), np.uint8)))
        z.writestr("lengths.npy", npy_bytes(np.array([1 << 40, 3])))
        z.writestr("l0/states/0.npy", npy_header((2, 1 << 40, 0)))
    refused(path, r"layer 'lstm.l0': expected at least one unit in its arrays, got shapes \[\(2, 1099511627776, 0\)\]")


@pytest.mark.parametrize("dtype", [">f4", "<f2", ">f8"])
def test_floats_of_any_width_or_byte_order_load_as_native_float32(saved, tmp_path, dtype):
    arrays, header = members(saved)
    h = arrays["l0/states/0"]
    path = rewrite(tmp_path / "t.npz", {**arrays, "l0/states/0": h.astype(dtype)}, header)
    loaded = Trace.load(path).first.h
    assert loaded.dtype == np.float32 and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, h.astype(dtype).astype(np.float32))


def test_a_pickled_array_is_never_unpickled(saved, tmp_path):
    """An object array whose pickle would run code when loaded: refused from its header, never run."""
    arrays, header = members(saved)
    ran = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.mknod, (str(ran),))

    path = tmp_path / "pickled.npz"
    np.savez(path, header=np.frombuffer(json.dumps(header).encode(), np.uint8),
             **{**arrays, "l0/states/0": np.array([Payload()], dtype=object)}, allow_pickle=True)
    refused(path, r"array 'l0/states/0' .*expected a plain C-ordered array of numbers, got dtype object")
    with zipfile.ZipFile(path) as z:
        assert b"mknod" in z.read("l0/states/0.npy")   # the pickle is there, and was not run
    assert not ran.exists()


HOSTILE_TOKENS = ["</script><script>alert(1)</script>", "<!--<script>", "\u202e\u2066evil\u2069", "&amp;\0",
                  "x" * 1_000_000]


def test_hostile_tokens_are_kept_exactly_as_data(tmp_path):
    tr = small_trace()
    tr.tokens = [HOSTILE_TOKENS[:4], HOSTILE_TOKENS[2:]]
    tr.validate()
    back = Trace.load(tr.save(tmp_path / "t.npz"))
    assert back.tokens == [HOSTILE_TOKENS[:4], HOSTILE_TOKENS[2:]]


def test_a_lone_surrogate_is_refused_in_tokens_and_in_a_files_header(saved, tmp_path):
    """Text UTF-8 cannot encode (bytes decoded with errors='surrogateescape', or a "\\ud800" escape
    in a file's JSON) could be neither shown in the page nor saved: refused, saying where."""
    with pytest.raises(ValueError, match=r"tokens\[1\]\[2\]: expected text UTF-8 can encode, got 'z\\udcff'"):
        Trace(layers=small_trace().layers, lengths=[4, 3], tokens=[list("abcd"), ["x", "y", "z\udcff"]])
    arrays, header = members(saved)
    for change in ({"tokens": [list("abcd"), ["x", "y", "\ud800"]]},
                   {"layers": [{**header["layers"][0], "name": "lstm\udfff"}]}, {"meta": {"note": "\ud800"}}):
        path = rewrite(tmp_path / "s.npz", arrays, json.dumps({**header, **change}).encode("ascii"))
        refused(path, r"its header should hold text UTF-8 can encode, got a lone surrogate")


def test_the_writer_lock_never_writes_through_a_link_left_at_its_name(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file")
    (tmp_path / ".ds.lock").symlink_to(victim)
    with pytest.raises(FileExistsError, match=r"DatasetTrace.save: .*\.ds\.lock is a link, not a lock file rnnwidgets "
                                              r"made; expected a plain file or nothing there"):
        with fileio.WriterLock(tmp_path / "ds", "DatasetTrace.save"):
            pass
    assert victim.read_text() == "the user's file" and (tmp_path / ".ds.lock").is_symlink()
    (tmp_path / ".ds.lock").unlink()
    with fileio.WriterLock(tmp_path / "ds", "DatasetTrace.save"):   # a plain lock works as before
        assert (tmp_path / ".ds.lock").read_text() == f"{os.getpid()}\n"
    assert not (tmp_path / ".ds.lock").exists()


def test_a_pipe_or_device_is_refused_never_read_or_written_through(tmp_path):
    """Opened to be read (or checked before a save), a pipe would wait for a writer without end and
    a device would be read without end."""
    pipe = tmp_path / "t.npz"
    os.mkfifo(pipe)
    for path in (pipe, "/dev/zero"):
        with pytest.raises(ValueError, match=r"expected a .npz file \(as Trace.save writes\), got a pipe, device or "
                                             r"socket"):
            Trace.load(path)
    with pytest.raises(FileExistsError, match="Trace.save: .* exists and is a pipe, device or socket, not a .npz"):
        small_trace().save(pipe)
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode) and leftovers(tmp_path) == []


# ---- forged archives, headers that lie, paths that are not files ---------------------------------

def forge_sizes(path, member: str, packed: int, full: int) -> None:
    """Rewrite the sizes ``member``'s local and central headers declare (the bytes stay as they are)."""
    import struct

    data, name = bytearray(path.read_bytes()), member.encode()
    for sig, at_name, at_sizes in ((b"PK\x03\x04", 30, 18), (b"PK\x01\x02", 46, 20)):
        i = data.find(sig)
        while i != -1:
            length = struct.unpack_from("<H", data, i + (26 if sig == b"PK\x03\x04" else 28))[0]
            if data[i + at_name:i + at_name + length] == name:
                struct.pack_into("<II", data, i + at_sizes, packed, full)
            i = data.find(sig, i + 1)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"])
def test_a_member_claiming_packed_bytes_past_the_files_end_is_refused_unread(saved, tmp_path, method):
    """A central directory that says 4 GB packed and 4 GB full passes the inflation check; read, the
    array of the claimed size would be allocated and filled until the file ran out."""
    arrays, header = members(saved)
    del header["shapes"]
    steps = ((4 << 30) - 1024 - 128) // (2 * 3 * 4)
    path = tmp_path / "forged.npz"
    with zipfile.ZipFile(path, "w", method) as z:
        z.writestr("header.npy", npy_bytes(np.frombuffer(json.dumps(header).encode(), np.uint8)))
        for name in ("lengths", "l0/states/1"):
            z.writestr(f"{name}.npy", npy_bytes(arrays[name]))
        z.writestr("l0/states/0.npy", npy_header((2, steps, 3)) + bytes(1 << 20))
    forge_sizes(path, "l0/states/0.npy", (4 << 30) - 1024, 128 + 2 * steps * 3 * 4)
    said = r"array 'l0/states/0' .*: the archive declares \d+ packed bytes at \d+, past the end of the file " \
        r"\(\d+ bytes\); a damaged or forged archive, refused unread"
    peak = peak_allocated(lambda: refused(path, said))
    assert peak < 16 << 20, f"{peak / 1e6:.0f} MB allocated to refuse it"


def test_a_member_the_header_does_not_name_is_never_inflated(saved, tmp_path):
    arrays, header = members(saved)
    path = rewrite(tmp_path / "extra.npz", arrays, header)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z:
        with z.open("bomb.npy", "w", force_zip64=True) as f:   # 512 MiB of zeros, half a megabyte packed
            f.write(npy_header(((1 << 29) // 4,)))
            zeros = bytes(1 << 24)
            for _ in range(32):
                f.write(zeros)
    peak = peak_allocated(lambda: assert_same_trace(Trace.load(path), small_trace()))
    assert peak < 16 << 20, f"{peak / 1e6:.0f} MB allocated to load it"


def test_a_header_may_leave_out_its_tokens_but_not_say_its_format_as_true(saved, tmp_path):
    arrays, header = members(saved)
    del header["tokens"]
    assert Trace.load(rewrite(tmp_path / "untokened.npz", arrays, header)).tokens is None
    for fmt in (True, 1.0, "1"):
        refused(rewrite(tmp_path / "fmt.npz", arrays, {**header, "format": fmt}), "not a rnnwidgets trace of format 1")


def test_layers_or_keys_named_twice_are_refused_never_merged(saved, tmp_path):
    """A dict keeps one of two equal names: the other layer's (or key's) arrays would be dropped
    or read into the wrong place without a word."""
    arrays, header = members(saved)
    second = {f"l1/{k[3:]}": v for k, v in arrays.items() if k.startswith("l0/")}
    twice = {**header, "layers": header["layers"] * 2}
    twice["shapes"] = {**header["shapes"], **{k: list(v.shape) for k, v in second.items()}}
    refused(rewrite(tmp_path / "layers.npz", {**arrays, **second}, twice),
            r"its header's layer names should be distinct, got \['lstm.l0', 'lstm.l0'\]")
    keys = {**header, "layers": [{**header["layers"][0], "states": ["h", "h"]}]}
    refused(rewrite(tmp_path / "keys.npz", arrays, keys), r"layers\[0\].states should be a list of distinct strings")


@pytest.mark.parametrize("where, value, message", [
    ("param_grads", {"w": {"norm": "big", "mean_abs": 0, "max_abs": 0}}, "param_grads should be an object giving each"),
    ("param_grads", {"w": [1, 2, 3]}, "param_grads should be an object giving each"),
    ("param_grads", {"w": {"norm": 1.0}}, "param_grads should be an object giving each"),
    ("selection", [0, 2], "meta.selection should be null or an object whose steps are"),
    ("selection", {"steps": "0:2"}, "meta.selection should be null or an object whose steps are"),
    ("selection", {"steps": [0.5, 2]}, "meta.selection should be null or an object whose steps are"),
    ("cell", ["lstm"], r"layers\[0\].meta\['cell'\] should be null or a string"),
    ("call", "1", r"layers\[0\].meta\['call'\] should be null or a whole number"),
    ("layer", True, r"layers\[0\].meta\['layer'\] should be null or a whole number"),
])
def test_fields_the_views_read_are_refused_when_not_of_their_type(saved, tmp_path, where, value, message):
    """param_grads and the meta fields code reads (a window's first step, a cell's kind, a call's
    number): of another type they would fail later, inside a view, far from the file."""
    arrays, header = members(saved)
    if where == "param_grads":
        header["param_grads"] = value
    elif where == "selection":
        header["meta"] = {"selection": value}
    else:
        header["layers"][0]["meta"] = {where: value}
    refused(rewrite(tmp_path / "t.npz", arrays, header), message)


def test_grads_that_are_not_finite_and_free_meta_load_as_saved(tmp_path):
    """What capture writes still loads: a NaN gradient statistic (a saved NaN), a window whose stop
    is open, and meta fields no code reads, of any JSON type."""
    tr = small_trace()
    tr.param_grads = {"w": {"norm": float("nan"), "mean_abs": float("inf"), "max_abs": 0}}
    tr.meta = {"selection": {"steps": [1, None], "layers": None}, "note": {"__proto__": ["<b>", None, 1.5]}}
    back = Trace.load(tr.save(tmp_path / "t.npz"))
    assert np.isnan(back.param_grads["w"]["norm"]) and back.meta == tr.meta


def test_a_missing_file_a_link_loop_or_an_unreadable_path_is_one_sentence_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^.*nothere.npz: no such file; expected a .npz file \(as Trace.save "
                                                r"writes\)$"):
        Trace.load(tmp_path / "nothere.npz")
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"a.txt/t.npz: no such file"):
        Trace.load(tmp_path / "a.txt" / "t.npz")
    loop = tmp_path / "loop.npz"
    loop.symlink_to(loop)
    refused(loop, r"cannot be opened as a .npz file \(Too many levels of symbolic links\)")


def test_a_save_into_a_missing_folder_says_so_and_writes_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^Trace.save: .*/nope/t.npz: its folder .*/nope does not exist; "
                                                r"expected the path of a file in an existing folder$"):
        small_trace().save(tmp_path / "nope" / "t.npz")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileNotFoundError, match=r"its folder .*notes.txt is not a folder"):
        small_trace().save(tmp_path / "notes.txt" / "t.npz")
    with pytest.raises(FileNotFoundError, match=r"^.*/nope/x.txt: its folder .*/nope does not exist"):
        fileio.write_text(tmp_path / "nope" / "x.txt", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_save_at_a_link_never_writes_through_it(tmp_path):
    """A link at the path is replaced by the new file: what it points to (a trace elsewhere, a
    user's file) is never written; one to another kind of file or to a folder is refused."""
    elsewhere = small_trace(0).save(tmp_path / "elsewhere.npz")
    before = elsewhere.read_bytes()
    link = tmp_path / "link.npz"
    link.symlink_to(elsewhere)
    small_trace(1).save(link)
    assert elsewhere.read_bytes() == before and not link.is_symlink()
    assert_same_trace(Trace.load(link), small_trace(1))
    notes, folder = tmp_path / "notes.txt", tmp_path / "folder"
    notes.write_text("mine")
    folder.mkdir()
    for target, error in ((notes, FileExistsError), (folder, IsADirectoryError)):
        (tmp_path / "l2.npz").symlink_to(target)
        with pytest.raises(error, match="Trace.save: .*l2.npz"):
            small_trace().save(tmp_path / "l2.npz")
        assert (tmp_path / "l2.npz").is_symlink()
        (tmp_path / "l2.npz").unlink()
    dangling = tmp_path / "dangling.npz"
    dangling.symlink_to(tmp_path / "gone" / "x.npz")
    small_trace().save(dangling)   # the link replaced: nothing made where it pointed
    assert not (tmp_path / "gone").exists() and not dangling.is_symlink()
    assert notes.read_text() == "mine" and leftovers(tmp_path) == []


def test_a_json_bomb_header_is_refused_before_it_is_parsed(saved, tmp_path):
    """63 MB of "[]," packs into about 60 KB and would take 1.5 GB as Python lists."""
    arrays, header = members(saved)
    raw = json.dumps(header)[:-1].encode() + b', "bomb": [' + b"[]," * 21_000_000 + b"[]]}"
    path = rewrite(tmp_path / "bomb.npz", arrays, raw)
    assert path.stat().st_size < 256 << 10
    said = r"its JSON header would inflate to \d+ bytes from a file of \d+, more than 200 times: not a header a " \
        r"trace holds \(a JSON bomb\?\); refused unread"
    peak = peak_allocated(lambda: refused(path, said))
    assert peak < 16 << 20, f"{peak / 1e6:.0f} MB allocated to refuse it"
    # a long trace's tokens that pack as tightly come with arrays of as many steps: loaded
    steps = 1_200_000
    lt = LayerTrace("rnn.l0", "rnn", states={"h": np.random.default_rng(0).normal(size=(1, steps, 1))})
    long = Trace(layers={lt.name: lt}, lengths=[steps], tokens=[["a"] * steps]).save(tmp_path / "long.npz")
    with zipfile.ZipFile(long) as z:
        assert z.getinfo("header.npy").file_size > tracedata.HEADER_CHECKED_FROM
    assert Trace.load(long).tokens[0][-1] == "a"


def test_a_trace_save_never_replaces_a_zip_archive_of_other_files(tmp_path):
    """A .docx, .xlsx or .zip starts as a .npz does: its members' names tell them apart."""
    report = tmp_path / "report.docx"
    with zipfile.ZipFile(report, "w") as z:
        z.writestr("word/document.xml", "<w:document>years of work</w:document>")
    before = report.read_bytes()
    with pytest.raises(FileExistsError, match=r"Trace.save: .*report.docx exists and is a zip archive holding "
                                              r"'word/document.xml', not a .npz archive \(a saved trace\)"):
        small_trace().save(report)
    assert report.read_bytes() == before and leftovers(tmp_path) == []
    previous = small_trace(0).save(tmp_path / "t.npz")   # a previous trace is still replaced
    assert_same_trace(Trace.load(small_trace(1).save(previous)), small_trace(1))
