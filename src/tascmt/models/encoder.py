"""The TASC-SwinMT encoder (docs/design.md §3): patch embedding, then four Swin stages with TALA.

Shared by the main model (``tasc_swinmt.py``, which re-exports it) and the multi-task methods of
``models/mtl``, which put their own decoders on it; it registers no model.
"""

from __future__ import annotations

import torch
from torch import nn

from tascmt.models.config import TascConfig
from tascmt.models.layers import PatchEmbed, PatchMerging, SwinTransformerBlock
from tascmt.models.tala import TALA

__all__ = ["Record", "TascEncoder"]

Record = dict[str, torch.Tensor]


def _block_shift(stage_shift: int, index: int, window: int) -> int:
    """Shift of block ``index`` in a stage: the stage's shift, alternating with its complement (depth > 1)."""
    return stage_shift if index % 2 == 0 else (window // 2 if stage_shift == 0 else 0)


class TascEncoder(nn.Module):
    """PatchEmbed, then 4 stages of [PatchMerging] -> Swin blocks -> (F + TALA(F) | TALA(F) | F).

    (B, in, H, W) -> [S1 (B, C, H/4, W/4), S2 (2C, H/8), S3 (4C, H/16), S4 (8C, H/32)].
    """

    def __init__(self, cfg: TascConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = PatchEmbed(cfg.in_chans, cfg.dims[0])
        self.merges = nn.ModuleList(PatchMerging(cfg.dims[k - 1]) for k in range(1, 4))
        self.stages = nn.ModuleList(
            nn.Sequential(
                *(
                    SwinTransformerBlock(
                        dim,
                        cfg.heads[k],
                        cfg.window,
                        _block_shift(cfg.shifts[k], b, cfg.window),
                        cfg.mlp_ratio,
                        cfg.shift_mask,
                    )
                    for b in range(cfg.depths[k])
                )
            )
            for k, dim in enumerate(cfg.dims)
        )
        self.talas = nn.ModuleList(TALA(d, cfg.tala_reduction) for d in cfg.dims) if cfg.use_tala else None

    def forward(self, x: torch.Tensor, record: Record | None = None, prefix: str = "enc") -> list:
        """x: (B, in, H, W) -> the four stage outputs; maps go to ``record`` under ``prefix``."""
        skips = []
        f = self.embed(x)  # (B, C, H/4, W/4)
        for k, stage in enumerate(self.stages):
            if k > 0:
                f = self.merges[k - 1](f)  # (B, 2C, H/2, W/2)
            f = stage(f)
            if self.talas is not None:
                sub: Record | None = {} if record is not None else None
                t = self.talas[k](f, record=sub)
                f = f + t if self.cfg.tala_mode == "residual" else t
                if record is not None:
                    record[f"{prefix}.tala{k + 1}.freq"] = sub["freq"]
            skips.append(f)
            if record is not None:
                record[f"{prefix}.s{k + 1}"] = f
        return skips
