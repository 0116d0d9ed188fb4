"""Cheap per-batch validation metrics on tensors (the full evaluation lives in ``tascmt.evaluation``).

Conventions follow docs/design.md §7: PSNR with data range 1 on predictions and targets clipped to [0, 1],
capped at 100 dB; Dice on ``sigmoid(logits) > 0.5`` against ``target > 0.5`` per image and frame, 1 when
both masks are empty, averaged over the three frames.
"""

from __future__ import annotations

import torch

PSNR_CAP_DB = 100.0


def psnr_per_sample(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """pred, target: (B, 1, H, W) → (B,) PSNR in dB (both clipped to [0, 1], capped at 100 dB)."""
    p = pred.detach().float().clamp(0, 1)
    t = target.detach().float().clamp(0, 1)
    mse = (p - t).pow(2).flatten(1).mean(dim=1)  # (B,)
    psnr = 10.0 * torch.log10(1.0 / mse.clamp_min(1e-30))
    return psnr.clamp(max=PSNR_CAP_DB)


def dice_per_sample(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """logits, target: (B, F, H, W) → (B,) Dice averaged over the F frames (empty/empty = 1)."""
    pred = logits.detach().float() > 0  # sigmoid(l) > 0.5  ⇔  l > 0
    gt = target.detach().float() > 0.5
    inter = (pred & gt).flatten(2).sum(dim=2).float()  # (B, F)
    sizes = pred.flatten(2).sum(dim=2).float() + gt.flatten(2).sum(dim=2).float()  # (B, F)
    dice = torch.where(sizes > 0, 2 * inter / sizes.clamp_min(1), torch.ones_like(sizes))
    return dice.mean(dim=1)
