"""Interpolation metrics on 2-D grey images in [0, 1] (docs/design.md §7): PSNR, SSIM, SSIM (uniform),
EdgeSSIM.

All functions take ``(pred, gt)`` — prediction first, as in ``seg_metrics`` — 2-D float arrays of the
same shape with intensities in [0, 1] (data range 1). Both are clipped to [0, 1] first (a residual head's
raw output may leave it; targets are clipped for loss and metrics, docs/design.md §2). SSIM needs both
sides ≥ 11 pixels (the 11×11 window). Non-finite values raise ValueError.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.filters import sobel, threshold_otsu
from skimage.metrics import structural_similarity

PSNR_CAP_DB = 100.0
SSIM_WIN = 11
EDGE_BORDER = 5


def _pair(pred, gt, name: str, min_side: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert: 2-D, equal shapes, finite → (pred, gt) as float64, both clipped to [0, 1]."""
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.ndim != 2 or g.ndim != 2:
        raise ValueError(f"{name}: expects 2-D images, got pred {p.shape} and gt {g.shape}")
    if p.shape != g.shape:
        raise ValueError(f"{name}: pred shape {p.shape} != gt shape {g.shape}")
    if min(p.shape) < min_side:
        raise ValueError(f"{name}: images must be at least {min_side}×{min_side}, got {p.shape}")
    if not (np.isfinite(p).all() and np.isfinite(g).all()):
        raise ValueError(f"{name}: pred or gt contains NaN/inf")
    return np.clip(p, 0.0, 1.0), np.clip(g, 0.0, 1.0)


def psnr(pred, gt) -> float:
    """PSNR in dB: ``10·log10(1 / MSE)`` with data range 1, capped at 100 dB (identical images → 100)."""
    p, g = _pair(pred, gt, "psnr")
    mse = float(np.mean((p - g) ** 2))
    if mse <= 10.0 ** (-PSNR_CAP_DB / 10.0):
        return PSNR_CAP_DB
    return 10.0 * math.log10(1.0 / mse)


def _ssim_gauss(p: np.ndarray, g: np.ndarray, full: bool = False):
    return structural_similarity(g, p, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, full=full)


def ssim(pred, gt) -> float:
    """SSIM of Wang et al.: Gaussian 11×11 window (σ 1.5), K1 0.01, K2 0.03, L 1, population covariance
    (``skimage.metrics.structural_similarity(gt, pred, data_range=1, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)``)."""
    p, g = _pair(pred, gt, "ssim", SSIM_WIN)
    return float(_ssim_gauss(p, g))


def ssim_uniform(pred, gt) -> float:
    """SSIM with the reference code's uniform 11×11 window: skimage's defaults (sample covariance) with
    ``win_size=11, data_range=1``."""
    p, g = _pair(pred, gt, "ssim_uniform", SSIM_WIN)
    return float(structural_similarity(g, p, data_range=1.0, win_size=SSIM_WIN))


def edge_mask(gt, border: int = EDGE_BORDER) -> np.ndarray:
    """(H, W) bool: GT Sobel magnitude > Otsu's threshold of that magnitude, ``border`` pixels excluded."""
    g = np.asarray(gt, dtype=np.float64)
    mag = sobel(g)
    mask = mag > threshold_otsu(mag) if np.ptp(mag) > 0 else np.zeros(g.shape, dtype=bool)
    if border > 0:
        mask[:border, :] = False
        mask[-border:, :] = False
        mask[:, :border] = False
        mask[:, -border:] = False
    return mask


def edge_ssim(pred, gt) -> float:
    """Mean of the Gaussian SSIM map (same parameters as :func:`ssim`) over :func:`edge_mask` pixels.

    Returns NaN when the mask is empty (a flat GT: no edges); callers skip such images
    (``np.nanmean``) and should report how many were skipped.
    """
    p, g = _pair(pred, gt, "edge_ssim", SSIM_WIN)
    mask = edge_mask(g)
    if not mask.any():
        return math.nan
    _, smap = _ssim_gauss(p, g, full=True)  # (H, W)
    return float(smap[mask].mean())
