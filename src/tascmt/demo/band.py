"""Intensity-band segmentation baseline: foreground = voxels whose (normalised) intensity lies in [low, high].

The band is the one that maximises the pooled (global) Dice over the training slices. It is the obvious
non-learned competitor for the demo's grey-matter task: grey matter sits between CSF and white matter in a
T1 image, so a band does much better than a single threshold, but partial-volume voxels and deep grey
nuclei keep it well short of perfect.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class IntensityBand:
    """A fitted band on intensities in [0, 1]: histogram bins ``lo_bin..hi_bin`` of ``bins`` equal bins,
    i.e. ``low <= v < high`` (with ``v = 1`` counted in the last bin)."""

    lo_bin: int
    hi_bin: int
    bins: int
    train_dice: float

    @property
    def low(self) -> float:
        return self.lo_bin / self.bins

    @property
    def high(self) -> float:
        return (self.hi_bin + 1) / self.bins

    def predict(self, image: np.ndarray) -> np.ndarray:
        """(…) float image in [0, 1] → (…) uint8 mask."""
        idx = _bin_index(np.asarray(image, dtype=np.float64), self.bins)
        return ((idx >= self.lo_bin) & (idx <= self.hi_bin)).astype(np.uint8)


def _bin_index(image: np.ndarray, bins: int) -> np.ndarray:
    return np.clip((np.clip(image, 0.0, 1.0) * bins).astype(np.int64), 0, bins - 1)


def fit_intensity_band(pairs: Iterable[tuple[np.ndarray, np.ndarray]], bins: int = 128) -> IntensityBand:
    """Choose the band with the best pooled Dice over ``(image, mask)`` pairs.

    Args:
        pairs: iterable of (image, mask) with image values in [0, 1] (values outside are clipped) and a
            binary mask of the same shape.
        bins: histogram resolution; bands are unions of consecutive bins, so the search is exact over the
            ``bins * (bins + 1) / 2`` candidate bands (O(bins²) with cumulative sums).

    Returns:
        The :class:`IntensityBand` with the highest Dice (ties: the narrowest, then the lowest).
    """
    fg = np.zeros(bins, dtype=np.float64)
    bg = np.zeros(bins, dtype=np.float64)
    seen = False
    for image, mask in pairs:
        image = np.asarray(image, dtype=np.float64)
        mask = np.asarray(mask) > 0
        if image.shape != mask.shape:
            raise ValueError(f"image shape {image.shape} != mask shape {mask.shape}")
        idx = _bin_index(image, bins)
        fg += np.bincount(idx[mask], minlength=bins)
        bg += np.bincount(idx[~mask], minlength=bins)
        seen = True
    if not seen:
        raise ValueError("fit_intensity_band needs at least one (image, mask) pair")
    total_fg = fg.sum()
    cfg = np.concatenate([[0.0], np.cumsum(fg)])
    cbg = np.concatenate([[0.0], np.cumsum(bg)])
    lo, hi = np.triu_indices(bins)  # band = bins lo..hi inclusive
    tp = cfg[hi + 1] - cfg[lo]
    fp = cbg[hi + 1] - cbg[lo]
    denom = 2 * tp + fp + (total_fg - tp)
    dice = np.where(denom > 0, 2 * tp / np.maximum(denom, 1e-12), 1.0)
    best = np.flatnonzero(dice == dice.max())
    best = best[np.lexsort((lo[best], hi[best] - lo[best]))][0]
    return IntensityBand(lo_bin=int(lo[best]), hi_bin=int(hi[best]), bins=bins, train_dice=float(dice[best]))
