"""Reading NIfTI files (.nii / .nii.gz) with every structural check done on the header first.

The header is checked (readable, supported data type, 3D or 4D with a single volume, a sane size that
the file can actually hold, a usable affine) before any voxel is read, so a corrupt or hostile header
cannot make us allocate gigabytes. Voxel reads rewrap nibabel / zlib / EOF errors as one
:class:`~tascmt.errors.InputError` naming the file.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.openers import Opener

from tascmt.errors import InputError
from tascmt.io.orientation import check_affine

NIFTI_SUFFIXES = (".nii", ".nii.gz")
# Refuse headers that claim more voxels than this (2**31 voxels = 8 GiB as float32).
MAX_VOXELS = 2**31
# deflate cannot compress better than about 1032:1, so a .gz file holds at most this × its size.
MAX_DEFLATE_RATIO = 1100
_READ_ERRORS = (ImageFileError, OSError, EOFError, zlib.error, ValueError)


@dataclass
class NiftiHeaderInfo:
    """What the header of a NIfTI file says, checked: ``shape`` is the 3D spatial shape (I, J, K)."""

    image: nib.Nifti1Image | nib.Nifti2Image  # lazy: no voxel data read yet
    shape: tuple[int, int, int]
    affine: np.ndarray  # (4, 4) float64, checked
    dtype: np.dtype


def is_nifti_path(path: str | Path) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def case_id_from_path(path: str | Path) -> str:
    """File name without ``.nii.gz`` / ``.nii`` (or the folder name of a DICOM series)."""
    name = Path(path).name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def spatial_shape(shape: tuple[int, ...], path: str | Path) -> tuple[int, int, int]:
    """Check a data shape is a 3D volume (trailing singleton axes allowed) and return its first 3 sizes."""
    shape = tuple(int(s) for s in shape)
    if len(shape) < 3:
        raise InputError(f"is {len(shape)}D (shape {shape}); tascmt needs a 3D volume", path=path)
    extra = shape[3:]
    if any(s != 1 for s in extra):
        raise InputError(
            f"is {len(shape)}D with shape {shape}; only 3D volumes (or 4D with a 4th axis of length 1) "
            "are supported. Multi-channel/multi-modal images (e.g. MSD BraTS or Prostate) and time "
            "series are out of scope: split them into one 3D file per channel",
            path=path,
        )
    sp = shape[:3]
    if min(sp) < 2:
        raise InputError(
            f"has shape {shape}: a 3D volume needs at least 2 voxels along every axis "
            "(this looks like a single 2D slice)",
            path=path,
        )
    return sp  # type: ignore[return-value]


def check_dtype(dtype: np.dtype, path: str | Path) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.fields is not None:
        raise InputError(f"has a structured data type {dtype} (RGB/vector image); tascmt needs grey values",
                         path=path)
    if dtype.kind not in "biuf":
        raise InputError(f"has unsupported data type {dtype} (complex or non-numeric)", path=path)
    return dtype


def check_size(n_voxels: int, path: str | Path, max_voxels: int = MAX_VOXELS) -> None:
    if n_voxels > max_voxels:
        raise InputError(
            f"header claims {n_voxels} voxels, more than the limit of {max_voxels}; "
            "the header is corrupt or the volume is too large",
            path=path,
        )


def read_nifti_header(path: str | Path, max_voxels: int = MAX_VOXELS) -> NiftiHeaderInfo:
    """Open ``path`` lazily and check its header (no voxel data read).

    Raises:
        InputError: missing / unreadable file, not NIfTI, unsupported dtype, not 3D, too large, a data
            block shorter than the header implies (uncompressed files), unusable affine.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path=path)
    if not path.is_file():
        raise InputError("is not a file", path=path)
    if not is_nifti_path(path):
        raise InputError("unsupported file type: expected .nii or .nii.gz (or a DICOM series folder)",
                         path=path)
    try:
        img = nib.load(path)
    except _READ_ERRORS as err:
        raise InputError(f"cannot read NIfTI header ({type(err).__name__}: {err})", path=path) from err
    if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
        raise InputError(f"is not a NIfTI-1/2 file (nibabel read it as {type(img).__name__})", path=path)
    hdr = img.header
    dtype = check_dtype(hdr.get_data_dtype(), path)
    full_shape = tuple(int(s) for s in hdr.get_data_shape())
    if any(s < 1 for s in full_shape):
        raise InputError(f"header has a non-positive dimension in shape {full_shape}", path=path)
    check_size(int(np.prod(full_shape, dtype=np.float64)), path, max_voxels)
    shape = spatial_shape(full_shape, path)
    expected = int(hdr.get_data_offset()) + int(np.prod(full_shape)) * dtype.itemsize
    actual = path.stat().st_size
    if not str(path).lower().endswith(".gz"):
        if actual < expected:
            raise InputError(
                f"file is truncated: header implies {expected} bytes (shape {full_shape}, {dtype}) "
                f"but the file holds {actual}",
                path=path,
            )
    elif expected > MAX_DEFLATE_RATIO * actual + 4096:
        raise InputError(
            f"file is truncated or its header is corrupt: header implies {expected} bytes (shape "
            f"{full_shape}, {dtype}) but {actual} gzip-compressed bytes cannot hold that much",
            path=path,
        )
    _check_raw_pixdim(path, type(hdr), int(hdr["sform_code"]))
    affine = check_affine(img.affine, path)
    return NiftiHeaderInfo(image=img, shape=shape, affine=affine, dtype=dtype)


def _check_raw_pixdim(path: Path, header_class, sform_code: int) -> None:
    """nibabel silently replaces zero voxel sizes by 1 on load; refuse them when no sform overrides them."""
    if sform_code > 0:
        return
    try:
        with Opener(path) as f:
            raw = header_class.from_fileobj(f, check=False)
    except _READ_ERRORS as err:
        raise InputError(f"cannot read NIfTI header ({type(err).__name__}: {err})", path=path) from err
    pixdim = np.asarray(raw["pixdim"][1:4], dtype=np.float64)
    if not (np.isfinite(pixdim).all() and (np.abs(pixdim) > 0).all()):
        raise InputError(f"header voxel sizes pixdim[1:4] = {tuple(pixdim.tolist())} are not all non-zero "
                         "and there is no sform to give the spacing", path=path)


def read_nifti_data(info: NiftiHeaderInfo, path: str | Path, dtype=np.float32) -> np.ndarray:
    """Read the voxels of a checked header as an (I, J, K) array (scl_slope/inter applied).

    ``dtype=None`` keeps nibabel's scaled dtype (the stored one when there is no scaling).
    """
    try:
        proxy = info.image.dataobj
        data = np.asarray(proxy) if dtype is None else np.asarray(proxy, dtype=dtype)
    except _READ_ERRORS as err:
        raise InputError(f"cannot read voxel data, file is corrupt or truncated "
                         f"({type(err).__name__}: {err})", path=path) from err
    return data.reshape(info.shape)  # (I, J, K): trailing singleton axes dropped


def load_nifti(path: str | Path, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Read a 3D NIfTI file as stored (not reoriented).

    Returns:
        (array (I, J, K) of ``dtype`` (default float32; None keeps the scaled stored type),
        affine (4, 4) float64 voxel → world RAS mm). A 4D file with one volume is squeezed to 3D.
    """
    info = read_nifti_header(path)
    return read_nifti_data(info, path, dtype=dtype), info.affine
