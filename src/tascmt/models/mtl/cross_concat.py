"""``mtl_cross_concat``: cross-task feature concatenation (Tables 13/14, row "cross-task concatenation").

The ResFormer multi-task idea (Bui et al.) on the main model's Swin backbone: Shared-Bottom towers
(``mtl_shared_bottom``) whose skips are refined by DFE and whose branches exchange features at every
decoder stage by concatenation, each branch with its own 1x1 convolution:

    Fi = Fs = S4
    stage j = 1..3:  D_j = DFE_j(S_{4-j})                       # one DFE per skip, used by both branches
                     F_t = Blk_{j,t}(Conv1x1_{j,t}(cat(PE_{j,t}(F_t), D_j)))       t in {interp, seg}
                     F_t <- Conv1x1_{2C->C, j,t}(cat(F_interp, F_seg))             (per branch)
    interp = sigma(Head_i(Fi)) (or residual);  seg_logits = Head_s(Fs)

ResFormer exchanges features at four levels counting its bottleneck; here the bottleneck is one map
shared by both branches already, so the exchange happens at the 3 decoder stages. The DFE is the project's
single implementation (`tascmt.models.dfe`, full width C as in the ResFormer code). Its dilations are
capped at half the skip side at the nominal ``img_size`` (``capped_dilations``;
``dfe_dilation_mode="fixed"`` keeps 6/12/18).

No auxiliary classifier: ResFormer's "tumour present" head needs a classification loss that the project's
trainer does not compute, so the head never received a gradient; it was removed.

Parameters: 34,221,796 (paper), 2,156,695 (small), 65,360 (tiny).
"""

from __future__ import annotations

import torch
from torch import nn

from tascmt.models.baselines.base import Record
from tascmt.models.dfe import DFE, capped_dilations
from tascmt.models.layers import init_weights
from tascmt.models.mtl.common import TASK_NAMES, MTLModel, TaskTower, record_feats
from tascmt.models.mtl.config import CrossConcatConfig, mtl_size_config
from tascmt.models.registry import register_model


class MTLCrossConcat(MTLModel):
    """Shared encoder, DFE-refined skips, two towers exchanging features by concat + 1x1 at each stage."""

    config_cls = CrossConcatConfig

    def __init__(self, config: CrossConcatConfig):
        super().__init__(config)
        dims = config.dec_dims  # (4C, 2C, C)
        self.towers = nn.ModuleDict({t: TaskTower(config) for t in TASK_NAMES})
        self.dfes = nn.ModuleList(DFE(d, self.dfe_dilations(j)) for j, d in enumerate(dims))
        self.cross = nn.ModuleDict(
            {t: nn.ModuleList(nn.Conv2d(2 * d, d, 1) for d in dims) for t in TASK_NAMES}
        )  # Conv1x1_{2C->C} per branch and stage
        self.apply(init_weights)

    def dfe_dilations(self, j: int) -> tuple[int, ...]:
        """Dilations of decoder stage ``j``'s DFE (its skip is S_{3-j}, side img_size / 4 / 2^(2-j))."""
        cfg = self.config
        if cfg.dfe_dilation_mode == "fixed":
            return tuple(cfg.dfe_dilations)
        return capped_dilations(cfg.dfe_dilations, cfg.img_size // (4 * 2 ** (2 - j)))

    def decode(self, skips: list[torch.Tensor], record: Record | None):
        feats = {t: skips[3] for t in TASK_NAMES}  # (B, 8C, H/32, W/32)
        for j in range(3):
            d = self.dfes[j](skips[2 - j])  # (B, C_j, h, w)
            feats = {t: self.towers[t].stage(j, feats[t], d) for t in TASK_NAMES}  # (B, C_j, h, w)
            both = torch.cat([feats["interp"], feats["seg"]], dim=1)  # (B, 2 C_j, h, w)
            feats = {t: self.cross[t][j](both) for t in TASK_NAMES}  # (B, C_j, h, w)
            if record is not None:
                record[f"dec{j + 1}.dfe"] = d
            record_feats(record, j, feats)
        return feats, {}

    def shared_parameters(self) -> list[nn.Parameter]:
        """The last stage's DFE fusion conv: the last layer whose output both branches consume."""
        return list(self.dfes[-1].fuse.parameters())


@register_model(MTLCrossConcat)
def mtl_cross_concat(size: str) -> CrossConcatConfig:
    """Multi-task baseline: cross-task feature concatenation with DFE skips (ResFormer-style)."""
    return mtl_size_config(CrossConcatConfig, "mtl_cross_concat", size)
