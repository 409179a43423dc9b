"""Files are never lost and files read are data: atomic writes of every file we write, and
Trace files that are broken or hostile refused with a clear error before they are inflated."""
import os
import stat

import numpy as np
import pytest

from rnnwidgets import LayerTrace, Trace, fileio
from rnnwidgets import tracedata


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
