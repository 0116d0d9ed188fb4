"""Atomic file output: write to a temporary name in the same folder, then rename.

A crash or an error part-way leaves the destination either absent or as it was before, never half-written.
The temporary file is flushed to disk (``fsync``) before the rename and the folder after it, so that after
a power loss the destination holds either the old or the new content in full, never an empty file (the
folder sync is skipped on platforms that cannot open a folder, e.g. Windows).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success it is renamed to ``dest``, on error removed.

    ``suffix`` defaults to the destination's full suffix (e.g. ``.nii.gz``) so that libraries which pick a
    format from the file name (nibabel, SimpleITK) still do the right thing. Whatever the caller wrote to
    the temporary path is synced to disk before the rename, and the folder's entry after it.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if suffix is None:
        suffix = "".join(dest.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".tmp{suffix}", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual file mode
        if tmp_path.is_file():
            fsync_file(tmp_path)
        os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
    fsync_dir(dest.parent)


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a written file's data and metadata to disk."""
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    except PermissionError:  # a read-only file (fsync of a read-only descriptor works on POSIX)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename into it) to disk; best effort where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # Windows cannot open a folder; its rename is made durable by the file system
        return
    try:
        with contextlib.suppress(OSError):  # some file systems refuse fsync on a folder (EINVAL)
            os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(dest: str | os.PathLike, text: str) -> Path:
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(dest)


def write_json_atomic(dest: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    text = json.dumps(obj, indent=indent, default=_json_default)
    return write_text_atomic(dest, text + "\n")


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
