"""Writing canonical arrays back as NIfTI in the original orientation, with the original header."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel import orientations

from tascmt.errors import InputError
from tascmt.io.nifti import is_nifti_path
from tascmt.io.orientation import RAS_ORNT, check_affine, invert_ornt, positive_copy
from tascmt.io.volume import Volume
from tascmt.utils.atomic import atomic_path

# sform code written when the input had neither a qform nor an sform ("aligned to something").
_FALLBACK_SFORM_CODE = 2


def to_original(array_canonical: np.ndarray, volume: Volume) -> np.ndarray:
    """Undo the canonical reorientation of ``volume``: (X, Y, Z[, ...]) → the file's (I, J, K[, ...]) order.

    The array may differ from ``volume.shape`` in size (e.g. more slices); only axes are permuted/flipped.
    """
    if volume.ornt is None:
        raise ValueError(f"volume {volume.case_id!r} has no orientation (ornt is None)")
    if array_canonical.ndim < 3:
        raise ValueError(f"expected an array with >= 3 axes (X, Y, Z, ...), got {array_canonical.shape}")
    inv = invert_ornt(volume.ornt)
    if np.array_equal(inv, RAS_ORNT):
        return array_canonical
    return positive_copy(orientations.apply_orientation(array_canonical, inv))


def original_affine_for(
    array_shape: tuple[int, ...], canonical_affine: np.ndarray, volume: Volume
) -> np.ndarray:
    """Affine (file orientation) of a canonical array of ``array_shape`` with ``canonical_affine``."""
    inv = invert_ornt(volume.ornt)
    return np.asarray(canonical_affine, dtype=np.float64) @ orientations.inv_ornt_aff(inv, array_shape[:3])


def _output_dtype(array: np.ndarray, dtype) -> np.dtype:
    if dtype is not None:
        return np.dtype(dtype)
    kind, size = array.dtype.kind, array.dtype.itemsize
    if kind == "b":
        return np.dtype(np.uint8)
    if kind in "iu" and size == 8:
        return np.dtype(np.int32)
    if kind == "f" and size == 8:
        return np.dtype(np.float32)
    return array.dtype


def _cast(array: np.ndarray, dtype: np.dtype, path: Path) -> np.ndarray:
    if dtype.kind in "iu":
        if array.dtype.kind == "f":
            if not np.isfinite(array).all():
                raise ValueError(f"{path}: cannot write non-finite values as {dtype}")
            array = np.round(array)
        info = np.iinfo(dtype)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise ValueError(f"{path}: values {array.min()}..{array.max()} do not fit in {dtype}")
    return array.astype(dtype, copy=False)


def _check_destination(path: Path, volume: Volume) -> None:
    if not is_nifti_path(path):
        raise InputError("output must be a .nii or .nii.gz file", path=path)
    dest = path.resolve()
    for src in (volume.image_path, volume.label_path):
        if src is None:
            continue
        src = Path(src).resolve()
        if dest == src or (src.is_dir() and src in dest.parents):
            raise InputError(f"refusing to overwrite the input {src}; choose another output path", path=path)


def _set_forms_for_new_grid(header, input_affine: np.ndarray, out_affine: np.ndarray) -> np.ndarray:
    """Move the input header's qform and sform, each on its own, onto the output's voxel grid.

    ``input_affine`` is the affine the input was read with (nibabel's choice: the sform when its code is
    set, else the qform) and ``out_affine`` the output grid's affine in the same frame. The change of grid
    is the voxel-space map ``inv(input_affine) @ out_affine`` (for an up-sampled output: the slice axis
    scaled by 1/factor, voxel 0 kept); it is applied to each coded form, so a qform that differs from the
    sform stays different (viewers built on ITK prefer the qform) and each keeps its own code. A form
    whose code is 0 gets ``out_affine``; an input with neither form gets sform code 2.

    Returns the affine the output will be read with (sform if coded, else qform), to build the image with.
    """
    grid_change = np.linalg.solve(input_affine, out_affine)  # new voxel → old voxel (file axes)
    qform, qcode = header.get_qform(coded=True)
    sform, scode = header.get_sform(coded=True)
    if qcode == 0 and scode == 0:
        scode = _FALLBACK_SFORM_CODE

    def moved(form: np.ndarray | None) -> np.ndarray:
        if form is None or np.array_equal(form, input_affine):
            return out_affine  # the form the input was read with: exactly the requested affine
        return np.asarray(form, dtype=np.float64) @ grid_change

    header.set_qform(moved(qform), code=int(qcode))
    header.set_sform(moved(sform), code=int(scode))
    return header.get_best_affine()


def save_like(
    array_canonical: np.ndarray,
    volume: Volume,
    path: str | Path,
    *,
    affine: np.ndarray | None = None,
    spacing_override: tuple[float, float, float] | None = None,
    dtype=None,
) -> Path:
    """Write a canonical (X, Y, Z) array as NIfTI in ``volume``'s original orientation, atomically.

    Args:
        array_canonical: (X, Y, Z) array in the volume's canonical orientation. Its shape may differ from
            ``volume.shape`` when ``affine`` (or ``spacing_override``) describes its grid.
        volume: the :class:`Volume` it belongs to (orientation, original affine and header).
        path: destination ``.nii``/``.nii.gz``; never the volume's image or label file.
        affine: canonical (4, 4) affine of ``array_canonical`` (e.g. from :func:`upsampled_affine`);
            default ``volume.affine``.
        spacing_override: canonical voxel sizes (mm); voxel 0 of the canonical grid keeps its position.
        dtype: output data type; default the array's (bool → uint8, int64 → int32, float64 → float32).

    With the volume's own shape and affine, the written header keeps the input's geometry fields
    untouched (the read-back affine equals the input's exactly). Otherwise the input's qform and sform are
    each moved onto the new grid on their own, keeping their codes (a qform that differs from the sform
    stays different; sform code 2 if the input had neither); a DICOM input gets both, code 1.

    Returns:
        ``path`` as a :class:`Path`.
    """
    path = Path(path)
    _check_destination(path, volume)
    if array_canonical.ndim != 3:
        raise ValueError(f"expected a (X, Y, Z) array, got shape {array_canonical.shape}")
    if affine is not None and spacing_override is not None:
        raise ValueError("pass either affine or spacing_override, not both")
    if spacing_override is not None:
        affine = np.array(volume.affine, dtype=np.float64)
        affine[:3, :3] *= np.asarray(spacing_override, dtype=np.float64) / np.asarray(volume.spacing)
    same_grid = affine is None or (
        array_canonical.shape == volume.shape and np.array_equal(np.asarray(affine), volume.affine)
    )
    if affine is None and array_canonical.shape != volume.shape:
        raise ValueError(
            f"array shape {array_canonical.shape} differs from the volume's {volume.shape}; "
            "pass the array's canonical affine (see upsampled_affine)"
        )
    out_dtype = _output_dtype(array_canonical, dtype)
    data = _cast(to_original(array_canonical, volume), out_dtype, path)

    header = volume.meta.get("nifti_header")
    header = nib.Nifti1Header() if header is None else header.copy()
    image_class = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
    if same_grid:
        out_affine = np.asarray(volume.original_affine, dtype=np.float64)
        if "nifti_header" not in volume.meta:  # DICOM input: a fresh header with scanner codes
            header.set_qform(out_affine, code=1)
            header.set_sform(out_affine, code=1)
    else:
        out_affine = original_affine_for(array_canonical.shape, check_affine(affine, path), volume)
        if "nifti_header" in volume.meta:
            out_affine = _set_forms_for_new_grid(header, np.asarray(volume.original_affine), out_affine)
        else:
            header.set_qform(out_affine, code=1)
            header.set_sform(out_affine, code=1)
    header.set_data_dtype(out_dtype)
    header["cal_min"], header["cal_max"] = 0.0, 0.0  # the input's display range need not fit the output
    if "nifti_header" not in volume.meta:
        header.set_xyzt_units(xyz="mm")
    img = image_class(data, out_affine, header=header)
    with atomic_path(path) as tmp:
        nib.save(img, tmp)
    return path
