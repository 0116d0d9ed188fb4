"""The cache folder on disk: how ``prepare_dataset`` writes it safely (docs/design.md §2 for what it holds).

Before anything is written the free space is checked against a conservative estimate from the headers;
memory-mapped arrays are preallocated, so a full disk is an ``OSError`` (never a SIGBUS); the finished
temporary folder is flushed and swapped into place with two renames; under the ``out_dir`` lock, debris
of killed runs (``.NAME.tmp-*``, ``.NAME.old-*``) is removed and a cache left only in ``.NAME.old-*/`` by a
kill between the two renames is put back.
"""

from __future__ import annotations

import errno
import glob
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

from tascmt.data import triplets as tp
from tascmt.data.cache import Manifest
from tascmt.data.inplane import InplanePolicy
from tascmt.errors import ConfigError, InputError
from tascmt.utils.atomic import fsync_dir, fsync_file

__all__ = ["BYTES_PER_VOXEL", "RESERVE_BYTES", "SPACE_ERRNOS", "check_free_space", "debris", "fsync_tree",
           "make_parent", "preallocate", "remove_stale", "swap_into_place"]

#: errno values of a full disk, an exhausted quota, a file-size limit.
SPACE_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG})
#: Bytes per cached voxel assumed by the free-space check: float32 image (int16 CT takes less), uint8 mask.
BYTES_PER_VOXEL = 4 + 1
#: Free space kept in reserve beyond the arrays (manifest, splits, provenance, file-system overhead).
RESERVE_BYTES = 16 * 2**20


def check_free_space(task, params: dict, inplane: InplanePolicy, out_dir: Path) -> int:
    """Refuse to start when the disk cannot hold the cache (estimated from the headers, conservatively);
    returns the estimate in bytes."""
    needed = RESERVE_BYTES + sum(_case_bytes(ref, params, inplane) for ref in task.cases)
    folder = out_dir.parent
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise ConfigError(f"not enough free space in {folder} for the cache {out_dir}: about "
                          f"{_size(needed)} needed ({needed} bytes), {_size(free)} free ({free} bytes); "
                          "free some space or choose another output folder")
    return needed


def _case_bytes(ref, params: dict, inplane: InplanePolicy) -> int:
    """Estimated bytes of one case's cached arrays (from the NIfTI header; from the files' sizes for a
    DICOM series, whose header-only reading would mean reading the series twice)."""
    from tascmt.io.load import read_geometry
    from tascmt.io.orientation import voxel_spacing

    path = Path(ref.image)
    if path.is_dir():  # 2-byte stored pixels → a 4-byte image and a 1-byte mask
        return int(2.5 * sum(f.stat().st_size for f in path.rglob("*") if f.is_file()))
    try:
        shape, affine = read_geometry(path)
    except (InputError, OSError):  # the header check reports it
        return 0
    spacing = voxel_spacing(affine)
    axis = tp.slice_axis(spacing, params["slice_axis"])
    z = int(shape[axis])
    hw = math.prod(int(s) for s in shape) // max(z, 1)
    if inplane.kind != "native":
        hw = max(hw, inplane.size * inplane.size)
    if params["protocol"] == "resampled":  # slices every gap_mm
        z = max(z, math.ceil((z - 1) * float(spacing[axis]) / float(params["gap_mm"])) + 1)
    return z * hw * BYTES_PER_VOXEL


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def preallocate(path: Path) -> None:
    """Reserve the disk blocks of a freshly created memory-mapped file, so that a full disk fails here with
    an OSError (ENOSPC) instead of killing the process with SIGBUS at the first write into a page that has
    no block. Skipped where ``posix_fallocate`` is missing or the file system cannot do it."""
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is None:
        return
    fd = os.open(path, os.O_RDWR)
    try:
        fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as err:
        if err.errno in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return
        raise OSError(err.errno, err.strerror, str(path)) from err
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Flush every file of the finished cache, and its folders, to disk before it is swapped in."""
    for sub, _, files in os.walk(folder):
        for name in files:
            fsync_file(Path(sub) / name)
        fsync_dir(sub)


def make_parent(out_dir: Path) -> Path:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return out_dir.parent


def swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by ``tmp`` (the old cache, if any, is removed only after the rename).

    The old cache is first moved into ``.NAME.old-PID-*/cache``; a kill between that rename and the next
    leaves no ``out_dir``, and the next ``prepare`` moves the old cache back (:func:`remove_stale`).
    """
    if not out_dir.exists():
        os.replace(tmp, out_dir)
        fsync_dir(out_dir.parent)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-{os.getpid()}-", dir=out_dir.parent))
    os.replace(out_dir, old / "cache")
    os.replace(tmp, out_dir)
    fsync_dir(out_dir.parent)
    shutil.rmtree(old, ignore_errors=True)


def remove_stale(out_dir: Path) -> None:
    """Under the ``out_dir`` lock (so no other prepare is writing them): put back a cache left only in
    ``.NAME.old-*/cache`` by a kill between the swap's two renames, then remove every ``.NAME.tmp-*`` and
    ``.NAME.old-*`` folder left by killed runs."""
    parent = out_dir.parent
    olds = sorted(debris(out_dir, "old"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not out_dir.exists():
        for old in olds:
            if _complete_cache(old / "cache"):
                os.replace(old / "cache", out_dir)
                fsync_dir(parent)
                print(f"note: restored the cache {out_dir} from {old} (a previous prepare was killed while "
                      "swapping in a new cache)", file=sys.stderr)
                break
    for stale in [*debris(out_dir, "tmp"), *olds]:
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def debris(out_dir: Path, *kinds: str) -> list[Path]:
    """The ``.NAME.tmp-*`` / ``.NAME.old-*`` folders beside ``out_dir`` (``kinds``: default both)."""
    name = glob.escape(out_dir.name)
    return [p for kind in (kinds or ("tmp", "old")) for p in out_dir.parent.glob(f".{name}.{kind}-*")]


def _complete_cache(folder: Path) -> bool:
    try:
        return folder.is_dir() and Manifest.load(folder).is_complete()
    except (InputError, OSError, ValueError, KeyError, TypeError):
        return False
