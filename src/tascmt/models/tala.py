"""TALA: spatial + frequency attention on an encoder stage output (docs/design.md §3).

Parameters: 1.375C^2 + C.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tascmt.models.layers.helpers import float32_block


class TALA(nn.Module):
    """``d = down(F)``; ``F_spatial = conv1(d) + conv3(d)``; ``F_freq = down(GELU(|FFT2(F)|))`` (shared
    ``down`` weights, FFT ``norm="backward"``, no fftshift); ``F_fusion = fuse(SiLU(BN(cat)))``;
    output ``F_fusion * sigmoid(SiLU(GAP(F)))``. All convs without bias; m = C / reduction.

    The block computes in fp32 whatever the input dtype and returns the input dtype. The caller decides
    between the residual form ``F + TALA(F)`` (default) and replacement ``TALA(F)`` (reference code).
    """

    def __init__(self, dim: int, reduction: int = 4):
        super().__init__()
        m = max(1, dim // reduction)
        self.down = nn.Conv2d(dim, m, 1, bias=False)
        self.spatial1 = nn.Conv2d(m, m, 1, bias=False)
        self.spatial3 = nn.Conv2d(m, m, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(2 * m)
        self.fuse = nn.Conv2d(2 * m, dim, 1, bias=False)
        self.gap = nn.AdaptiveAvgPool2d(1)  # a module (not .mean) so that thop counts it like the reference

    @float32_block
    def forward(self, x: torch.Tensor, record: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W). ``record`` (optional) receives ``freq`` (B, m, H, W)."""
        d = self.down(x)  # (B, m, H, W)
        f_spatial = self.spatial1(d) + self.spatial3(d)  # (B, m, H, W)
        mag = torch.fft.fft2(x, dim=(-2, -1), norm="backward").abs()  # (B, C, H, W)
        f_freq = self.down(F.gelu(mag))  # (B, m, H, W)
        fused = self.fuse(F.silu(self.bn(torch.cat([f_spatial, f_freq], dim=1))))  # (B, C, H, W)
        alpha = torch.sigmoid(F.silu(self.gap(x)))  # (B, C, 1, 1)
        if record is not None:
            record["freq"] = f_freq
        return fused * alpha
