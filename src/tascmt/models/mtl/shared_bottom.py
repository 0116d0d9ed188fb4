"""``mtl_shared_bottom``: Shared-Bottom multi-task learning (Tables 13/14, row "Shared-Bottom").

Hard parameter sharing in the encoder only: the shared Swin encoder (the "bottom", the main model's
without TALA) feeds two completely separate task towers, each a U-Net decoder with its own PatchExpand,
concat + Conv1x1 skip fusion and Swin block per stage, using the shared encoder's skips, and its own head.

    tower_t: F = S4;  stage j = 1..3:  F = Blk_{j,t}(Conv1x1_{j,t}(cat(PE_{j,t}(F), S_{4-j})))
    interp = sigma(Head_i(F_interp)) (or residual);  seg_logits = Head_s(F_seg)

Parameters: 20,858,110 (paper), 1,319,425 (small), 41,490 (tiny); thop 78.06 GMAC at 1×2×512².
"""

from __future__ import annotations

import torch
from torch import nn

from tascmt.models.baselines.base import Record
from tascmt.models.layers import init_weights
from tascmt.models.mtl.common import TASK_NAMES, MTLModel, TaskTower, record_feats
from tascmt.models.mtl.config import MTLConfig, mtl_size_config
from tascmt.models.registry import register_model


class MTLSharedBottom(MTLModel):
    """Shared encoder; one independent decoder tower per task. ``shared_parameters``: the encoder's last
    MLP layer (the top of the shared bottom)."""

    config_cls = MTLConfig

    def __init__(self, config: MTLConfig):
        super().__init__(config)
        self.towers = nn.ModuleDict({t: TaskTower(config) for t in TASK_NAMES})
        self.apply(init_weights)

    def decode(self, skips: list[torch.Tensor], record: Record | None):
        feats = {t: skips[3] for t in TASK_NAMES}  # (B, 8C, H/32, W/32)
        for j in range(3):
            feats = {t: self.towers[t].stage(j, feats[t], skips[2 - j]) for t in TASK_NAMES}  # (B, C_j, h, w)
            record_feats(record, j, feats)
        return feats, {}


@register_model(MTLSharedBottom)
def mtl_shared_bottom(size: str) -> MTLConfig:
    """Multi-task baseline: Shared-Bottom (shared encoder, two separate decoder towers)."""
    return mtl_size_config(MTLConfig, "mtl_shared_bottom", size)
