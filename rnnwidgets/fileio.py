"""Files without surprises.

Writing: nothing is ever lost. A file is written whole beside its target and renamed over it, so
an interrupted write (Ctrl-C, a full disk, a crash) leaves the previous file as it was; a folder
is built beside its target and swapped in the same way; one process at a time writes a target.

Reading: a file is data. Arrays are checked (shape, dtype, declared size) from their headers
before they are read, mapped or inflated, and every fault is a ValueError naming the file."""
from __future__ import annotations

import contextlib
import errno
import math
import os
import shutil
import struct
import zipfile
import zlib
from pathlib import Path
from types import ModuleType
from typing import Optional

import numpy as np

fcntl: Optional[ModuleType]
try:
    import fcntl
except ImportError:  # Windows: the lock falls back to an exclusive create
    fcntl = None


def _sibling(path: Path, tag: str) -> Path:
    """A name beside ``path`` that nothing else uses, hidden, saying what it is for."""
    return path.parent / f".{path.name}.{tag}-{os.urandom(4).hex()}"


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the system lets a folder be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", encoding=None):
    """Open a temporary file beside ``path`` for writing; once the block ends without an error it
    is flushed to disk and renamed over ``path``. On any exception (KeyboardInterrupt included)
    the temporary file is removed and ``path`` is left as it was."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: expected mode 'w' or 'wb', got {mode!r}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder: expected the path of a file to write (a folder is never "
                                f"replaced)")
    check_folder(path)
    while True:
        temporary = _sibling(path, "tmp")
        try:  # 0o666 and the umask, as open() would make it
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if path.exists():  # keep the permissions the user gave the file
            shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_folder(path.parent)


def check_folder(path, who: str = "", what: str = "file") -> None:
    """Refuse, in one sentence naming ``path``, a path whose folder is missing or is not a folder
    (else the error would name the hidden temporary file written beside it); ``what``: "file" or "folder"."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        lead = f"{who}: " if who else ""
        missing = "does not exist" if not folder.exists() else "is not a folder"
        raise FileNotFoundError(f"{lead}{path}: its folder {folder} {missing}; expected the path of a {what} in "
                                f"an existing folder")


def check_replaceable(path, who: str, heads: tuple, what: str, members: Optional[str] = None) -> None:
    """Refuse, before anything is written, to replace at ``path`` a folder or a file that is not
    ``what`` (its first bytes start with none of ``heads``, compared without case or leading
    blanks; ``heads`` in lower case): a save must never destroy another kind of file (a dataset,
    a trace, the user's notes). An empty file may be replaced. ``members``: for a zip archive, the
    ending of every member's name (".npy": a .npz, never a .docx, .xlsx or another zip)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{who}: {path} is a folder: expected the path of a file to write (a folder is "
                                f"never replaced)")
    check_folder(path, who)
    if not path.exists():
        return
    if not path.is_file():   # opened to be checked, a pipe would wait without end
        raise FileExistsError(f"{who}: {path} exists and is a pipe, device or socket, not {what}, so it is not "
                              f"replaced; choose another path")
    try:
        with open(path, "rb") as f:
            head = f.read(512).lstrip().lower()
    except OSError as e:
        raise FileExistsError(f"{who}: {path} exists and cannot be read to check what it is ({e}); choose "
                              f"another path") from None
    if head and not any(head.startswith(h) for h in heads):   # an empty file holds nothing to lose
        raise FileExistsError(f"{who}: {path} exists and is not {what}, so it is not replaced; choose another "
                              f"path or remove it first")
    if head and members is not None:
        try:   # (only the central directory is read)
            with zipfile.ZipFile(path) as z:
                other = next((n for n in z.namelist() if not n.endswith(members)), None)
        except (zipfile.BadZipFile, EOFError, OSError):
            other = None   # a damaged archive (a trace's, by its first bytes) holds nothing to keep
        if other is not None:
            raise FileExistsError(f"{who}: {path} exists and is a zip archive holding {other!r}, not {what}, so it "
                                  f"is not replaced; choose another path or remove it first")


def write_bytes(path, data: bytes) -> Path:
    with atomic_write(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_text(path, text: str) -> Path:
    """``text`` as UTF-8, encoded before anything is written (a string that cannot be encoded
    leaves ``path`` untouched)."""
    return write_bytes(path, text.encode("utf-8"))


def building_folder(target: Path) -> Path:
    """A new empty folder beside ``target`` in which to build what will replace it."""
    while True:
        folder = _sibling(target, "building")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue


def swap_in(built: Path, target: Path) -> None:
    """Put folder ``built`` at ``target``, replacing what was there only once ``built`` is in place.

    What was at ``target`` is renamed aside first, then removed: a reader that still has its files
    open (a memory map) keeps reading them, as renaming and unlinking never truncate a file."""
    old = None
    if target.exists() or target.is_symlink():
        old = _sibling(target, "old")
        os.rename(target, old)
    try:
        os.rename(built, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    _fsync_folder(target.parent)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()


class WriterLock:
    """Holds the one right to write ``target`` among processes: a lock file beside it, locked with
    ``flock`` (released by the system when the process dies, so a crash leaves no stale lock).

    ``WriterLock(target, who)`` raises ``BlockingIOError`` naming ``who`` and the lock file when
    another process holds it; use it as a context manager."""

    def __init__(self, target: Path, who: str):
        self.target, self.who = Path(target), who
        self.path = self.target.parent / f".{self.target.name}.lock"
        self.fd = None

    def __enter__(self):
        if self.path.is_symlink():   # never write through a link someone left at the lock's name
            raise FileExistsError(f"{self.who}: {self.path} is a link, not a lock file rnnwidgets made; expected a "
                                  f"plain file or nothing there (remove it, or write to another path)")
        while True:
            if fcntl is None:
                try:
                    fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                except FileExistsError:
                    raise self._busy() from None
                break
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
            except OSError as e:
                if e.errno != errno.ELOOP:
                    raise
                raise FileExistsError(f"{self.who}: {self.path} is a link, not a lock file rnnwidgets made; expected "
                                      f"a plain file or nothing there (remove it, or write to another path)") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise self._busy() from None
            try:  # the holder before us may have removed the file as we opened it: lock the one there now
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # while still locked, so no one locks a file about to vanish
        os.close(self.fd)
        self.fd = None
        return False

    def _busy(self) -> BlockingIOError:
        return BlockingIOError(f"{self.who}: another process is writing {self.target} (it holds {self.path}); "
                               f"wait for it to finish, or write to another path")


# ---- reading: a file is data, checked before it is inflated ---------------------------------------
# Deflate packs float32 data a few times at most; a thousandfold is a file of zeros made to fill
# memory (a zip bomb). Past INFLATION_CHECKED_FROM bytes, a file inflating more than MAX_INFLATION
# times is refused before anything is inflated.
MAX_INFLATION = 200
INFLATION_CHECKED_FROM = 64 << 20
_UNREADABLE = (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError,
               SyntaxError, TypeError)


NPY_HEADER_BYTES = 128


def npy_header(shape: tuple, dtype: str = "<f4") -> bytes:
    """A .npy (format 1.0) header of exactly NPY_HEADER_BYTES for an array of ``shape``."""
    text = "{'descr': '%s', 'fortran_order': False, 'shape': %r, }" % (dtype, tuple(int(n) for n in shape))
    body = NPY_HEADER_BYTES - 10
    if len(text) + 1 > body:
        raise ValueError(f"shape {shape} does not fit a {NPY_HEADER_BYTES}-byte .npy header")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", body) + (text.ljust(body - 1) + "\n").encode("latin1")


def read_npy_header(f, where: str) -> tuple:
    """(shape, dtype, offset of the data) from a .npy stream at its start, or a ValueError saying
    ``where`` is not a plain .npy array. Reads only the header (a few hundred bytes)."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f".npy format version {version}")
        offset = f.tell()
    except _UNREADABLE as e:
        raise ValueError(f"{where}: not a readable .npy array ({e})") from None
    if fortran or dtype.hasobject or dtype.fields is not None:
        raise ValueError(f"{where}: expected a plain C-ordered array of numbers, got dtype {dtype} "
                         f"{'in Fortran order' if fortran else ''}".rstrip())
    return tuple(shape), dtype, offset


def _check_array(where: str, shape: tuple, dtype, kinds: str, ndim: int) -> None:
    if dtype.kind not in kinds or len(shape) != ndim:
        wanted = {"f": "floats", "iu": "integers", "u": "bytes"}.get(kinds, kinds)
        raise ValueError(f"{where}: expected a {ndim}-d array of {wanted}, got shape {shape} of {dtype}")


class NpzArchive:
    """The arrays of an ``.npz`` file, each read only once its .npy header (shape, dtype) and the
    zip's declared size agree, and the whole file is not a zip bomb. Every error is a ValueError
    that names the file and what is wrong with it."""

    def __init__(self, path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"{self.path}: expected a .npz file (as Trace.save writes), got a folder; a dataset "
                             f"trace's folder opens with rw.DatasetTrace.load")
        if self.path.exists() and not self.path.is_file():   # a pipe or a device would be read without end
            raise ValueError(f"{self.path}: expected a .npz file (as Trace.save writes), got a pipe, device or "
                             f"socket")
        try:
            self.size = self.path.stat().st_size
            self.zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, EOFError) as e:
            raise ValueError(f"{self.path}: not a .npz archive, or a truncated one ({e})") from None
        except (FileNotFoundError, NotADirectoryError):
            raise FileNotFoundError(f"{self.path}: no such file; expected a .npz file (as Trace.save writes)"
                                    ) from None
        except OSError as e:   # a link that loops, a file this user may not read
            raise ValueError(f"{self.path}: cannot be opened as a .npz file ({e.strerror or e})") from None
        self.members = {n[:-4]: n for n in self.zip.namelist() if n.endswith(".npy")}
        self.checked: dict = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.zip.close()
        return False

    def __contains__(self, name: str) -> bool:
        return name in self.members

    def check(self, name: str, kinds: str, ndim: int, what: str) -> tuple:
        """The shape of array ``name`` (``what`` says what it holds, for errors), its dtype one of
        ``kinds`` (numpy kind letters) and ``ndim`` dimensions; inflates only its header."""
        where = f"{self.path}: array {name!r} ({what})"
        if name not in self.members:
            raise ValueError(f"{self.path}: missing array {name!r} ({what})")
        info = self.zip.getinfo(self.members[name])
        if info.header_offset + info.compress_size > self.size:   # else read to the end, into an array that size
            raise ValueError(f"{where}: the archive declares {info.compress_size} packed bytes at "
                             f"{info.header_offset}, past the end of the file ({self.size} bytes); a damaged or "
                             f"forged archive, refused unread")
        try:
            with self.zip.open(info) as f:
                shape, dtype, offset = read_npy_header(f, where)
        except ValueError:
            raise
        except _UNREADABLE as e:
            raise ValueError(f"{where}: cannot be read ({e})") from None
        _check_array(where, shape, dtype, kinds, ndim)
        needed = offset + math.prod(shape) * dtype.itemsize
        if info.file_size != needed:
            raise ValueError(f"{where}: the archive declares {info.file_size} bytes where its shape {shape} "
                             f"of {dtype} needs {needed}")
        self.checked[name] = (info, shape)
        return shape

    def check_inflation(self) -> None:
        """Refuse, before inflating them, arrays that would inflate past MAX_INFLATION times their size."""
        infos = [info for info, _ in self.checked.values()]
        # (members may claim the same packed bytes: no more than the file holds is counted)
        full, packed = sum(i.file_size for i in infos), min(sum(i.compress_size for i in infos), self.size)
        if full > INFLATION_CHECKED_FROM and full > MAX_INFLATION * max(packed, 1):
            raise ValueError(f"{self.path}: its arrays would inflate from {packed} to {full} bytes, more than "
                             f"{MAX_INFLATION} times: not data a trace holds (a zip bomb?); refused unread")

    def read(self, name: str) -> np.ndarray:
        """A checked array, inflating no more than its declared size."""
        info, shape = self.checked[name]
        try:
            with self.zip.open(info) as f:
                array = np.lib.format.read_array(f, allow_pickle=False)
        except _UNREADABLE as e:
            raise ValueError(f"{self.path}: array {name!r} cannot be read ({e})") from None
        if array.shape != shape:  # the header read twice: a file changed as it was read
            raise ValueError(f"{self.path}: array {name!r} changed while it was read")
        return array
