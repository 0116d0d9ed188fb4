"""Paper- and small-size baselines build with their documented parameter counts (on the meta device: no
memory). docs/baselines.md lists them with each baseline's topology."""

from __future__ import annotations

import pytest
import torch

from tascmt.models import create_model

PAPER_PARAMS = {
    "swinunet_interp": 27_173_988,  # Swin-Unet, published 27.17 M (with its patch-embed and bottleneck LNs)
    "transunet_interp": 105_908_689,  # at 512² (1,024 position tokens)
    "vtn_interp": 16_986_392,
    "unetpp_seg": 9_118_756,
    "nnunet_seg": 46_310_918,
    "mtl_concat": 21_245_854,  # Shared-Bottom + one Conv1x1(cat(F_interp, F_seg)) per decoder level
    "mtl_shared_bottom": 20_858_110,
    "mtl_cross_concat": 34_221_796,  # full-width (ResFormer) DFE on the three skips, no aux classifier
    "mtl_moe": 53_807_008,  # MMoE: 4 expert encoders, one gate per task
}

#: The rows whose topology changed with the faithful-baselines revision, at ``small``.
SMALL_PARAMS = {
    "swinunet_interp": 3_040_972,
    "mtl_concat": 1_343_785,
    "mtl_shared_bottom": 1_319_425,
    "mtl_cross_concat": 2_156_695,
    "mtl_moe": 3_403_894,
}


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_paper_size_parameter_count(name):
    with torch.device("meta"):
        model = create_model(name, size="paper")
    assert sum(p.numel() for p in model.parameters()) == PAPER_PARAMS[name]


@pytest.mark.parametrize("name", sorted(SMALL_PARAMS))
def test_small_size_parameter_count(name):
    with torch.device("meta"):
        model = create_model(name, size="small")
    assert sum(p.numel() for p in model.parameters()) == SMALL_PARAMS[name]
