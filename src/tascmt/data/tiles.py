"""Tiles of native-resolution slices: the one padding rule and the tile draws of training.

The network is not size-consistent (TALA's and CTCI's spectra grow with the map size and feed BatchNorm
statistics learnt at the training size), so on a cache prepared with the ``native`` in-plane policy it only
ever sees S×S tiles, S = the model's size (docs/design.md §5):

- training cuts one random S×S tile per sample, the same tile from the three frames and the three masks;
- validation cuts one fixed tile per triplet (seeded by the triplet's index only), so early stopping
  compares like with like from epoch to epoch;
- ``predict`` and evaluation run overlapping S×S tiles over whole slices and blend them
  (:mod:`tascmt.inference.tiling`).

A slice smaller than S along an axis is padded with zeros *after* normalisation, centred (``pad_amounts``),
in training and prediction alike; the padded pixels are marked invalid and left out of both losses.
"""

from __future__ import annotations

import numpy as np


def pad_amounts(hw: tuple[int, int], size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, bottom), (left, right)) zero padding that brings an H×W slice to at least size×size, centred.

    Axes already at least ``size`` long get no padding.
    """
    out = []
    for n in hw:
        d = max(0, int(size) - int(n))
        out.append((d // 2, d - d // 2))
    return out[0], out[1]


def pad_planes(arr: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad the last two axes of ``arr`` (…, H, W) to at least (size, size) with :func:`pad_amounts`."""
    (t, b), (l, r) = pad_amounts(arr.shape[-2:], size)
    if not (t or b or l or r):
        return arr
    widths = [(0, 0)] * (arr.ndim - 2) + [(t, b), (l, r)]
    return np.pad(arr, widths, mode="constant", constant_values=0)


def tile_origin(hw: tuple[int, int], size: int, rng: np.random.Generator,
                centre: tuple[int, int] | None = None) -> tuple[int, int]:
    """Top-left corner of an S×S tile inside an H×W slice (already padded to at least S×S).

    Uniform over every valid position, or, with ``centre`` = (row, col), the tile that puts that pixel as
    close to its middle as the slice allows.
    """
    h, w = int(hw[0]), int(hw[1])
    if h < size or w < size:
        raise ValueError(f"slice {h}×{w} is smaller than the tile {size}×{size}; pad it first")
    if centre is None:
        return int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    r0 = min(max(int(centre[0]) - size // 2, 0), h - size)
    c0 = min(max(int(centre[1]) - size // 2, 0), w - size)
    return r0, c0


def random_foreground_pixel(mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int] | None:
    """A uniformly drawn (row, col) with ``mask`` > 0, or None when the mask is empty."""
    idx = np.flatnonzero(np.asarray(mask).ravel())
    if idx.size == 0:
        return None
    k = int(idx[int(rng.integers(0, idx.size))])
    return divmod(k, mask.shape[-1])
