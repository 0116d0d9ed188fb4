"""What a dataset reader returns: a :class:`Task` (name, modality, label names) and its cases.

Only data types live here. The readers (:mod:`tascmt.io.msd`, :mod:`tascmt.io.nnunet`,
:mod:`tascmt.io.folder`) and :mod:`tascmt.io.task`, which picks the reader for a folder, all import them from
this module, and only :mod:`tascmt.io.task` imports the readers: every import between them points one way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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
