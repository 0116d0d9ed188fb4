"""ResFormer loss (docs/design.md §9): (Dice + focal, γ = 2) for segmentation + 0.25 × class-weighted
multilabel soft-margin loss for classification. Dice and focal terms are MONAI's ``DiceLoss`` /
``FocalLoss``."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CLS_WEIGHT = 0.25


def class_weights(labels: np.ndarray) -> np.ndarray:
    """Per-class weights for the multilabel soft-margin loss from training labels (N, K) in {0, 1}.

    ``w_k ∝ 1 / p_k`` with ``p_k`` the positive fraction of class k (at least one positive counted),
    normalised to mean 1, so rare classes weigh more. Returns (K,) float32.
    """
    labels = np.asarray(labels, dtype=np.float64)
    if labels.ndim != 2 or labels.shape[0] == 0:
        raise ValueError(f"class_weights: labels must be a non-empty (N, K) array, got shape {labels.shape}")
    pos = np.maximum(labels.sum(axis=0), 1.0) / labels.shape[0]  # (K,)
    w = 1.0 / pos
    return (w / w.mean()).astype(np.float32)


class ResFormerLoss(nn.Module):
    """``L = L_seg + cls_weight · L_cls`` with ``L_seg = Dice + focal(γ)`` and ``L_cls`` the class-weighted
    multilabel soft-margin loss.

    Args:
        seg_classes: 1 = binary (sigmoid Dice + sigmoid focal); >= 2 = softmax Dice + softmax focal over
            one-hot targets (background included as class 0).
        class_weight: (K,) weights of the classification classes, or None for equal weights.
        gamma: focal exponent (2). cls_weight: weight of the classification term (0.25).

    ``forward(seg_logits (B, S, H, W), seg_target (B, H, W) int64 class indices, cls_logits (B, K),
    cls_target (B, K) float in {0, 1})`` returns ``{"seg": L_seg, "cls": L_cls}``; :meth:`combine` sums them.
    """

    def __init__(
        self,
        seg_classes: int,
        class_weight: torch.Tensor | np.ndarray | None = None,
        gamma: float = 2.0,
        cls_weight: float = CLS_WEIGHT,
    ):
        super().__init__()
        from monai.losses import DiceLoss, FocalLoss

        self.seg_classes, self.cls_weight = seg_classes, cls_weight
        if seg_classes == 1:
            self.dice = DiceLoss(sigmoid=True)
            self.focal = FocalLoss(gamma=gamma)
        else:
            self.dice = DiceLoss(softmax=True, to_onehot_y=True)
            self.focal = FocalLoss(gamma=gamma, use_softmax=True, to_onehot_y=True)
        weight = (
            None if class_weight is None else torch.as_tensor(np.asarray(class_weight), dtype=torch.float32)
        )
        self.register_buffer("class_weight", weight)

    def forward(
        self,
        seg_logits: torch.Tensor,
        seg_target: torch.Tensor,
        cls_logits: torch.Tensor,
        cls_target: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        if seg_target.shape != (seg_logits.shape[0], *seg_logits.shape[2:]):
            raise ValueError(
                f"ResFormerLoss: seg target {tuple(seg_target.shape)} does not match logits "
                f"{tuple(seg_logits.shape)} (expected (B, H, W) class indices)"
            )
        if cls_target.shape != cls_logits.shape:
            raise ValueError(
                f"ResFormerLoss: cls target {tuple(cls_target.shape)} does not match logits "
                f"{tuple(cls_logits.shape)}"
            )
        seg_logits = seg_logits.float()
        target = seg_target[:, None].to(seg_logits.dtype)  # (B, 1, H, W) indices (0/1 when binary)
        l_seg = self.dice(seg_logits, target) + self.focal(seg_logits, target)
        l_cls = F.multilabel_soft_margin_loss(
            cls_logits.float(), cls_target.float(), weight=self.class_weight
        )
        return {"seg": l_seg, "cls": l_cls}

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """``L_seg + cls_weight · L_cls``."""
        return losses["seg"] + self.cls_weight * losses["cls"]
