from __future__ import annotations

import numpy as np
import pytest
import torch

from tascmt.data.augment import AugmentConfig
from tascmt.data.cache import Manifest
from tascmt.data.dataset import TripletDataset


def test_item_contract(heart_cache):
    ds = TripletDataset(heart_cache, "test")
    assert len(ds) > 0
    item = ds[0]
    assert item["x"].shape == (2, 32, 32) and item["x"].dtype == torch.float32
    assert item["y_interp"].shape == (1, 32, 32) and item["y_seg"].shape == (3, 32, 32)
    assert float(item["x"].min()) >= 0 and float(item["x"].max()) <= 1
    assert set(torch.unique(item["y_seg"]).tolist()) <= {0.0, 1.0}
    assert isinstance(item["case_id"], str) and isinstance(item["index"], int)
    assert item["gap_mm"] == pytest.approx(1.37) and item["resampled"] is False
    assert isinstance(item["fg_middle"], bool)


def test_frames_are_the_recorded_slices(heart_cache):
    ds = TripletDataset(heart_cache, "val")
    m = Manifest.load(heart_cache)
    item = ds[len(ds) // 2]
    rec = m.triplets[item["index"]]
    img = np.load(heart_cache / "cases" / f"{rec['case_id']}_img.npy")
    x1, x3 = img[rec["k0"]], img[rec["k2"]]
    lo, hi = min(x1.min(), x3.min()), max(x1.max(), x3.max())  # minmax_pair for the MRI phantom
    np.testing.assert_allclose(item["x"][0].numpy(), (x1 - lo) / (hi - lo), atol=1e-5)
    np.testing.assert_allclose(item["x"][1].numpy(), (x3 - lo) / (hi - lo), atol=1e-5)
    seg = np.load(heart_cache / "cases" / f"{rec['case_id']}_seg.npy")
    np.testing.assert_array_equal(item["y_seg"][1].numpy(), seg[rec["k1"]])
    assert item["fg_middle"] == bool(seg[rec["k1"]].any())


def test_policies_and_splits(heart_cache):
    m = Manifest.load(heart_cache)
    train = TripletDataset(heart_cache, "train")
    every = TripletDataset(heart_cache, "train", fg_policy="every")
    fg_all = TripletDataset(heart_cache, "train", fg_policy="fg_all")
    bg = TripletDataset(heart_cache, "train", fg_policy="fg_plus_bg")
    assert len(fg_all) < len(bg) < len(every) == len(train)  # training learns from every triplet
    assert all(all(r["fg"]) for r in fg_all.records)
    cases = {s: {r["case_id"] for r in TripletDataset(heart_cache, s, fg_policy="every").records}
             for s in ("train", "val", "test")}
    tr, va, te = cases["train"], cases["val"], cases["test"]
    assert not (tr & va or tr & te or va & te)
    assert cases["test"] == set(m.splits["test"])
    fold = TripletDataset(heart_cache, "val", fold=0, fg_policy="every")
    assert {r["case_id"] for r in fold.records} == set(m.splits["folds"][0]["val"])


def test_augmentation_seeded_by_seed_epoch_index(heart_cache):
    ds = TripletDataset(heart_cache, "train", augment=True, seed=7)
    a = ds[3]
    assert torch.equal(a["x"], ds[3]["x"]) and torch.equal(a["y_seg"], ds[3]["y_seg"])
    ds.set_epoch(1)
    b = ds[3]
    assert not torch.equal(a["x"], b["x"])
    ds.set_epoch(0)
    assert torch.equal(a["x"], ds[3]["x"])
    other = TripletDataset(heart_cache, "train", augment=True, seed=8)
    assert not torch.equal(a["x"], other[3]["x"])
    plain = TripletDataset(heart_cache, "train")
    assert not torch.equal(a["x"], plain[3]["x"])


def test_augmented_item_geometry(heart_cache):
    ds = TripletDataset(heart_cache, "train", augment=True, seed=1, augment_cfg=AugmentConfig(noise_std=0.0))
    for i in range(min(6, len(ds))):
        item = ds[i]
        assert set(torch.unique(item["y_seg"]).tolist()) <= {0.0, 1.0}
        assert float(item["x"].min()) >= 0 and float(item["x"].max()) <= 1


def test_dataloader_workers_reproduce(heart_cache):
    ds = TripletDataset(heart_cache, "train", augment=True, seed=2)
    ref = torch.stack([ds[i]["x"] for i in range(4)])
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    batch = next(iter(loader))
    assert torch.equal(batch["x"], ref)
    assert batch["y_seg"].shape == (4, 3, 32, 32)
