"""The 2-D folder adapter: ISIC-style and RETOUCH-style reading, splits, augmentation, and input errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from tascmt.data.images2d.dataset import FolderDataset, augment
from tascmt.data.images2d.folder import load_split, read_mask, scan_folder, split_samples
from tascmt.data.images2d.synthetic import make_synthetic_2d_task
from tascmt.errors import InputError

ISIC = dict(img_size=32, in_chans=3, seg_classes=1, cls_classes=2)
RETOUCH = dict(img_size=32, in_chans=1, seg_classes=4, cls_classes=3)


def copy_task(src, tmp_path):
    return shutil.copytree(src, tmp_path / "task")


def test_isic_items(isic_task):
    data = FolderDataset(isic_task, "train", **ISIC)
    item = data[0]
    assert item["x"].shape == (3, 32, 32) and item["x"].dtype == torch.float32
    assert 0.0 <= item["x"].min() and item["x"].max() <= 1.0
    assert item["y_seg"].shape == (32, 32) and item["y_seg"].dtype == torch.int64
    assert set(item["y_seg"].unique().tolist()) <= {0, 1} and item["y_seg"].sum() > 0
    assert data.class_names == ["melanoma", "seborrheic_keratosis"]
    labels = data.labels_array()
    assert labels.shape == (len(data), 2) and labels.sum(axis=1).max() <= 1  # one lesion type per image
    np.testing.assert_array_equal(item["y_cls"].numpy(), labels[0])


def test_retouch_labels_come_from_the_mask_classes(retouch_task):
    data = FolderDataset(retouch_task, "train", **RETOUCH)
    for i in range(len(data)):
        item = data[i]
        full = read_mask(data.samples[i].mask, 4)
        present = [float((full == k).any()) for k in (1, 2, 3)]
        np.testing.assert_array_equal(item["y_cls"].numpy(), present)
        assert item["x"].shape == (1, 32, 32) and int(item["y_seg"].max()) <= 3
    assert data.class_names == ["class1", "class2", "class3"]


def test_flat_folder_split_is_disjoint_and_complete(isic_task):
    parts = {s: {x.case_id for x in load_split(isic_task, s)[0]} for s in ("train", "val", "test")}
    assert sum(map(len, parts.values())) == 12 and len(set().union(*parts.values())) == 12
    assert len(parts["val"]) >= 1 and len(parts["test"]) >= 1
    samples, _ = scan_folder(isic_task)
    assert {x.case_id for x in split_samples(samples, "val", seed=42)} == parts["val"]
    other = [{x.case_id for x in split_samples(samples, "val", seed=s)} for s in range(5)]
    assert any(o != parts["val"] for o in other)  # the split seed matters


def test_split_subfolders_are_used(tmp_path):
    make_synthetic_2d_task(tmp_path / "train", n=3, size=20)
    make_synthetic_2d_task(tmp_path / "val", n=2, size=20, seed=5)
    assert len(load_split(tmp_path, "train")[0]) == 3 and len(load_split(tmp_path, "val")[0]) == 2
    assert load_split(tmp_path, "test")[0] == []


def test_augmentation_is_paired_and_reproducible(isic_task):
    data = FolderDataset(isic_task, "train", augment=True, seed=7, **ISIC)
    a, b = data[1], data[1]
    assert torch.equal(a["x"], b["x"]) and torch.equal(a["y_seg"], b["y_seg"])
    data.set_epoch(1)
    c = data[1]
    assert not torch.equal(a["x"], c["x"])
    # the label map moves with the image: the dark lesion pixels stay where the mask says foreground
    x = torch.zeros(1, 16, 16)
    y = torch.zeros(16, 16, dtype=torch.long)
    x[0, 3:8, 9:14], y[3:8, 9:14] = 1.0, 1
    xa, ya = augment(x, y, np.random.default_rng(0))
    assert set(ya.unique().tolist()) <= {0, 1} and ya.dtype == torch.long
    assert (xa[0][ya == 1] > 0.5).float().mean() > 0.9


def test_missing_masks_folder(isic_task, tmp_path):
    root = copy_task(isic_task, tmp_path)
    shutil.rmtree(root / "masks")
    with pytest.raises(InputError, match="missing folder masks"):
        FolderDataset(root, "train", **ISIC)


def test_image_without_mask(isic_task, tmp_path):
    root = copy_task(isic_task, tmp_path)
    (root / "masks" / "case_0003_segmentation.png").unlink()
    with pytest.raises(InputError, match=r"no mask for image case_0003\.png"):
        FolderDataset(root, "train", **ISIC)


def test_image_missing_from_csv(isic_task, tmp_path):
    root = copy_task(isic_task, tmp_path)
    lines = (root / "labels.csv").read_text(encoding="utf-8").splitlines()
    (root / "labels.csv").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="no row in the labels CSV"):
        FolderDataset(root, "train", **ISIC)


def test_bad_csv_values_and_class_count(isic_task, tmp_path):
    root = copy_task(isic_task, tmp_path)
    text = (root / "labels.csv").read_text(encoding="utf-8")
    (root / "labels.csv").write_text(text.replace("case_0000,1,0", "case_0000,2,0"), encoding="utf-8")
    with pytest.raises(InputError, match="labels must be 0 or 1"):
        FolderDataset(root, "train", **ISIC)
    (root / "labels.csv").write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="cls_classes=3"):
        FolderDataset(root, "train", **{**ISIC, "cls_classes": 3})


def test_mask_size_mismatch(isic_task, tmp_path):
    root = copy_task(isic_task, tmp_path)
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(root / "masks" / "case_0001_segmentation.png")
    with pytest.raises(InputError, match="mask size 12x10 differs"):
        FolderDataset(root, "train", **ISIC)


def test_multiclass_mask_values_out_of_range(retouch_task, tmp_path):
    root = copy_task(retouch_task, tmp_path)
    data = FolderDataset(root, "train", **{**RETOUCH, "seg_classes": 3, "cls_classes": 2})
    with pytest.raises(InputError, match=r"outside 0..2"):
        data.labels_array()


def test_unreadable_image(isic_task, tmp_path):
    root = copy_task(isic_task, tmp_path)
    (root / "images" / "case_0000.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot read the image"):
        FolderDataset(root, "train", **ISIC)


def test_labels_from_mask_need_matching_class_counts(retouch_task):
    with pytest.raises(InputError, match="cls_classes = seg_classes - 1"):
        FolderDataset(retouch_task, "train", **{**RETOUCH, "cls_classes": 2})


def test_isic_superpixel_maps_are_not_images(isic_task, tmp_path):
    root = copy_task(isic_task, tmp_path)
    shutil.copy(root / "images" / "case_0000.png", root / "images" / "case_0000_superpixels.png")
    samples, names = scan_folder(root)
    assert len(samples) == 12 and names == ["melanoma", "seborrheic_keratosis"]
