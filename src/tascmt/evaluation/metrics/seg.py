"""Segmentation metrics and temporal consistency.

Masks are arrays of any shape (a 2-D frame, a (3, H, W) triplet or a 3-D volume); predictions are
binarised with ``> threshold`` (0.5) and GT with ``> 0.5``. Empty-mask conventions:

* both prediction and GT empty → Dice = IoU = Precision = Recall = 1;
* exactly one empty → Dice = IoU = 0;
* GT empty → Recall = 1; prediction empty → Precision = 1.

Because of the first rule a frame average over mostly empty slices rewards predicting nothing (an
all-background predictor scores 1 on every empty-and-empty frame). Two summaries cannot be gamed that way:

* **foreground middle slices**: the Ŷ2 metrics over the triplets whose ground-truth Y2 has foreground
  (``*_fg`` keys of :func:`seg_metrics_frames`, NaN on the other triplets); predicting nothing scores
  Dice = IoU = Recall = 0 there (Precision = 1 by the empty-prediction rule);
* **pooled** ("global") metrics: :func:`confusion` gives TP/FP/FN/TN counts; :func:`aggregate_counts` sums
  counts (per frame, per volume or over the test set) and applies the same conventions to the sums, so an
  empty frame adds nothing unless something is predicted on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

COUNT_KEYS = ("tp", "fp", "fn", "tn")


def _binary_pair(pred, gt, threshold: float, name: str) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred)
    g = np.asarray(gt)
    if p.shape != g.shape:
        raise ValueError(f"{name}: pred shape {p.shape} != gt shape {g.shape}")
    return p > threshold, g > 0.5


def confusion(pred, gt, threshold: float = 0.5) -> dict[str, int]:
    """Pixel counts ``{"tp", "fp", "fn", "tn"}`` (Python ints) of binarised pred vs GT (same shapes)."""
    p, g = _binary_pair(pred, gt, threshold, "confusion")
    tp = int(np.count_nonzero(p & g))
    fp = int(np.count_nonzero(p & ~g))
    fn = int(np.count_nonzero(~p & g))
    return {"tp": tp, "fp": fp, "fn": fn, "tn": int(p.size) - tp - fp - fn}


def metrics_from_counts(counts: Mapping[str, int]) -> dict[str, float]:
    """``{"dice", "iou", "precision", "recall"}`` from one set of counts, with the empty conventions."""
    tp, fp, fn = (int(counts[k]) for k in ("tp", "fp", "fn"))
    pred_empty = tp + fp == 0
    gt_empty = tp + fn == 0
    if pred_empty and gt_empty:
        return {"dice": 1.0, "iou": 1.0, "precision": 1.0, "recall": 1.0}
    return {
        "dice": 2 * tp / (2 * tp + fp + fn),  # 0 when exactly one is empty (tp = 0)
        "iou": tp / (tp + fp + fn),
        "precision": 1.0 if pred_empty else tp / (tp + fp),
        "recall": 1.0 if gt_empty else tp / (tp + fn),
    }


def aggregate_counts(counts: Mapping[str, int] | Iterable[Mapping[str, int]]) -> dict[str, float]:
    """Sum one or many count dicts (from :func:`confusion`) and return their metrics.

    Per-volume metrics: sum the counts of a volume's slices; global metrics: sum over the test set.
    Returns ``{"dice", "iou", "precision", "recall"}`` plus the summed counts.
    """
    items = [counts] if isinstance(counts, Mapping) else list(counts)
    if not items:
        raise ValueError("aggregate_counts: no counts given")
    total = {k: sum(int(c[k]) for c in items) for k in COUNT_KEYS}
    return {**metrics_from_counts(total), **total}


def seg_metrics(pred, gt, threshold: float = 0.5) -> dict[str, float]:
    """Dice, IoU, Precision, Recall of one mask pair (any equal shapes) with the empty conventions."""
    return metrics_from_counts(confusion(pred, gt, threshold))


def seg_metrics_frames(pred3, gt3, threshold: float = 0.5) -> dict[str, float]:
    """Per-triplet metrics: each of the 3 frames separately, then averaged over the frames.

    Args: pred3, gt3: (3, H, W) masks/probabilities for (Y1, Y2, Y3).
    Returns: ``dice, iou, precision, recall`` (frame means; an empty-and-empty frame counts 1),
    ``dice_y2, iou_y2, precision_y2, recall_y2`` (the middle frame alone) and ``dice_fg, iou_fg,
    precision_fg, recall_fg``: the middle frame's metrics when its ground truth has foreground, else NaN
    (averaging them with ``np.nanmean`` gives the foreground-middle-slice metrics).
    """
    p = np.asarray(pred3)
    g = np.asarray(gt3)
    if p.ndim != 3 or p.shape[0] != 3 or p.shape != g.shape:
        raise ValueError(f"seg_metrics_frames: expects (3, H, W) pred and gt, got {p.shape} and {g.shape}")
    per = [seg_metrics(p[f], g[f], threshold) for f in range(3)]
    out = {k: float(np.mean([m[k] for m in per])) for k in per[0]}
    out.update({f"{k}_y2": v for k, v in per[1].items()})
    out.update(foreground_middle(per[1], bool((g[1] > 0.5).any())))
    return out


def foreground_middle(y2_metrics: Mapping[str, float], gt_y2_has_fg: bool) -> dict[str, float]:
    """``{dice_fg, iou_fg, precision_fg, recall_fg}``: the Ŷ2 metrics when the GT Y2 has foreground, else
    NaN (the triplet is not a foreground middle slice and is left out of their means)."""
    keys = ("dice", "iou", "precision", "recall")
    return {f"{k}_fg": float(y2_metrics[k]) if gt_y2_has_fg else math.nan for k in keys}


def _check_triplet(masks3, name: str) -> np.ndarray:
    m = np.asarray(masks3)
    if m.ndim < 2 or m.shape[0] != 3:
        raise ValueError(f"{name}: expects (3, ...) masks for (Y1, Y2, Y3), got shape {m.shape}")
    return m


def _tcs_residual(b: np.ndarray) -> np.ndarray:
    """|Ŷ2 − (Ŷ1 + Ŷ3)/2| per pixel of binarised (3, ...) masks."""
    b = b.astype(np.float64)
    return np.abs(b[1] - (b[0] + b[2]) / 2.0)


def tcs(masks3, threshold: float = 0.5) -> float:
    """Temporal consistency score ``1 − mean|Ŷ2 − (Ŷ1+Ŷ3)/2|`` over all pixels of the binarised
    (3, H, W) prediction. Background-dominated: ≥ 1 − (fraction of pixels foreground in any frame)."""
    m = _check_triplet(masks3, "tcs")
    return 1.0 - float(_tcs_residual(m > threshold).mean())


def tcs_fg(masks3, gt3, threshold: float = 0.5) -> float:
    """TCS restricted to the pixels that are foreground in any predicted or any GT frame.

    Returns NaN when that union is empty (nothing to measure; callers skip it with ``np.nanmean``).
    """
    m = _check_triplet(masks3, "tcs_fg")
    g = _check_triplet(gt3, "tcs_fg")
    if m.shape != g.shape:
        raise ValueError(f"tcs_fg: pred shape {m.shape} != gt shape {g.shape}")
    b = m > threshold
    region = b.any(axis=0) | (g > 0.5).any(axis=0)
    if not region.any():
        return math.nan
    return 1.0 - float(_tcs_residual(b)[region].mean())
