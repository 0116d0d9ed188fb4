"""Checks on voxel values and on the agreement of image and label geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tascmt.errors import InputError
from tascmt.io.orientation import voxel_spacing

# Tolerances for image/label geometry agreement (nnU-Net compares with np.allclose; we allow float32
# header rounding and sub-micrometre DICOM → NIfTI conversion differences).
SPACING_RTOL = 1e-4
ORIGIN_ATOL_MM = 1e-3
DIRECTION_ATOL = 1e-4


def check_image_values(image: np.ndarray, path: str | Path | None) -> None:
    """Refuse NaN/Inf voxels and empty (all-zero) or constant volumes."""
    finite = np.isfinite(image)
    if not finite.all():
        n_nan = int(np.isnan(image).sum())
        n_inf = int(image.size - finite.sum()) - n_nan
        raise InputError(f"contains {n_nan} NaN and {n_inf} infinite voxels (of {image.size})", path=path)
    lo, hi = float(image.min()), float(image.max())
    if lo == hi:
        what = "empty (all voxels are 0)" if lo == 0 else f"constant (all voxels are {lo:g})"
        raise InputError(f"image is {what}", path=path)


def label_to_uint8(label: np.ndarray, path: str | Path | None) -> np.ndarray:
    """Return ``label`` as uint8 after checking it holds integers in 0..255 (a label map, not an image)."""
    if label.dtype.kind == "f":
        if not np.isfinite(label).all():
            raise InputError("label map contains NaN or infinite values", path=path)
        frac = label != np.round(label)
        if frac.any():
            example = float(label[frac].flat[0])
            raise InputError(
                f"label map has non-integer values (e.g. {example:g} in {int(frac.sum())} voxels); "
                "is this an image or a soft/resampled mask?",
                path=path,
            )
    elif label.dtype.kind not in "biu":
        raise InputError(f"label map has unsupported data type {label.dtype}", path=path)
    lo, hi = (float(label.min()), float(label.max())) if label.size else (0.0, 0.0)
    if lo < 0 or hi > 255:
        raise InputError(f"label values must lie in 0..255, found {lo:g}..{hi:g}", path=path)
    return label.astype(np.uint8)


def geometry_difference(
    shape_a: tuple[int, ...], affine_a: np.ndarray, shape_b: tuple[int, ...], affine_b: np.ndarray
) -> str | None:
    """Describe the first differing field (shape, spacing, origin, direction) of two grids, or None."""
    if tuple(shape_a) != tuple(shape_b):
        return f"shape {tuple(shape_a)} vs {tuple(shape_b)}"
    sp_a, sp_b = np.array(voxel_spacing(affine_a)), np.array(voxel_spacing(affine_b))
    if not np.allclose(sp_a, sp_b, rtol=SPACING_RTOL, atol=0):
        return f"spacing {_fmt(sp_a)} vs {_fmt(sp_b)} mm"
    if not np.allclose(affine_a[:3, 3], affine_b[:3, 3], rtol=0, atol=ORIGIN_ATOL_MM):
        return f"origin {_fmt(affine_a[:3, 3])} vs {_fmt(affine_b[:3, 3])} mm"
    dir_a, dir_b = affine_a[:3, :3] / sp_a, affine_b[:3, :3] / sp_b
    if not np.allclose(dir_a, dir_b, rtol=0, atol=DIRECTION_ATOL):
        return f"direction {_fmt(dir_a.ravel())} vs {_fmt(dir_b.ravel())}"
    return None


def check_label_geometry(
    image_shape: tuple[int, ...],
    image_affine: np.ndarray,
    image_path: str | Path | None,
    label_shape: tuple[int, ...],
    label_affine: np.ndarray,
    label_path: str | Path | None,
) -> None:
    """Raise :class:`InputError` naming both files and the differing field if the grids disagree."""
    diff = geometry_difference(image_shape, image_affine, label_shape, label_affine)
    if diff is not None:
        raise InputError(f"label geometry does not match image {image_path}: {diff} (image vs label)",
                         path=label_path)


def _fmt(values) -> str:
    return "(" + ", ".join(f"{float(v):.6g}" for v in np.ravel(values)) + ")"
