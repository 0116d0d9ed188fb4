"""ResFormer loss: composition, class weights, checks, and that it decreases when training on the synthetic
task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from tascmt.data.images2d.dataset import FolderDataset
from tascmt.losses.resformer import ResFormerLoss, class_weights
from tascmt.models import create_model


def test_class_weights_favour_rare_classes_and_average_one():
    labels = np.array([[1, 0], [1, 0], [1, 1], [0, 0]])
    w = class_weights(labels)
    assert w.mean() == pytest.approx(1.0) and w[1] == pytest.approx(3 * w[0])
    with pytest.raises(ValueError, match="non-empty"):
        class_weights(np.zeros((0, 2)))


def test_binary_loss_is_dice_plus_focal_and_cls_is_weighted():
    torch.manual_seed(0)
    loss = ResFormerLoss(seg_classes=1, class_weight=np.array([1.0, 3.0]))
    target = (torch.rand(2, 8, 8) > 0.5).long()
    perfect = (target[:, None].float() * 2 - 1) * 20  # confident and right
    cls_t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    good = loss(perfect, target, cls_t * 20 - 10, cls_t)
    bad = loss(-perfect, target, 10 - cls_t * 20, cls_t)
    assert good["seg"] < 0.01 < 1.5 < bad["seg"] and good["cls"] < 1e-3 < bad["cls"]
    expected = F.multilabel_soft_margin_loss(10 - cls_t * 20, cls_t, weight=torch.tensor([1.0, 3.0]))
    assert torch.isclose(bad["cls"], expected)
    assert torch.isclose(loss.combine(bad), bad["seg"] + 0.25 * bad["cls"])


def test_multiclass_loss_uses_softmax_over_class_indices():
    loss = ResFormerLoss(seg_classes=3)
    target = torch.randint(0, 3, (2, 8, 8))
    right = F.one_hot(target, 3).permute(0, 3, 1, 2).float() * 20
    wrong = F.one_hot((target + 1) % 3, 3).permute(0, 3, 1, 2).float() * 20
    cls = torch.zeros(2, 2)
    assert loss(right, target, cls, cls)["seg"] < 0.01 < 1.0 < loss(wrong, target, cls, cls)["seg"]
    with pytest.raises(ValueError, match="class indices"):
        loss(right, target[:, None], cls, cls)
    with pytest.raises(ValueError, match="cls target"):
        loss(right, target, cls, torch.zeros(2, 3))


@pytest.mark.parametrize("block", ["serial", "parallel"])
def test_loss_decreases_on_the_synthetic_task(isic_task, block):
    data = FolderDataset(isic_task, "train", img_size=32, in_chans=3, seg_classes=1, cls_classes=2)
    batch = next(iter(DataLoader(data, batch_size=4, shuffle=False)))
    model = create_model("resformer_mtl", size="tiny", img_size=32, block=block)
    loss_fn = ResFormerLoss(1, class_weights(data.labels_array()))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=3e-5)
    totals = []
    for _ in range(8):
        out = model(batch["x"])
        total = loss_fn.combine(loss_fn(out["seg_logits"], batch["y_seg"], out["cls_logits"], batch["y_cls"]))
        opt.zero_grad()
        total.backward()
        opt.step()
        totals.append(float(total.detach()))
    assert np.isfinite(totals).all()
    assert totals[-1] < 0.8 * totals[0], totals
