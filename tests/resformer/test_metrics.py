"""Metrics against hand counts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tascmt.evaluation.metrics.resformer import MetricMeter, cls_metrics, confusion_counts, seg_scores


def test_seg_scores_hand_counts():
    gt = np.zeros((4, 4), int)
    gt[0, :3] = 1  # 3 pixels of class 1
    gt[3, 3] = 2
    pred = np.zeros((4, 4), int)
    pred[0, 1:4] = 1  # TP 2, FP 1, FN 1
    s = seg_scores(pred, gt, [1, 2, 3])
    # class 1: DSC = 4/6, J = 2/4; class 2: predicted nowhere -> 0; class 3 absent in both -> 1
    np.testing.assert_allclose(s["dice"], [4 / 6, 0.0, 1.0])
    np.testing.assert_allclose(s["jaccard"], [0.5, 0.0, 1.0])


def test_seg_scores_shape_mismatch():
    with pytest.raises(ValueError, match="differs"):
        seg_scores(np.zeros((2, 2)), np.zeros((2, 3)), [1])


def test_confusion_and_classification_metrics_hand_counts():
    gt = np.array([[1, 0], [1, 0], [0, 0], [0, 1], [1, 0]])
    pred = np.array([[1, 0], [0, 0], [1, 0], [0, 1], [1, 1]])
    c = confusion_counts(pred, gt)
    # class 0: TP 2 (rows 0, 4), FN 1 (row 1), FP 1 (row 2), TN 1 (row 3)
    # class 1: TP 1 (row 3), FP 1 (row 4), FN 0, TN 3
    np.testing.assert_array_equal(c["tp"], [2, 1])
    np.testing.assert_array_equal(c["fp"], [1, 1])
    np.testing.assert_array_equal(c["fn"], [1, 0])
    np.testing.assert_array_equal(c["tn"], [1, 3])
    m = cls_metrics(pred, gt, names=["mel", "sk"])
    assert m["accuracy_mel"] == pytest.approx(3 / 5) and m["accuracy_sk"] == pytest.approx(4 / 5)
    assert m["sensitivity_mel"] == pytest.approx(2 / 3) and m["sensitivity_sk"] == pytest.approx(1.0)
    assert m["specificity_mel"] == pytest.approx(1 / 2) and m["specificity_sk"] == pytest.approx(3 / 4)
    assert m["accuracy_macro"] == pytest.approx(0.7)
    assert m["specificity_macro"] == pytest.approx(5 / 8)


def test_undefined_sensitivity_is_nan_and_left_out_of_the_macro_mean():
    gt = np.array([[0, 1], [0, 0]])
    pred = np.array([[1, 1], [0, 0]])
    m = cls_metrics(pred, gt)
    assert math.isnan(m["sensitivity_class0"])  # no positives of class 0
    assert m["sensitivity_macro"] == pytest.approx(1.0)
    assert m["specificity_class0"] == pytest.approx(0.5)


def test_meter_accumulates_and_merges_like_one_pass():
    rng = np.random.default_rng(0)
    seg_p, seg_g = rng.integers(0, 3, (6, 5, 5)), rng.integers(0, 3, (6, 5, 5))
    cls_p, cls_g = rng.integers(0, 2, (6, 2)), rng.integers(0, 2, (6, 2))
    whole = MetricMeter(3, 2)
    whole.update(seg_p, seg_g, cls_p, cls_g)
    a, b = MetricMeter(3, 2), MetricMeter(3, 2)
    a.update(seg_p[:4], seg_g[:4], cls_p[:4], cls_g[:4])
    b.update(seg_p[4:], seg_g[4:], cls_p[4:], cls_g[4:])
    merged = MetricMeter(3, 2)
    merged.add_vector(a.to_vector() + b.to_vector())
    s_whole, s_merged = whole.summary(), merged.summary()
    assert s_whole == pytest.approx(s_merged, nan_ok=True)
    expected = np.mean([seg_scores(p, g, [1, 2])["dice"].mean() for p, g in zip(seg_p, seg_g)])
    assert s_whole["dice"] == pytest.approx(expected)
    assert s_whole["accuracy_macro"] == pytest.approx(cls_metrics(cls_p, cls_g)["accuracy_macro"])
