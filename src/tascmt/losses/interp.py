"""Interpolation loss: the paper's hybrid L1 + MSE on the predicted middle frame (docs/design.md §6)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tascmt.errors import ConfigError


class HybridInterpLoss(nn.Module):
    """``alpha·L1 + (1 − alpha)·MSE``, both means over all pixels (docs/design.md §6: alpha = 0.4).

    The target is clipped to [0, 1] first (docs/design.md §2: normalisation comes from the input frames only,
    so the target may leave [0, 1]); the prediction is not clipped, so a residual head keeps its
    gradient everywhere.

    Args:
        alpha: weight of the L1 term, in [0, 1]. The reference ``Dataset.py`` used 0.7, ``train.py`` 0.4.
    """

    def __init__(self, alpha: float = 0.4):
        super().__init__()
        if not 0.0 <= float(alpha) <= 1.0:
            raise ConfigError(f"loss alpha must be in [0, 1], got {alpha!r}")
        self.alpha = float(alpha)

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                weight: torch.Tensor | None = None) -> torch.Tensor:
        """pred, target: (B, 1, H, W) (any equal shapes); optional weight of the same shape in {0, 1}
        (0 = tile padding, left out of both means) → scalar loss."""
        if pred.shape != target.shape:
            raise ValueError(f"HybridInterpLoss: pred shape {tuple(pred.shape)} != target shape "
                             f"{tuple(target.shape)}")
        target = target.clamp(0.0, 1.0)
        if weight is None:
            return self.alpha * F.l1_loss(pred, target) + (1.0 - self.alpha) * F.mse_loss(pred, target)
        w = weight.to(pred.dtype).expand_as(pred)
        n = w.sum().clamp_min(1.0)
        d = pred - target
        return (self.alpha * (d.abs() * w).sum() + (1.0 - self.alpha) * (d * d * w).sum()) / n

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"
