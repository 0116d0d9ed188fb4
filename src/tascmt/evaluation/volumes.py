"""Per-volume (3-D) segmentation metrics from triplet predictions, reassembled per patient.

Every triplet predicts masks for its three slices (k, k+s, k+2s), so a slice can be predicted several times
(as Y1 of one triplet, Y2 of another, Y3 of a third). `VolumeAccumulator` averages all probabilities given
for a slice, binarises the average at 0.5 and sums TP/FP/FN over the slices the triplets cover. This is a
per-volume score on the covered slices only; the whole-volume evaluation (docs/design.md §7) runs
``predict_volume`` (`tascmt.evaluation.volume_eval`).

Memory stays bounded: triplets arrive case by case in increasing slice order (the cache's order), so a
slice is finalised (reduced to its counts) as soon as a triplet starting after it arrives, and a case when
the next case starts. A prediction for an already finalised slice (out-of-order input) is counted as an
extra slice and reported in ``late_predictions``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

_COUNT_KEYS = ("tp", "fp", "fn", "gt_voxels", "pred_voxels", "n_slices")


class VolumeAccumulator:
    """Collects per-slice foreground probabilities and ground truths per case, finalising slices early."""

    def __init__(self) -> None:
        self._pending: dict[str, dict[int, list[Any]]] = defaultdict(dict)  # case → k → [sum, n, gt]
        self._done: dict[str, set[int]] = defaultdict(set)
        self._counts: dict[str, dict[str, int]] = {}
        self._current: str | None = None
        self.late_predictions = 0

    def add(self, case_id: str, slices: Sequence[int], probs: np.ndarray, gts: np.ndarray) -> None:
        """Add one triplet: ``slices`` (3 ints), ``probs`` (3, H, W) in [0, 1], ``gts`` (3, H, W) {0, 1}."""
        if probs.shape != gts.shape or probs.ndim != 3 or len(slices) != probs.shape[0]:
            raise ValueError(f"expected {len(slices)} slices with probs/gts of equal shape (n, H, W), "
                             f"got probs {probs.shape}, gts {gts.shape}")
        case = str(case_id)
        if case != self._current:
            if self._current is not None:
                self._finalise(self._current, None)
            self._current = case
        self._counts.setdefault(case, dict.fromkeys(_COUNT_KEYS, 0))
        pending = self._pending[case]
        for k, p, g in zip(slices, probs, gts):
            k = int(k)
            if k in self._done[case]:
                self.late_predictions += 1
                self._count(case, p.astype(np.float32), 1, g > 0.5)
            elif k in pending:
                pending[k][0] += p.astype(np.float32)
                pending[k][1] += 1
            else:
                pending[k] = [p.astype(np.float32).copy(), 1, g > 0.5]
        self._finalise(case, min(int(k) for k in slices))

    def _finalise(self, case: str, before: int | None) -> None:
        """Reduce the pending slices of ``case`` below ``before`` (all when None) to counts."""
        pending = self._pending[case]
        for k in sorted(pending):
            if before is not None and k >= before:
                break
            psum, count, gt = pending.pop(k)
            self._count(case, psum, count, gt)
            self._done[case].add(k)

    def _count(self, case: str, psum: np.ndarray, count: int, gt: np.ndarray) -> None:
        pred = psum / count > 0.5
        c = self._counts[case]
        c["tp"] += int(np.logical_and(pred, gt).sum())
        c["fp"] += int(np.logical_and(pred, ~gt).sum())
        c["fn"] += int(np.logical_and(~pred, gt).sum())
        c["gt_voxels"] += int(gt.sum())
        c["pred_voxels"] += int(pred.sum())
        c["n_slices"] += 1

    def __len__(self) -> int:
        return len(self._counts)

    def results(self) -> dict[str, Any]:
        """``{"cases": {case: {dice, iou, n_slices, gt_voxels, pred_voxels}}, "mean_dice", "mean_iou"}``.

        Both-empty volumes score 1 (docs/design.md §7 convention)."""
        for case in list(self._pending):
            self._finalise(case, None)
        cases: dict[str, dict[str, Any]] = {}
        for case, c in sorted(self._counts.items()):
            den = 2 * c["tp"] + c["fp"] + c["fn"]
            cases[case] = {
                "dice": 1.0 if den == 0 else 2 * c["tp"] / den,
                "iou": 1.0 if den == 0 else c["tp"] / (c["tp"] + c["fp"] + c["fn"]),
                "n_slices": c["n_slices"], "gt_voxels": c["gt_voxels"], "pred_voxels": c["pred_voxels"],
            }
        dices = [c["dice"] for c in cases.values()]
        ious = [c["iou"] for c in cases.values()]
        return {
            "source": "triplet predictions reassembled per case (covered slices only)",
            "cases": cases,
            "mean_dice": float(np.mean(dices)) if dices else None,
            "mean_iou": float(np.mean(ious)) if ious else None,
            "late_predictions": self.late_predictions,
        }
