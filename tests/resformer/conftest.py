"""ResFormer tests run torch single-threaded (on a shared 2-core machine OpenMP contention makes the tiny
models many times slower) and share a small synthetic ISIC-style task."""

from __future__ import annotations

import pytest
import torch

from tascmt.resformer.synthetic import make_synthetic_2d_task


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def isic_task(tmp_path_factory):
    """12 ISIC-style 40x40 samples (images/, masks/*_segmentation.png, labels.csv)."""
    return make_synthetic_2d_task(tmp_path_factory.mktemp("isic"), n=12, size=40, kind="isic", seed=1)


@pytest.fixture(scope="session")
def retouch_task(tmp_path_factory):
    """10 RETOUCH-style grayscale samples with multi-class masks (values 0..3) and no CSV."""
    folder = tmp_path_factory.mktemp("retouch")
    return make_synthetic_2d_task(folder, n=10, size=40, kind="multiclass", seed=2)
