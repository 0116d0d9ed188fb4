"""Swin UNETR-Seg: MONAI ``SwinUNETR`` (Hatamizadeh et al., 2022) with ``spatial_dims=2``, per frame.

MONAI 1.6 removed the ``img_size`` argument (the network works at any size divisible by
``patch_size * 2**5`` = 32); our ``img_size`` is only the nominal training size. ``paper`` is the published
configuration (feature size 48, depths 2/2/2/2, heads 3/6/12/24, window 7): 25.14 M parameters in 2-D.
MONAI requires ``feature_size`` divisible by 12, so ``tiny`` (feature size 12, depth 1, one head per
stage) has 1.43 M parameters, above the ~200 k of the other tiny variants. Needs ``einops``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tascmt.models.baselines.base import FramewiseSegModel
from tascmt.models.baselines.config import BaselineConfig, sized
from tascmt.models.config import ModelConfigError
from tascmt.models.registry import register_model


@dataclass(frozen=True)
class SwinUNETRConfig(BaselineConfig):
    name: str = "swinunetr_seg"
    tasks: tuple[str, ...] = ("seg",)
    input_frames: str = "triplet"
    feature_size: int = 48
    depths: tuple[int, ...] = (2, 2, 2, 2)
    heads: tuple[int, ...] = (3, 6, 12, 24)
    window: int = 7

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_lengths(depths=self.depths, heads=self.heads)
        if self.feature_size % 12:
            raise ModelConfigError(
                f"model config {self.name}: feature_size={self.feature_size} must be divisible by 12 (MONAI)"
            )


SIZES = {
    "paper": {},
    "small": dict(img_size=128, feature_size=24, depths=(2, 2, 2, 2), heads=(3, 6, 12, 24)),
    "tiny": dict(img_size=64, feature_size=12, depths=(1, 1, 1, 1), heads=(1, 1, 1, 1)),
}


class SwinUNETRSeg(FramewiseSegModel):
    """x (B, 3, H, W) = [X1, X2, X3] -> {"seg_logits": (B, 3, H, W)}; H, W multiples of 32."""

    config_cls = SwinUNETRConfig

    def __init__(self, config: SwinUNETRConfig):
        super().__init__()
        from monai.networks.nets import SwinUNETR

        self.config = config
        self.net = SwinUNETR(
            in_channels=1,
            out_channels=1,
            feature_size=config.feature_size,
            depths=config.depths,
            num_heads=config.heads,
            window_size=config.window,
            spatial_dims=2,
        )


@register_model(SwinUNETRSeg)
def swinunetr_seg(size: str) -> SwinUNETRConfig:
    """Swin UNETR-Seg baseline (MONAI SwinUNETR, spatial_dims=2) on each of the three frames."""
    return sized(SwinUNETRConfig, "swinunetr_seg", size, SIZES)
