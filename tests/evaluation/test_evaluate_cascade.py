"""Segmentation baselines in the oracle and cascade settings, and the parameter-free references (linear,
cubic), through evaluate_checkpoint / evaluate_cascade on a 32×32 phantom cache (untrained tiny models)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from tascmt.cli import main as cli_main
from tascmt.errors import ConfigError
from tascmt.evaluation import metrics as M
from tascmt.evaluation.evaluate import evaluate_cascade, evaluate_checkpoint, is_reference_name
from tests.experiments._helpers import SIZE, make_cache, single_thread


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def setup(tmp_path_factory, _one_thread):
    """A cache whose cases have 12 slices (so some triplets have the 4 neighbours cubic needs), and
    checkpoints of an untrained interpolator and an untrained triplet segmenter."""
    from tascmt.models import create_model
    from tascmt.models.checkpoint import save_model

    root = tmp_path_factory.mktemp("cascade_eval")
    cache = make_cache(root, n_cases=10, n_slices=12)
    torch.manual_seed(0)
    seg = save_model(create_model("unetpp_seg", size="tiny", img_size=SIZE), root / "seg",
                     extra={"size": SIZE})
    interp = save_model(create_model("swinunet_interp", size="tiny", img_size=SIZE), root / "interp",
                        extra={"size": SIZE})
    return cache, interp, seg


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _item(cache, i=0):
    from tascmt.data.dataset import TripletDataset

    return TripletDataset(cache, split="test")[i]


def test_oracle_setting_segments_the_real_middle_slice(setup, tmp_path):
    from tascmt.models.checkpoint import load_model

    cache, _, seg = setup
    summary = evaluate_checkpoint(seg, cache, out_dir=tmp_path / "o", figures=True, max_triplets=4)
    assert summary["setting"] == "oracle" and "real" in summary["setting_note"]
    assert summary["tasks"] == ["seg"] and "seg" in summary and "model" not in summary["interp"]
    assert "setting: **oracle**" in (tmp_path / "o" / "summary.md").read_text(encoding="utf-8")
    assert json.loads((tmp_path / "o" / "summary.json").read_text(encoding="utf-8"))["setting"] == "oracle"
    # Triplet 0's Dice Y2 equals the segmenter run on [X1, X2, X3] by hand.
    model, _ = load_model(seg)
    item = _item(cache)
    x = torch.cat([item["x"][:1], item["y_interp"], item["x"][1:]])[None]  # (1, 3, H, W)
    prob = model.predict(x)["seg"][0].numpy()  # (3, H, W)
    expected = M.seg_metrics(prob[1] > 0.5, item["y_seg"][1].numpy() > 0.5)["dice"]
    assert float(_rows(tmp_path / "o" / "per_triplet.csv")[0]["dice_y2"]) == pytest.approx(expected)
    with pytest.raises(ConfigError, match="oracle"):
        evaluate_checkpoint(seg, cache, volumes=True, max_triplets=1)


def test_cascade_setting_uses_the_interpolators_output(setup, tmp_path):
    from tascmt.models.checkpoint import load_model

    cache, interp, seg = setup
    summary = evaluate_cascade(interp, seg, cache, out_dir=tmp_path / "c", figures=True, max_triplets=4)
    assert summary["setting"] == "cascade" and summary["tasks"] == ["interp", "seg"]
    assert summary["cascade"] == ["swinunet_interp", "unetpp_seg"]
    assert summary["seg_checkpoint"] == str(seg) and "seg" in summary
    assert "setting: **cascade**" in (tmp_path / "c" / "summary.md").read_text(encoding="utf-8")
    # The interpolation columns are the interpolator's own.
    alone = evaluate_checkpoint(interp, cache, figures=False, max_triplets=4)
    assert alone["setting"] == "pair"
    assert summary["interp"]["model"]["psnr"] == pytest.approx(alone["interp"]["model"]["psnr"], rel=1e-5)
    # The segmenter saw [X1, clamp(X̂2), X3].
    im, _ = load_model(interp)
    sm, _ = load_model(seg)
    item = _item(cache)
    x_hat = im.predict(item["x"][None])["interp"]  # (1, 1, H, W)
    prob = sm.predict(torch.cat([item["x"][None, :1], x_hat, item["x"][None, 1:]], dim=1))["seg"][0].numpy()
    expected = M.seg_metrics(prob[1] > 0.5, item["y_seg"][1].numpy() > 0.5)["dice"]
    assert float(_rows(tmp_path / "c" / "per_triplet.csv")[0]["dice_y2"]) == pytest.approx(expected)


def test_cascade_with_linear_and_bad_parts(setup):
    cache, interp, seg = setup
    summary = evaluate_cascade("linear_interp", seg, cache, figures=False, max_triplets=3)
    assert summary["interp"]["model"]["psnr"] == pytest.approx(summary["interp"]["linear"]["psnr"])
    with pytest.raises(ConfigError, match="cascade"):
        evaluate_cascade(seg, interp, cache, figures=False, max_triplets=1)  # parts swapped
    with pytest.raises(ConfigError, match="no_such_model"):
        evaluate_cascade("no_such_model", seg, cache, figures=False, max_triplets=1)


def test_linear_reference_without_training(setup, tmp_path):
    cache = setup[0]
    assert is_reference_name("linear_interp") and is_reference_name("cubic")
    assert not is_reference_name("swinunet_interp") and not is_reference_name(str(setup[1]))
    summary = evaluate_checkpoint("linear_interp", cache, out_dir=tmp_path / "l", figures=False)
    assert summary["setting"] == "reference" and summary["model"] == "linear_interp"
    assert summary["interp"]["model"]["psnr"] == pytest.approx(summary["interp"]["linear"]["psnr"])


def test_cubic_reference(setup, tmp_path):
    from tascmt.data.cache import Manifest, case_files
    from tascmt.data.normalize import normalizer_from_dict

    cache = setup[0]
    summary = evaluate_checkpoint("cubic", cache, out_dir=tmp_path / "cub", figures=False)
    support = summary["cubic_support"]
    assert support["cubic"] > 0 and support["linear_fallback"] > 0
    assert support["cubic"] + support["linear_fallback"] == summary["n_triplets"]
    assert "Catmull-Rom" in summary["cubic_note"] and "linear fallback" in (tmp_path / "cub" / "summary.md"
                                                                           ).read_text(encoding="utf-8")
    rows = _rows(tmp_path / "cub" / "per_triplet.csv")
    manifest = Manifest.load(cache)
    by_index = {t["index"]: t for t in manifest.triplets}
    norm = normalizer_from_dict(manifest.params["norm"])
    checked = {"cubic": 0, "fallback": 0}
    for r in rows:
        t = by_index[int(r["index"])]
        img = np.load(cache / case_files(t["case_id"])[0])  # (Z, H, W)
        s = t["k1"] - t["k0"]
        if t["k1"] - 3 * s >= 0 and t["k1"] + 3 * s < img.shape[0]:
            p0, p1, p2, p3 = (img[t["k1"] + d * s].astype(np.float64) for d in (-3, -1, 1, 3))
            est = (-p0 + 9 * p1 + 9 * p2 - p3) / 16
            params = norm.fit(img[t["k0"]], img[t["k2"]])
            gt = norm.apply(img[t["k1"]].astype(np.float32), params)
            expected = M.psnr(np.clip(norm.apply(est, params), 0, 1), gt)
            assert float(r["psnr"]) == pytest.approx(expected, rel=1e-4)
            checked["cubic"] += 1
        else:  # linear fallback: the same number as the linear baseline
            assert float(r["psnr"]) == pytest.approx(float(r["linear_psnr"]), rel=1e-5)
            checked["fallback"] += 1
    assert checked["cubic"] == support["cubic"] and checked["fallback"] == support["linear_fallback"]


def test_cli_references_and_cascade(setup, tmp_path, capsys):
    cache, interp, seg = setup
    assert cli_main(["evaluate", "-m", "cubic", "--cache", str(cache), "-o", str(tmp_path / "a"),
                     "--max-triplets", "2", "--no-figures"]) == 0
    assert json.loads((tmp_path / "a" / "summary.json").read_text(encoding="utf-8"))["setting"] == "reference"
    assert cli_main(["evaluate", "-m", str(interp), "--cascade-seg", str(seg), "--cache", str(cache),
                     "-o", str(tmp_path / "b"), "--max-triplets", "2", "--no-figures"]) == 0
    assert "setting: **cascade**" in capsys.readouterr().out
