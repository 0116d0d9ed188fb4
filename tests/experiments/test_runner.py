"""run_experiment with the real trainer and evaluator on a phantom cache (tiny model, one step per run)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from tascmt.cli import main as cli_main
from tascmt.data.cache import Manifest
from tascmt.data.prepare import prepare_dataset
from tascmt.errors import ConfigError
from tascmt.experiments.runner import MARKER, run_experiment
from tests.experiments._helpers import SIZE, make_cache

RUNTIME = {"num_workers": 0, "tensorboard": False}
BUDGET = {"epochs": 1, "max_steps_per_epoch": 1, "batch_size": 2}


def _spec(n_configs: int) -> dict:
    configs = [
        {"label": "fixed 1:1", "model": "tasc_swinmt",
         "train": {"balancer": "fixed", "balancer_kwargs": {"weights": [1.0, 1.0]}}},
        {"label": "kendall", "model": "tasc_swinmt"},
        {"label": "dwa", "model": "tasc_swinmt", "train": {"balancer": "dwa"}},
    ][:n_configs]
    return {"name": "mini", "reference": "kendall", "configs": configs,
            "metrics": ["psnr", "ssim", "dice", "recall", "dice_volume"]}


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, _one_thread):
    root = tmp_path_factory.mktemp("experiment")
    cache = make_cache(root)
    spec_path = root / "mini.json"
    spec_path.write_text(json.dumps(_spec(2)))
    out = root / "out"
    result = run_experiment(spec_path, cache, out, seeds=(0, 1), size="tiny", budget=BUDGET,
                            train_options=RUNTIME, log=lambda m: None)
    return cache, spec_path, out, result


def test_tables_and_runs(experiment):
    _, _, out, result = experiment
    assert sorted(result.trained) == ["fixed_1_1/seed0", "fixed_1_1/seed1", "kendall/seed0", "kendall/seed1"]
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "| fixed 1:1 | `tasc_swinmt` |" in md and "| kendall (reference) |" in md
    assert " ± " in md and "Welch's t-test against **kendall**" in md
    assert "| linear (X1+X3)/2 |" in md and "3-D Dice (triplets)" in md
    rows = {r["configuration"]: r for r in csv.DictReader((out / "results.csv").open(encoding="utf-8"))}
    assert set(rows) == {"fixed 1:1", "kendall"}
    assert rows["kendall"]["reference"] == "1" and rows["fixed 1:1"]["psnr_n"] == "2"
    per_run = list(csv.DictReader((out / "per_run.csv").open(encoding="utf-8")))
    assert len(per_run) == 4 and all(r["linear_psnr"] and r["val_loss"] for r in per_run)
    for label in ("fixed_1_1", "kendall"):
        for seed in (0, 1):
            run = out / "runs" / label / f"seed{seed}"
            assert (run / MARKER).is_file() and (run / "eval" / "summary.json").is_file()
    cfg = json.loads((out / "runs" / "fixed_1_1" / "seed1" / "train" / "config.json").read_text(encoding="utf-8"))
    assert cfg["seed"] == 1 and cfg["balancer"] == "fixed" and cfg["size"] == "tiny"


def test_figures(experiment):
    _, _, out, result = experiment
    names = {p.name for p in result.figures}
    assert {"loss_fixed_1_1.png", "loss_kendall.png", "weights.png"} <= names
    for p in result.figures:
        assert p.read_bytes()[:4] == b"\x89PNG"
    assert (out / "runs" / "kendall" / "seed0" / "eval" / "figures" / "interpolation.png").is_file()


def test_experiments_sharing_a_runs_folder_reuse_each_others_rows(experiment, tmp_path):
    """Another experiment given the same runs folder reuses a row by its label, and a row with another label
    but the same model, settings, data and evaluation (the Kendall row of a balancing table = the full
    model); a row that differs in one setting is trained."""
    cache, _, out, first = experiment
    spec = {"name": "shared", "reference": "dynamic", "metrics": ["psnr", "dice"],
            "configs": [{"label": "fixed 1:1", "model": "tasc_swinmt",
                         "train": {"balancer": "fixed", "balancer_kwargs": {"weights": [1.0, 1.0]}}},
                        {"label": "dynamic", "model": "tasc_swinmt", "train": {"balancer": "kendall"}},
                        {"label": "fixed 1:2", "model": "tasc_swinmt",
                         "train": {"balancer": "fixed", "balancer_kwargs": {"weights": [1.0, 2.0]}}}]}
    messages: list[str] = []
    shared = run_experiment(spec, cache, tmp_path / "shared", seeds=(1,), size="tiny", budget=BUDGET,
                            train_options=RUNTIME, log=messages.append, runs_dir=out / "runs")
    assert sorted(shared.reused) == ["dynamic/seed1", "fixed_1_1/seed1"] and shared.trained == ["fixed_1_2/seed1"]
    assert shared.results["dynamic"][1] == first.results["kendall"][1]
    assert shared.results["fixed 1:1"][1] == first.results["fixed 1:1"][1]
    assert any("kendall" in m and "reused" in m for m in messages)
    assert not (out / "runs" / "dynamic").exists()  # reused in place, nothing copied
    assert (out / "runs" / "fixed_1_2" / "seed1" / MARKER).is_file()
    assert not (tmp_path / "shared" / "runs").exists()
    assert "loss_dynamic.png" in {p.name for p in shared.figures}  # figures follow the run it reused


def test_finished_runs_are_reused_and_a_mismatch_runs_again(experiment, capsys):
    cache, spec_path, out, first = experiment
    code = cli_main(["experiment", str(spec_path), "--cache", str(cache), "-o", str(out), "--seeds", "0", "1",
                     "--size", "tiny", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2",
                     "--no-figures", "--volumes"])  # the API's default for pair models: whole volumes on
    assert code == 0
    assert "kendall (reference)" in capsys.readouterr().out
    assert (out / "results.md").is_file()
    again = run_experiment(spec_path, cache, out, seeds=(0, 1), size="tiny", budget=BUDGET,
                           train_options=RUNTIME, figures=False, log=lambda m: None)
    assert again.trained == [] and len(again.reused) == 4
    assert again.results == first.results
    messages: list[str] = []
    changed = run_experiment(spec_path, cache, out, seeds=(0,), size="tiny",
                             budget={**BUDGET, "max_steps_per_epoch": 2}, train_options=RUNTIME, figures=False,
                             log=messages.append)
    assert sorted(changed.trained) == ["fixed_1_1/seed0", "kendall/seed0"] and changed.reused == []
    log = "\n".join(messages)
    assert "does not match" in log and "max_steps_per_epoch: 1 → 2" in log  # says what differs
    kept = out / "runs" / "kendall" / "seed0.superseded-1"
    assert json.loads((kept / "result.json").read_text(encoding="utf-8"))["settings"]["max_steps_per_epoch"] == 1
    record = json.loads((out / "runs" / "kendall" / "seed0" / "result.json").read_text(encoding="utf-8"))
    assert record["settings"]["max_steps_per_epoch"] == 2


def test_reuse_is_keyed_on_the_data_the_split_and_the_evaluation(tmp_path):
    """Another split, other data or other evaluation options are never reported under the old numbers; the
    same data prepared elsewhere is reused (the key holds no path)."""
    cache = make_cache(tmp_path / "a")
    spec = {"name": "keyed", "reference": "kendall", "metrics": ["psnr", "dice", "dice_fg"],
            "configs": [{"label": "linear", "model": "linear_interp"}, {"label": "kendall", "model": "tasc_swinmt"}]}
    out = tmp_path / "out"

    def run(cache_dir, split="test", **kw):
        messages: list[str] = []
        res = run_experiment(spec, cache_dir, out, seeds=(0,), size="tiny", budget=BUDGET, train_options=RUNTIME,
                             split=split, figures=False, log=messages.append, **kw)
        return res, "\n".join(messages)

    def record():
        return json.loads((out / "runs" / "kendall" / "seed0" / "result.json").read_text(encoding="utf-8"))

    first, _ = run(cache)
    assert sorted(first.trained) == ["kendall/seed0", "linear/seed0"]
    key = {k: record()[k] for k in ("settings", "data_fingerprint", "split", "evaluation")}
    assert str(tmp_path) not in json.dumps(key)  # a committed result.json is reusable from anywhere
    assert run(cache)[0].trained == []
    # another split: evaluated again, saying why; the trained model itself is reused
    val, log = run(cache, split="val")
    assert sorted(val.trained) == ["kendall/seed0", "linear/seed0"] and "split 'test' → 'val'" in log
    assert "training tasc_swinmt" not in log and not list((out / "runs" / "kendall").glob("*.superseded-*"))
    assert record()["split"] == "val"
    # the same data prepared again from a copy of the task in another place: the same fingerprint, reused
    copy = shutil.copytree(tmp_path / "a" / "task", tmp_path / "b" / "task")
    prepare_dataset(copy, tmp_path / "b" / "cache", size=SIZE, progress=False, verbose=False)
    moved, _ = run(tmp_path / "b" / "cache", split="val")
    assert moved.trained == [] and moved.results == val.results
    # other data: trained and evaluated again, the earlier run kept beside it
    other = make_cache(tmp_path / "c", seed=4)
    again, log = run(other, split="val")
    assert sorted(again.trained) == ["kendall/seed0", "linear/seed0"] and "data fingerprint" in log
    assert "training tasc_swinmt" in log and "kept in" in log
    assert (out / "runs" / "kendall" / "seed0.superseded-1" / "result.json").is_file()
    assert record()["data_fingerprint"] == Manifest.load(other).fingerprint()
    # evaluation options are part of the key too
    no_flow, log = run(other, split="val", eval_options={"flow": False})
    assert no_flow.reused == [] and "evaluation flow: True → False" in log
    # a run recorded before fingerprints existed: evaluated again; its training is reused when its checkpoint
    # was trained on this very cache build (the checkpoint's cache parameter hash)
    path = out / "runs" / "kendall" / "seed0" / "result.json"
    old = {k: v for k, v in record().items() if k not in ("data_fingerprint", "evaluation")}
    path.write_text(json.dumps(old), encoding="utf-8")
    legacy, log = run(other, split="val", eval_options={"flow": False})
    assert "kendall/seed0" in legacy.trained and "data fingerprint not recorded" in log
    assert "training tasc_swinmt" not in log and record()["data_fingerprint"] == Manifest.load(other).fingerprint()


def test_the_evaluation_key_holds_no_path_and_no_runtime_option():
    from tascmt.experiments.planning import evaluation_key

    key = evaluation_key({"lpips_vgg": "/weights/vgg16.pth", "lpips_lin": Path("/w/lin.pth"), "device": "cuda",
                          "batch_size": 8, "volumes": True}, {"fg_policy_eval": "every"})
    assert key == {"fg_policy": "every", "volumes": True, "flow": True, "lpips": ["vgg16.pth", "lin.pth"],
                   "max_triplets": None, "allow_mismatch": False}


def test_bad_inputs(tmp_path):
    with pytest.raises(ConfigError, match="not a prepared cache"):
        run_experiment("balancing", tmp_path, tmp_path / "o", seeds=(0, 1))
    (tmp_path / "manifest.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError, match="distinct"):
        run_experiment("balancing", tmp_path, tmp_path / "o", seeds=(0, 0))
    with pytest.raises(ConfigError, match="unknown models"):
        run_experiment({"configs": [{"label": "a", "model": "no_such_model"}]}, tmp_path, tmp_path / "o")


@pytest.mark.slow
def test_three_configurations_two_seeds(tmp_path):
    cache = make_cache(tmp_path)
    spec = _spec(3)
    spec["metrics"].append("dice_whole_volume")
    result = run_experiment(spec, cache, tmp_path / "out", seeds=(0, 1), size="tiny",
                            budget={"epochs": 2, "max_steps_per_epoch": 2, "batch_size": 2},
                            train_options=RUNTIME, log=lambda m: None, eval_options={"volumes": True})
    md = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    assert all(f"| {lab}" in md for lab in ("fixed 1:1", "kendall (reference)", "dwa"))
    assert len(result.trained) == 6
    assert "3-D Dice (volumes)" in md and "n/a" not in md.split("| dwa")[1].splitlines()[0]
    assert (tmp_path / "out" / "figures" / "convergence_val_psnr.png").is_file()
