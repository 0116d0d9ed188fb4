"""``mtl_concat``: direct feature concatenation (Tables 13/14, row "Concat(F_interp, F_seg)").

The plainest way for two task decoders to share what they learn: at every decoder level the two
branches' features are concatenated and one 1x1 convolution maps them back to the level's width; both
branches continue from that same fused map. On the main model's backbone:

    shared Swin encoder (the main model's, no TALA):  S1 (C, H/4) .. S4 (8C, H/32)
    F_interp = F_seg = S4
    stage j = 1..3 (width C_j = 4C, 2C, C):
        F_t = Blk_{j,t}(Conv1x1_{j,t}(cat(PE_{j,t}(F_t), S_{4-j})))      t in {interp, seg}  (task towers)
        F_interp = F_seg = Conv1x1_{2C_j -> C_j, j}(cat(F_interp, F_seg))   (one conv per level, shared)
    interp = sigma(Head_i(F_interp)) (or residual);  seg_logits = Head_s(F_seg)

The towers are ``mtl_shared_bottom``'s (their own PatchExpand, concat + 1x1 skip fusion and Swin block per
stage); what this row adds is the cross-task concatenation. Unlike ``mtl_cross_concat`` there is one
fusion per level whose output both branches receive (no per-task exchange convs) and the skips are plain
(no DFE). ``forward_intermediates`` records each level's tower outputs ``dec{j}.interp`` / ``dec{j}.seg``
and the fused map ``dec{j}.concat``.

Parameters: 21,245,854 (paper), 1,343,785 (small), 42,190 (tiny).
"""

from __future__ import annotations

import torch
from torch import nn

from tascmt.models.baselines.base import Record
from tascmt.models.layers import init_weights
from tascmt.models.mtl.common import TASK_NAMES, MTLModel, TaskTower, record_feats
from tascmt.models.mtl.config import MTLConfig, mtl_size_config
from tascmt.models.registry import register_model


class MTLConcat(MTLModel):
    """Shared encoder, two task towers, and at every level Conv1x1(cat(F_interp, F_seg)) fed to both."""

    config_cls = MTLConfig

    def __init__(self, config: MTLConfig):
        super().__init__(config)
        dims = config.dec_dims  # (4C, 2C, C)
        self.towers = nn.ModuleDict({t: TaskTower(config) for t in TASK_NAMES})
        self.concat = nn.ModuleList(nn.Conv2d(2 * d, d, 1) for d in dims)  # Conv1x1_{2C_j -> C_j}
        self.apply(init_weights)

    def decode(self, skips: list[torch.Tensor], record: Record | None):
        feats = {t: skips[3] for t in TASK_NAMES}  # (B, 8C, H/32, W/32)
        for j in range(3):
            feats = {t: self.towers[t].stage(j, feats[t], skips[2 - j]) for t in TASK_NAMES}  # (B, C_j, h, w)
            record_feats(record, j, feats)
            fused = self.concat[j](torch.cat([feats["interp"], feats["seg"]], dim=1))  # (B, C_j, h, w)
            if record is not None:
                record[f"dec{j + 1}.concat"] = fused
            feats = {t: fused for t in TASK_NAMES}
        return feats, {}

    def shared_parameters(self) -> list[nn.Parameter]:
        """The last level's concat fusion: the last layer whose output both heads consume."""
        return list(self.concat[-1].parameters())


@register_model(MTLConcat)
def mtl_concat(size: str) -> MTLConfig:
    """Multi-task baseline: direct concatenation Conv1x1(cat(F_interp, F_seg)) at every decoder level."""
    return mtl_size_config(MTLConfig, "mtl_concat", size)
