"""Patch operations: embedding (Conv 4x4 stride 4), merging (2x down), expanding (2x up). NCHW in and out."""

from __future__ import annotations

import torch
from torch import nn

from tascmt.models.layers.helpers import to_nchw, to_nhwc


class PatchEmbed(nn.Module):
    """Conv2d(in, C, 4, stride 4) with bias, no norm. (B, in, H, W) -> (B, C, H/4, W/4)."""

    def __init__(self, in_chans: int, dim: int, patch: int = 4):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class PatchMerging(nn.Module):
    """Concat the four 2x2 neighbours -> LN(4C) -> Linear(4C, 2C, no bias). Parameters: 8C^2 + 8C."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) with even H, W -> (B, 2C, H/2, W/2)."""
        x = to_nhwc(x)  # (B, H, W, C)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return to_nchw(self.reduction(self.norm(x))).contiguous()  # (B, 2C, H/2, W/2)


class PatchExpand(nn.Module):
    """Linear(C, 2C, no bias) -> rearrange to (2H, 2W, C/2) -> LN(C/2). Parameters: 2C^2 + C."""

    def __init__(self, dim: int):
        super().__init__()
        if dim % 2:
            raise ValueError(f"PatchExpand dim={dim} must be even")
        self.expand = nn.Linear(dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(dim // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C/2, 2H, 2W)."""
        b, c, h, w = x.shape
        x = self.expand(to_nhwc(x))  # (B, H, W, 2C)
        x = x.view(b, h, w, 2, 2, c // 2).permute(0, 1, 3, 2, 4, 5)  # (B, H, 2, W, 2, C/2)
        x = x.reshape(b, 2 * h, 2 * w, c // 2)  # (B, 2H, 2W, C/2)
        return to_nchw(self.norm(x)).contiguous()  # (B, C/2, 2H, 2W)
