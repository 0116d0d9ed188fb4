"""Folder mode: NIfTI masks matched by name → Dice, IoU, HD95, surface Dice (checked by hand)."""

from __future__ import annotations

import csv
import json
import math

import nibabel as nib
import numpy as np
import pytest

from tascmt.cli import main as cli_main
from tascmt.errors import InputError
from tascmt.evaluation.folders import evaluate_folders

SPACING = (1.5, 1.0, 2.0)


def _save(path, arr, spacing=SPACING):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(arr.astype(np.uint8), np.diag([*spacing, 1.0])), str(path))


def _cube(shape=(30, 24, 16), lo=(5, 5, 4), size=(10, 10, 8), label=1):
    a = np.zeros(shape, np.uint8)
    a[lo[0]:lo[0] + size[0], lo[1]:lo[1] + size[1], lo[2]:lo[2] + size[2]] = label
    return a


@pytest.fixture()
def folders(tmp_path):
    gt = _cube()
    pred = np.roll(gt, 2, axis=0)  # shifted 2 voxels along x = 3 mm
    _save(tmp_path / "gt" / "case_a.nii.gz", gt)
    _save(tmp_path / "pred" / "case_a.nii.gz", pred)
    gt_b = _cube(lo=(8, 6, 3), size=(6, 6, 6))
    pred_b = gt_b.copy()
    pred_b[8:11] = 0  # half of the cube missed
    _save(tmp_path / "gt" / "case_b.nii.gz", gt_b)
    _save(tmp_path / "pred" / "case_b.nii.gz", pred_b)
    return tmp_path


def test_dice_iou_hd95_against_hand_computed(folders):
    summary = evaluate_folders(folders / "pred", folders / "gt", folders / "out")
    with open(folders / "out" / "per_case.csv", newline="", encoding="utf-8") as f:
        rows = {r["case_id"]: r for r in csv.DictReader(f)}
    # case_a: 10x10x8 cube shifted by 2 along x → overlap 8x10x8.
    n, inter = 10 * 10 * 8, 8 * 10 * 8
    assert float(rows["case_a"]["dice"]) == pytest.approx(2 * inter / (2 * n))
    assert float(rows["case_a"]["iou"]) == pytest.approx(inter / (2 * n - inter))
    assert float(rows["case_a"]["hd95_mm"]) == pytest.approx(2 * SPACING[0])
    # case_b: prediction is half of the GT cube.
    assert float(rows["case_b"]["dice"]) == pytest.approx(2 * 108 / (216 + 108))
    assert summary["n_cases"] == 2 and summary["labels"] == [1]
    assert summary["per_label"]["1"]["dice"] == pytest.approx(
        np.mean([float(rows[c]["dice"]) for c in rows]))
    written = json.loads((folders / "out" / "summary.json").read_text(encoding="utf-8"))
    assert written["mean"]["dice"] == summary["mean"]["dice"]


def test_surface_dice_tolerance(folders):
    tight = evaluate_folders(folders / "pred", folders / "gt", folders / "o1", tolerance_mm=1.0)
    loose = evaluate_folders(folders / "pred", folders / "gt", folders / "o2", tolerance_mm=3.0)
    assert tight["surface_tolerance_mm"] == 1.0
    # A 3 mm shift: every surface point lies within 3 mm of the other surface.
    with open(folders / "o2" / "per_case.csv", newline="", encoding="utf-8") as f:
        rows = {r["case_id"]: r for r in csv.DictReader(f)}
    assert float(rows["case_a"]["surface_dice"]) == pytest.approx(1.0)
    assert tight["per_label"]["1"]["surface_dice"] < loose["per_label"]["1"]["surface_dice"]


def test_empty_conventions(tmp_path):
    empty = np.zeros((10, 10, 6), np.uint8)
    _save(tmp_path / "gt" / "e.nii.gz", empty)
    _save(tmp_path / "pred" / "e.nii.gz", empty)
    _save(tmp_path / "gt" / "m.nii.gz", _cube((10, 10, 6), (2, 2, 1), (3, 3, 3)))
    _save(tmp_path / "pred" / "m.nii.gz", empty)
    summary = evaluate_folders(tmp_path / "pred", tmp_path / "gt", tmp_path / "out")
    with open(tmp_path / "out" / "per_case.csv", newline="", encoding="utf-8") as f:
        rows = {r["case_id"]: r for r in csv.DictReader(f)}
    assert float(rows["e"]["dice"]) == 1.0 and float(rows["e"]["hd95_mm"]) == 0.0
    assert float(rows["m"]["dice"]) == 0.0 and math.isnan(float(rows["m"]["hd95_mm"]))
    assert summary["per_label"]["1"]["hd95_undefined"] == 1


def test_mismatched_names_and_geometry(tmp_path):
    _save(tmp_path / "gt" / "a.nii.gz", _cube())
    _save(tmp_path / "pred" / "b.nii.gz", _cube())
    with pytest.raises(InputError, match="no prediction for 1 ground-truth case"):
        evaluate_folders(tmp_path / "pred", tmp_path / "gt", tmp_path / "out")
    (tmp_path / "pred" / "b.nii.gz").unlink()
    _save(tmp_path / "pred" / "a.nii.gz", _cube(shape=(30, 24, 15)))
    with pytest.raises(InputError, match="shape"):
        evaluate_folders(tmp_path / "pred", tmp_path / "gt", tmp_path / "out")
    _save(tmp_path / "pred" / "a.nii.gz", _cube(), spacing=(1.0, 1.0, 2.0))
    with pytest.raises(InputError, match="affine"):
        evaluate_folders(tmp_path / "pred", tmp_path / "gt", tmp_path / "out")


def test_cli_folder_mode(folders, capsys):
    code = cli_main(["evaluate", "--pred-dir", str(folders / "pred"), "--gt-dir", str(folders / "gt"),
                     "-o", str(folders / "cli"), "--labels", "1"])
    assert code == 0
    assert (folders / "cli" / "summary.json").is_file()
    assert '"n_cases": 2' in capsys.readouterr().out
    code = cli_main(["evaluate", "--pred-dir", str(folders / "nope"), "--gt-dir", str(folders / "gt"),
                     "-o", str(folders / "cli2")])
    assert code == 2
    assert "is not a folder" in capsys.readouterr().err
