"""UNet++-Seg: MONAI ``BasicUNetPlusPlus`` (Zhou et al., "UNet++", 2018), 2-D, run on each of the 3 frames.

``paper`` uses the published UNet++ widths 32/64/128/256/512 (up-path width 32): 9.12 M parameters.
Deep supervision is off (the UNet++ default for accurate mode), so MONAI's extra 1x1 output heads
``net.final_conv_0_1/0_2/0_3`` exist but are unused (they receive no gradient; listed in the tests).
Normalisation is MONAI's default instance norm with affine parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tascmt.models.baselines.base import FramewiseSegModel
from tascmt.models.baselines.config import BaselineConfig, sized
from tascmt.models.config import ModelConfigError
from tascmt.models.registry import register_model

UNUSED_PARAMETERS = tuple(f"net.final_conv_0_{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias"))


@dataclass(frozen=True)
class UNetPPConfig(BaselineConfig):
    """``features``: 5 encoder widths + the width of the last up-sampling path (MONAI's convention)."""

    name: str = "unetpp_seg"
    tasks: tuple[str, ...] = ("seg",)
    input_frames: str = "triplet"
    features: tuple[int, ...] = (32, 64, 128, 256, 512, 32)

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.features) != 6:
            raise ModelConfigError(f"model config {self.name}: features={self.features} needs 6 entries")


SIZES = {
    "paper": {},
    "small": dict(img_size=128, features=(16, 16, 32, 64, 128, 16)),
    "tiny": dict(img_size=64, features=(4, 4, 8, 8, 16, 4)),
}


class UNetPPSeg(FramewiseSegModel):
    """x (B, 3, H, W) = [X1, X2, X3] -> {"seg_logits": (B, 3, H, W)}; H, W multiples of 32."""

    config_cls = UNetPPConfig
    unused_parameters = UNUSED_PARAMETERS

    def __init__(self, config: UNetPPConfig):
        super().__init__()
        from monai.networks.nets import BasicUNetPlusPlus

        self.config = config
        self.net = BasicUNetPlusPlus(spatial_dims=2, in_channels=1, out_channels=1, features=config.features)

    def run_net(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net(frames)[0]  # MONAI returns a list of outputs; [0] is the final one


@register_model(UNetPPSeg)
def unetpp_seg(size: str) -> UNetPPConfig:
    """UNet++-Seg baseline (MONAI BasicUNetPlusPlus, 2-D) on each of the three frames."""
    return sized(UNetPPConfig, "unetpp_seg", size, SIZES)
