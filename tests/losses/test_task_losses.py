from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tascmt.errors import ConfigError
from tascmt.losses import HybridInterpLoss, SegLoss, soft_dice_loss


def test_hybrid_is_weighted_l1_plus_mse():
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(2, 1, 8, 8, generator=g)
    target = torch.rand(2, 1, 8, 8, generator=g)
    for alpha in (0.0, 0.4, 0.7, 1.0):
        expected = alpha * (pred - target).abs().mean() + (1 - alpha) * ((pred - target) ** 2).mean()
        assert torch.allclose(HybridInterpLoss(alpha)(pred, target), expected, atol=1e-7)


def test_hybrid_clips_target_not_prediction():
    target = torch.tensor([[[[1.5, -0.5]]]])
    pred = torch.tensor([[[[1.0, 0.0]]]], requires_grad=True)
    loss = HybridInterpLoss(0.4)(pred, target)
    assert loss.item() == pytest.approx(0.0, abs=1e-9)  # clipped target == prediction
    pred2 = torch.tensor([[[[1.2, -0.2]]]], requires_grad=True)  # outside [0,1]: still has gradient
    HybridInterpLoss(0.4)(pred2, target).backward()
    assert pred2.grad is not None and torch.all(pred2.grad.abs() > 0)


def test_hybrid_rejects_bad_alpha_and_shapes():
    with pytest.raises(ConfigError, match="alpha"):
        HybridInterpLoss(1.5)
    with pytest.raises(ValueError, match="shape"):
        HybridInterpLoss()(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))


def test_seg_bce_matches_torch_over_all_masks():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 8, 8, generator=g)
    target = (torch.rand(2, 3, 8, 8, generator=g) > 0.5).float()
    expected = F.binary_cross_entropy(torch.sigmoid(logits), target)
    assert torch.allclose(SegLoss("bce")(logits, target), expected, atol=1e-6)


def test_dice_bce_adds_soft_dice():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 3, 8, 8, generator=g)
    target = (torch.rand(2, 3, 8, 8, generator=g) > 0.5).float()
    p = torch.sigmoid(logits)
    per = 1 - (2 * (p * target).sum((2, 3)) + 1) / (p.sum((2, 3)) + target.sum((2, 3)) + 1)
    assert torch.allclose(soft_dice_loss(logits, target), per.mean(), atol=1e-6)
    total = SegLoss("dice_bce")(logits, target)
    assert torch.allclose(total, SegLoss("bce")(logits, target) + per.mean(), atol=1e-6)


def test_soft_dice_extremes():
    target = torch.zeros(1, 3, 4, 4)
    target[:, :, :2] = 1
    perfect = (target * 2 - 1) * 50.0  # saturated logits equal to the target
    assert soft_dice_loss(perfect, target).item() == pytest.approx(0.0, abs=1e-6)
    empty = torch.zeros(1, 3, 4, 4)
    assert soft_dice_loss(torch.full((1, 3, 4, 4), -50.0), empty).item() == pytest.approx(0.0, abs=1e-6)
    assert soft_dice_loss(-perfect, target).item() > 0.9


def test_seg_loss_rejects_unknown_kind():
    with pytest.raises(ConfigError, match="dice_bce"):
        SegLoss("focal")
