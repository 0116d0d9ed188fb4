"""Affines and orientation: checks, canonical (RAS+) reorientation and its exact inverse.

All functions work on plain arrays and 4×4 voxel → world (RAS mm) affines, with the same semantics as
``nibabel.as_closest_canonical``: the array axes are permuted/flipped (never resampled) so that axis 0
runs to the Right, 1 to the Anterior and 2 to the Superior, and the affine is updated so that every voxel
keeps its world position.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tascmt.errors import InputError

# The orientation array of an already-canonical image: axis i → RAS axis i, no flip.
RAS_ORNT = np.array([[0, 1], [1, 1], [2, 1]], dtype=float)


def voxel_spacing(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel sizes (mm) along the three array axes: the norms of the affine's first three columns."""
    return tuple(float(v) for v in np.linalg.norm(np.asarray(affine)[:3, :3], axis=0))  # type: ignore[return-value]


def check_affine(affine: np.ndarray, path: str | Path | None = None) -> np.ndarray:
    """Return ``affine`` as a float64 (4, 4) array or raise :class:`InputError` if it is not usable.

    Refuses non-finite entries, a zero (or sub-nanometre) voxel size along any axis, and a singular or
    nearly singular direction matrix (columns that are (almost) parallel).
    """
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4):
        raise InputError(f"affine must be 4x4, got shape {a.shape}", path=path)
    if not np.isfinite(a).all():
        raise InputError(f"affine has non-finite entries:\n{a}", path=path)
    spacing = np.linalg.norm(a[:3, :3], axis=0)
    if (spacing < 1e-6).any():
        raise InputError(
            f"voxel spacing {tuple(round(float(s), 9) for s in spacing)} mm has a zero entry "
            "(check pixdim / PixelSpacing and the qform/sform)",
            path=path,
        )
    cosines = a[:3, :3] / spacing  # unit columns
    det = float(np.linalg.det(cosines))
    if abs(det) < 1e-3:
        raise InputError(f"affine is singular (direction determinant {det:.3g}):\n{a}", path=path)
    return a


def canonical_ornt(affine: np.ndarray) -> np.ndarray:
    """nibabel orientation array mapping an array with ``affine`` to the closest canonical RAS+ axes."""
    from nibabel import orientations  # lazy: the array-only helpers here must import without nibabel

    return orientations.io_orientation(affine)


def invert_ornt(ornt: np.ndarray) -> np.ndarray:
    """The orientation array that undoes ``ornt`` (applied to the transformed array)."""
    ornt = np.asarray(ornt, dtype=float)
    inv = np.empty_like(ornt)
    for in_ax, (out_ax, flip) in enumerate(ornt):
        inv[int(out_ax)] = (in_ax, flip)
    return inv


def reorient(array: np.ndarray, affine: np.ndarray, ornt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``ornt`` to the first 3 axes of ``array``; return (array, affine) that keep world positions.

    Args:
        array: (I, J, K, ...) array; only the first three axes are reoriented.
        affine: (4, 4) voxel → world affine of ``array``.
        ornt: (3, 2) nibabel orientation array.

    Returns:
        The reoriented array (a copy with positive strides, in the memory order closest to the input's:
        nibabel arrays are Fortran-ordered) and its (4, 4) affine. An already canonical array is returned
        as is.
    """
    if np.array_equal(ornt, RAS_ORNT):
        return array, np.array(affine, dtype=np.float64)
    from nibabel import orientations  # lazy, as in canonical_ornt

    out = orientations.apply_orientation(array, ornt)
    new_affine = np.asarray(affine, dtype=np.float64) @ orientations.inv_ornt_aff(ornt, array.shape[:3])
    return positive_copy(out), new_affine


def positive_copy(view: np.ndarray) -> np.ndarray:
    """Copy a permuted/flipped view into memory with positive strides, keeping its memory order.

    (``np.ascontiguousarray`` on a flipped Fortran-ordered 512×512×200 view takes ~20× longer.)
    """
    steps = np.diff(np.abs(np.asarray(view.strides)))
    if (steps >= 0).all():
        return np.array(view, order="F")
    if (steps <= 0).all():
        return np.array(view, order="C")
    return np.array(view, order="K")


def upsampled_affine(affine: np.ndarray, axis: int, factor: float) -> np.ndarray:
    """Affine of a volume whose slice spacing along array ``axis`` is divided by ``factor``.

    Voxel 0 keeps its world position, so slice ``k`` of the original volume lands at index ``k * factor``
    of the new one. Writing ``(n - 1) * factor + 1`` slices therefore keeps both end slices in place.

    Args:
        affine: (4, 4) voxel → world affine (usually the canonical one of a :class:`Volume`).
        axis: array axis (0, 1 or 2) along which the spacing is divided.
        factor: > 0; e.g. 2 for twice as many slices at half the spacing.
    """
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
    if not factor > 0 or not np.isfinite(factor):
        raise ValueError(f"factor must be a finite number > 0, got {factor}")
    out = np.array(affine, dtype=np.float64)
    out[:3, axis] /= factor
    return out


def itk_to_ras_affine(origin, spacing, direction) -> np.ndarray:
    """RAS voxel → world affine (index order x, y, z) from ITK's LPS origin, spacing and direction.

    ITK maps index (i, j, k) to the LPS point ``origin + D @ (spacing * index)``; RAS flips x and y.
    """
    d = np.asarray(direction, dtype=np.float64).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = d * np.asarray(spacing, dtype=np.float64)[None, :]
    lps[:3, 3] = np.asarray(origin, dtype=np.float64)
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
