"""Swin U-Net pieces shared by the SwinUNet and VTN baselines, built from the project's Swin layers.

* ``SwinEncoder``: PatchEmbed (4x4) then stages [PatchMerging] -> depth x SwinTransformerBlock
  (shift 0 / window/2 alternating) -> skips at H/4, H/8, H/16, H/32.
* ``SwinUDecoder`` (Swin-Unet, Cao et al. 2021): PatchExpand from the bottleneck, then per stage
  concat(up, skip) -> Linear(2C, C) -> Swin blocks -> PatchExpand; LayerNorm at the end (H/4).
* ``FinalPatchExpand``: Linear(C, 16C) -> rearrange to (4H, 4W, C) -> LN -> Conv1x1(C, out).
"""

from __future__ import annotations

import torch
from torch import nn

from tascmt.models.layers import PatchEmbed, PatchExpand, PatchMerging, SwinTransformerBlock
from tascmt.models.layers.helpers import to_nchw, to_nhwc

Record = dict[str, torch.Tensor]


def swin_stage(dim: int, heads: int, depth: int, window: int, mlp_ratio: float = 4.0) -> nn.Sequential:
    """``depth`` Swin blocks, shift 0 and window/2 alternating (the standard W-MSA / SW-MSA pairs)."""
    return nn.Sequential(
        *(SwinTransformerBlock(dim, heads, window, 0 if b % 2 == 0 else window // 2, mlp_ratio)
          for b in range(depth))
    )


class SwinEncoder(nn.Module):
    """(B, in, H, W) -> [S1 (B, C, H/4, W/4), S2 (2C, H/8), S3 (4C, H/16), S4 (8C, H/32)]."""

    def __init__(self, in_chans: int, dims: tuple[int, ...], heads: tuple[int, ...], depths: tuple[int, ...],
                 window: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.embed = PatchEmbed(in_chans, dims[0])
        self.merges = nn.ModuleList(PatchMerging(dims[k - 1]) for k in range(1, len(dims)))
        self.stages = nn.ModuleList(
            swin_stage(d, h, n, window, mlp_ratio) for d, h, n in zip(dims, heads, depths)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        skips = []
        f = self.embed(x)  # (B, C, H/4, W/4)
        for k, stage in enumerate(self.stages):
            if k > 0:
                f = self.merges[k - 1](f)  # (B, 2C, h/2, w/2)
            f = stage(f)
            skips.append(f)
        return skips


class SwinUDecoder(nn.Module):
    """Swin-Unet decoder: skips [S1..S4] -> (B, C, H/4, W/4) (layer-normalised).

    Stage j = 1..3 at width ``dims[-1-j]``: U = PatchExpand(F) (2x up, half the channels),
    F = Blocks(Linear(2C, C)(cat(U, S_{4-j}))). ``dec_depths`` and ``dec_heads`` list stages 1..3.
    """

    def __init__(self, dims: tuple[int, ...], dec_heads: tuple[int, ...], dec_depths: tuple[int, ...],
                 window: int, mlp_ratio: float = 4.0):
        super().__init__()
        dec_dims = dims[-2::-1]  # (4C, 2C, C)
        self.expands = nn.ModuleList(PatchExpand(2 * d) for d in dec_dims)
        self.fuses = nn.ModuleList(nn.Linear(2 * d, d) for d in dec_dims)
        self.stages = nn.ModuleList(
            swin_stage(d, h, n, window, mlp_ratio) for d, h, n in zip(dec_dims, dec_heads, dec_depths)
        )
        self.norm = nn.LayerNorm(dims[0])

    def forward(self, skips: list[torch.Tensor], record: Record | None = None) -> torch.Tensor:
        f = skips[-1]  # (B, 8C, H/32, W/32)
        for j in range(len(self.stages)):
            u = self.expands[j](f)  # (B, C_j, 2h, 2w)
            cat = to_nhwc(torch.cat([u, skips[-2 - j]], dim=1))  # (B, h, w, 2 C_j)
            f = self.stages[j](to_nchw(self.fuses[j](cat)).contiguous())  # (B, C_j, h, w)
            if record is not None:
                record[f"dec{j + 1}"] = f
        return to_nchw(self.norm(to_nhwc(f))).contiguous()  # (B, C, H/4, W/4)


class FinalPatchExpand(nn.Module):
    """Swin-Unet's final x4 patch expanding and linear projection: (B, C, h, w) -> (B, out, 4h, 4w)."""

    def __init__(self, dim: int, out_chans: int, scale: int = 4):
        super().__init__()
        self.scale = scale
        self.expand = nn.Linear(dim, scale * scale * dim, bias=False)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Conv2d(dim, out_chans, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        s = self.scale
        y = self.expand(to_nhwc(x))  # (B, h, w, s*s*C)
        y = y.view(b, h, w, s, s, c).permute(0, 1, 3, 2, 4, 5)  # (B, h, s, w, s, C)
        y = self.norm(y.reshape(b, s * h, s * w, c))  # (B, 4h, 4w, C)
        return self.out(to_nchw(y).contiguous())  # (B, out, 4h, 4w)
