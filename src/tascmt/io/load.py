"""``load_volume``: an image (NIfTI file or DICOM series folder) + optional label → a checked Volume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from nibabel import orientations

from tascmt.errors import InputError
from tascmt.io.checks import check_image_values, check_label_geometry, label_to_uint8
from tascmt.io.dicom import read_dicom_series
from tascmt.io.nifti import case_id_from_path, read_nifti_data, read_nifti_header
from tascmt.io.orientation import canonical_ornt, reorient, voxel_spacing
from tascmt.io.volume import Volume

_DICOM_MODALITIES = {"CT": "CT", "MR": "MRI"}


def read_image(
    path: str | Path, dtype=np.float32, *, resample_tilt: bool = False, nearest: bool = False
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read a NIfTI file or DICOM series folder as stored.

    ``resample_tilt`` and ``nearest`` apply to a DICOM series (see
    :func:`tascmt.io.dicom.read_dicom_series`): a gantry-tilted series is refused unless ``resample_tilt``,
    which resamples it (nearest-neighbour with ``nearest``, for label maps).

    Returns:
        (array (I, J, K) of ``dtype`` (None: stored type, NIfTI only), affine (4, 4) RAS, meta) where
        meta holds ``nifti_header`` (a copy of the header) or ``dicom`` (series UID, Modality).
    """
    path = Path(path)
    if path.is_dir():
        series = read_dicom_series(path, resample_tilt=resample_tilt, nearest=nearest)
        return series.array, series.affine, {"dicom": series.meta}
    info = read_nifti_header(path)
    data = read_nifti_data(info, path, dtype=dtype)
    return data, info.affine, {"nifti_header": info.image.header.copy()}


def read_geometry(
    path: str | Path, *, resample_tilt: bool = False
) -> tuple[tuple[int, int, int], np.ndarray]:
    """Canonical (RAS+) shape and affine of an image without reading NIfTI voxel data.

    (A DICOM series is read in full; a gantry-tilted one is refused unless ``resample_tilt``.)
    Raises :class:`InputError` for every header-level problem.
    """
    path = Path(path)
    if path.is_dir():
        series = read_dicom_series(path, resample_tilt=resample_tilt)
        shape, affine = series.array.shape, series.affine
    else:
        info = read_nifti_header(path)
        shape, affine = info.shape, info.affine
    ornt = canonical_ornt(affine)
    canon_shape = tuple(int(s) for s in np.asarray(shape)[np.argsort(ornt[:, 0])])
    canon_affine = affine @ orientations.inv_ornt_aff(ornt, shape)
    return canon_shape, canon_affine  # type: ignore[return-value]


def load_volume(
    image_path: str | Path,
    label_path: str | Path | None = None,
    modality: str | None = None,
    case_id: str | None = None,
    resample_tilt: bool = False,
) -> Volume:
    """Load, check and reorient one case to canonical RAS+.

    Args:
        image_path: a ``.nii``/``.nii.gz`` file or a folder holding one DICOM series.
        label_path: optional label map (NIfTI or DICOM) on the same grid as the image.
        modality: "CT", "MRI", ... (for a DICOM series, defaults to its Modality tag).
        case_id: defaults to the image file name without ``.nii.gz`` (or the DICOM folder name).
        resample_tilt: a gantry-tilted CT DICOM series (slices shifted in-plane along the series) is
            refused by default; True resamples it onto a regular grid aligned with the slice normal
            (linear for the image, nearest-neighbour for a DICOM label map).

    Returns:
        :class:`Volume` with ``image`` (X, Y, Z) float32 and ``label`` (X, Y, Z) uint8 or None.

    Raises:
        InputError: naming the file and the problem (see :mod:`tascmt.io.nifti`, :mod:`tascmt.io.checks`).
    """
    image_path = Path(image_path)
    data, affine, meta = read_image(image_path, resample_tilt=resample_tilt)
    check_image_values(data, image_path)
    ornt = canonical_ornt(affine)
    image, canon_affine = reorient(data, affine, ornt)
    original_shape = tuple(int(s) for s in data.shape)
    del data

    label = None
    if label_path is not None:
        label_path = Path(label_path)
        if label_path.resolve() == image_path.resolve():
            raise InputError("label path is the image path", path=label_path)
        lab, lab_affine, _ = read_image(label_path, dtype=None, resample_tilt=resample_tilt, nearest=True)
        lab = label_to_uint8(lab, label_path)
        label, lab_canon_affine = reorient(lab, lab_affine, canonical_ornt(lab_affine))
        check_label_geometry(image.shape, canon_affine, image_path, label.shape, lab_canon_affine, label_path)

    if modality is None and "dicom" in meta:
        modality = _DICOM_MODALITIES.get(meta["dicom"].get("Modality", ""), None)
    return Volume(
        case_id=case_id or case_id_from_path(image_path),
        image=image,
        affine=canon_affine,
        spacing=voxel_spacing(canon_affine),
        label=label,
        original_affine=affine,
        original_shape=original_shape,  # type: ignore[arg-type]
        ornt=ornt,
        image_path=image_path,
        label_path=None if label_path is None else Path(label_path),
        modality=modality,
        meta=meta,
    )
