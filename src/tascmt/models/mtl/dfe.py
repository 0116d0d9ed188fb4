"""Dilated feature enhancement (DFE) of a skip connection (ResFormer, Bui et al.; SPEC §9).

Branches Conv1x1 and Conv3x3 with dilations (6, 12, 18) (each C -> C/2, BN, ReLU) -> concat ->
Conv3x3 (-> C, BN) plus a Conv1x1-BN shortcut -> ReLU -> spatial attention (CBAM style:
cat(mean_C, max_C) -> Conv7x7 -> sigmoid -> rescale). Shape preserving: (B, C, H, W) -> (B, C, H, W).

Small maps: a 3x3 tap at dilation d >= the map side only ever reads zero padding, so its weights never
learn. ``capped_dilations`` limits each dilation to half the map side (at least 1); the models apply it
with the skip's side at the nominal ``img_size`` (fixed at construction, so MAC counters see plain
``nn.Conv2d`` modules). E.g. ``paper`` (512²): S3 32² -> (6, 12, 16), S2 64² and S1 128² -> (6, 12, 18);
``small`` (128²): S3 8² -> (4, 4, 4), S2 16² -> (6, 8, 8), S1 32² -> (6, 12, 16).
"""

from __future__ import annotations

import torch
from torch import nn


def capped_dilations(dilations: tuple[int, ...], side: int) -> tuple[int, ...]:
    """Each dilation limited to ``max(1, side // 2)`` for a map of side ``side``."""
    cap = max(1, side // 2)
    return tuple(min(int(d), cap) for d in dilations)


def conv_bn_relu(c_in: int, c_out: int, k: int = 1, dilation: int = 1) -> nn.Sequential:
    """Conv(k, dilation, 'same' padding, no bias) -> BN -> ReLU. (B, c_in, H, W) -> (B, c_out, H, W)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, padding=dilation * (k - 1) // 2, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SpatialAttention(nn.Module):
    """cat(mean over C, max over C) -> Conv7x7 -> sigmoid -> x * map. (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, kernel: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)  # (B, 2, H, W)
        return x * torch.sigmoid(self.conv(pooled))  # (B, C, H, W)


class DFE(nn.Module):
    """Dilated feature enhancement; see the module docstring. ``dilations`` are used as given."""

    def __init__(self, channels: int, dilations: tuple[int, ...] = (6, 12, 18)):
        super().__init__()
        if channels < 1 or not dilations or min(dilations) < 1:
            raise ValueError(f"DFE channels={channels} and dilations={dilations} must be positive")
        self.dilations = tuple(int(d) for d in dilations)
        width = max(channels // 2, 1)
        self.branches = nn.ModuleList(
            [conv_bn_relu(channels, width, 1)] + [conv_bn_relu(channels, width, 3, d) for d in self.dilations]
        )
        self.fuse = nn.Sequential(
            nn.Conv2d(width * (1 + len(self.dilations)), channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.shortcut = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.relu = nn.ReLU(inplace=True)
        self.attn = SpatialAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        feats = torch.cat([b(x) for b in self.branches], dim=1)  # (B, C/2 * (1 + n_dil), H, W)
        return self.attn(self.relu(self.fuse(feats) + self.shortcut(x)))
