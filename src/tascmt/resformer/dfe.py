"""Dilated feature enhancement (DFE) of a skip connection and the spatial attention it ends with (SPEC §9)."""

from __future__ import annotations

import torch
from torch import nn

from tascmt.resformer.blocks import conv_bn_relu


class SpatialAttention(nn.Module):
    """CBAM-style spatial attention: cat(mean_C, max_C) -> Conv 7x7 -> sigmoid -> rescale every position.

    x: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, kernel: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)  # (B, 2, H, W)
        return x * torch.sigmoid(self.conv(pooled))


class DFE(nn.Module):
    """Branches Conv1x1 and Conv3x3 with dilations (6, 12, 18) (each C -> C, BN-ReLU) -> concat ->
    Conv3x3 (4C -> C, BN), plus a Conv1x1-BN shortcut, then ReLU and spatial attention (66·C² weights).

    x: (B, C, H, W) -> (B, C, H, W). Dilations larger than the map only see zero padding beyond the border.
    """

    def __init__(self, channels: int, dilations: tuple[int, ...] = (6, 12, 18)):
        super().__init__()
        width = channels
        self.branches = nn.ModuleList(
            [conv_bn_relu(channels, width, k=1)]
            + [conv_bn_relu(channels, width, 3, dilation=d) for d in dilations]
        )
        n = width * (1 + len(dilations))
        self.fuse = nn.Sequential(nn.Conv2d(n, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        self.shortcut = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.relu = nn.ReLU(inplace=True)
        self.attn = SpatialAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = torch.cat([b(x) for b in self.branches], dim=1)  # (B, width * (1 + n_dil), H, W)
        y = self.relu(self.fuse(feats) + self.shortcut(x))
        return self.attn(y)
