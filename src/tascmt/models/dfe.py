"""Dilated feature enhancement (DFE) of a skip connection and the spatial attention it ends with.

The one DFE of the project, at the full width C of the ResFormer authors' code. It is used by the
ResFormer + DFE model (`tascmt.models.resformer.model`) and by the ``mtl_cross_concat`` multi-task baseline
(`tascmt.models.mtl.cross_concat`).

Branches Conv1x1 and Conv3x3 with dilations (6, 12, 18) (each C -> C, BN-ReLU) -> concat (4C) ->
Conv3x3 (4C -> C, BN), plus a Conv1x1-BN shortcut -> ReLU -> spatial attention (CBAM style:
cat(mean_C, max_C) -> Conv7x7 -> sigmoid -> rescale). Shape preserving: (B, C, H, W) -> (B, C, H, W);
65·C² + 12·C + 98 parameters with three dilations.

Small maps: a 3x3 tap at dilation d >= the map side only ever reads zero padding, so its weights never
learn. :func:`capped_dilations` limits each dilation to half the map side (at least 1); a model that wants
the cap applies it with the skip's side at its nominal input size, fixed at construction, so the convs stay
plain ``nn.Conv2d`` modules. E.g. at 512² input with skips at H/4 .. H/16: the H/16 map (32²) gets
(6, 12, 16), the H/8 and H/4 maps keep (6, 12, 18).
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn_relu(c_in: int, c_out: int, k: int, dilation: int = 1) -> nn.Sequential:
    """Conv(k, dilation, 'same' padding, no bias) -> BN -> ReLU (the ResFormer blocks' unit; defined here so
    that this module needs torch only). (B, c_in, H, W) -> (B, c_out, H, W)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, padding=dilation * (k - 1) // 2, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def capped_dilations(dilations: tuple[int, ...], side: int) -> tuple[int, ...]:
    """Each dilation limited to ``max(1, side // 2)`` for a map of side ``side``."""
    cap = max(1, side // 2)
    return tuple(min(int(d), cap) for d in dilations)


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
    """Dilated feature enhancement at full width (see the module docstring); ``dilations`` used as given.

    x: (B, C, H, W) -> (B, C, H, W). Dilations larger than the map only see zero padding beyond the border
    (use :func:`capped_dilations` to avoid that).
    """

    def __init__(self, channels: int, dilations: tuple[int, ...] = (6, 12, 18)):
        super().__init__()
        if channels < 1 or not dilations or min(dilations) < 1:
            raise ValueError(f"DFE channels={channels} and dilations={dilations} must be positive")
        self.dilations = tuple(int(d) for d in dilations)
        width = channels
        self.branches = nn.ModuleList(
            [_conv_bn_relu(channels, width, 1)]
            + [_conv_bn_relu(channels, width, 3, dilation=d) for d in self.dilations]
        )
        n = width * (1 + len(self.dilations))
        self.fuse = nn.Sequential(nn.Conv2d(n, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        self.shortcut = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.relu = nn.ReLU(inplace=True)
        self.attn = SpatialAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = torch.cat([b(x) for b in self.branches], dim=1)  # (B, C * (1 + n_dil), H, W)
        y = self.relu(self.fuse(feats) + self.shortcut(x))
        return self.attn(y)
