from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.metrics import DiceMetric, MeanIoU

from tascmt.evaluation.metrics import (
    aggregate_counts,
    confusion,
    seg_metrics,
    seg_metrics_frames,
    tcs,
    tcs_fg,
)


def _random_masks(seed, shape=(6, 24, 24)):
    rng = np.random.default_rng(seed)
    prob = rng.random(shape)
    gt = (rng.random(shape) > 0.6).astype(np.uint8)
    return prob, gt


def test_dice_iou_match_monai_on_random_masks():
    prob, gt = _random_masks(0)
    pred_bin = torch.from_numpy(prob > 0.5).float()[:, None]  # (B, 1, H, W)
    gt_t = torch.from_numpy(gt).float()[:, None]  # (B, 1, H, W)
    dice_ref = DiceMetric(include_background=True, reduction="none")(pred_bin, gt_t)[:, 0]
    iou_ref = MeanIoU(include_background=True, reduction="none")(pred_bin, gt_t)[:, 0]
    for b in range(prob.shape[0]):
        m = seg_metrics(prob[b], gt[b])
        assert m["dice"] == pytest.approx(float(dice_ref[b]), rel=1e-6)
        assert m["iou"] == pytest.approx(float(iou_ref[b]), rel=1e-6)


def test_precision_recall_by_hand_count():
    prob, gt = _random_masks(1, shape=(30, 30))
    p = prob > 0.5
    g = gt > 0
    tp, fp, fn = (p & g).sum(), (p & ~g).sum(), (~p & g).sum()
    m = seg_metrics(prob, gt)
    assert m["precision"] == pytest.approx(tp / (tp + fp))
    assert m["recall"] == pytest.approx(tp / (tp + fn))
    c = confusion(prob, gt)
    assert (c["tp"], c["fp"], c["fn"]) == (tp, fp, fn)
    assert sum(c.values()) == prob.size


def test_threshold_is_strictly_greater():
    gt = np.array([[1, 0]])
    assert seg_metrics(np.array([[0.5, 0.0]]), gt)["recall"] == 0.0
    assert seg_metrics(np.array([[0.51, 0.0]]), gt)["dice"] == 1.0
    assert seg_metrics(np.array([[0.3, 0.0]]), gt, threshold=0.2)["dice"] == 1.0


def test_empty_conventions():
    empty = np.zeros((8, 8))
    full = np.zeros((8, 8))
    full[2:5, 2:5] = 1
    assert seg_metrics(empty, empty) == {"dice": 1.0, "iou": 1.0, "precision": 1.0, "recall": 1.0}
    fp_only = seg_metrics(full, empty)  # GT empty, prediction not
    assert fp_only == {"dice": 0.0, "iou": 0.0, "precision": 0.0, "recall": 1.0}
    fn_only = seg_metrics(empty, full)  # prediction empty, GT not
    assert fn_only == {"dice": 0.0, "iou": 0.0, "precision": 1.0, "recall": 0.0}


def test_aggregate_counts_sums_before_dividing():
    prob, gt = _random_masks(2, shape=(4, 16, 16))
    per = [confusion(prob[i], gt[i]) for i in range(4)]
    agg = aggregate_counts(per)
    whole = seg_metrics(prob, gt)  # the 3-D volume at once
    for k in ("dice", "iou", "precision", "recall"):
        assert agg[k] == pytest.approx(whole[k])
    assert agg["tp"] == sum(c["tp"] for c in per)
    mean_of_frames = np.mean([seg_metrics(prob[i], gt[i])["dice"] for i in range(4)])
    assert agg["dice"] != pytest.approx(mean_of_frames, rel=1e-9)  # global ≠ mean of per-frame
    empty = confusion(np.zeros((4, 4)), np.zeros((4, 4)))
    assert aggregate_counts([empty, empty])["dice"] == 1.0
    assert aggregate_counts(empty)["recall"] == 1.0


def test_seg_metrics_frames_averages_frames_and_reports_y2():
    gt = np.zeros((3, 8, 8))
    gt[:, 2:6, 2:6] = 1
    pred = gt.copy()
    pred[1] = 0  # middle frame missed entirely
    m = seg_metrics_frames(pred, gt)
    assert m["dice_y2"] == 0.0 and m["recall_y2"] == 0.0 and m["precision_y2"] == 1.0
    assert m["dice"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        seg_metrics_frames(pred[:2], gt[:2])


def test_tcs_on_constructed_triplet():
    masks = np.zeros((3, 10, 10))
    masks[0, :, :4] = 1  # Y1: 40 pixels
    masks[2, :, :2] = 1  # Y3: 20 pixels
    masks[1, :, :3] = 0.9  # Y2: 30 pixels = exactly the average extent
    # |Y2 − (Y1+Y3)/2|: columns 0–1: |1 − 1| = 0; column 2: |1 − 0.5| = 0.5; column 3: |0 − 0.5| = 0.5
    assert tcs(masks) == pytest.approx(1 - (0.5 * 20) / 100)
    gt = np.zeros_like(masks)
    assert tcs_fg(masks, gt) == pytest.approx(1 - (0.5 * 20) / 40)  # union = columns 0–3
    gt[1, :, 5] = 1  # GT foreground widens the region by 10 consistent pixels
    assert tcs_fg(masks, gt) == pytest.approx(1 - 10 / 50)
    assert tcs(np.ones((3, 4, 4))) == 1.0
    assert math.isnan(tcs_fg(np.zeros((3, 4, 4)), np.zeros((3, 4, 4))))


def test_tcs_rejects_wrong_shape():
    with pytest.raises(ValueError, match="Y1, Y2, Y3"):
        tcs(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="shape"):
        seg_metrics(np.zeros((4, 4)), np.zeros((4, 5)))


def test_evaluation_rows_use_the_same_frame_metrics():
    """The per-triplet rows of `tascmt evaluate` agree with `seg_metrics_frames` (the tested reference)."""
    from tascmt.evaluation.metrics import seg_metrics_frames
    from tascmt.evaluation.triplet_metrics import seg_row

    rng = np.random.default_rng(5)
    prob = rng.uniform(size=(3, 24, 24))
    gt = (rng.uniform(size=(3, 24, 24)) > 0.6).astype(np.uint8)
    gt[0] = 0  # one empty frame exercises the conventions
    row, ref = seg_row(prob, gt), seg_metrics_frames(prob, gt)
    for k in ("dice", "iou", "precision", "recall", "dice_y2", "recall_y2"):
        assert row[k] == pytest.approx(ref[k]), k


def _phantom_triplets(n: int = 12, fg_every: int = 3, side: int = 16):
    """``n`` triplets of ``side``² masks; Y2 has a foreground square in every ``fg_every``-th triplet, and
    its neighbours Y1/Y3 in some others (a lesion that appears and ends between slices)."""
    gts = []
    for i in range(n):
        gt = np.zeros((3, side, side), np.uint8)
        if i % fg_every == 0:
            gt[:, 4:9, 4:9] = 1
        elif i % fg_every == 1:
            gt[0, 5:8, 5:8] = 1  # only Y1: Y2 is empty
        gts.append(gt)
    return gts


def _rows_for(preds, gts):
    from tascmt.evaluation.triplet_metrics import seg_row

    return [{"case_id": "c", "index": i, "gap_mm": 2.0, "resampled": False, "fg_middle": bool(g[1].any()),
             **seg_row(p, g)} for i, (p, g) in enumerate(zip(preds, gts))]


def test_all_background_predictor_scores_zero_on_foreground_and_pooled_columns():
    from tascmt.evaluation.summary import summarise, to_markdown

    gts = _phantom_triplets()
    preds = [np.zeros(g.shape) for g in gts]  # predicts nothing, anywhere
    summary = summarise(_rows_for(preds, gts), ("seg",))
    seg = summary["seg"]
    fg = seg["fg_y2"]
    assert fg["n_triplets"] == 4  # triplets 0, 3, 6, 9
    assert (fg["dice"], fg["iou"], fg["recall"]) == (0.0, 0.0, 0.0)
    assert fg["precision"] == 1.0  # the stated convention: nothing predicted → Precision 1
    assert seg["pooled"]["dice"] == 0.0 and seg["pooled"]["recall"] == 0.0
    assert seg["global_dice"]["all"] == 0.0
    # the frame average is computed as before: every empty ∧ empty frame scores 1 (documented, gameable)
    n_empty_frames = sum(int(not g[f].any()) for g in gts for f in range(3))
    assert seg["frame_avg"]["dice"] == pytest.approx(n_empty_frames / (3 * len(gts)))
    assert seg["frame_avg"]["dice"] > 0.5
    md = to_markdown({**summary, "model": "all_background", "split": "test"})
    fg_line = next(line for line in md.splitlines() if "foreground middle slices (n = 4)" in line)
    assert fg_line.split("|")[2:6] == [" 0.0000 ", " 0.0000 ", " 1.0000 ", " 0.0000 "]
    assert "frame average (empty ∧ empty = 1)" in md and "TP/FP/FN summed" in md
    assert "predicting nothing scores Dice = IoU = Recall = 0" in md


def test_foreground_columns_repeat_y2_only_where_gt_y2_has_foreground():
    gts = _phantom_triplets(n=3)
    rng = np.random.default_rng(7)
    preds = [rng.uniform(size=g.shape) for g in gts]
    rows = _rows_for(preds, gts)
    for p, g, row in zip(preds, gts, rows):
        ref = seg_metrics_frames(p, g)
        for k in ("dice", "iou", "precision", "recall"):
            if g[1].any():
                assert row[f"{k}_fg"] == ref[f"{k}_fg"] == pytest.approx(ref[f"{k}_y2"])
            else:
                assert math.isnan(row[f"{k}_fg"]) and math.isnan(ref[f"{k}_fg"])
    from tascmt.evaluation.summary import summarise

    seg = summarise(rows, ("seg",))["seg"]
    assert seg["fg_y2"]["dice"] == pytest.approx(rows[0]["dice_y2"])  # only triplet 0 has Y2 foreground
    c = {k: sum(r[f"{k}_{f}"] for r in rows for f in ("y1", "y2", "y3")) for k in ("tp", "fp", "fn")}
    assert seg["pooled"]["dice"] == pytest.approx(2 * c["tp"] / (2 * c["tp"] + c["fp"] + c["fn"]))
