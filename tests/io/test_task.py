"""Dataset readers: MSD task folders (dataset.json) and plain image/label folders."""

from __future__ import annotations

import json

import pytest

from tascmt.errors import InputError
from tascmt.io import Task, read_task
from tests.io._helpers import image_data, label_data, ras_affine, write_nii


def make_msd(root, n=3, modality=None, labels=None, extra=None, test=2):
    aff = ras_affine()
    training = []
    for i in range(n):
        write_nii(root / "imagesTr" / f"la_{i:03d}.nii.gz", image_data(seed=i), aff)
        write_nii(root / "labelsTr" / f"la_{i:03d}.nii.gz", label_data(), aff)
        training.append({"image": f"./imagesTr/la_{i:03d}.nii.gz", "label": f"./labelsTr/la_{i:03d}.nii.gz"})
    tests = []
    for i in range(test):
        write_nii(root / "imagesTs" / f"la_{100 + i}.nii.gz", image_data(seed=50 + i), aff)
        tests.append(f"./imagesTs/la_{100 + i}.nii.gz")
    (root / "imagesTr" / "._la_000.nii.gz").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    meta = {
        "name": "Heart",
        "modality": modality or {"0": "MRI"},
        "labels": labels or {"0": "background", "1": "left atrium", "2": "other"},
        "numTraining": n,
        "numTest": test,
        "training": training,
        "test": tests,
    }
    meta.update(extra or {})
    (root / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    return root


def _msd_error(tmp_path, words, **kw):
    root = make_msd(tmp_path / "Task02_Heart", **kw)
    with pytest.raises(InputError) as info:
        read_task(root)
    msg = str(info.value)
    assert "dataset.json" in msg, msg
    for w in words:
        assert w in msg, (w, msg)


def test_msd_reads(tmp_path):
    task = read_task(make_msd(tmp_path / "Task02_Heart"))
    assert isinstance(task, Task)
    assert task.name == "Heart" and task.primary_modality == "MRI"
    assert task.labels == {0: "background", 1: "left atrium", 2: "other"}
    assert [c.case_id for c in task.cases] == ["la_000", "la_001", "la_002"]
    assert all(c.image.exists() and c.label.exists() for c in task.cases)
    assert [c.case_id for c in task.test_cases] == ["la_100", "la_101"]
    assert all(c.label is None for c in task.test_cases)
    assert task.root == tmp_path / "Task02_Heart"


def test_msd_invalid_json(tmp_path):
    root = make_msd(tmp_path / "T")
    (root / "dataset.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="invalid JSON"):
        read_task(root)


def test_msd_missing_key(tmp_path):
    root = make_msd(tmp_path / "T")
    meta = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    del meta["labels"]
    (root / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(InputError, match="labels"):
        read_task(root)


def test_msd_num_training_mismatch(tmp_path):
    _msd_error(tmp_path, ("numTraining is 5", "lists 3"), extra={"numTraining": 5})


def test_msd_listed_file_missing(tmp_path):
    root = make_msd(tmp_path / "T")
    (root / "labelsTr" / "la_001.nii.gz").unlink()
    with pytest.raises(InputError, match=r"la_001\.nii\.gz") as info:
        read_task(root)
    assert "does not exist" in str(info.value)


def test_msd_non_integer_label_key(tmp_path):
    _msd_error(tmp_path, ("'one'",), labels={"0": "background", "one": "heart"})


def test_msd_multi_modality(tmp_path):
    _msd_error(tmp_path, ("2 modality channels", "out of scope"), modality={"0": "T2", "1": "ADC"})


@pytest.mark.parametrize(
    "name, expected",
    [("CT", "CT"), ("portal-venous phase CT", "CT"), ("MRI", "MRI"), ("T2", "MRI"), ("FLAIR", "MRI"),
     ("ultrasound", "ultrasound")],
)
def test_primary_modality(tmp_path, name, expected):
    task = Task(name="t", modality={"0": name}, labels={}, cases=[], root=tmp_path)
    assert task.primary_modality == expected


def test_folder_subfolders(tmp_path):
    root = tmp_path / "data"
    for cid in ("b", "a"):
        write_nii(root / "images" / f"{cid}_0000.nii.gz", image_data(), ras_affine())
        write_nii(root / "labels" / f"{cid}.nii.gz", label_data(), ras_affine())
    (root / "images" / "._a_0000.nii.gz").write_bytes(b"junk")
    (root / "images" / "README.txt").write_text("ignored", encoding="utf-8")
    task = read_task(root, modality="CT")
    assert [c.case_id for c in task.cases] == ["a", "b"]
    assert task.cases[0].label.name == "a.nii.gz"
    assert task.primary_modality == "CT" and task.name == "data"


def test_folder_suffix_names(tmp_path):
    root = tmp_path / "flat"
    write_nii(root / "p1_image.nii.gz", image_data(), ras_affine())
    write_nii(root / "p1_label.nii.gz", label_data(), ras_affine())
    write_nii(root / "p2_img.nii", image_data(), ras_affine())
    write_nii(root / "p2-seg.nii.gz", label_data(), ras_affine())
    write_nii(root / "p3.nii.gz", image_data(), ras_affine())
    write_nii(root / "p3_mask.nii.gz", label_data(), ras_affine())
    task = read_task(root)
    assert [(c.case_id, c.image.name, c.label.name) for c in task.cases] == [
        ("p1", "p1_image.nii.gz", "p1_label.nii.gz"),
        ("p2", "p2_img.nii", "p2-seg.nii.gz"),
        ("p3", "p3.nii.gz", "p3_mask.nii.gz"),
    ]
    assert task.primary_modality == "unknown"


def test_folder_unlabelled(tmp_path):
    root = tmp_path / "vols"
    for cid in ("x", "y"):
        write_nii(root / f"{cid}.nii.gz", image_data(), ras_affine())
    task = read_task(root)
    assert [(c.case_id, c.label) for c in task.cases] == [("x", None), ("y", None)]


def test_folder_unmatched(tmp_path):
    root = tmp_path / "flat"
    write_nii(root / "p1_image.nii.gz", image_data(), ras_affine())
    write_nii(root / "p1_label.nii.gz", label_data(), ras_affine())
    write_nii(root / "p2_image.nii.gz", image_data(), ras_affine())
    write_nii(root / "p9_seg.nii.gz", label_data(), ras_affine())
    with pytest.raises(InputError) as info:
        read_task(root)
    msg = str(info.value)
    assert "p2_image.nii.gz" in msg and "p9_seg.nii.gz" in msg and "unmatched" in msg


def test_folder_duplicate_case(tmp_path):
    root = tmp_path / "flat"
    write_nii(root / "p1_image.nii.gz", image_data(), ras_affine())
    write_nii(root / "p1_img.nii.gz", image_data(), ras_affine())
    with pytest.raises(InputError, match="same case id"):
        read_task(root)


def test_folder_empty_and_missing(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no NIfTI files"):
        read_task(tmp_path / "empty")
    with pytest.raises(InputError, match="not found"):
        read_task(tmp_path / "nope")


def test_nnunet_v2_folder(tmp_path):
    root = tmp_path / "Dataset001_Lung"
    for cid in ("lung_002", "lung_001"):
        write_nii(root / "imagesTr" / f"{cid}_0000.nii.gz", image_data(), ras_affine())
        write_nii(root / "labelsTr" / f"{cid}.nii.gz", label_data(), ras_affine())
    write_nii(root / "imagesTs" / "lung_009_0000.nii.gz", image_data(), ras_affine())
    meta = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "tumour": 1}, "numTraining": 2,
            "file_ending": ".nii.gz"}
    (root / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    task = read_task(root)
    assert [c.case_id for c in task.cases] == ["lung_001", "lung_002"]
    assert task.cases[0].image.name == "lung_001_0000.nii.gz"
    assert task.cases[0].label.name == "lung_001.nii.gz"
    assert task.labels == {0: "background", 1: "tumour"} and task.primary_modality == "CT"
    assert [c.case_id for c in task.test_cases] == ["lung_009"]
    meta["labels"]["whole"] = [1, 2]
    (root / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(InputError, match="region-based"):
        read_task(root)
