"""Segmentation loss over the three masks (Y1, Y2, Y3) of a triplet (docs/design.md §6)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tascmt.errors import ConfigError

SEG_LOSS_KINDS = ("bce", "dice_bce")


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0,
                   weight: torch.Tensor | None = None) -> torch.Tensor:
    """Soft Dice loss, one Dice per sample and frame, averaged.

    ``1 − (2·Σ p·t + smooth) / (Σ p + Σ t + smooth)`` with ``p = sigmoid(logits)``, sums over (H, W).
    ``smooth`` (default 1) keeps the ratio defined on empty frames: an empty target with a near-empty
    prediction gives a loss near 0, and a missed small object still gives a loss near 1.

    Args:
        logits: (B, F, H, W) raw scores. target: (B, F, H, W) in {0, 1}.
        weight: optional (B, 1, H, W) map in {0, 1}; pixels with 0 (tile padding) are left out.
    Returns: scalar, mean over B×F.
    """
    p = torch.sigmoid(logits)
    if weight is not None:
        p, target = p * weight, target * weight
    inter = (p * target).sum(dim=(-2, -1))  # (B, F)
    denom = p.sum(dim=(-2, -1)) + target.sum(dim=(-2, -1))  # (B, F)
    return (1.0 - (2.0 * inter + smooth) / (denom + smooth)).mean()


class SegLoss(nn.Module):
    """BCE-with-logits over all three masks, optionally plus soft Dice.

    ``kind="bce"`` (docs/design.md §6, the paper's): binary cross-entropy averaged over B×3×H×W.
    ``kind="dice_bce"``: that BCE plus :func:`soft_dice_loss` (per sample and frame, ``smooth``).

    Args:
        kind: "bce" or "dice_bce".
        smooth: Dice smoothing term (only used by "dice_bce").
    """

    def __init__(self, kind: str = "bce", smooth: float = 1.0):
        super().__init__()
        if kind not in SEG_LOSS_KINDS:
            raise ConfigError(f"seg loss kind must be one of {SEG_LOSS_KINDS}, got {kind!r}")
        if smooth <= 0:
            raise ConfigError(f"seg loss smooth must be > 0, got {smooth!r}")
        self.kind = kind
        self.smooth = float(smooth)

    def forward(self, logits: torch.Tensor, target: torch.Tensor,
                weight: torch.Tensor | None = None) -> torch.Tensor:
        """logits: (B, 3, H, W); target: (B, 3, H, W) in {0, 1}; optional weight (B, 1, H, W) in {0, 1}
        (0 = padding, left out of the mean) → scalar loss."""
        if logits.shape != target.shape:
            raise ValueError(f"SegLoss: logits shape {tuple(logits.shape)} != target shape "
                             f"{tuple(target.shape)}")
        target = target.to(logits.dtype)
        if weight is None:
            loss = F.binary_cross_entropy_with_logits(logits, target)
        else:
            w = weight.to(logits.dtype).expand_as(logits)
            bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
            loss = (bce * w).sum() / w.sum().clamp_min(1.0)
        if self.kind == "dice_bce":
            loss = loss + soft_dice_loss(logits, target, self.smooth, weight)
        return loss

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, smooth={self.smooth}"
