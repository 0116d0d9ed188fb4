"""tascmt.io: reading and writing volumes (NIfTI, DICOM series), datasets (MSD, plain folders), checks.

Every volume is reoriented to canonical RAS+ on reading and written back in its original orientation.
Bad input raises :class:`tascmt.errors.InputError` naming the file and the problem.

The names below are loaded on first use: the readers and writers need nibabel and SimpleITK, while parts
of this package (``through_plane_axis``, the affine helpers) serve the data stage and inference on arrays,
which must import on machines without those libraries.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "check_image_values": "checks",
    "geometry_difference": "checks",
    "label_to_uint8": "checks",
    "read_dicom_series": "dicom",
    "load_volume": "load",
    "read_geometry": "load",
    "read_image": "load",
    "MAX_VOXELS": "nifti",
    "case_id_from_path": "nifti",
    "load_nifti": "nifti",
    "check_affine": "orientation",
    "upsampled_affine": "orientation",
    "voxel_spacing": "orientation",
    "save_like": "save",
    "to_original": "save",
    "CaseRef": "task",
    "Task": "task",
    "read_task": "task",
    "through_plane_axis": "verify",
    "verify_case": "verify",
    "verify_task": "verify",
    "Volume": "volume",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tascmt.io' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"tascmt.io.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
