"""An exclusive, non-blocking lock that lets one process at a time write a folder (a run folder, a cache).

The lock is ``fcntl.flock`` on a small lock file. The kernel drops it when the holding process exits in
any way (``kill -9`` included), so a crashed run never leaves a lock that blocks the next one. The holder
writes its pid into the file so that a refused process can say who holds it, and deletes the file when it
releases the lock (a killed holder leaves it behind, unlocked and harmless). Deleting a lock file is safe
because a process that has locked one checks that it is still the file at that path, and starts again
with the new one otherwise.

Within one process the lock is re-entrant: taking a lock file this process already holds only counts up,
so a caller (the demo) can hold a run folder's lock across a call to ``train``, which takes it again.
On platforms without ``fcntl`` (Windows) locking is skipped.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from tascmt.errors import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Name of the lock file inside a locked folder.
LOCK_NAME = ".tascmt.lock"

_HELD: dict[str, list[int]] = {}  # real path of a lock file → [descriptor, times taken] (this process)
_GUARD = threading.Lock()


class FolderInUseError(ConfigError):
    """Another process holds the lock of a folder this process needs to write."""


class FolderLock:
    """The lock on ``lock_file``, for writing ``folder``; use as a context manager or acquire/release.

    Args:
        lock_file: the file that is locked (created when missing; its folder must exist).
        folder: the folder it protects (named in the error message).
        what: what the folder is, for the message (``"run folder"``, ``"cache"``).
    """

    def __init__(self, lock_file: str | os.PathLike, folder: str | os.PathLike, what: str = "folder"):
        self.lock_file = Path(lock_file)
        self.folder = Path(folder)
        self.what = what
        self._key: str | None = None

    def acquire(self) -> FolderLock:
        """Take the lock or raise :class:`FolderInUseError` naming the folder and the holder's pid."""
        if fcntl is None or self._key is not None:
            return self
        key = os.path.realpath(self.lock_file)
        with _GUARD:
            if key in _HELD:  # this process holds it already
                _HELD[key][1] += 1
                self._key = key
                return self
            while True:
                fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = _read_pid(fd)
                    os.close(fd)
                    who = f"pid {holder}" if holder else "pid unknown"
                    raise FolderInUseError(f"{self.what} {self.folder} is in use by another process ({who}); "
                                           "wait for it to finish or choose another folder") from None
                except OSError:  # a file system without flock support (some network mounts): no lock
                    os.close(fd)
                    return self
                if _same_file(fd, key):
                    break
                os.close(fd)  # its holder deleted it after we opened it: lock the file now at that path
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            _HELD[key] = [fd, 1]
            self._key = key
        return self

    def release(self) -> None:
        if self._key is None:
            return
        with _GUARD:
            key, self._key = self._key, None
            entry = _HELD.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _HELD[key]
            fd = entry[0]
            with contextlib.suppress(OSError):
                os.unlink(key)  # still locked: a process that opened it meanwhile sees it is gone and retries
            os.close(fd)  # closing the descriptor drops the flock

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _same_file(fd: int, path: str) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except (OSError, AttributeError):
        return None
    return int(text) if text.isdigit() else None


def lock_folder(folder: str | os.PathLike, what: str = "folder") -> FolderLock:
    """Lock an existing ``folder`` through ``folder/.tascmt.lock`` (taken; release it, or use ``with``)."""
    folder = Path(folder)
    return FolderLock(folder / LOCK_NAME, folder, what).acquire()


def lock_beside(path: str | os.PathLike, what: str = "folder") -> FolderLock:
    """Lock ``path`` (which may not exist yet, or be replaced whole) through ``.NAME.lock`` in its parent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FolderLock(path.parent / f".{path.name}.lock", path, what).acquire()
