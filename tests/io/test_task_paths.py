"""dataset.json entries must name files inside the task folder (checked on the path string)."""

from __future__ import annotations

import json
import os

import pytest

from tascmt.errors import InputError
from tascmt.io import read_task
from tests.io._helpers import image_data, label_data, ras_affine, write_nii
from tests.io.test_task import make_msd


def _set_entry(root, group, index, key, value):
    meta = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    if key is None:
        meta[group][index] = value
    else:
        meta[group][index][key] = value
    (root / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")


@pytest.mark.parametrize(
    "entry",
    [
        "../../etc/passwd",
        "./imagesTr/../../x.nii.gz",
        "../outside.nii.gz",
        "imagesTr/../../Task02_Heart/imagesTr/la_000.nii.gz",  # leaves the folder, even if it comes back
        "..\\..\\x.nii.gz",
        "imagesTr/..",  # the task folder itself
        ".",
    ],
)
def test_entry_climbing_out_is_refused(tmp_path, entry):
    root = make_msd(tmp_path / "Task02_Heart")
    write_nii(tmp_path / "outside.nii.gz", image_data(), ras_affine())  # exists, but outside the task
    write_nii(tmp_path / "x.nii.gz", image_data(), ras_affine())
    _set_entry(root, "training", 1, "image", entry)
    with pytest.raises(InputError) as info:
        read_task(root)
    msg = str(info.value)
    assert str(root / "dataset.json") in msg and "training[1] image" in msg and repr(entry) in msg, msg
    assert "inside the task folder" in msg


@pytest.mark.parametrize("key", ["image", "label"])
def test_absolute_entry_is_refused(tmp_path, key):
    root = make_msd(tmp_path / "T")
    target = root / ("imagesTr" if key == "image" else "labelsTr") / "la_000.nii.gz"
    _set_entry(root, "training", 0, key, str(target.resolve()))  # even one that points inside
    with pytest.raises(InputError, match=rf"training\[0\] {key}") as info:
        read_task(root)
    assert "dataset.json" in str(info.value)


@pytest.mark.parametrize("entry", ["C:\\data\\x.nii.gz", "\\\\server\\share\\x.nii.gz", "/etc/passwd"])
def test_absolute_entry_any_platform(tmp_path, entry):
    root = make_msd(tmp_path / "T")
    _set_entry(root, "test", 0, None, entry)
    with pytest.raises(InputError, match=r"test\[0\] image") as info:
        read_task(root)
    assert "inside the task folder" in str(info.value)


def test_harmless_dots_still_read(tmp_path):
    root = make_msd(tmp_path / "T")
    _set_entry(root, "training", 0, "image", "imagesTr/./sub/../la_000.nii.gz")
    _set_entry(root, "training", 1, "label", "labelsTr//la_001.nii.gz")
    task = read_task(root)
    assert [c.case_id for c in task.cases] == ["la_000", "la_001", "la_002"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_symlinked_images_folder_still_reads(tmp_path):
    """The check is on the path string: imagesTr/ may be a link to a folder stored elsewhere."""
    store = tmp_path / "bulk_storage" / "heart_images"
    root = tmp_path / "Task02_Heart"
    root.mkdir()
    training = []
    for i in range(2):
        write_nii(store / f"la_{i:03d}.nii.gz", image_data(seed=i), ras_affine())
        write_nii(root / "labelsTr" / f"la_{i:03d}.nii.gz", label_data(), ras_affine())
        training.append({"image": f"./imagesTr/la_{i:03d}.nii.gz", "label": f"./labelsTr/la_{i:03d}.nii.gz"})
    try:
        (root / "imagesTr").symlink_to(store, target_is_directory=True)
    except OSError as err:  # e.g. Windows without the privilege
        pytest.skip(f"cannot create a symbolic link: {err}")
    meta = {"name": "Heart", "modality": {"0": "MRI"}, "labels": {"0": "background", "1": "left atrium"},
            "numTraining": 2, "training": training, "test": []}
    (root / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    task = read_task(root)
    assert [c.case_id for c in task.cases] == ["la_000", "la_001"]
    assert all(c.image.is_file() for c in task.cases)
