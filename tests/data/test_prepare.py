from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from tascmt.cli import main
from tascmt.data.cache import Manifest
from tascmt.data.prepare import prepare_dataset
from tascmt.errors import ConfigError, InputError

from .conftest import blob_case, write_task


def _good_cases(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return {f"c{i}": blob_case(rng) for i in range(n)}


def test_heart_cache_contents(heart_cache):
    m = Manifest.load(heart_cache)
    assert m.params["norm"]["name"] == "minmax_pair" and m.params["modality"] == "MRI"
    assert m.params["fg_policy_train"] == "every" and m.params["fg_policy_eval"] == "every"
    assert m.params["inplane"]["kind"] == "native"
    assert {c["split"] for c in m.cases.values()} == {"train", "val", "test"}
    assert sum(c["split"] == "train" for c in m.cases.values()) == 7
    t = m.triplets[0]
    assert {"case_id", "k0", "k1", "k2", "gap_mm", "resampled", "fg", "split", "index"} <= set(t)
    assert t["k1"] - t["k0"] == 1 and t["gap_mm"] == pytest.approx(1.37)
    img = np.load(heart_cache / "cases" / f"{t['case_id']}_img.npy", mmap_mode="r")
    seg = np.load(heart_cache / "cases" / f"{t['case_id']}_seg.npy", mmap_mode="r")
    assert img.dtype == np.float32 and img.shape == (16, 32, 32) and seg.dtype == np.uint8
    assert img.max() > 10  # raw intensities, not normalised
    assert json.loads((heart_cache / "splits.json").read_text(encoding="utf-8"))["seed"] == 42
    assert (heart_cache / "config.json").exists() and (heart_cache / "provenance.json").exists()


def test_rerun_is_idempotent_and_param_change_rebuilds(tmp_path, capsys):
    task = write_task(tmp_path / "task", _good_cases())
    out = tmp_path / "cache"
    m1 = prepare_dataset(task, out, size=16, gap_mm=1.25, progress=False)
    stamp = (out / "manifest.json").stat().st_mtime_ns
    m2 = prepare_dataset(task, out, size=16, gap_mm=1.25, progress=False)
    assert "up to date" in capsys.readouterr().out
    assert m2.param_hash == m1.param_hash and (out / "manifest.json").stat().st_mtime_ns == stamp
    m3 = prepare_dataset(task, out, size=24, progress=False)
    assert m3.param_hash != m1.param_hash
    assert np.load(out / "cases" / "c0_img.npy").shape[1:] == (24, 24)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp folders left


def test_existing_splits_reused(tmp_path):
    task = write_task(tmp_path / "task", _good_cases(10))
    out = tmp_path / "cache"
    prepare_dataset(task, out, size=16, progress=False, verbose=False)
    splits = json.loads((out / "splits.json").read_text(encoding="utf-8"))
    splits["train"], splits["test"] = splits["test"], splits["train"]
    (out / "splits.json").write_text(json.dumps(splits), encoding="utf-8")
    m = prepare_dataset(task, out, size=16, progress=False, verbose=False)
    assert sorted(c for c, info in m.cases.items() if info["split"] == "test") == sorted(splits["test"])
    with pytest.raises(ConfigError, match="split seed"):
        prepare_dataset(task, out, size=16, split_seed=1, progress=False)


def test_lung_like_spacings_and_resampling(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "task"
    write_task(root, {"a": blob_case(rng)}, spacing=(0.7, 0.7, 0.625), modality="CT")
    m = prepare_dataset(root, tmp_path / "acq", size=16, allow_tiny_split=True, progress=False, verbose=False)
    assert m.params["norm"]["name"] == "ct_window"
    assert m.cases["a"]["step"] == 2 and all(t["k1"] - t["k0"] == 2 for t in m.triplets)
    r = prepare_dataset(root, tmp_path / "res", size=16, allow_tiny_split=True, protocol="resampled", progress=False, verbose=False)
    assert r.triplets and all(t["resampled"] and t["gap_mm"] == 1.25 for t in r.triplets)
    assert r.cases["a"]["n_stored_slices"] == 6  # 11 × 0.625 mm = 6.875 mm → 0, 1.25, ..., 6.25
    seg = np.load(tmp_path / "res" / "cases" / "a_seg.npy")
    assert set(np.unique(seg)) <= {0, 1}


def test_excluded_case_is_reported(tmp_path):
    rng = np.random.default_rng(2)
    root = write_task(tmp_path / "task", {"thick": blob_case(rng)}, spacing=(1.0, 1.0, 2.5))
    m = prepare_dataset(root, tmp_path / "c", size=16, allow_tiny_split=True, progress=False, verbose=False)
    assert not m.triplets and "2.5" in m.cases["thick"]["excluded"]


def test_label_values_select_foreground(tmp_path):
    img, lab = blob_case(np.random.default_rng(3))
    lab = lab * 2  # the ball carries label 2
    root = write_task(tmp_path / "task", {"a": (img, lab)},
                      labels={"0": "background", "1": "other", "2": "target"})
    only1 = prepare_dataset(root, tmp_path / "one", size=16, allow_tiny_split=True, label_values=[1], progress=False, verbose=False)
    assert not any(any(t["fg"]) for t in only1.triplets)
    only2 = prepare_dataset(root, tmp_path / "two", size=16, allow_tiny_split=True, label_values=[2], progress=False, verbose=False)
    assert any(any(t["fg"]) for t in only2.triplets)


def _corrupt(root):
    (root / "imagesTr" / "c1.nii.gz").write_bytes(b"not a nifti file at all")
    return "c1.nii.gz"


def _shape_mismatch(root):
    nib.save(nib.Nifti1Image(np.zeros((24, 24, 10), np.uint8), np.diag([1.0, 1.0, 1.25, 1.0])),
             root / "labelsTr" / "c2.nii.gz")
    return "c2.nii.gz"


def _affine_mismatch(root):
    lab = nib.load(root / "labelsTr" / "c2.nii.gz")
    affine = lab.affine.copy()
    affine[0, 3] += 5.0
    nib.save(nib.Nifti1Image(np.asarray(lab.dataobj), affine), root / "labelsTr" / "c2.nii.gz")
    return "c2.nii.gz"


def _nan(root):
    img = nib.load(root / "imagesTr" / "c3.nii.gz")
    data = np.asarray(img.dataobj, dtype=np.float32)
    data[3, 3, 3] = np.nan
    nib.save(nib.Nifti1Image(data, img.affine), root / "imagesTr" / "c3.nii.gz")
    return "c3.nii.gz"


def _constant(root):
    img = nib.load(root / "imagesTr" / "c3.nii.gz")
    constant = np.full(img.shape, 7.0, np.float32)
    nib.save(nib.Nifti1Image(constant, img.affine), root / "imagesTr" / "c3.nii.gz")
    return "c3.nii.gz"


def _two_d(root):
    nib.save(nib.Nifti1Image(np.ones((24, 24), np.float32), np.eye(4)), root / "imagesTr" / "c0.nii.gz")
    return "c0.nii.gz"


def _four_d(root):
    two_channels = np.ones((24, 24, 12, 2), np.float32)
    nib.save(nib.Nifti1Image(two_channels, np.eye(4)), root / "imagesTr" / "c0.nii.gz")
    return "c0.nii.gz"


def _bad_json(root):
    (root / "dataset.json").write_text("{not json", encoding="utf-8")
    return "dataset.json"


def _json_missing_file(root):
    meta = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    meta["training"][0]["image"] = "./imagesTr/gone.nii.gz"
    (root / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    return "dataset.json"


def _undeclared_label(root):
    lab = nib.load(root / "labelsTr" / "c1.nii.gz")
    data = np.asarray(lab.dataobj).copy()
    data[0, 0, 0] = 5
    nib.save(nib.Nifti1Image(data, lab.affine), root / "labelsTr" / "c1.nii.gz")
    return "c1.nii.gz"


@pytest.mark.parametrize("breaker", [_corrupt, _shape_mismatch, _affine_mismatch, _nan, _constant, _two_d,
                                     _four_d, _bad_json, _json_missing_file, _undeclared_label])
def test_bad_input_names_file_and_leaves_no_cache(tmp_path, breaker):
    task = write_task(tmp_path / "task", _good_cases())
    name = breaker(task)
    out = tmp_path / "cache"
    with pytest.raises(InputError) as err:
        prepare_dataset(task, out, size=16, progress=False, verbose=False)
    assert name in str(err.value)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["task"]  # no temporary folder either


def test_failed_rebuild_keeps_old_cache(tmp_path):
    task = write_task(tmp_path / "task", _good_cases())
    out = tmp_path / "cache"
    old = prepare_dataset(task, out, size=16, progress=False, verbose=False)
    _nan(task)
    with pytest.raises(InputError):
        prepare_dataset(task, out, size=16, progress=False, verbose=False)
    assert Manifest.load(out).param_hash == old.param_hash and Manifest.load(out).is_complete()


def test_refuses_foreign_output_folder(tmp_path):
    task = write_task(tmp_path / "task", _good_cases(3))
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a tascmt cache"):
        prepare_dataset(task, foreign, size=16, progress=False)
    assert (foreign / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_inplane_none_needs_model_size(tmp_path):
    task = write_task(tmp_path / "task", _good_cases(3))
    m = prepare_dataset(task, tmp_path / "ok", size=24, inplane="none", progress=False, verbose=False)
    assert m.params["inplane"] == {"kind": "none", "size": 24}
    with pytest.raises(InputError, match=r"c0\.nii\.gz"):
        prepare_dataset(task, tmp_path / "bad", size=32, inplane="none", progress=False, verbose=False)
    assert not (tmp_path / "bad").exists()


def test_unknown_modality_needs_explicit_norm(tmp_path):
    task = write_task(tmp_path / "task", _good_cases(3), modality="PET")
    with pytest.raises(ConfigError, match="modality"):
        prepare_dataset(task, tmp_path / "c", size=16, allow_tiny_split=True, progress=False)
    m = prepare_dataset(task, tmp_path / "c", size=16, allow_tiny_split=True, norm="percentile_pair", progress=False, verbose=False)
    assert m.params["norm"]["name"] == "percentile_pair"


def test_cli_synth_and_prepare(tmp_path, capsys):
    task = tmp_path / "lung"
    assert main(["synth", str(task), "--task", "lung", "--cases", "10", "--size", "32", "--slices", "12",
                 "--seed", "1"]) == 0
    assert main(["prepare", str(task), str(tmp_path / "cache"), "--size", "32", "--no-progress"]) == 0
    out = capsys.readouterr().out
    for split in ("train", "val", "test"):
        assert split in out
    assert "excluded" in out  # the 2.5 mm cases
    m = Manifest.load(tmp_path / "cache")
    assert m.params["norm"]["name"] == "ct_window" and m.triplets
    assert main(["prepare", str(task / "nope"), str(tmp_path / "c2")]) == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_prepare_10_cases_256(tmp_path, capsys):
    task = tmp_path / "heart"
    args = ["synth", str(task), "--task", "heart", "--cases", "10", "--size", "256", "--slices", "24"]
    assert main(args) == 0
    assert main(["prepare", str(task), str(tmp_path / "cache"), "--size", "256", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "with policy every" in out
    shutil.rmtree(tmp_path / "cache")
