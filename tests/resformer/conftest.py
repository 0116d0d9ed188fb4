"""ResFormer tests share small synthetic 2-D tasks (torch is single-threaded suite-wide)."""

from __future__ import annotations

import pytest
import torch

from tascmt.data.images2d.synthetic import make_synthetic_2d_task


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def isic_task(tmp_path_factory):
    """12 ISIC-style 40x40 samples (images/, masks/*_segmentation.png, labels.csv)."""
    return make_synthetic_2d_task(tmp_path_factory.mktemp("isic"), n=12, size=40, kind="isic", seed=1)


@pytest.fixture(scope="session")
def retouch_task(tmp_path_factory):
    """10 RETOUCH-style grayscale samples with multi-class masks (values 0..3) and no CSV."""
    folder = tmp_path_factory.mktemp("retouch")
    return make_synthetic_2d_task(folder, n=10, size=40, kind="multiclass", seed=2)
