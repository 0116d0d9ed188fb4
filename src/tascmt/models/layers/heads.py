"""PixelShuffle output heads (docs/design.md §3): H/4 features -> full-resolution logits."""

from __future__ import annotations

import torch
from torch import nn


class PixelShuffleHead(nn.Module):
    """Conv3x3(C, 4C) -> PS(2) -> GELU -> Conv3x3(C, 4C) -> PS(2) -> GELU -> Conv3x3(C, out).

    Returns logits (no sigmoid). (B, C, h, w) -> (B, out, 4h, 4w). Parameters at C=96: 665,185 (out=1),
    666,915 (out=3).
    """

    def __init__(self, dim: int, out_chans: int):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, 4 * dim, 3, padding=1)
        self.ps1 = nn.PixelShuffle(2)
        self.act1 = nn.GELU()
        self.conv2 = nn.Conv2d(dim, 4 * dim, 3, padding=1)
        self.ps2 = nn.PixelShuffle(2)
        self.act2 = nn.GELU()
        self.conv3 = nn.Conv2d(dim, out_chans, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.ps1(self.conv1(x)))  # (B, C, 2h, 2w)
        x = self.act2(self.ps2(self.conv2(x)))  # (B, C, 4h, 4w)
        return self.conv3(x)  # (B, out, 4h, 4w)
