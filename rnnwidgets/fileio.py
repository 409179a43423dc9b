"""Writing files so that nothing is ever lost: a file is written whole beside its target and
renamed over it, so an interrupted write (Ctrl-C, a full disk, a crash) leaves the previous file
as it was; a folder is built beside its target and swapped in the same way."""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: the lock falls back to an exclusive create
    fcntl = None


def _sibling(path: Path, tag: str) -> Path:
    """A name beside ``path`` that nothing else uses, hidden, saying what it is for."""
    return path.parent / f".{path.name}.{tag}-{secrets.token_hex(4)}"


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
        while True:
            if fcntl is None:
                try:
                    fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                except FileExistsError:
                    raise self._busy() from None
                break
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o666)
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
