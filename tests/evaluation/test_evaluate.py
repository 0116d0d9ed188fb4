"""evaluate_checkpoint on a tiny trained checkpoint over a prepared phantom cache (real components)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from tascmt.cli import main as cli_main
from tascmt.errors import ConfigError
from tascmt.evaluation import metrics as M
from tascmt.evaluation.evaluate import evaluate_checkpoint
from tascmt.evaluation.volumes import VolumeAccumulator
from tests.experiments._helpers import SIZE, make_cache, single_thread, train_tiny


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory, _one_thread):
    root = tmp_path_factory.mktemp("evaluate")
    cache = make_cache(root)
    ckpt = train_tiny(cache, root / "run", steps=1)
    out = root / "eval"
    summary = evaluate_checkpoint(ckpt, cache, split="test", out_dir=out, batch_size=4)
    return cache, ckpt, out, summary


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_outputs_written_with_linear_baseline(trained):
    cache, _, out, summary = trained
    for name in ("per_triplet.csv", "summary.json", "summary.md"):
        assert (out / name).is_file(), name
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["n_triplets"] == summary["n_triplets"]
    rows = _rows(out / "per_triplet.csv")
    assert len(rows) == summary["n_triplets"] > 0
    for col in ("case_id", "index", "gap_mm", "resampled", "fg_middle", "psnr", "ssim", "edge_ssim",
                "lpips", "linear_psnr", "linear_ssim", "dice_y1", "iou_y2", "precision_y3", "recall_y2",
                "tcs", "tcs_fg"):
        assert col in rows[0], col
    assert {r["lpips"] for r in rows} == {"unavailable"}
    # The baseline row of triplet 0 equals (X1+X3)/2 recomputed from the dataset item.
    from tascmt.data.dataset import TripletDataset

    item = TripletDataset(cache, split="test")[0]
    x = item["x"].numpy()
    linear = 0.5 * (x[0] + x[1])
    expected = M.psnr(linear, item["y_interp"][0].numpy())
    assert float(rows[0]["linear_psnr"]) == pytest.approx(expected, rel=1e-6)
    mean_lin = np.mean([float(r["linear_psnr"]) for r in rows])
    assert summary["interp"]["linear"]["psnr"] == pytest.approx(mean_lin)
    assert summary["interp"]["model"]["lpips"] == "unavailable"
    assert "linear (X1+X3)/2" in (out / "summary.md").read_text(encoding="utf-8")


def test_foreground_empty_and_target_subsets(trained):
    _, _, out, summary = trained
    rows = _rows(out / "per_triplet.csv")
    n_fg = sum(r["fg_middle"] == "True" for r in rows)
    sub = summary["subsets"]
    assert sub["foreground"]["n_triplets"] == n_fg == summary["slices"]["foreground"]
    assert sub["empty"]["n_triplets"] == len(rows) - n_fg == summary["slices"]["empty"]
    assert n_fg > 0 and len(rows) - n_fg > 0, "the phantom test split should have both kinds"
    assert sub["acquired"]["n_triplets"] + sub["resampled"]["n_triplets"] == len(rows)
    fg_dice = np.mean([float(r["dice"]) for r in rows if r["fg_middle"] == "True"])
    assert sub["foreground"]["seg"]["dice"] == pytest.approx(fg_dice)


def test_segmentation_aggregates(trained):
    _, _, out, summary = trained
    rows = _rows(out / "per_triplet.csv")
    seg = summary["seg"]
    tp = sum(int(r[f"tp_{f}"]) for r in rows for f in ("y1", "y2", "y3"))
    fp = sum(int(r[f"fp_{f}"]) for r in rows for f in ("y1", "y2", "y3"))
    fn = sum(int(r[f"fn_{f}"]) for r in rows for f in ("y1", "y2", "y3"))
    expected = 1.0 if 2 * tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
    assert seg["global_dice"]["all"] == pytest.approx(expected)
    assert seg["y2"]["dice"] == pytest.approx(np.mean([float(r["dice_y2"]) for r in rows]))
    frame_mean = np.mean([seg["per_frame"][f]["dice"] for f in ("Y1", "Y2", "Y3")])
    assert seg["frame_avg"]["dice"] == pytest.approx(frame_mean)
    pv = summary["per_volume"]
    assert set(pv["cases"]) == {r["case_id"] for r in rows}
    for m in pv["cases"].values():
        assert 0.0 <= m["dice"] <= 1.0 and m["n_slices"] >= 3


def test_figures_written(trained):
    _, _, out, summary = trained
    for name in ("interpolation.png", "segmentation_y2.png", "interpretability.png"):
        path = out / "figures" / name
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert set(summary["figures"]) >= {"interpolation.png", "segmentation_y2.png"}


@pytest.mark.parametrize("name,tasks", [("tasc_interp", ("interp",)), ("tasc_seg", ("seg",))])
def test_single_task_checkpoint(trained, tmp_path, name, tasks):
    from tascmt.models import create_model
    from tascmt.models.checkpoint import save_model

    cache = trained[0]
    ckpt = save_model(create_model(name, size="tiny", img_size=SIZE), tmp_path / "ckpt")
    summary = evaluate_checkpoint(ckpt, cache, out_dir=tmp_path / "eval", figures=False, max_triplets=3)
    assert summary["tasks"] == list(tasks)
    assert ("seg" in summary) == ("seg" in tasks)
    assert ("model" in summary["interp"]) == ("interp" in tasks)
    assert "psnr" in summary["interp"]["linear"]  # the baseline is always there
    header = _rows(tmp_path / "eval" / "per_triplet.csv")[0]
    assert ("dice_y2" in header) == ("seg" in tasks)
    assert ("psnr" in header) == ("interp" in tasks)


def test_cli_checkpoint_mode(trained, tmp_path, capsys):
    cache, ckpt = trained[0], trained[1]
    code = cli_main(["evaluate", "-m", str(ckpt), "--cache", str(cache), "-o", str(tmp_path / "o"),
                     "--max-triplets", "2", "--no-figures"])
    assert code == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text(encoding="utf-8"))
    assert summary["n_triplets"] == 2
    assert "## Interpolation" in capsys.readouterr().out


def test_cli_rejects_mixed_modes(tmp_path, capsys):
    code = cli_main(["evaluate", "-m", "x", "--cache", "y", "--pred-dir", "p", "--gt-dir", "g", "-o",
                     str(tmp_path)])
    assert code == 2
    assert "either" in capsys.readouterr().err


def test_bad_split_batch_and_size(trained, tmp_path):
    from tascmt.errors import InputError
    from tascmt.models import create_model
    from tascmt.models.checkpoint import save_model

    cache, ckpt = trained[0], trained[1]
    other = save_model(create_model("tasc_swinmt", size="tiny"), tmp_path / "ckpt64", extra={"size": 64})
    with pytest.raises(InputError, match="--size 64"):
        evaluate_checkpoint(other, cache)
    with pytest.raises(ConfigError, match="split"):
        evaluate_checkpoint(ckpt, cache, split="holdout")
    with pytest.raises(ConfigError, match="batch_size"):
        evaluate_checkpoint(ckpt, cache, batch_size=0)


def test_volume_accumulator_averages_repeated_slices():
    acc = VolumeAccumulator()
    gt = np.zeros((3, 4, 4))
    gt[:, :2, :2] = 1  # 4 foreground pixels per slice
    p1 = np.zeros((3, 4, 4))
    p1[:, :2, :2] = 0.9  # correct on slices 0, 1, 2
    p2 = np.zeros((3, 4, 4))
    p2[0, :2, :2] = 0.2  # slice 2 again: mean (0.9 + 0.2) / 2 = 0.55 → still foreground
    p2[1] = 0.8  # slice 3: all 16 pixels foreground, 4 true → 12 FP
    acc.add("c", (0, 1, 2), p1, gt)
    acc.add("c", (2, 3, 4), p2, gt)
    res = acc.results()["cases"]["c"]
    assert res["n_slices"] == 5
    tp, fp, fn = 3 * 4 + 4, 12, 4  # slices 0-2 correct, slice 3: 4 TP + 12 FP, slice 4: 4 FN
    assert res["dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert not math.isnan(acc.results()["mean_dice"])


def test_whole_volumes_through_predict_volume(trained, tmp_path):
    cache, ckpt = trained[0], trained[1]
    summary = evaluate_checkpoint(ckpt, cache, out_dir=tmp_path / "v", figures=False, volumes=True)
    wv = summary["whole_volumes"]
    from tascmt.data.cache import Manifest

    manifest = Manifest.load(cache)
    test_cases = {c for c, info in manifest.cases.items() if info["split"] == "test"}
    assert set(wv["cases"]) == test_cases and not wv["skipped"]
    rows = _rows(tmp_path / "v" / "per_triplet.csv")
    for case, m in wv["cases"].items():
        info = manifest.cases[case]
        assert m["n_slices"] == info["n_slices"] and m["n_offsets"] == 2 * info["step"]
        assert 0.0 <= m["dice"] <= 1.0 and 0.0 <= m["surface_dice"] <= 1.0
        # Over every thinning offset each triplet's middle is synthesised once: linear interpolation scores
        # the same as on the triplets (whole native slices, normalised on the input pair).
        mids = [float(r["linear_psnr"]) for r in rows if r["case_id"] == case]
        assert m["n_synth"] == len(mids)
        assert m["linear_psnr_synth"] == pytest.approx(np.mean(mids), rel=1e-5)
    assert (tmp_path / "v" / "per_volume.csv").is_file()
    assert "## Whole volumes" in (tmp_path / "v" / "summary.md").read_text(encoding="utf-8")


def test_leaky_triplet_normalisation_is_labelled(trained, tmp_path):
    from tascmt.data.prepare import prepare_dataset

    cache, ckpt = trained[0], trained[1]
    leaky = tmp_path / "leaky"
    prepare_dataset(cache.parent / "task", leaky, size=SIZE, norm="triplet", progress=False, verbose=False)
    with pytest.raises(ConfigError, match="normalisation"):  # the checkpoint was trained with minmax_pair
        evaluate_checkpoint(ckpt, leaky, figures=False, max_triplets=2)
    with pytest.warns(UserWarning, match="normalisation"):
        summary = evaluate_checkpoint(ckpt, leaky, out_dir=tmp_path / "o", figures=False, max_triplets=2,
                                      allow_mismatch=True)
    assert any("normalisation" in note for note in summary["data_mismatch"])
    assert "leaks the target" in summary["normalization_warning"]
    assert "warning" in (tmp_path / "o" / "summary.md").read_text(encoding="utf-8")
    assert trained[3]["normalization_warning"] is None


def test_lpips_with_weight_files(trained, tmp_path):
    """LPIPS plumbing with random (not ImageNet) weights: numbers instead of "unavailable"."""
    import torch
    from safetensors.torch import save_file

    from tascmt.evaluation.metrics.lpips import TAP_CHANNELS, Vgg16Features

    torch.manual_seed(0)
    vgg = {k: v.contiguous() for k, v in Vgg16Features().state_dict().items()}
    save_file(vgg, str(tmp_path / "vgg.safetensors"))
    lin = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(TAP_CHANNELS)}
    torch.save(lin, tmp_path / "lin.pth")
    cache, ckpt = trained[0], trained[1]
    summary = evaluate_checkpoint(ckpt, cache, out_dir=tmp_path / "o", figures=False, max_triplets=3,
                                  lpips_vgg=tmp_path / "vgg.safetensors", lpips_lin=tmp_path / "lin.pth")
    rows = _rows(tmp_path / "o" / "per_triplet.csv")
    values = [float(r["lpips"]) for r in rows] + [float(r["linear_lpips"]) for r in rows]
    assert all(math.isfinite(v) and v >= 0 for v in values)
    assert summary["interp"]["model"]["lpips"] == pytest.approx(np.mean(values[:3]))
    assert summary["lpips"] == "computed"


def test_resampled_targets_reported_separately(trained, tmp_path):
    from tascmt.data.prepare import prepare_dataset

    cache, ckpt = trained[0], trained[1]
    resampled = tmp_path / "resampled"
    prepare_dataset(cache.parent / "task", resampled, size=SIZE, protocol="resampled", progress=False,
                    verbose=False)
    with pytest.raises(ConfigError, match="target protocol: checkpoint 'acquired', cache 'resampled'"):
        evaluate_checkpoint(ckpt, resampled, figures=False, max_triplets=4)
    with pytest.warns(UserWarning, match="target protocol"):
        summary = evaluate_checkpoint(ckpt, resampled, out_dir=tmp_path / "o", figures=False, max_triplets=4,
                                      allow_mismatch=True)
    assert summary["targets"] == {"acquired": 0, "resampled": 4}
    assert summary["subsets"]["resampled"]["n_triplets"] == 4
    assert summary["subsets"]["acquired"]["n_triplets"] == 0
    assert "4 resampled" in (tmp_path / "o" / "summary.md").read_text(encoding="utf-8")


def test_volume_accumulator_streams_and_matches_naive_reassembly():
    rng = np.random.default_rng(1)
    acc = VolumeAccumulator()
    naive: dict[tuple[str, int], list] = {}
    max_pending = 0
    for case in ("a", "b"):
        for k0 in range(0, 10):
            ks = (k0, k0 + 2, k0 + 4)  # step 2
            probs, gts = rng.random((3, 6, 6)), (rng.random((3, 6, 6)) > 0.6).astype(float)
            acc.add(case, ks, probs, gts)
            for k, p, g in zip(ks, probs, gts):
                naive.setdefault((case, k), [[], g])[0].append(p)
            max_pending = max(max_pending, sum(len(v) for v in acc._pending.values()))
    assert max_pending <= 5  # only the slices later triplets can still touch are kept
    res = acc.results()
    assert res["late_predictions"] == 0
    for case in ("a", "b"):
        tp = fp = fn = 0
        for (c, _), (ps, g) in naive.items():
            if c != case:
                continue
            pred, gt = np.mean(ps, axis=0) > 0.5, g > 0.5
            tp, fp, fn = tp + (pred & gt).sum(), fp + (pred & ~gt).sum(), fn + (~pred & gt).sum()
        assert res["cases"][case]["dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
        assert res["cases"][case]["n_slices"] == 14
    acc.add("a", (0, 2, 4), np.ones((3, 6, 6)), np.ones((3, 6, 6)))  # out of order: counted, reported
    assert acc.results()["late_predictions"] == 3
