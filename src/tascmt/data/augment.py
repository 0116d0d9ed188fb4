"""Paired augmentation for triplets (train only; docs/design.md §2).

TorchIO style: :func:`sample_params` draws the random parameters from a seeded generator, then
:func:`apply_params` applies a deterministic transform. One affine (h-flip p = 0.5, v-flip p = 0.5, rotation
U(−15°, 15°), scale U(0.9, 1.1)) moves all six planes — the three image frames bilinearly, the three masks
with nearest neighbour, zero fill outside — so frames and masks keep identical geometry. Then Gaussian noise
N(0, 0.01²) is added to the two INPUT frames only and they are clamped to [0, 1]; the target stays clean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentParams:
    """One sample's augmentation: flips, rotation (degrees), isotropic scale, and the noise seed."""

    hflip: bool
    vflip: bool
    angle_deg: float
    scale: float
    noise_seed: int


@dataclass(frozen=True)
class AugmentConfig:
    p_hflip: float = 0.5
    p_vflip: float = 0.5
    max_rotation_deg: float = 15.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    noise_std: float = 0.01


def sample_params(rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()) -> AugmentParams:
    """Draw one sample's parameters from ``rng`` (the only source of randomness)."""
    return AugmentParams(
        hflip=bool(rng.random() < cfg.p_hflip),
        vflip=bool(rng.random() < cfg.p_vflip),
        angle_deg=float(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg)),
        scale=float(rng.uniform(*cfg.scale_range)),
        noise_seed=int(rng.integers(0, 2**31 - 1)),
    )


def affine_theta(params: AugmentParams) -> torch.Tensor:
    """(1, 2, 3) ``affine_grid`` matrix: output normalised coords → input coords (flip, rotate, zoom)."""
    a = math.radians(params.angle_deg)
    rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
    flip = torch.diag(torch.tensor([-1.0 if params.hflip else 1.0, -1.0 if params.vflip else 1.0],
                                   dtype=torch.float64))  # x = width axis, y = height axis
    lin = rot @ flip / params.scale  # scale > 1 zooms in
    theta = torch.zeros(1, 2, 3, dtype=torch.float64)
    theta[0, :, :2] = lin
    return theta.float()


def warp(planes: torch.Tensor, params: AugmentParams, mode: str) -> torch.Tensor:
    """Apply the affine of ``params`` to (C, H, W) planes; ``mode`` "bilinear" or "nearest"; zero fill."""
    c, h, w = planes.shape
    theta = affine_theta(params)
    grid = F.affine_grid(theta, [1, c, h, w], align_corners=False)  # (1, H, W, 2)
    out = F.grid_sample(planes[None].float(), grid, mode=mode, padding_mode="zeros", align_corners=False)
    return out[0].to(planes.dtype)  # (C, H, W)


def apply_params(
    x: torch.Tensor, y_interp: torch.Tensor, y_seg: torch.Tensor, params: AugmentParams,
    noise_std: float = 0.01, valid: torch.Tensor | None = None,
) -> tuple[torch.Tensor, ...]:
    """Deterministic paired transform.

    Args:
        x: (2, H, W) input frames [X1, X3] in [0, 1].
        y_interp: (1, H, W) target frame X2.
        y_seg: (3, H, W) masks [Y1, Y2, Y3] in {0, 1}.
        valid: optional (1, H, W) map of real (non-padding) pixels, moved like the masks; the fill outside
            the moved image is invalid.
    Returns:
        the transformed (x, y_interp, y_seg), and ``valid`` when given; noise only on ``x`` (then clamped to
        [0, 1]).
    """
    n_in = x.shape[0]  # 2 (X1, X3), or 3 with the flow midpoint
    images = warp(torch.cat([x, y_interp], dim=0), params, "bilinear")  # (n_in + 1, H, W)
    planes = y_seg if valid is None else torch.cat([y_seg, valid], dim=0)
    masks = warp(planes, params, "nearest")  # (3 or 4, H, W)
    x_out, y_out = images[:n_in], images[n_in:]
    if noise_std > 0:
        gen = torch.Generator().manual_seed(params.noise_seed)
        x_out = (x_out + noise_std * torch.randn(x_out.shape, generator=gen)).clamp(0.0, 1.0)
    if valid is None:
        return x_out, y_out, masks
    return x_out, y_out, masks[:3], masks[3:]


class PairedAugment:
    """Callable used by :class:`tascmt.data.dataset.TripletDataset`: ``aug(x, y_interp, y_seg, rng)``."""

    def __init__(self, cfg: AugmentConfig = AugmentConfig()):
        self.cfg = cfg

    def __call__(self, x, y_interp, y_seg, rng: np.random.Generator, valid=None):
        return apply_params(x, y_interp, y_seg, sample_params(rng, self.cfg), self.cfg.noise_std, valid)
