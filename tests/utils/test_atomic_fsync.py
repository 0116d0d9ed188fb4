"""Atomic writes reach the disk: the file is synced before the rename and its folder after it."""

from __future__ import annotations

import json
import os
import stat

import pytest

from tascmt.utils import atomic
from tascmt.utils.atomic import atomic_path, write_json_atomic, write_text_atomic


@pytest.fixture
def fsync_log(monkeypatch):
    """Record, for every os.fsync call, whether it synced a folder or a file (and which file)."""
    calls: list[tuple[str, str]] = []
    real_fsync = os.fsync

    def counting_fsync(fd):
        st = os.fstat(fd)
        kind = "dir" if stat.S_ISDIR(st.st_mode) else "file"
        content = "" if kind == "dir" else os.pread(fd, 1 << 16, 0).decode("utf-8", "replace")
        calls.append((kind, content))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    return calls


def test_write_text_syncs_file_then_folder(tmp_path, fsync_log):
    dest = tmp_path / "sub" / "a.txt"
    write_text_atomic(dest, "hello")
    assert dest.read_text(encoding="utf-8") == "hello"
    # the file is synced with its full content (before the rename), then the folder (after it)
    assert fsync_log == [("file", "hello"), ("dir", "")]
    assert [p.name for p in dest.parent.iterdir()] == ["a.txt"]  # no temporary left


def test_write_json_syncs_and_replaces(tmp_path, fsync_log):
    dest = tmp_path / "a.json"
    dest.write_text("old", encoding="utf-8")
    write_json_atomic(dest, {"x": [1, 2]})
    assert json.loads(dest.read_text(encoding="utf-8")) == {"x": [1, 2]}
    assert [kind for kind, _ in fsync_log] == ["file", "dir"]
    assert json.loads(fsync_log[0][1]) == {"x": [1, 2]}


def test_atomic_path_syncs_what_a_library_wrote(tmp_path, fsync_log):
    dest = tmp_path / "vol.nii.gz"
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as f:  # a library writing by name, closing the file itself
            f.write(b"payload")
        assert fsync_log == []  # nothing synced before the caller is done
    assert dest.read_bytes() == b"payload"
    assert fsync_log == [("file", "payload"), ("dir", "")]
    mode = stat.S_IMODE(dest.stat().st_mode)
    assert mode & 0o644 == 0o644 or os.name == "nt"  # the usual file mode, not mkstemp's 0600


def test_failed_write_syncs_nothing_and_leaves_no_file(tmp_path, fsync_log):
    dest = tmp_path / "out.txt"
    dest.write_text("previous", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("partial", encoding="utf-8")
        raise RuntimeError("boom")
    assert dest.read_text(encoding="utf-8") == "previous"
    assert fsync_log == []
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_folder_sync_is_best_effort(tmp_path, monkeypatch):
    """Where a folder cannot be opened (Windows) or refuses fsync, the write still succeeds."""
    real_open = os.open

    def no_folder_open(path, flags, *args, **kwargs):
        if os.path.isdir(path):
            raise PermissionError(13, "cannot open a folder", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_folder_open)
    write_text_atomic(tmp_path / "a.txt", "one")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "one"
    monkeypatch.setattr(os, "open", real_open)

    real_fsync = os.fsync

    def dir_fsync_fails(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(22, "Invalid argument")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", dir_fsync_fails)
    write_text_atomic(tmp_path / "b.txt", "two")
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "two"


def test_file_fsync_error_is_not_swallowed(tmp_path, monkeypatch):
    """A failed file sync (disk full, I/O error) fails the write and keeps the old destination."""
    dest = tmp_path / "a.txt"
    dest.write_text("old", encoding="utf-8")

    def failing_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomic.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="Input/output"):
        write_text_atomic(dest, "new")
    assert dest.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
