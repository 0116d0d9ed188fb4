from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from tascmt.data.mni import DESCRIPTION, build_mni_task, slab_ranges, template_paths
from tascmt.data.prepare import prepare_dataset
from tascmt.data.synth import make_synthetic_task
from tascmt.errors import ConfigError


def test_synth_heart_is_msd_and_deterministic(tmp_path):
    a = make_synthetic_task(tmp_path / "a", "heart", n_cases=2, size=24, n_slices=10, seed=5)
    b = make_synthetic_task(tmp_path / "b", "heart", n_cases=2, size=24, n_slices=10, seed=5)
    c = make_synthetic_task(tmp_path / "c", "heart", n_cases=2, size=24, n_slices=10, seed=6)
    meta = json.loads((a / "dataset.json").read_text(encoding="utf-8"))
    assert meta["modality"] == {"0": "MRI"} and meta["numTraining"] == 2 and meta["labels"]["1"]
    img = nib.load(a / meta["training"][0]["image"][2:])
    assert img.shape == (24, 24, 10)
    np.testing.assert_allclose(img.header.get_zooms(), (1.25, 1.25, 1.37), rtol=1e-5)
    data_a = np.asarray(img.dataobj)
    assert np.array_equal(data_a, np.asarray(nib.load(b / "imagesTr" / "la_001.nii.gz").dataobj))
    assert not np.array_equal(data_a, np.asarray(nib.load(c / "imagesTr" / "la_001.nii.gz").dataobj))
    lab = np.asarray(nib.load(a / "labelsTr" / "la_001.nii.gz").dataobj)
    per_slice = lab.sum(axis=(0, 1))
    assert set(np.unique(lab)) == {0, 1} and (per_slice == 0).any() and (per_slice > 0).any()
    on = np.flatnonzero(per_slice)
    centres = [np.argwhere(lab[:, :, k]).mean(axis=0) for k in on]
    assert np.ptp(np.array(centres), axis=0).max() > 0.5  # the blob moves across slices


def test_synth_lung_hu_and_spacings(tmp_path):
    t = make_synthetic_task(tmp_path / "lung", "lung", n_cases=3, size=32, n_slices=12, seed=0)
    zooms = [nib.load(t / "imagesTr" / f"lung_00{i}.nii.gz").header.get_zooms()[2] for i in (1, 2, 3)]
    np.testing.assert_allclose(zooms, (0.625, 1.25, 2.5))
    img = np.asarray(nib.load(t / "imagesTr" / "lung_001.nii.gz").dataobj, dtype=np.float32)
    lab = np.asarray(nib.load(t / "labelsTr" / "lung_001.nii.gz").dataobj)
    assert img.min() <= -950 and (np.abs(img - (-800)) < 150).mean() > 0.05  # air and lung parenchyma
    assert lab.any() and abs(float(np.median(img[lab > 0])) - 40) < 30  # tumours ≈ +40 HU
    assert json.loads((t / "dataset.json").read_text(encoding="utf-8"))["modality"] == {"0": "CT"}
    with pytest.raises(ConfigError, match="already"):
        make_synthetic_task(t, "lung")
    with pytest.raises(ConfigError, match="task"):
        make_synthetic_task(tmp_path / "x", "brain")


def test_slab_ranges():
    r = slab_ranges(0, 154, n_slabs=10, guard=3, thickness=None)
    assert len(r) == 10 and all(b - a == r[0][1] - r[0][0] for a, b in r)
    assert all(r[i + 1][0] - r[i][1] == 3 for i in range(9)) and r[0][0] >= 0 and r[-1][1] <= 155
    with pytest.raises(ConfigError, match="slabs"):
        slab_ranges(0, 20, n_slabs=10, guard=3, thickness=None)


def test_mni_task(tmp_path):
    t1_path, _ = template_paths()
    assert t1_path.exists()
    out = build_mni_task(tmp_path / "mni", n_slabs=4, guard=2, thickness=6)
    meta = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
    assert meta["modality"] == {"0": "MRI"} and meta["numTraining"] == 4 and "152" in DESCRIPTION
    slabs = [s["axial_slices"] for s in meta["slabs"]]
    assert all(b - a == 6 for a, b in slabs) and all(slabs[i + 1][0] - slabs[i][1] == 2 for i in range(3))
    img = nib.load(out / "imagesTr" / "mni_000.nii.gz")
    lab = np.asarray(nib.load(out / "labelsTr" / "mni_000.nii.gz").dataobj)
    assert img.shape == (197, 233, 6) and set(np.unique(lab)) <= {0, 1} and lab.any()
    data = np.asarray(img.dataobj)
    assert all(data[:, :, k].max() > data.min() for k in range(6))  # no empty slices
    assert img.affine[2, 3] == pytest.approx(-72 + slabs[0][0])  # the slab keeps its world position
    assert build_mni_task(out, n_slabs=4, guard=2, thickness=6) == out  # reused
    m = prepare_dataset(out, tmp_path / "cache", size=32, gap_mm=2.0, progress=False, verbose=False)
    assert m.params["norm"]["name"] == "minmax_pair"
    assert len(m.triplets) == 4 * 2 and all(t["k1"] - t["k0"] == 2 and t["gap_mm"] == 2.0 for t in m.triplets)
    with pytest.raises(ConfigError, match="MNI task"):
        build_mni_task(out, n_slabs=5)
