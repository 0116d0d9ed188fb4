"""Metrics of the ResFormer task family, pure NumPy.

Segmentation, per image and per foreground class: DSC = 2TP / (2TP + FP + FN), Jaccard = TP / (TP + FP + FN);
both are 1 when prediction and ground truth are both empty (docs/design.md §7 convention).
Classification, per class over a set of samples: accuracy = (TP + TN) / N, sensitivity = TP / (TP + FN),
specificity = TN / (TN + FP); an undefined ratio (no positives / no negatives) is NaN and the macro
average is the mean over the classes where it is defined.
"""

from __future__ import annotations

import math

import numpy as np


def seg_scores(
    pred: np.ndarray, gt: np.ndarray, classes: list[int] | tuple[int, ...]
) -> dict[str, np.ndarray]:
    """Per-class DSC and Jaccard of one label map.

    pred, gt: (H, W) integer label maps (0 = background). Returns {"dice": (C,), "jaccard": (C,)} for the
    given foreground ``classes``, in order.
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"seg_scores: prediction shape {pred.shape} differs from ground truth {gt.shape}")
    dice, jac = [], []
    for c in classes:
        p, g = pred == c, gt == c
        tp = float(np.count_nonzero(p & g))
        fp = float(np.count_nonzero(p & ~g))
        fn = float(np.count_nonzero(~p & g))
        denom = tp + fp + fn
        dice.append(1.0 if denom == 0 else 2 * tp / (2 * tp + fp + fn))
        jac.append(1.0 if denom == 0 else tp / denom)
    return {"dice": np.asarray(dice), "jaccard": np.asarray(jac)}


def confusion_counts(pred: np.ndarray, gt: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class TP, FP, FN, TN of multilabel predictions.

    pred, gt: (N, K) arrays in {0, 1} (booleans or numbers > 0.5).
    Returns {"tp", "fp", "fn", "tn"}: (K,) int64.
    """
    pred, gt = np.asarray(pred) > 0.5, np.asarray(gt) > 0.5
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(
            f"confusion_counts: need two (N, K) arrays of equal shape, got {pred.shape} and {gt.shape}"
        )
    return {
        "tp": np.count_nonzero(pred & gt, axis=0).astype(np.int64),
        "fp": np.count_nonzero(pred & ~gt, axis=0).astype(np.int64),
        "fn": np.count_nonzero(~pred & gt, axis=0).astype(np.int64),
        "tn": np.count_nonzero(~pred & ~gt, axis=0).astype(np.int64),
    }


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def cls_metrics_from_counts(counts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-class accuracy, sensitivity, specificity (K,) from :func:`confusion_counts` (NaN if undefined)."""
    tp, fp, fn, tn = (np.asarray(counts[k], dtype=np.float64) for k in ("tp", "fp", "fn", "tn"))
    return {
        "accuracy": _ratio(tp + tn, tp + fp + fn + tn),
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
    }


def macro(values: np.ndarray) -> float:
    """Mean over the defined (non-NaN) entries; NaN when none is defined."""
    values = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(values)
    return float(values[ok].mean()) if ok.any() else math.nan


def cls_metrics(pred: np.ndarray, gt: np.ndarray, names: list[str] | None = None) -> dict[str, float]:
    """Flat dict: ``{metric}_{name}`` per class and ``{metric}_macro`` for accuracy, sensitivity, specificity.

    pred, gt: (N, K) in {0, 1}; ``names`` default to ``class0``, ``class1``, ...
    """
    per_class = cls_metrics_from_counts(confusion_counts(pred, gt))
    k = np.asarray(gt).shape[1]
    names = names or [f"class{i}" for i in range(k)]
    if len(names) != k:
        raise ValueError(f"cls_metrics: {len(names)} class names for {k} classes")
    out: dict[str, float] = {}
    for metric, values in per_class.items():
        out.update({f"{metric}_{n}": float(v) for n, v in zip(names, values)})
        out[f"{metric}_macro"] = macro(values)
    return out


class MetricMeter:
    """Accumulates per-image segmentation scores and classification confusion counts over batches.

    ``update(seg_pred (B, H, W), seg_gt (B, H, W), cls_pred (B, K), cls_gt (B, K))`` with integer label maps
    and {0, 1} labels. ``to_vector()`` / ``add_vector()`` flatten the state (for an all-reduce across
    processes); ``summary(class_names)`` gives the mean DSC / Jaccard per foreground class and their mean
    (``dice``, ``jaccard``), and accuracy, sensitivity, specificity per class and macro.
    """

    def __init__(self, seg_classes: int, cls_classes: int):
        self.fg = list(range(1, max(seg_classes, 2)))  # foreground classes (binary: class 1)
        self.k = cls_classes
        self.n = 0
        self.dice = np.zeros(len(self.fg))
        self.jaccard = np.zeros(len(self.fg))
        self.counts = {key: np.zeros(cls_classes, dtype=np.int64) for key in ("tp", "fp", "fn", "tn")}

    def update(
        self, seg_pred: np.ndarray, seg_gt: np.ndarray, cls_pred: np.ndarray, cls_gt: np.ndarray
    ) -> None:
        for p, g in zip(seg_pred, seg_gt):
            s = seg_scores(p, g, self.fg)
            self.dice += s["dice"]
            self.jaccard += s["jaccard"]
            self.n += 1
        for key, v in confusion_counts(cls_pred, cls_gt).items():
            self.counts[key] += v

    def to_vector(self) -> np.ndarray:
        parts = [[self.n], self.dice, self.jaccard, *(self.counts[k] for k in ("tp", "fp", "fn", "tn"))]
        return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])

    def add_vector(self, vec: np.ndarray) -> None:
        """Add a vector from :meth:`to_vector` (another process's state)."""
        c, k = len(self.fg), self.k
        vec = np.asarray(vec, dtype=np.float64)
        self.n += round(vec[0])
        self.dice += vec[1 : 1 + c]
        self.jaccard += vec[1 + c : 1 + 2 * c]
        for i, key in enumerate(("tp", "fp", "fn", "tn")):
            start = 1 + 2 * c + i * k
            self.counts[key] += np.round(vec[start : start + k]).astype(np.int64)

    def summary(
        self, class_names: list[str] | None = None, seg_names: list[str] | None = None
    ) -> dict[str, float]:
        n = max(self.n, 1)
        dice, jac = self.dice / n, self.jaccard / n
        out: dict[str, float] = {"n": float(self.n), "dice": float(dice.mean()), "jaccard": float(jac.mean())}
        if len(self.fg) > 1:
            seg_names = seg_names or [f"class{c}" for c in self.fg]
            out.update({f"dice_{nm}": float(v) for nm, v in zip(seg_names, dice)})
            out.update({f"jaccard_{nm}": float(v) for nm, v in zip(seg_names, jac)})
        per_class = cls_metrics_from_counts(self.counts)
        names = class_names or [f"class{i}" for i in range(self.k)]
        for metric, values in per_class.items():
            out.update({f"{metric}_{nm}": float(v) for nm, v in zip(names, values)})
            out[f"{metric}_macro"] = macro(values)
        return out
