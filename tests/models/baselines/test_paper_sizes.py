"""Paper-size baselines build with their documented parameter counts (on the meta device: no memory)."""

from __future__ import annotations

import pytest
import torch

from tascmt.models import create_model

PAPER_PARAMS = {
    "swinunet_interp": 27_172_260,  # Swin-Unet, published 27.17 M
    "transunet_interp": 105_908_689,  # at 512² (1,024 position tokens)
    "vtn_interp": 16_986_392,
    "unetpp_seg": 9_118_756,
    "nnunet_seg": 46_310_918,
    "mtl_concat": 16_974_160,
    "mtl_shared_bottom": 20_858_110,
    "mtl_cross_concat": 28_025_956,
    "mtl_moe": 23_372_546,
}


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_paper_size_parameter_count(name):
    with torch.device("meta"):
        model = create_model(name, size="paper")
    assert sum(p.numel() for p in model.parameters()) == PAPER_PARAMS[name]
