"""Fail early when an output folder cannot be written, instead of after minutes of computation.

The check creates (and removes) a small hidden file in the folder, or in its nearest existing ancestor when
the folder does not exist yet, so it reflects what the process can really do: permissions, a read-only
file system, a path that runs through a file. Nothing is created when the check fails.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tascmt.errors import InputError


def check_writable_folder(folder: str | os.PathLike, what: str = "output folder") -> None:
    """Raise :class:`InputError` naming ``folder`` when files could not be written into it."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe.parent != probe:  # the nearest existing ancestor
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"cannot create the {what}: {probe} is a file, not a folder", path=folder)
    try:
        fd, name = tempfile.mkstemp(prefix=".tascmt-write-test-", dir=probe)
    except OSError as err:
        reason = err.strerror or str(err)
        where = "" if probe == folder else f" (its nearest existing folder is {probe})"
        raise InputError(f"cannot write the {what}{where}: {reason}", path=folder) from err
    os.close(fd)
    os.unlink(name)
