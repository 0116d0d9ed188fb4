"""``linear_interp``: the parameter-free reference X2 = (X1 + X3) / 2, registered so that evaluation and
benchmarks treat it like any model. ``trainable = False``: the trainer must skip training it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tascmt.models.baselines.base import BaselineModel, Record
from tascmt.models.baselines.config import BaselineConfig, sized
from tascmt.models.registry import register_model


@dataclass(frozen=True)
class LinearConfig(BaselineConfig):
    name: str = "linear_interp"


SIZES = {"paper": {}, "small": dict(img_size=128), "tiny": dict(img_size=64)}


class LinearInterp(BaselineModel):
    """x (B, 2, H, W) = [X1, X3] -> {"interp": (X1 + X3) / 2 (B, 1, H, W)}; any H, W; no parameters."""

    config_cls = LinearConfig
    trainable = False
    size_multiple = 1

    def __init__(self, config: LinearConfig):
        super().__init__()
        self.config = config

    def _forward(self, x: torch.Tensor, record: Record | None) -> dict[str, torch.Tensor]:
        return {"interp": 0.5 * (x[:, 0:1] + x[:, 1:2])}  # (B, 1, H, W)

    def interp_is_residual(self) -> bool:
        return True  # a zero correction: the tiled predictor returns full-resolution linear interpolation


@register_model(LinearInterp)
def linear_interp(size: str) -> LinearConfig:
    """Linear interpolation (X1 + X3) / 2: parameter-free reference, not trained."""
    return sized(LinearConfig, "linear_interp", size, SIZES)
