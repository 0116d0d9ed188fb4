"""Qualitative image figures: interpolation rows and segmentation overlays (TP / FN / FP colours)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from tascmt.evaluation.figures._common import _check_2d, _plt, _save

TP_COLOUR = (0.1, 0.8, 0.1)  # green: correct
FN_COLOUR = (0.1, 0.4, 1.0)  # blue: missed
FP_COLOUR = (1.0, 0.15, 0.1)  # red: false


def plot_interpolation_rows(
    samples: Sequence[Mapping[str, np.ndarray]],
    out_png: str | os.PathLike,
    titles: Sequence[str] | None = None,
    error_max: float | None = None,
) -> Path:
    """Qualitative interpolation: one row per sample with X1 | X2 (GT) | X̂2 | X3 | |X̂2 − X2|.

    Args:
        samples: dicts with ``x1``, ``gt``, ``pred``, ``x3``, each (H, W) in [0, 1].
        titles: an optional label per row (e.g. "case_003 #12, PSNR 31.2 dB").
        error_max: upper end of the error colour scale (default: the largest error over all rows).
    """
    if not samples:
        raise ValueError("plot_interpolation_rows needs at least one sample")
    plt = _plt()
    rows = []
    for i, s in enumerate(samples):
        gt = _check_2d(f"samples[{i}]['gt']", s["gt"])
        row = [_check_2d(f"samples[{i}]['{k}']", s[k], gt.shape) for k in ("x1", "gt", "pred", "x3")]
        rows.append((row, np.abs(row[2] - row[1])))
    emax = error_max or max(float(e.max()) for _, e in rows) or 1.0
    n = len(rows)
    fig, axes = plt.subplots(n, 5, figsize=(12.5, 2.6 * n), squeeze=False)
    heads = ("input 1", "ground truth", "prediction", "input 2", "|error|")
    for r, (imgs, err) in enumerate(rows):
        for c, img in enumerate(imgs):
            axes[r][c].imshow(img, cmap="gray", vmin=0, vmax=1)
        im = axes[r][4].imshow(err, cmap="inferno", vmin=0, vmax=emax)
        fig.colorbar(im, ax=axes[r][4], fraction=0.046, pad=0.02)
        for c in range(5):
            axes[r][c].set_xticks([])
            axes[r][c].set_yticks([])
            if r == 0:
                axes[r][c].set_title(heads[c], fontsize=10)
        if titles is not None and r < len(titles):
            axes[r][0].set_ylabel(titles[r], fontsize=8)
    return _save(fig, out_png)


def overlay_rgb(image: np.ndarray, pred: np.ndarray, gt: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """(H, W, 3) RGB: grey image, TP/FN/FP pixels blended in `TP_COLOUR`, `FN_COLOUR`, `FP_COLOUR`."""
    img = _check_2d("image", image)
    p = _check_2d("pred", pred, img.shape) > 0.5
    g = _check_2d("gt", gt, img.shape) > 0.5
    lo, hi = float(img.min()), float(img.max())
    grey = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    rgb = np.repeat(grey[..., None], 3, axis=2)  # (H, W, 3)
    for mask, colour in ((p & g, TP_COLOUR), (g & ~p, FN_COLOUR), (p & ~g, FP_COLOUR)):
        rgb[mask] = (1 - alpha) * rgb[mask] + alpha * np.asarray(colour)
    return rgb


def plot_segmentation_overlay(
    images: Sequence[np.ndarray] | np.ndarray,
    preds: Sequence[np.ndarray] | np.ndarray,
    gts: Sequence[np.ndarray] | np.ndarray,
    out_png: str | os.PathLike,
    titles: Sequence[str] | None = None,
) -> Path:
    """Segmentation overlays, one panel per slice: correct (green), missed (blue), false (red) pixels.

    ``images``, ``preds`` (probabilities or {0,1}) and ``gts`` are (H, W) arrays or equal-length lists of
    them.
    """
    if isinstance(images, np.ndarray) and images.ndim == 2:
        images, preds, gts = [images], [preds], [gts]
    if not (len(images) == len(preds) == len(gts)) or not len(images):
        raise ValueError("need equal non-zero numbers of images/preds/gts, "
                         f"got {len(images)}/{len(preds)}/{len(gts)}")
    plt = _plt()
    from matplotlib.patches import Patch

    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 3.7), squeeze=False)
    for i in range(n):
        ax = axes[0][i]
        ax.imshow(overlay_rgb(images[i], preds[i], gts[i]))
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None and i < len(titles):
            ax.set_title(titles[i], fontsize=9)
    handles = [Patch(color=TP_COLOUR, label="correct (TP)"), Patch(color=FN_COLOUR, label="missed (FN)"),
               Patch(color=FP_COLOUR, label="false (FP)")]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=9, frameon=False)
    fig.subplots_adjust(bottom=0.12)
    return _save(fig, out_png)
