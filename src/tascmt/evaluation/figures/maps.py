"""Interpretability maps from ``model.forward_intermediates``, normalised to [0, 1], blue-to-red."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tascmt.evaluation.figures._common import _check_2d, _plt, _save

HEATMAP = "jet"


def to_map2d(feature: np.ndarray) -> np.ndarray:
    """Reduce an intermediate map to (H, W) in [0, 1]: mean |value| over channels, then min-max.

    Accepts (H, W), (C, H, W) or (1, C, H, W) (the first sample of a batch is used).
    """
    arr = np.asarray(feature, dtype=float)
    while arr.ndim > 3:
        arr = arr[0]
    if arr.ndim == 3:
        arr = np.abs(arr).mean(axis=0)  # (H, W)
    if arr.ndim != 2:
        raise ValueError(f"intermediate map must be (H, W), (C, H, W) or (B, C, H, W), got shape {arr.shape}")
    arr = np.nan_to_num(arr)
    lo, hi = float(arr.min()), float(arr.max())
    return (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)


def plot_interpretability(
    maps: Mapping[str, np.ndarray],
    out_png: str | os.PathLike,
    image: np.ndarray | None = None,
    cmap: str = HEATMAP,
    max_cols: int = 4,
) -> Path:
    """Interpretability maps (cross-task attention, edge reconstruction, frequency features, boundary
    attention, ...): each reduced with `to_map2d`, shown in [0, 1] with a blue-to-red colour map.

    Args:
        maps: ``{name: array}`` with arrays (H, W), (C, H, W) or (B, C, H, W); sizes may differ.
        image: optional (H, W) input slice shown as the first panel.
    """
    if not maps:
        raise ValueError("plot_interpretability needs at least one map")
    plt = _plt()
    panels: list[tuple[str, np.ndarray, bool]] = []
    if image is not None:
        panels.append(("input", _check_2d("image", image), False))
    panels += [(name, to_map2d(m), True) for name, m in maps.items()]
    cols = min(max_cols, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.3 * cols, 3.2 * nrows), squeeze=False)
    im = None
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= len(panels):
            ax.axis("off")
            continue
        name, arr, heat = panels[k]
        if heat:
            im = ax.imshow(arr, cmap=cmap, vmin=0, vmax=1, interpolation="bilinear")
        else:
            ax.imshow(arr, cmap="gray")
        ax.set_title(name, fontsize=8)
    if im is not None:
        fig.colorbar(im, ax=list(axes.flat), fraction=0.025, pad=0.02, label="normalised response")
    return _save(fig, out_png)


#: (pattern in the map name, figure label) in display order for `select_interpretability_maps`.
INTERPRETABILITY_KINDS = (
    ("mstaf.attn", "cross-task attention"),
    ("mstaf.freq", "MSTAF frequency features"),
    ("tala", "TALA frequency features"),
    ("ctci.align", "CTCI alignment"),
    ("ctci.gate", "CTCI boundary gate"),
)


def select_interpretability_maps(maps: Mapping[str, np.ndarray], max_maps: int = 6) -> dict[str, np.ndarray]:
    """Pick one map per kind in `INTERPRETABILITY_KINDS` (the highest-resolution one, e.g. the last decoder
    stage) from ``model.forward_intermediates``'s dict; falls back to the largest maps when none match.

    Maps that are not spatial (fewer than 2 dimensions, or 1×1) are ignored. Keys of the result are
    ``"<label>\n(<original name>)"`` (two-line panel titles).
    """
    spatial = {k: np.asarray(v) for k, v in maps.items()
               if np.asarray(v).ndim >= 2 and min(np.asarray(v).shape[-2:]) > 1}

    def area(k: str) -> int:
        return int(np.prod(spatial[k].shape[-2:]))

    out: dict[str, np.ndarray] = {}
    for pattern, label in INTERPRETABILITY_KINDS:
        keys = [k for k in spatial if pattern in k]
        if keys:
            best = max(keys, key=lambda k: (area(k), keys.index(k)))
            out[f"{label}\n({best})"] = spatial[best]
    if not out:
        for k in sorted(spatial, key=area, reverse=True)[:max_maps]:
            out[k] = spatial[k]
    return dict(list(out.items())[:max_maps])
