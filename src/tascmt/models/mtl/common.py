"""Pieces shared by the multi-task baselines: the base class (encoder, heads, outputs) and a task tower.

Every variant: x (B, 2, H, W) = [X1, X3] -> the ``tasc_swinmt`` Swin encoder without TALA
(``TascEncoder``, skips S1 (C, H/4) .. S4 (8C, H/32)) -> a variant-specific two-branch decoder ending at
(B, C, H/4, W/4) per task -> ``PixelShuffleHead`` per task -> {"interp": (B, 1, H, W),
"seg_logits": (B, 3, H, W)}. ``mtl_moe`` replaces the one shared encoder by a mixture of expert encoders
(it overrides :meth:`MTLModel.task_features`).

The heads (the main model's ``PixelShuffleHead``) and the initialisation (``init_weights``) are the same
for every row, so that the rows differ only in how the two tasks share and exchange features.
"""

from __future__ import annotations

import torch
from torch import nn

from tascmt.models.baselines.base import BaselineModel, Record, interp_from_head
from tascmt.models.encoder import TascEncoder
from tascmt.models.layers import PatchExpand, PixelShuffleHead, SwinTransformerBlock
from tascmt.models.mtl.config import MTLConfig

TASK_NAMES = ("interp", "seg")


def decoder_block(cfg: MTLConfig, j: int) -> SwinTransformerBlock:
    """The Swin block of decoder stage ``j`` (0..2): width ``dec_dims[j]``, ``dec_heads[j]``, shift 0."""
    return SwinTransformerBlock(
        cfg.dec_dims[j], cfg.dec_heads[j], cfg.window, 0, cfg.mlp_ratio, cfg.shift_mask
    )


def concat_fusion(dim: int) -> nn.Conv2d:
    """Plain skip fusion: Conv1x1(cat(U, skip)) (B, 2C, h, w) -> (B, C, h, w)."""
    return nn.Conv2d(2 * dim, dim, 1)


class TaskTower(nn.Module):
    """One task's U-Net decoder over the shared encoder's skips.

    Stage j = 0..2 at width C_j = (4C, 2C, C): U = PatchExpand(F) (B, C_j, 2h, 2w);
    F = SwinBlock(Conv1x1(cat(U, skip_j))) (B, C_j, 2h, 2w).
    """

    def __init__(self, cfg: MTLConfig):
        super().__init__()
        self.expands = nn.ModuleList(PatchExpand(2 * d) for d in cfg.dec_dims)
        self.fusions = nn.ModuleList(concat_fusion(d) for d in cfg.dec_dims)
        self.blocks = nn.ModuleList(decoder_block(cfg, j) for j in range(len(cfg.dec_dims)))

    def stage(self, j: int, f: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """f: (B, 2C_j, h, w), skip: (B, C_j, 2h, 2w) -> (B, C_j, 2h, 2w)."""
        u = self.expands[j](f)  # (B, C_j, 2h, 2w)
        return self.blocks[j](self.fusions[j](torch.cat([u, skip], dim=1)))


class MTLModel(BaselineModel):
    """Base of the multi-task baselines: the shared encoder and the two heads; subclasses implement
    ``decode(skips, record) -> ({"interp": (B, C, H/4, W/4), "seg": ...}, extra outputs)`` and
    ``shared_parameters()``, or override :meth:`task_features` (with ``shared_encoder=False``)."""

    config_cls: type = MTLConfig

    def __init__(self, config: MTLConfig, shared_encoder: bool = True):
        super().__init__()
        self.config = config
        if shared_encoder:
            self.encoder = TascEncoder(config.encoder_config())
        out_chans = {"interp": 1, "seg": config.seg_classes}
        self.heads = nn.ModuleDict({t: PixelShuffleHead(config.dims[0], out_chans[t]) for t in TASK_NAMES})

    def decode(
        self, skips: list[torch.Tensor], record: Record | None
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        raise NotImplementedError

    def task_features(
        self, x: torch.Tensor, record: Record | None
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """x: (B, 2, H, W) -> ({task: (B, C, H/4, W/4)}, extra outputs): shared encoder, then ``decode``."""
        skips = self.encoder(x, record, "enc")  # [S1 (B, C, H/4, W/4) .. S4 (B, 8C, H/32, W/32)]
        return self.decode(skips, record)

    def _forward(self, x: torch.Tensor, record: Record | None) -> dict[str, torch.Tensor]:
        """x: (B, 2, H, W) -> {"interp": (B, 1, H, W), "seg_logits": (B, 3, H, W)} (+ extra outputs)."""
        feats, extra = self.task_features(x, record)
        r = self.heads["interp"](feats["interp"])  # (B, 1, H, W)
        out = {
            "interp": interp_from_head(r, x, self.config.interp_output),
            "seg_logits": self.heads["seg"](feats["seg"]),  # (B, 3, H, W)
        }
        out.update(extra)
        return out

    def output_layers(self) -> list[nn.Module]:
        return [head.conv3 for head in self.heads.values()]

    def shared_parameters(self) -> list[nn.Parameter]:
        """The last shared layer (for GradNorm); by default the encoder's last MLP layer (stage 4)."""
        return list(self.encoder.stages[-1][-1].mlp.fc2.parameters())


def record_feats(record: Record | None, j: int, feats: dict[str, torch.Tensor]) -> None:
    """Store decoder stage ``j``'s branch features as ``dec{j+1}.{task}``."""
    if record is not None:
        record.update({f"dec{j + 1}.{t}": f for t, f in feats.items()})
