"""Classical (non-learned) slice interpolation on whole volumes: Catmull-Rom cubic, with a linear fallback.

For a dropped slice k whose acquired neighbours are k - s and k + s (triplet step s), the cubic estimate
uses the four acquired slices k - 3s, k - s, k + s, k + 3s (equally spaced, 2s apart). Catmull-Rom
through p0..p3 evaluated half-way between p1 and p2 is

    X_k = (-p0 + 9 p1 + 9 p2 - p3) / 16,

which equals the cubic Lagrange interpolant there, hence exact for data cubic along z. Where k - 3s or
k + 3s lies outside the volume it falls back to linear, (p1 + p2) / 2.
"""

from __future__ import annotations

import numpy as np


def cubic_middle(volume_slices: np.ndarray, k: int, step: int = 1, axis: int = 0) -> np.ndarray:
    """Estimate slice ``k`` of ``volume_slices`` from its acquired neighbours (module docstring).

    volume_slices: an N-D array whose ``axis`` indexes slices (e.g. (Z, H, W)); slices k - step and
    k + step must exist (slice k itself is never read). Returns the estimated slice as float64, with the
    shape of one slice (e.g. (H, W)).
    """
    vol = np.asarray(volume_slices)
    if vol.ndim < 1:
        raise ValueError(f"cubic_middle: volume_slices must have a slice axis, got shape {vol.shape}")
    n = vol.shape[axis]
    if step < 1:
        raise ValueError(f"cubic_middle: step={step} must be >= 1")
    if not (0 <= k - step and k + step < n):
        raise ValueError(
            f"cubic_middle: slice k={k} needs neighbours k-{step} and k+{step} inside the {n} slices "
            f"of axis {axis}"
        )

    def sl(i: int) -> np.ndarray:
        return np.take(vol, i, axis=axis).astype(np.float64)

    p1, p2 = sl(k - step), sl(k + step)
    if k - 3 * step < 0 or k + 3 * step >= n:
        return 0.5 * (p1 + p2)
    p0, p3 = sl(k - 3 * step), sl(k + 3 * step)
    return (-p0 + 9.0 * p1 + 9.0 * p2 - p3) / 16.0


def has_cubic_support(n_slices: int, k: int, step: int = 1) -> bool:
    """Whether ``cubic_middle`` uses the cubic formula (True) or falls back to linear (False) for slice k."""
    return k - 3 * step >= 0 and k + 3 * step < n_slices


def cubic_midpoints(acquired: np.ndarray, axis: int = 0) -> np.ndarray:
    """All midpoints between consecutive acquired slices: n slices -> the n - 1 slices half-way between.

    Midpoint i (between acquired i and i + 1) uses acquired i - 1, i, i + 1, i + 2 with Catmull-Rom, or
    the linear average where i - 1 or i + 2 is missing (the first and last gap). Equivalent to
    ``cubic_middle`` on the interleaved volume with step 1. Returns float64 with ``axis`` of length n - 1.
    """
    a = np.moveaxis(np.asarray(acquired, dtype=np.float64), axis, 0)  # (n, ...)
    if a.shape[0] < 2:
        raise ValueError(
            f"cubic_midpoints: need at least 2 acquired slices along axis {axis}, got {a.shape[0]}"
        )
    p1, p2 = a[:-1], a[1:]  # (n-1, ...)
    mid = 0.5 * (p1 + p2)
    if a.shape[0] >= 4:
        mid[1:-1] = (-a[:-3] + 9.0 * a[1:-2] + 9.0 * a[2:-1] - a[3:]) / 16.0
    return np.moveaxis(mid, 0, axis)
