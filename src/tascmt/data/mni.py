"""The real-data default task: axial slabs of the MNI152 template shipped inside the nilearn wheel.

The template (``mni_icbm152_*_tal_nlin_sym_09a_converted.nii.gz``: ICBM 2009a nonlinear symmetric, 1 mm,
197×233×189, RAS) is an AVERAGE of 152 subjects' T1 MRI, not a patient scan; it is used because it is real
MRI data that is available offline (no download). :func:`build_mni_task` turns it into an MSD task:

- image: the T1 template; label 1 where the grey-matter probability map exceeds 0.5;
- pseudo-patients: consecutive axial slabs along the superior axis, separated by ``guard`` discarded slices
  so that no triplet of one slab shares anatomy with its neighbour's edge slices; never sagittal splits (the
  template is left-right symmetric, so left and right halves would be near-duplicates);
- the empty slices above the head (the top 34 axial slices) are skipped;
- modality ``MRI``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from tascmt.errors import ConfigError, InputError

T1_NAME = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
GM_NAME = "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz"
DESCRIPTION = ("MNI ICBM152 2009a nonlinear symmetric T1 template (an average of 152 subjects, shipped with "
               "nilearn); axial slabs as pseudo-patients; label = grey-matter probability > 0.5")


def template_paths() -> tuple[Path, Path]:
    """(T1, grey-matter) template files inside the installed nilearn package (no download)."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("nilearn is not installed; it ships the MNI152 template (pip install nilearn)")
    data = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    t1, gm = data / T1_NAME, data / GM_NAME
    for p in (t1, gm):
        if not p.exists():
            raise InputError("MNI152 template file missing from the nilearn installation", path=p)
    return t1, gm


def slab_ranges(first: int, last: int, n_slabs: int, guard: int,
                thickness: int | None) -> list[tuple[int, int]]:
    """Half-open slice ranges [a, b) of ``n_slabs`` slabs inside slices ``first..last`` with ``guard`` slices
    between slabs; ``thickness`` None uses the largest that fits."""
    n = last - first + 1
    if thickness is None:
        thickness = (n - (n_slabs - 1) * guard) // n_slabs
    needed = n_slabs * thickness + (n_slabs - 1) * guard
    if thickness < 3 or needed > n:
        raise ConfigError(f"{n_slabs} slabs of {thickness} slices with guard {guard} need {needed} slices "
                          f"(at least 3 per slab); the template has {n} non-empty axial slices")
    start = first + (n - needed) // 2  # centre the slabs in the head
    return [(start + i * (thickness + guard), start + i * (thickness + guard) + thickness)
            for i in range(n_slabs)]


def build_mni_task(out_dir: str | Path, n_slabs: int = 10, guard: int = 3, thickness: int | None = None,
                   gm_threshold: float = 0.5) -> Path:
    """Write the MNI152 slab task (MSD layout) into ``out_dir`` and return it.

    Args:
        out_dir: task folder; reused as is when it already holds a task built with the same arguments.
        n_slabs: number of pseudo-patients (10 gives a 7/1/2 split).
        guard: axial slices discarded between neighbouring slabs.
        thickness: slices per slab (default: the largest that fits; the demo's 2 mm gap needs ≥ 5).
        gm_threshold: grey-matter probability above which a voxel is labelled 1.
    """
    out = Path(out_dir)
    build = {"n_slabs": n_slabs, "guard": guard, "thickness": thickness, "gm_threshold": gm_threshold}
    stamp = out / "tascmt_build.json"
    if stamp.exists() and (out / "dataset.json").exists():
        if json.loads(stamp.read_text(encoding="utf-8")) == build:
            return out
        raise ConfigError(f"{out} holds an MNI task built with {stamp.read_text(encoding='utf-8').strip()}; "
                          "use another folder")
    import nibabel as nib  # lazy: ``import tascmt.data`` must work where nibabel is not installed

    t1_path, gm_path = template_paths()
    t1_img = nib.as_closest_canonical(nib.load(t1_path))
    t1 = np.asarray(t1_img.dataobj, dtype=np.float32)  # (197, 233, 189) RAS
    gm = np.asarray(nib.as_closest_canonical(nib.load(gm_path)).dataobj, dtype=np.float32)
    gm = gm / 255.0 if gm.max() > 1.0 else gm  # the shipped map stores probabilities scaled to 0..255
    nonempty = np.flatnonzero(t1.reshape(-1, t1.shape[2]).max(axis=0) > t1.min())  # axial slices with signal
    ranges = slab_ranges(int(nonempty[0]), int(nonempty[-1]), n_slabs, guard, thickness)
    (out / "imagesTr").mkdir(parents=True, exist_ok=True)
    (out / "labelsTr").mkdir(parents=True, exist_ok=True)
    training = []
    for i, (a, b) in enumerate(ranges):
        affine = t1_img.affine.copy()
        affine[:3, 3] = t1_img.affine[:3, :3] @ np.array([0, 0, a]) + t1_img.affine[:3, 3]  # slab origin
        name = f"mni_{i:03d}.nii.gz"
        nib.save(nib.Nifti1Image(t1[:, :, a:b], affine), out / "imagesTr" / name)
        label = (gm[:, :, a:b] > gm_threshold).astype(np.uint8)
        nib.save(nib.Nifti1Image(label, affine), out / "labelsTr" / name)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    meta = {
        "name": "MNI152Slabs", "description": DESCRIPTION, "reference": "Fonov et al. 2009/2011 (ICBM 2009a)",
        "tensorImageSize": "3D", "modality": {"0": "MRI"}, "labels": {"0": "background", "1": "grey matter"},
        "numTraining": len(training), "numTest": 0, "training": training, "test": [],
        "slabs": [{"case": f"mni_{i:03d}", "axial_slices": [a, b]} for i, (a, b) in enumerate(ranges)],
    }
    (out / "dataset.json").write_text(json.dumps(meta, indent=4) + "\n", encoding="utf-8")
    stamp.write_text(json.dumps(build) + "\n", encoding="utf-8")
    return out
