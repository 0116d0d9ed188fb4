"""``mtl_cross_concat``: cross-task feature concatenation (Tables 13/14, row "cross-task concatenation").

The ResFormer multi-task idea (Bui et al., SPEC §9) on the main model's Swin backbone: Shared-Bottom
towers (``mtl_shared_bottom``) whose skips are refined by DFE and whose branches exchange features at
every decoder stage by concatenation:

    Fi = Fs = S4
    stage j = 1..3:  D_j = DFE_j(S_{4-j})                       # one DFE per skip, used by both branches
                     F_t = Blk_{j,t}(Conv1x1_{j,t}(cat(PE_{j,t}(F_t), D_j)))       t in {interp, seg}
                     F_t <- Conv1x1_{2C->C, j,t}(cat(F_interp, F_seg))             (SPEC §9)
    interp = sigma(Head_i(Fi)) (or residual);  seg_logits = Head_s(Fs)

SPEC §9 counts l = 1..4 with the shared bottleneck; here the exchange happens at the 3 decoder stages
(the bottleneck is one shared map already). DFE dilations are capped at half the skip side at the nominal
``img_size`` (``dfe.capped_dilations``; ``dfe_dilation_mode="fixed"`` keeps 6/12/18).

Optional (``aux_classifier=True``, off by default: TASC has no classification labels) auxiliary
"tumour-present" classifier on encoder stages 3-4, as ResFormer's head: GAP(ReLU(BN(S3))) and
GAP(ReLU(BN(S4))) -> cat (12C) -> Linear(12C, 32) -> ReLU -> Linear(32, K) -> ``"cls_logits"`` (B, K).

Parameters: 28,025,956 (paper), 1,768,951 (small), 54,496 (tiny); the auxiliary classifier adds 39,233
(paper, K = 1). thop 94.87 GMAC at 1×2×512² (DFE convs included; the 2-channel stats of
the spatial attention are element-wise and not counted).
"""

from __future__ import annotations

import torch
from torch import nn

from tascmt.models.baselines.base import Record
from tascmt.models.layers import init_weights
from tascmt.models.mtl.common import TASK_NAMES, MTLModel, TaskTower, record_feats
from tascmt.models.mtl.config import CrossConcatConfig, mtl_size_config
from tascmt.models.mtl.dfe import DFE, capped_dilations
from tascmt.models.registry import register_model


class AuxClassifier(nn.Module):
    """ResFormer-style multi-scale classification head on S3 (B, 4C, h, w) and S4 (B, 8C, h/2, w/2)
    -> (B, K) logits."""

    def __init__(self, c3: int, c4: int, hidden: int, classes: int):
        super().__init__()
        self.norms = nn.ModuleList(nn.Sequential(nn.BatchNorm2d(c), nn.ReLU()) for c in (c3, c4))
        self.mlp = nn.Sequential(nn.Linear(c3 + c4, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, s3: torch.Tensor, s4: torch.Tensor) -> torch.Tensor:
        pooled = [n(s).mean(dim=(2, 3)) for n, s in zip(self.norms, (s3, s4))]  # (B, 4C), (B, 8C)
        return self.mlp(torch.cat(pooled, dim=1))  # (B, K)


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
        self.aux = (
            AuxClassifier(config.dims[2], config.dims[3], config.aux_hidden, config.aux_classes)
            if config.aux_classifier
            else None
        )
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
        extra = {"cls_logits": self.aux(skips[2], skips[3])} if self.aux is not None else {}
        return feats, extra

    def shared_parameters(self) -> list[nn.Parameter]:
        """The last stage's DFE fusion conv: the last layer whose output both branches consume."""
        return list(self.dfes[-1].fuse.parameters())


@register_model(MTLCrossConcat)
def mtl_cross_concat(size: str) -> CrossConcatConfig:
    """Multi-task baseline: cross-task feature concatenation with DFE skips (ResFormer-style, SPEC §9)."""
    return mtl_size_config(CrossConcatConfig, "mtl_cross_concat", size)
