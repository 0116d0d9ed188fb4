"""Metrics of one triplet: the model's X̂2 and masks, and the linear-interpolation baseline (X1+X3)/2.

Produces one row of the per-triplet CSV (column names in `tascmt.evaluation.summary`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tascmt.evaluation import metrics as M
from tascmt.evaluation.metrics.seg import foreground_middle
from tascmt.evaluation.summary import FRAMES, SEG_KEYS, UNAVAILABLE


def interp_metrics(pred: np.ndarray, gt: np.ndarray, prefix: str = "") -> dict[str, float]:
    """PSNR, SSIM, EdgeSSIM of a (H, W) prediction (clipped to [0, 1]) against the (H, W) target."""
    p = np.clip(pred, 0.0, 1.0)
    return {f"{prefix}psnr": M.psnr(p, gt), f"{prefix}ssim": M.ssim(p, gt),
            f"{prefix}edge_ssim": M.edge_ssim(p, gt)}


def seg_row(prob3: np.ndarray, gt3: np.ndarray) -> dict[str, Any]:
    """Per-frame Dice/IoU/Precision/Recall, frame means, the foreground-middle-slice columns, TCS, TCS_fg
    and confusion counts.

    The frame means count an empty-and-empty frame as 1 (see `tascmt.evaluation.metrics.seg`);
    ``{dice,iou,precision,recall}_fg`` repeat the Y2 values when the ground-truth Y2 has foreground and are
    NaN otherwise, so their means over rows are the metrics on foreground middle slices.

    Args:
        prob3: (3, H, W) predicted probabilities of (Y1, Y2, Y3).
        gt3: (3, H, W) ground-truth masks in {0, 1}.
    """
    row: dict[str, Any] = {}
    for f, p, g in zip(FRAMES, prob3, gt3):
        counts = M.confusion(p, g)
        for k, v in M.metrics_from_counts(counts).items():
            row[f"{k}_{f}"] = v
        for k in ("tp", "fp", "fn"):
            row[f"{k}_{f}"] = counts[k]
    for k in SEG_KEYS:
        row[k] = float(np.mean([row[f"{k}_{f}"] for f in FRAMES]))
    row.update(foreground_middle({k: row[f"{k}_y2"] for k in SEG_KEYS}, row["tp_y2"] + row["fn_y2"] > 0))
    row["tcs"] = M.tcs(prob3)
    row["tcs_fg"] = M.tcs_fg(prob3, gt3)
    return row


def triplet_row(
    meta: dict[str, Any],
    x: np.ndarray,
    y_interp: np.ndarray,
    y_seg: np.ndarray,
    pred_interp: np.ndarray | None,
    pred_seg: np.ndarray | None,
    lpips_model: float | None = None,
    lpips_linear: float | None = None,
    lpips_enabled: bool = False,
) -> dict[str, Any]:
    """One CSV row.

    Args:
        meta: ``case_id, index, gap_mm, resampled, fg_middle`` of the triplet.
        x: (2, H, W) inputs [X1, X3] in [0, 1]; y_interp: (H, W) target X2; y_seg: (3, H, W) masks.
        pred_interp: (H, W) X̂2 or None (segmentation-only model).
        pred_seg: (3, H, W) probabilities or None (interpolation-only model).
        lpips_model / lpips_linear: LPIPS of the prediction / the baseline (when ``lpips_enabled``).
    """
    row: dict[str, Any] = dict(meta)
    linear = 0.5 * (x[0] + x[1])  # (H, W)
    if pred_interp is not None:
        row.update(interp_metrics(pred_interp, y_interp))
        row["lpips"] = lpips_model if lpips_enabled else UNAVAILABLE
    row.update(interp_metrics(linear, y_interp, prefix="linear_"))
    row["linear_lpips"] = lpips_linear if lpips_enabled else UNAVAILABLE
    if pred_seg is not None:
        row.update(seg_row(pred_seg, y_seg))
    return row
