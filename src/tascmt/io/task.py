"""A dataset ("task"): its cases and what the label values mean. Read from an MSD folder or a plain folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tascmt.errors import InputError

_CT_WORDS = ("CT",)
_MRI_WORDS = ("MR", "MRI", "T1", "T1W", "T1GD", "T2", "T2W", "FLAIR", "ADC", "DWI", "PD", "SWI")


@dataclass
class CaseRef:
    """One case on disk: an image (NIfTI file or DICOM folder) and its label map (None when unlabelled)."""

    case_id: str
    image: Path
    label: Path | None = None


@dataclass
class Task:
    """A dataset.

    Attributes:
        name: dataset name (dataset.json ``name`` or the folder name).
        modality: channel index → modality name, e.g. ``{"0": "CT"}`` (one channel only).
        labels: label value → name, e.g. ``{0: "background", 1: "left atrium"}`` (empty when unknown).
        cases: the labelled (training) cases, or every case of a plain folder, sorted by case id.
        root: the folder the task was read from.
        test_cases: MSD ``test`` images (no labels).
    """

    name: str
    modality: dict[str, str]
    labels: dict[int, str]
    cases: list[CaseRef]
    root: Path
    test_cases: list[CaseRef] = field(default_factory=list)

    @property
    def primary_modality(self) -> str:
        """"CT" or "MRI" when the modality name says so (e.g. "portal-venous phase CT" → "CT",
        "T2" → "MRI"), otherwise the name as given ("unknown" when none)."""
        name = self.modality.get("0", "unknown") if self.modality else "unknown"
        words = name.upper().replace("-", " ").replace("_", " ").split()
        if any(w in _CT_WORDS for w in words):
            return "CT"
        if any(w in _MRI_WORDS for w in words):
            return "MRI"
        return name


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
