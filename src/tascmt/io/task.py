"""A dataset ("task"): its cases and what the label values mean. Read from an MSD folder or a plain folder.

The data types are defined in :mod:`tascmt.io.task_types` (re-exported here); the readers import them from
there, so this module can import the readers without an import cycle.
"""

from __future__ import annotations

from pathlib import Path

from tascmt.errors import InputError
from tascmt.io.task_types import CaseRef, Task

__all__ = ["CaseRef", "Task", "read_task"]


def read_task(path: str | Path, modality: str | None = None) -> Task:
    """Read a dataset folder.

    Args:
        path: an MSD task folder (with ``dataset.json``; nnU-Net v2 raw folders work too) or a plain
            folder of image/label pairs
            (``images/`` + ``labels/`` with matching names, or ``<case>_image`` / ``<case>_label`` style
            file names; see :mod:`tascmt.io.folder`).
        modality: the modality of a plain folder (default "unknown"); overrides dataset.json's if given.

    Raises:
        InputError: naming the file and the inconsistency.
    """
    # Imported here so that importing the data types (e.g. by tascmt.io.verify) does not load nibabel.
    from tascmt.io.folder import read_folder_task
    from tascmt.io.msd import read_msd_task

    root = Path(path)
    if not root.exists():
        raise InputError("dataset folder not found", path=root)
    if not root.is_dir():
        raise InputError("is not a folder (expected an MSD task folder or a folder of image/label pairs)",
                         path=root)
    task = read_msd_task(root) if (root / "dataset.json").exists() else read_folder_task(root)
    if modality is not None:
        task.modality = {"0": modality}
    if not task.cases:
        raise InputError("dataset has no cases", path=root)
    return task
