"""nnU-Net-style-Seg: a 2-D MONAI ``DynUNet`` planned with nnU-Net's 2-D rules, run on each of the 3 frames.

This is **nnU-Net-style**, not nnU-Net: the real ``nnunetv2`` package (its preprocessing, 1000-epoch
schedule, augmentation, 5-fold ensembling) is not run; label every table row "nnU-Net-style".

Planning (:func:`plan_nnunet_2d`, the rules of nnU-Net v2's ``get_pool_and_conv_props``): starting from the
patch size and spacing, repeatedly halve every axis whose map is still >= 2 * 4 px (min edge 4) and whose
spacing is within a factor 2 of the finest valid one (an axis left alone can pool only while >= 3 * 4 px);
a stage's conv kernel is 3 along axes within a factor 2 of the finest spacing, else 1 (and stays 3); the
bottleneck kernel is 3x3. Features start at 32 and double per stage, capped at **512** (nnU-Net v2's 2-D
cap; v1 and 3-D use 480 / 320). The patch is padded to a multiple of 2**pools per axis (inputs are
zero-padded to it and the output cropped back). Two conv-IN-LeakyReLU(0.01) per stage, as nnU-Net.

Deep supervision (nnU-Net): heads on the decoder outputs at full, 1/2, 1/4, ... resolution, with loss
weights 1/2**i normalised to sum 1, and nnU-Net's zero weight on the lowest decoder output (so that head is
not built here: ``deep_supr_num = n_stages - 3``). MONAI up-samples the head outputs to full resolution
(nnU-Net instead down-samples the target). In training mode ``forward`` returns
``{"seg_logits": (B, 3, H, W), "seg_logits_ds": [(B, 3, H, W), ...]}`` (highest resolution first);
in eval mode only ``"seg_logits"``. The loss must be
``deep_supervision_loss(seg_loss, outputs, target)`` = ``sum_i w_i * seg_loss(logits_i, target)`` over
``[seg_logits, *seg_logits_ds]`` with ``w = ds_weights(n)``; with our ``SegLoss(kind="dice_bce")`` this
is nnU-Net's Dice + CE with BCE in place of CE (binary masks). Without it the heads get no gradient.

``paper`` (512², spacing 1x1): 8 stages (7 pools to 4 px), features 32..512: 46.31 M parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from tascmt.models.baselines.base import FramewiseSegModel, Record
from tascmt.models.baselines.config import BaselineConfig, sized
from tascmt.models.config import ModelConfigError
from tascmt.models.registry import register_model

MAX_FEATURES_2D = 512  # nnU-Net v2 (ExperimentPlanner.UNet_max_features_2d); v1 used 480


@dataclass(frozen=True)
class NnUNetPlan:
    """Per-stage conv ``kernels`` and ``strides`` (stage 0 has stride 1), ``features``, and the patch padded
    to ``divisible_by`` (per axis, 2**pools)."""

    kernels: tuple[tuple[int, int], ...]
    strides: tuple[tuple[int, int], ...]
    features: tuple[int, ...]
    pools_per_axis: tuple[int, int]
    patch_size: tuple[int, int]
    divisible_by: tuple[int, int]

    @property
    def n_stages(self) -> int:
        return len(self.kernels)


def plan_nnunet_2d(
    patch_size: Sequence[int],
    spacing: Sequence[float],
    base_features: int = 32,
    max_features: int = MAX_FEATURES_2D,
    min_edge: int = 4,
    max_pools: int = 999,
) -> NnUNetPlan:
    """nnU-Net's 2-D topology rules (module docstring) for a (H, W) ``patch_size`` and (dy, dx) ``spacing``.

    >>> plan_nnunet_2d((64, 64), (1.0, 1.0)).strides
    ((1, 1), (2, 2), (2, 2), (2, 2), (2, 2))
    """
    if len(patch_size) != 2 or len(spacing) != 2:
        raise ModelConfigError(f"plan_nnunet_2d: patch_size={patch_size} and spacing={spacing} must be 2-D")
    if min(patch_size) < 1 or min(spacing) <= 0:
        raise ModelConfigError(f"plan_nnunet_2d: patch_size={patch_size} and spacing={spacing} must be > 0")
    size, sp = [int(s) for s in patch_size], [float(s) for s in spacing]
    kernel, pools = [1, 1], [0, 0]
    kernels: list[tuple[int, int]] = []
    strides: list[tuple[int, int]] = [(1, 1)]
    while True:
        axes = [a for a in (0, 1) if size[a] >= 2 * min_edge]
        if not axes:
            break
        finest = min(sp[a] for a in axes)
        axes = [a for a in axes if sp[a] / finest < 2 and pools[a] < max_pools]
        if not axes or (len(axes) == 1 and size[axes[0]] < 3 * min_edge):
            break
        kernel = [3 if k == 3 or sp[a] / min(sp) < 2 else 1 for a, k in enumerate(kernel)]
        kernels.append((kernel[0], kernel[1]))  # the kernel of the stage at the current resolution
        strides.append((2 if 0 in axes else 1, 2 if 1 in axes else 1))
        for a in axes:
            pools[a] += 1
            sp[a] *= 2
            size[a] = math.ceil(size[a] / 2)
    kernels.append((3, 3))  # bottleneck
    div = (2 ** pools[0], 2 ** pools[1])
    padded = tuple(math.ceil(int(p) / d) * d for p, d in zip(patch_size, div))
    features = tuple(min(base_features * 2**i, max_features) for i in range(len(kernels)))
    return NnUNetPlan(tuple(kernels), tuple(strides), features, (pools[0], pools[1]), padded, div)


def ds_weights(n_outputs: int) -> list[float]:
    """nnU-Net's deep-supervision loss weights 1, 1/2, 1/4, ... normalised to sum 1 (highest res first)."""
    w = [0.5**i for i in range(n_outputs)]
    return [v / sum(w) for v in w]


def deep_supervision_loss(
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    outputs: dict[str, torch.Tensor | list[torch.Tensor]],
    target: torch.Tensor,
) -> torch.Tensor:
    """``sum_i w_i * loss_fn(logits_i, target)`` over ``[outputs["seg_logits"], *outputs["seg_logits_ds"]]``
    (just ``loss_fn(seg_logits, target)`` when there are no deep-supervision outputs)."""
    logits = [outputs["seg_logits"], *outputs.get("seg_logits_ds", [])]
    return sum(w * loss_fn(lg, target) for w, lg in zip(ds_weights(len(logits)), logits))


def _unregister_alias(module: nn.Module, name: str) -> None:
    """Keep ``module.<name>`` as a plain attribute instead of a registered submodule.

    MONAI's DynUNet registers ``skip_layers``, a recursive chain over modules that are registered already
    (input block, downsamples, bottleneck, upsamples, heads), so every tensor appears twice in its
    ``state_dict`` and safetensors refuses to save aliased tensors. All parameters stay reachable (and
    move with ``.to()``) through the primary registrations; ``forward`` still uses the chain.
    """
    alias = module._modules.pop(name)
    object.__setattr__(module, name, alias)


@dataclass(frozen=True)
class NnUNetConfig(BaselineConfig):
    """Planned from (img_size, img_size) and ``spacing`` (dy, dx) in mm; ``deep_supervision`` as nnU-Net."""

    name: str = "nnunet_seg"
    tasks: tuple[str, ...] = ("seg",)
    input_frames: str = "triplet"
    spacing: tuple[float, ...] = (1.0, 1.0)
    base_features: int = 32
    max_features: int = MAX_FEATURES_2D
    deep_supervision: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.spacing) != 2 or min(self.spacing) <= 0:
            raise ModelConfigError(f"model config {self.name}: spacing={self.spacing} must be two values > 0")

    def plan(self) -> NnUNetPlan:
        return plan_nnunet_2d((self.img_size, self.img_size), self.spacing, self.base_features,
                              self.max_features)


SIZES = {
    "paper": {},
    "small": dict(img_size=128, base_features=16, max_features=256),
    "tiny": dict(img_size=64, base_features=4, max_features=32),
}


class NnUNetSeg(FramewiseSegModel):
    """x (B, 3, H, W) = [X1, X2, X3] -> {"seg_logits": (B, 3, H, W)[, "seg_logits_ds": [...]]}."""

    config_cls = NnUNetConfig

    def __init__(self, config: NnUNetConfig):
        super().__init__()
        from monai.networks.nets import DynUNet

        self.config = config
        self.plan = plan = config.plan()
        if plan.n_stages < 3:
            raise ModelConfigError(
                f"model config {config.name}: img_size={config.img_size} plans fewer than 3 "
                f"stages ({plan.n_stages}); use a larger img_size"
            )
        self.pad_multiple = max(plan.divisible_by)
        self.n_ds = max(plan.n_stages - 3, 1) if config.deep_supervision else 0
        self.net = DynUNet(
            spatial_dims=2,
            in_channels=1,
            out_channels=1,
            kernel_size=plan.kernels,
            strides=plan.strides,
            upsample_kernel_size=plan.strides[1:],
            filters=plan.features,
            norm_name=("INSTANCE", {"affine": True}),
            act_name=("leakyrelu", {"inplace": True, "negative_slope": 0.01}),
            deep_supervision=self.n_ds > 0,
            deep_supr_num=max(self.n_ds, 1),
        )
        _unregister_alias(self.net, "skip_layers")

    def _forward(self, x: torch.Tensor, record: Record | None) -> dict:
        y = super()._forward(x, record)["seg_logits"]  # (B, 3, H, W) or (B, 1+n, 3, H, W) when training
        if y.ndim == 4:
            return {"seg_logits": y}
        return {"seg_logits": y[:, 0], "seg_logits_ds": list(y[:, 1:].unbind(1))}


@register_model(NnUNetSeg)
def nnunet_seg(size: str) -> NnUNetConfig:
    """nnU-Net-style-Seg baseline (MONAI DynUNet planned with nnU-Net's 2-D rules) on each of the 3 frames."""
    return sized(NnUNetConfig, "nnunet_seg", size, SIZES)
