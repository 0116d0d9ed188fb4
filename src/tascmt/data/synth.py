"""Small phantom tasks in the Medical Segmentation Decathlon layout, deterministic from a seed.

- ``heart``: MRI-like, in-plane 1.25 mm, Δz 1.37 mm (as MSD Task02), a smooth left-atrium-like blob whose
  position, size and shape change from slice to slice, in a textured torso with a bias field; label 1.
- ``lung``: CT-like in HU, in-plane 0.7 mm, Δz per case cycling through 0.625 / 1.25 / 2.5 mm (as MSD Task06,
  where 2.5 mm cases are excluded by the default gap protocol): body ellipse ≈ 0 HU, lungs ≈ −800 HU, a spine
  ≈ +700 HU and 1–3 tumours of varying size ≈ +40 HU; label 1 = tumour.

Anatomy is drawn in coordinates relative to the in-plane field of view (so any ``size`` works) and in
millimetres along z (so a finer Δz samples the same anatomy more densely). Files are written like MSD's:
``imagesTr/<name>_NNN.nii.gz``, ``labelsTr/<name>_NNN.nii.gz`` and ``dataset.json``; the affine flips the
first two axes (LPS-like storage) so readers must reorient.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tascmt.errors import ConfigError

TASKS = ("heart", "lung")
LUNG_DZ = (0.625, 1.25, 2.5)


def _grid(size: int, n_slices: int, dz: float):
    """Relative in-plane coordinates u, v in [-1, 1] (size, size, 1) and z in mm (1, 1, Z), centred."""
    c = (np.arange(size) + 0.5) / size * 2 - 1
    u, v = np.meshgrid(c, c, indexing="ij")
    z = (np.arange(n_slices) - (n_slices - 1) / 2) * dz
    return u[..., None], v[..., None], z[None, None, :]


def _texture(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    """Smooth zero-mean unit-std noise."""
    from scipy import ndimage  # lazy: only the phantom writer needs scipy

    t = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return t / (t.std() + 1e-8)


def heart_case(size: int, n_slices: int, rng: np.random.Generator, dz: float = 1.37):
    """One MRI-like heart phantom. Returns (image (size,size,Z) float32, label uint8, spacing)."""
    u, v, z = _grid(size, n_slices, dz)
    half_z = max(abs(float(z.min())), dz)
    torso = (u / 0.85) ** 2 + (v / 0.7) ** 2 <= 1
    img = np.where(torso, 300.0, 20.0).astype(np.float32) + 40 * _texture(rng, (size, size, n_slices), 2.0)
    ventricle = ((u + 0.15) / 0.3) ** 2 + ((v + 0.1) / 0.25) ** 2 <= 1
    img[np.broadcast_to(ventricle, img.shape)] += 250
    # Left-atrium-like blob: centre drifts, radius follows an ellipsoid profile and wobbles with angle.
    zc = rng.uniform(-0.15, 0.15) * half_z
    rz = rng.uniform(0.45, 0.7) * half_z
    prof = np.sqrt(np.clip(1 - ((z - zc) / rz) ** 2, 0, None))  # (1, 1, Z)
    phase = rng.uniform(0, 2 * np.pi)
    cu = 0.2 + 0.08 * np.sin(z / half_z * np.pi + phase)
    cv = 0.1 + 0.06 * np.cos(z / half_z * np.pi + phase)
    r0 = rng.uniform(0.16, 0.24)
    theta = np.arctan2(v - cv, u - cu)
    radius = r0 * prof * (1 + 0.18 * np.sin(2 * theta + z / half_z * 2 + phase))
    blob = np.hypot(u - cu, v - cv) < radius  # (size, size, Z)
    img[blob] = 650 + 30 * _texture(rng, (size, size, n_slices), 1.5)[blob]
    bias = 1 + 0.25 * u * rng.uniform(-1, 1) + 0.2 * v * rng.uniform(-1, 1)  # smooth coil sensitivity
    img = np.clip(img * bias + rng.normal(0, 12, img.shape), 0, None)
    return img.astype(np.float32), blob.astype(np.uint8), (1.25, 1.25, dz)


def lung_case(size: int, n_slices: int, rng: np.random.Generator, dz: float = 1.25):
    """One CT-like lung phantom in HU. Returns (image (size,size,Z) float32, label uint8, spacing)."""
    sp = 0.7
    u, v, z = _grid(size, n_slices, dz)
    half_z = max(abs(float(z.min())), dz)
    shape = (size, size, n_slices)
    img = np.full(shape, -1000.0, dtype=np.float32)
    body = np.broadcast_to((u / 0.9) ** 2 + (v / 0.7) ** 2 <= 1, shape)
    img[body] = 0 + 25 * _texture(rng, shape, 3.0)[body]
    shrink = np.sqrt(np.clip(1 - (z / (1.6 * half_z)) ** 2, 0.2, None))  # lungs narrow towards the ends
    lungs = np.zeros(shape, dtype=bool)
    for side in (-1, 1):
        lungs |= ((u - side * 0.42) / (0.3 * shrink)) ** 2 + ((v + 0.02) / (0.45 * shrink)) ** 2 <= 1
    img[lungs] = -800 + 60 * _texture(rng, shape, 1.0)[lungs]
    spine = np.broadcast_to((u / 0.1) ** 2 + ((v + 0.55) / 0.1) ** 2 <= 1, shape)
    img[spine] = 700
    label = np.zeros(shape, dtype=np.uint8)
    mm_per_unit = size * sp / 2  # in-plane mm per relative unit
    inside = np.argwhere(lungs)
    for _ in range(int(rng.integers(1, 4))):
        r_mm = min(rng.uniform(3.0, 12.0), max(3.0, 0.12 * size * sp))
        cu_i, cv_i, cz_i = inside[rng.integers(len(inside))]
        cu, cv, cz = u[cu_i, 0, 0], v[0, cv_i, 0], z[0, 0, cz_i]
        d2 = ((u - cu) * mm_per_unit) ** 2 + ((v - cv) * mm_per_unit) ** 2 + (z - cz) ** 2
        tumour = d2 <= r_mm**2
        img[tumour] = 40 + 10 * rng.standard_normal(int(tumour.sum()))
        label[tumour] = 1
    img = img + rng.normal(0, 15, shape)
    return np.clip(img, -1024, 3071).astype(np.float32), label, (sp, sp, dz)


def make_synthetic_task(
    out_dir: str | Path,
    task: str = "heart",
    n_cases: int = 4,
    size: int = 64,
    n_slices: int = 24,
    seed: int = 0,
    dz: float | None = None,
) -> Path:
    """Write a phantom MSD task folder (``dataset.json``, ``imagesTr/``, ``labelsTr/``) and return its path.

    Args:
        out_dir: the task folder to create (must not hold a ``dataset.json`` already).
        task: ``"heart"`` (MRI-like) or ``"lung"`` (CT-like, HU).
        n_cases: number of patients.
        size: in-plane size (square).
        n_slices: slices per volume.
        seed: everything is deterministic from it.
        dz: slice spacing for every case (default: 1.37 mm for heart, cycling 0.625/1.25/2.5 mm for lung).
    """
    import nibabel as nib  # lazy: ``import tascmt.data`` must work where nibabel is not installed

    if task not in TASKS:
        raise ConfigError(f"synthetic task must be one of {TASKS}, got {task!r}")
    if n_cases < 1 or size < 8 or n_slices < 3:
        raise ConfigError(f"need cases >= 1, size >= 8, slices >= 3; got {n_cases}, {size}, {n_slices}")
    out = Path(out_dir)
    if (out / "dataset.json").exists():
        raise ConfigError(f"{out} already holds a task (dataset.json); choose an empty folder")
    (out / "imagesTr").mkdir(parents=True, exist_ok=True)
    (out / "labelsTr").mkdir(parents=True, exist_ok=True)
    prefix = "la" if task == "heart" else "lung"
    training = []
    for i in range(n_cases):
        rng = np.random.default_rng([seed, i])
        if task == "heart":
            img, lab, spacing = heart_case(size, n_slices, rng, dz if dz is not None else 1.37)
        else:
            img, lab, spacing = lung_case(size, n_slices, rng, dz if dz is not None else LUNG_DZ[i % 3])
        affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
        affine[:3, 3] = [size * spacing[0] / 2, size * spacing[1] / 2, -n_slices * spacing[2] / 2]
        name = f"{prefix}_{i + 1:03d}.nii.gz"
        nib.save(nib.Nifti1Image(np.round(img).astype(np.int16), affine), out / "imagesTr" / name)
        nib.save(nib.Nifti1Image(lab, affine), out / "labelsTr" / name)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    meta = {
        "name": "SynthHeart" if task == "heart" else "SynthLung",
        "description": f"tascmt phantom task ({task}), seed {seed}; not real patient data",
        "reference": "synthetic",
        "licence": "CC0",
        "release": "tascmt",
        "tensorImageSize": "3D",
        "modality": {"0": "MRI" if task == "heart" else "CT"},
        "labels": {"0": "background", "1": "left atrium" if task == "heart" else "cancer"},
        "numTraining": n_cases,
        "numTest": 0,
        "training": training,
        "test": [],
    }
    (out / "dataset.json").write_text(json.dumps(meta, indent=4) + "\n", encoding="utf-8")
    return out
