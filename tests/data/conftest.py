"""Shared fixtures for the data-stage tests: tiny phantom tasks written to temporary folders."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tascmt.data.synth import make_synthetic_task


@pytest.fixture(scope="session")
def heart_task(tmp_path_factory) -> Path:
    """10 MRI-like cases, 32×32×16, Δz 1.37 mm (read-only: copy before modifying)."""
    return make_synthetic_task(tmp_path_factory.mktemp("heart") / "task", "heart", n_cases=10, size=32,
                               n_slices=16, seed=3)


def write_task(root: Path, cases: dict[str, tuple[np.ndarray, np.ndarray]], spacing=(1.0, 1.0, 1.25),
               modality: str = "MRI", labels=None) -> Path:
    """Write an MSD task from ``{case_id: (image, label)}`` arrays with a diagonal affine."""
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    affine = np.diag([*spacing, 1.0])
    training = []
    for cid, (img, lab) in cases.items():
        name = f"{cid}.nii.gz"
        nib.save(nib.Nifti1Image(np.asarray(img, dtype=np.float32), affine), root / "imagesTr" / name)
        nib.save(nib.Nifti1Image(np.asarray(lab, dtype=np.uint8), affine), root / "labelsTr" / name)
        training.append({"image": f"./imagesTr/{cid}.nii.gz", "label": f"./labelsTr/{cid}.nii.gz"})
    meta = {"name": "T", "modality": {"0": modality}, "labels": labels or {"0": "background", "1": "fg"},
            "numTraining": len(training), "training": training, "test": []}
    (root / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    return root


def blob_case(rng: np.random.Generator, shape=(24, 24, 12)) -> tuple[np.ndarray, np.ndarray]:
    """A noisy image with a bright ball (label 1) in its middle slices."""
    x, y, z = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    r2 = (x - shape[0] / 2) ** 2 + (y - shape[1] / 2) ** 2 + 4 * (z - shape[2] / 2) ** 2
    ball = r2 < (shape[0] / 4) ** 2
    img = 100 + 10 * rng.standard_normal(shape) + 300 * ball
    return img.astype(np.float32), ball.astype(np.uint8)


@pytest.fixture(scope="session")
def heart_cache(heart_task, tmp_path_factory) -> Path:
    """The heart task prepared at 32² (read-only)."""
    from tascmt.data.prepare import prepare_dataset

    out = tmp_path_factory.mktemp("heart_cache") / "cache"
    prepare_dataset(heart_task, out, size=32, progress=False, verbose=False)
    return out
