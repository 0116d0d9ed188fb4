"""Tiny synthetic volumes written to temporary files for the io tests."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

SHAPE = (10, 12, 8)


def ras_affine(spacing=(1.0, 1.5, 3.0), origin=(-5.0, 10.0, 20.0)) -> np.ndarray:
    a = np.diag([*spacing, 1.0])
    a[:3, 3] = origin
    return a


def lps_affine(spacing=(0.8, 0.8, 2.5), origin=(40.0, 30.0, -12.0)) -> np.ndarray:
    """Array axes run to the Left and Posterior (ITK / DICOM-style storage)."""
    a = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    a[:3, 3] = origin
    return a


def oblique_affine(spacing=(0.9, 1.1, 2.0), origin=(12.0, -7.0, 33.0)) -> np.ndarray:
    """A rotated grid (about 20° and 10°) with a permuted axis order: array axis 0 runs mostly Superior."""
    t1, t2 = np.deg2rad(20), np.deg2rad(10)
    rz = np.array([[np.cos(t1), -np.sin(t1), 0], [np.sin(t1), np.cos(t1), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(t2), -np.sin(t2)], [0, np.sin(t2), np.cos(t2)]])
    perm = np.array([[0, 1, 0], [0, 0, -1], [1, 0, 0]])  # axis 0 → S, axis 1 → R, axis 2 → -A
    a = np.eye(4)
    a[:3, :3] = rz @ rx @ perm @ np.diag(spacing)
    a[:3, 3] = origin
    return a


def image_data(shape=SHAPE, seed=0) -> np.ndarray:
    """Non-constant float32 image: a ramp plus noise (every voxel distinct)."""
    rng = np.random.default_rng(seed)
    ramp = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    return ramp + rng.random(shape, dtype=np.float32)


def label_data(shape=SHAPE) -> np.ndarray:
    lab = np.zeros(shape, dtype=np.uint8)
    lab[2:6, 3:8, 1:5] = 1
    lab[6:8, 3:5, 4:7] = 2
    return lab


def write_nii(path: Path, data: np.ndarray, affine: np.ndarray, qcode: int = 1, scode: int = 1) -> Path:
    img = nib.Nifti1Image(data, affine)
    img.header.set_qform(affine, code=qcode)
    img.header.set_sform(affine, code=scode)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)
    return path


def write_case(folder: Path, name: str, affine=None, shape=SHAPE, label=True) -> tuple[Path, Path | None]:
    affine = ras_affine() if affine is None else affine
    img = write_nii(folder / f"{name}_image.nii.gz", image_data(shape), affine)
    lab = write_nii(folder / f"{name}_label.nii.gz", label_data(shape), affine) if label else None
    return img, lab
