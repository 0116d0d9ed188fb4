"""HD95 that counts every volume: a missed (or false-positive) volume is the in-plane image diagonal, and
the numbers of missed and false volumes are reported (folder evaluation and experiment tables)."""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest

from tascmt.evaluation.folders import (
    aggregate_hd95,
    evaluate_folders,
    hd95_or_diagonal,
    inplane_diagonal_mm,
    one_empty_kind,
    surface_metrics,
)
from tascmt.experiments.presets import ExperimentSpec, RunSpec
from tascmt.experiments.tables import markdown_table

SPACING = (1.5, 1.0, 2.0)  # (x, y, z): z is the through-plane axis


def _cube(shape=(30, 24, 16), lo=(5, 5, 4), size=(10, 10, 8)):
    a = np.zeros(shape, bool)
    a[lo[0]:lo[0] + size[0], lo[1]:lo[1] + size[1], lo[2]:lo[2] + size[2]] = True
    return a


def test_inplane_diagonal():
    assert inplane_diagonal_mm((30, 24, 16), SPACING) == pytest.approx(math.hypot(30 * 1.5, 24 * 1.0))
    assert inplane_diagonal_mm((16, 30, 24), (2.0, 1.5, 1.0), slice_axis=0) == pytest.approx(
        math.hypot(45.0, 24.0))
    assert inplane_diagonal_mm((10, 20), (0.5, 0.5)) == pytest.approx(math.hypot(5.0, 10.0))
    with pytest.raises(ValueError):
        inplane_diagonal_mm((10, 20), (1.0, 1.0, 1.0))


def test_hd95_or_diagonal_counts_missed_and_false_volumes():
    gt = _cube()
    empty = np.zeros_like(gt)
    diag = math.hypot(30 * 1.5, 24 * 1.0)
    assert one_empty_kind(empty, gt) == "missed" and one_empty_kind(gt, empty) == "false"
    assert one_empty_kind(gt, gt) is None and one_empty_kind(empty, empty) is None
    assert math.isnan(surface_metrics(empty, gt, SPACING)[0])  # undefined: what used to be dropped
    assert hd95_or_diagonal(empty, gt, SPACING) == pytest.approx(diag)
    assert hd95_or_diagonal(gt, empty, SPACING) == pytest.approx(diag)
    assert hd95_or_diagonal(empty, empty, SPACING) == 0.0
    shifted = np.roll(gt, 2, axis=0)  # 3 mm along x
    assert hd95_or_diagonal(shifted, gt, SPACING) == pytest.approx(surface_metrics(shifted, gt, SPACING)[0])
    assert hd95_or_diagonal(shifted, gt, SPACING, hd95=7.0) == 7.0  # a precomputed value is used


def test_aggregate_hd95_keeps_missed_volumes_in_the_mean():
    agg = aggregate_hd95([3.0, 50.0, 0.0], [None, "missed", None])
    assert agg == {"hd95_mm": pytest.approx(53 / 3), "n_volumes": 3, "n_missed": 1, "n_false": 0,
                   "n_nonfinite": 0}
    with pytest.raises(ValueError):
        aggregate_hd95([1.0], [])


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(arr.astype(np.uint8), np.diag([*SPACING, 1.0])), str(path))


def test_folder_summary_counts_a_missed_volume_at_the_diagonal(tmp_path):
    gt = _cube()
    _save(tmp_path / "gt" / "hit.nii.gz", gt)
    _save(tmp_path / "pred" / "hit.nii.gz", np.roll(gt, 2, axis=0))
    _save(tmp_path / "gt" / "miss.nii.gz", gt)
    _save(tmp_path / "pred" / "miss.nii.gz", np.zeros_like(gt))
    summary = evaluate_folders(tmp_path / "pred", tmp_path / "gt", tmp_path / "out")
    lab = summary["per_label"]["1"]
    hit = surface_metrics(np.roll(gt, 2, axis=0), gt, SPACING)[0]
    diag = math.hypot(30 * 1.5, 24 * 1.0)
    assert lab["hd95_mm"] == pytest.approx(hit)  # the old column leaves the missed volume out ...
    assert lab["hd95_undefined"] == 1
    assert lab["hd95_diag_mm"] == pytest.approx((hit + diag) / 2)  # ... the new one counts it
    assert (lab["n_missed"], lab["n_false"]) == (1, 0)
    assert summary["mean"]["hd95_diag_mm"] == pytest.approx((hit + diag) / 2)
    assert "diagonal" in summary["empty_convention"]
    rows = (tmp_path / "out" / "per_case.csv").read_text(encoding="utf-8")
    assert "hd95_diag_mm" in rows and "missed" in rows


def test_experiment_table_reports_missed_and_false_volumes():
    spec = ExperimentSpec("t", (RunSpec("a", "m0"), RunSpec("b", "m1"), RunSpec("c", "m2")), reference="a",
                          metrics=("dice", "hd95_mm_whole_volume"))
    results = {
        "a": {s: {"dice": 0.8, "hd95_mm_whole_volume": 5.0 + s, "hd95_missed_whole_volume": 1,
                  "hd95_false_whole_volume": 0} for s in range(3)},
        "b": {s: {"dice": 0.7, "hd95_mm_whole_volume": 9.0, "hd95_missed_whole_volume": 2,
                  "hd95_false_whole_volume": 1} for s in range(3)},
        "c": {s: {"dice": 0.7, "hd95_mm_whole_volume": 9.0} for s in range(3)},
    }
    md = markdown_table(spec, results, seeds=range(3))
    header = next(line for line in md.splitlines() if line.startswith("| configuration"))
    assert "Dice (frame avg.)" in header and "HD95 (mm; miss = diagonal)" in header
    assert "counts as the in-plane image diagonal in mm" in md
    assert "empty prediction and empty ground truth scores 1" in md
    counts = next(line for line in md.splitlines() if "volumes counted at the diagonal" in line)
    assert "a: 3 missed, 0 false" in counts and "b: 6 missed, 3 false" in counts
    assert "c: not reported" in counts


def test_whole_volume_hd95_counts_a_missed_volume_at_the_diagonal(tmp_path):
    """A model that predicts no foreground misses every volume whose ground truth has some: each such
    (case, offset) volume counts as the in-plane diagonal (no NaN, no case dropped from the mean)."""
    from tascmt.data.inplane import InplanePolicy
    from tascmt.data.normalize import normalizer_from_dict
    from tascmt.data.prepare import prepare_dataset
    from tascmt.data.synth import make_synthetic_task
    from tascmt.evaluation.volume_eval import evaluate_volumes
    from tascmt.experiments.runner import extract_metrics
    from tascmt.inference import Predictor
    from tests.inference.test_tiling import ConstantCorrection  # seg probability 0.25: nothing predicted

    task = make_synthetic_task(tmp_path / "task", "lung", n_cases=4, size=40, n_slices=7, dz=1.25)
    manifest = prepare_dataset(task, tmp_path / "cache", size=32, gap_mm=1.25, progress=False, verbose=False)
    pred = Predictor(model=ConstantCorrection(0.0, tile=32), normalizer=normalizer_from_dict(
        manifest.params["norm"]), inplane=InplanePolicy("native", 32))
    res = evaluate_volumes(pred, tmp_path / "cache", split="test", flow=False)
    assert res["cases"], res["skipped"]
    for cid, m in res["cases"].items():
        info = manifest.cases[cid]
        diag = math.hypot(*(n * s for n, s in zip(info["hw"], info["pixel_spacing"], strict=True)))
        assert m["hd95_missed"] >= 1 and m["hd95_false"] == 0
        assert m["hd95_mm"] == pytest.approx(diag * m["hd95_missed"] / m["n_offsets"])  # both empty: 0
    assert math.isfinite(res["mean"]["hd95_mm"])
    assert res["totals"]["hd95_missed"] == sum(m["hd95_missed"] for m in res["cases"].values())
    assert "diagonal" in res["hd95_convention"]
    metrics = extract_metrics({"whole_volumes": res})
    assert metrics["hd95_mm_whole_volume"] == pytest.approx(res["mean"]["hd95_mm"])
    assert metrics["hd95_missed_whole_volume"] == res["totals"]["hd95_missed"]
    assert metrics["hd95_false_whole_volume"] == 0
