"""The in-memory volume every pipeline stage works on.

Arrays are in one canonical orientation (RAS+: array axis 0 runs to the Right, 1 to the Anterior,
2 to the Superior, as ``nibabel.as_closest_canonical`` gives), float32 for images and uint8 for labels.
The affine of the file as read is kept in ``original_affine`` (with the orientation transform between
the two in ``ornt``) so that results can be written back in the original space with the original header.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Volume:
    """One case: an image (and optionally its label map) in canonical RAS orientation.

    Attributes:
        case_id: identifier (file stem without ``.nii.gz``, or the DICOM series folder name).
        image: (X, Y, Z) float32, canonical orientation, original intensity units (e.g. HU for CT).
            Strides are positive but the memory order may be Fortran (as nibabel reads NIfTI).
        affine: (4, 4) voxel → world (RAS mm) affine of ``image`` as stored (canonical).
        spacing: voxel sizes in mm along the three canonical array axes.
        label: (X, Y, Z) uint8 label map aligned with ``image``, or None.
        original_affine: (4, 4) affine of the file as read, before reorientation.
        original_shape: array shape of the file as read.
        ornt: nibabel orientation array mapping the original array to canonical
            (``nibabel.orientations.io_orientation(original_affine)``); inverting it gives the original.
        image_path / label_path: where the data came from (for error messages and provenance).
        modality: "CT", "MRI" or another name from dataset.json (None when unknown).
    """

    case_id: str
    image: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]
    label: np.ndarray | None = None
    original_affine: np.ndarray | None = None
    original_shape: tuple[int, int, int] | None = None
    ornt: np.ndarray | None = None
    image_path: Path | None = None
    label_path: Path | None = None
    modality: str | None = None
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.image.shape)  # type: ignore[return-value]
