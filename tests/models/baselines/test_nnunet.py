"""The nnU-Net-style planner, deep-supervision outputs and their loss weighting."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from tascmt.models import create_model
from tascmt.models.baselines import deep_supervision_loss, ds_weights, plan_nnunet_2d
from tascmt.models.config import ModelConfigError


def final_map(plan, axis):
    return plan.patch_size[axis] // plan.divisible_by[axis]


def test_isotropic_512_plans_seven_pools_to_4px_with_features_capped_at_512():
    plan = plan_nnunet_2d((512, 512), (0.7, 0.7))
    assert plan.n_stages == 8 and plan.pools_per_axis == (7, 7)
    assert plan.strides == ((1, 1),) + ((2, 2),) * 7
    assert all(k == (3, 3) for k in plan.kernels)
    assert plan.features == (32, 64, 128, 256, 512, 512, 512, 512)
    assert final_map(plan, 0) == final_map(plan, 1) == 4
    assert plan_nnunet_2d((512, 512), (1, 1), max_features=480).features[-1] == 480


@pytest.mark.parametrize("size", [64, 96, 160, 256])
def test_pooling_stops_between_4_and_8_px(size):
    plan = plan_nnunet_2d((size, size), (1.0, 1.0))
    assert plan.pools_per_axis[0] == plan.pools_per_axis[1] == plan.n_stages - 1
    assert 4 <= final_map(plan, 0) < 8
    assert plan.patch_size == (size, size)


def test_anisotropic_spacing_pools_the_fine_axis_first_with_1d_kernels():
    plan = plan_nnunet_2d((256, 160), (1.0, 2.5))
    assert plan.kernels[0] == (3, 1)  # x is > 2x coarser: no 3-wide kernel along it yet
    assert plan.strides[1] == (2, 1)  # only y is pooled until the spacings are within 2x
    assert all(k == (3, 3) for k in plan.kernels[1:])
    assert plan.pools_per_axis == (6, 5)
    assert 4 <= final_map(plan, 0) < 8 and 4 <= final_map(plan, 1) < 8


def test_patch_is_padded_to_a_multiple_of_the_pooling():
    plan = plan_nnunet_2d((480, 200), (1.0, 1.0))
    for axis in (0, 1):
        assert plan.patch_size[axis] % plan.divisible_by[axis] == 0
        assert plan.patch_size[axis] >= (480, 200)[axis]
        assert plan.divisible_by[axis] == 2 ** plan.pools_per_axis[axis]


def test_planner_rejects_bad_arguments():
    with pytest.raises(ModelConfigError, match="spacing"):
        plan_nnunet_2d((64, 64), (1.0, 0.0))
    with pytest.raises(ModelConfigError, match="2-D"):
        plan_nnunet_2d((64, 64, 64), (1.0, 1.0, 1.0))


def test_ds_weights_halve_and_sum_to_one():
    w = ds_weights(4)
    assert math.isclose(sum(w), 1.0)
    assert all(math.isclose(a, 2 * b) for a, b in itertools.pairwise(w))


def test_deep_supervision_outputs_in_training_only_and_their_loss():
    model = create_model("nnunet_seg", "tiny")
    plan = model.plan
    x = torch.rand(1, 3, 64, 64)
    out = model.train()(x)
    assert len(out["seg_logits_ds"]) == plan.n_stages - 3  # nnU-Net gives the lowest output weight 0
    assert all(t.shape == (1, 3, 64, 64) for t in out["seg_logits_ds"])
    target = (torch.rand(1, 3, 64, 64) > 0.5).float()
    loss = deep_supervision_loss(F.binary_cross_entropy_with_logits, out, target)
    logits = [out["seg_logits"], *out["seg_logits_ds"]]
    w = ds_weights(len(logits))
    expected = sum(wi * F.binary_cross_entropy_with_logits(lg, target) for wi, lg in zip(w, logits))
    torch.testing.assert_close(loss, expected)
    assert set(model.eval()(x)) == {"seg_logits"}
    no_ds = create_model("nnunet_seg", "tiny", deep_supervision=False).train()
    assert set(no_ds(x)) == {"seg_logits"}


def test_nnunet_model_pads_inputs_to_its_pooling_multiple():
    model = create_model("nnunet_seg", "tiny", img_size=96).eval()
    assert model.pad_multiple == 16
    assert model(torch.rand(1, 3, 64, 96))["seg_logits"].shape == (1, 3, 64, 96)
