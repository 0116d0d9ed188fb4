"""``mtl_concat``: direct feature concatenation (Tables 13/14, row "direct concatenation").

The main model's topology with its three modules replaced by the plainest choices: the shared Swin
encoder (no TALA), a two-branch decoder whose PatchExpand and Swin block of each stage are shared by the
branches (as in TASC-SwinMT, SPEC §2 step 8), and at each stage a per-branch skip fusion that is a
plain concat + Conv1x1 (SPEC §11.9's "removed MSTAF"); no cross-task interaction (no CTCI).

    Fi = Fs = S4
    stage j = 1..3:  U_t = PE_j(F_t);  F_t = Blk_j(Conv1x1_{j,t}(cat(U_t, S_{4-j})))   t in {interp, seg}
    interp = sigma(Head_i(Fi)) (or residual);  seg_logits = Head_s(Fs)

Unlike ``mtl_shared_bottom`` the decoder's expands and blocks are hard-shared; only the fusions and the
heads are task-specific. Parameters: 16,974,160 (paper), 1,073,410 (small), 33,450 (tiny);
thop 77.76 GMAC at 1×2×512².
"""

from __future__ import annotations

import torch
from torch import nn

from tascmt.models.baselines.base import Record
from tascmt.models.layers import PatchExpand, init_weights
from tascmt.models.mtl.common import TASK_NAMES, MTLModel, concat_fusion, decoder_block, record_feats
from tascmt.models.mtl.config import MTLConfig, mtl_size_config
from tascmt.models.registry import register_model


class MTLConcat(MTLModel):
    """Shared encoder, decoder expands/blocks shared by both branches, per-branch concat + 1x1 fusion."""

    config_cls = MTLConfig

    def __init__(self, config: MTLConfig):
        super().__init__(config)
        dims = config.dec_dims  # (4C, 2C, C)
        self.expands = nn.ModuleList(PatchExpand(2 * d) for d in dims)
        self.fusions = nn.ModuleDict({t: nn.ModuleList(concat_fusion(d) for d in dims) for t in TASK_NAMES})
        self.blocks = nn.ModuleList(decoder_block(config, j) for j in range(len(dims)))
        self.apply(init_weights)

    def decode(self, skips: list[torch.Tensor], record: Record | None):
        feats = {t: skips[3] for t in TASK_NAMES}  # (B, 8C, H/32, W/32)
        for j in range(3):
            skip = skips[2 - j]  # (B, C_j, h, w)
            u = {t: self.expands[j](feats[t]) for t in TASK_NAMES[:1 if j == 0 else 2]}  # (B, C_j, h, w)
            u.setdefault("seg", u["interp"])  # stage 1: both branches expand the same S4
            feats = {
                t: self.blocks[j](self.fusions[t][j](torch.cat([u[t], skip], dim=1)))  # (B, C_j, h, w)
                for t in TASK_NAMES
            }
            record_feats(record, j, feats)
        return feats, {}

    def shared_parameters(self) -> list[nn.Parameter]:
        """The last decoder block's second MLP layer, whose weights both branches use."""
        return list(self.blocks[-1].mlp.fc2.parameters())


@register_model(MTLConcat)
def mtl_concat(size: str) -> MTLConfig:
    """Multi-task baseline: direct feature concatenation (shared decoder, concat + 1x1 skip fusion)."""
    return mtl_size_config(MTLConfig, "mtl_concat", size)
