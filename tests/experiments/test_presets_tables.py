"""Experiment presets and JSON specs; tables with mean ± std and Welch markers on constructed results."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tascmt.errors import ConfigError
from tascmt.experiments.presets import PRESETS, REFERENCE_MODELS, ExperimentSpec, RunSpec, resolve_spec
from tascmt.experiments.tables import csv_table, markdown_table
from tascmt.models import list_models
from tascmt.training import TrainConfig


def test_presets_name_registered_models_and_valid_train_options(tmp_path):
    known = set(list_models())
    assert set(PRESETS) == {"ablation", "single_vs_multi", "loss_weights", "balancing", "hybrid_alpha",
                            "interp_baselines", "seg_baselines", "mtl_methods", "cascades"}
    for spec in PRESETS.values():
        assert spec.reference in [c.label for c in spec.configs]
        for c in spec.configs:
            assert c.model in known or c.model in REFERENCE_MODELS, (spec.name, c.model)
            TrainConfig.from_dict({"cache_dir": "c", "out_dir": str(tmp_path), "model": c.model, **c.train})
    assert PRESETS["ablation"].configs[0].label == "IndEnc"
    weights = [c.train.get("balancer_kwargs", {}).get("weights") for c in PRESETS["loss_weights"].configs]
    assert weights[:3] == [[0.3, 0.7], [0.4, 0.6], [0.5, 0.5]]
    assert "tcs" in PRESETS["single_vs_multi"].metrics


def test_json_spec_and_errors(tmp_path):
    path = tmp_path / "study.json"
    path.write_text(json.dumps({"name": "study", "reference": "b", "metrics": ["psnr", "dice"], "configs": [
        {"label": "a", "model": "tasc_swinmt", "train": {"balancer": "dwa"}},
        {"label": "b", "model": "tasc_swinmt"}]}))
    spec = resolve_spec(path)
    assert spec.name == "study" and spec.configs[0].train == {"balancer": "dwa"}
    assert resolve_spec("balancing") is PRESETS["balancing"]
    with pytest.raises(ConfigError, match="unknown experiment 'nope'"):
        resolve_spec("nope")
    with pytest.raises(ConfigError, match="not found"):
        resolve_spec(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="reference"):
        ExperimentSpec("x", (RunSpec("a", "m"),), reference="zz")
    with pytest.raises(ConfigError, match="unique"):
        ExperimentSpec("x", (RunSpec("a", "m"), RunSpec("a", "m")), reference="a")
    with pytest.raises(ConfigError, match="set by the experiment runner"):
        ExperimentSpec("x", (RunSpec("a", "m", {"seed": 3}),), reference="a")
    with pytest.raises(ConfigError, match="unknown metrics"):
        ExperimentSpec("x", (RunSpec("a", "m"),), reference="a", metrics=("psnr", "fid"))


def _spec():
    return ExperimentSpec("t", (RunSpec("base", "m0"), RunSpec("close", "m1"), RunSpec("full", "m2")),
                          reference="full", metrics=("psnr", "dice"), deltas_from="base")


def _results():
    def runs(psnr, d_psnr, dice, d_dice):
        return {s: {"psnr": psnr + d_psnr * s, "dice": dice + d_dice * s, "linear_psnr": 25.0}
                for s in range(5)}

    return {"base": runs(20.0, 0.01, 0.50, 0.001), "close": runs(30.0, 0.3, 0.80, 0.02),
            "full": runs(30.1, 0.3, 0.81, 0.02)}


def test_markdown_table_markers_and_deltas():
    md = markdown_table(_spec(), _results(), seeds=range(5))
    main, deltas = md.split("### ")
    lines = {line.split("|")[1].strip(): line for line in main.splitlines() if line.startswith("| ")}
    assert "***" in lines["base"]  # far from the reference, tiny spread
    assert "*" not in lines["close"].replace("\\*", "")  # overlapping: no marker
    assert "(reference)" in lines["full (reference)"] and "*" not in lines["full (reference)"]
    assert "20.02 ± 0.02" in lines["base"]
    assert "25.00" in lines["linear (X1+X3)/2"]
    assert deltas.startswith("Differences over base")
    assert "| close | +10.58 | +33.80 |" in deltas  # ΔPSNR 30.6 - 20.02 dB; ΔDice (0.84 - 0.502) × 100


def test_csv_table_has_p_values():
    rows = list(csv.DictReader(io.StringIO(csv_table(_spec(), _results()))))
    by = {r["configuration"]: r for r in rows}
    assert float(by["base"]["psnr_p"]) < 0.001 and by["base"]["psnr_marker"] == "***"
    assert by["full"]["psnr_p"] == "nan" and by["full"]["reference"] == "1"
    assert float(by["close"]["dice_mean"]) == pytest.approx(0.84)


def test_missing_metric_is_na():
    res = _results()
    for m in res["close"].values():
        m["psnr"] = None  # e.g. a segmentation-only model
    md = markdown_table(_spec(), res, seeds=range(5))
    assert "n/a" in next(line for line in md.splitlines() if line.startswith("| close"))


def test_unbiased_segmentation_columns_and_the_flow_reference_reach_the_tables():
    from tascmt.experiments.presets import KNOWN_METRICS
    from tascmt.experiments.runner import extract_metrics
    from tascmt.experiments.tables import HEADERS

    summary = {
        "interp": {"model": {"psnr": 30.0}, "linear": {"psnr": 28.0}},
        "seg": {"frame_avg": {"dice": 0.9, "iou": 0.85, "precision": 0.9, "recall": 0.9}, "y2": {"dice": 0.5},
                "global_dice": {"all": 0.4}, "tcs": 0.9, "tcs_fg": 0.8,
                "fg_y2": {"n_triplets": 3, "dice": 0.3, "iou": 0.2, "precision": 1.0, "recall": 0.25}},
        "whole_volumes": {"mean": {"dice": 0.5, "hd95_mm": 12.0, "surface_dice": 0.4, "psnr_synth": 31.0,
                                   "linear_psnr_synth": 29.0, "flow_psnr_synth": 30.0, "flow_dice_synth": 0.7,
                                   "hu_mae_out_flow": 80.0, "n_synth": 40, "hd95_missed": 0.5},
                          "totals": {"hd95_missed": 1, "hd95_false": 2, "hd95_volumes": 8}},
    }
    m = extract_metrics(summary)
    assert (m["dice_fg"], m["iou_fg"], m["precision_fg"], m["recall_fg"]) == (0.3, 0.2, 1.0, 0.25)
    assert (m["hd95_mm_whole_volume"], m["hd95_missed_whole_volume"], m["hd95_false_whole_volume"]) == (12.0, 1, 2)
    assert (m["psnr_synth"], m["linear_psnr_synth"], m["flow_psnr_synth"]) == (31.0, 29.0, 30.0)
    assert m["flow_dice_synth"] == 0.7 and m["hu_mae_out_flow"] == 80.0 and "n_synth" not in m
    wired = {"dice_fg", "iou_fg", "precision_fg", "recall_fg", "hd95_missed_whole_volume",
             "hd95_false_whole_volume", "psnr_synth", "flow_psnr_synth", "flow_ssim_synth",
             "flow_edge_ssim_synth", "flow_dice_synth"}
    assert wired <= set(KNOWN_METRICS) and all(k in HEADERS for k in KNOWN_METRICS)
    spec = ExperimentSpec("t", (RunSpec("a", "m0"),), reference="a", metrics=("psnr", "psnr_synth", "dice_fg"))
    md = markdown_table(spec, {"a": {0: m, 1: m}}, seeds=range(2))
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[3:-1]]
            for line in md.splitlines() if line.startswith("| ")}
    assert rows["linear (X1+X3)/2"] == ["28.00", "29.00", "–"]
    assert rows["flow midpoint (TV-L1)"] == ["–", "30.00", "–"]  # whole volumes only
    assert "TV-L1 optical flow" in md and "fg Ŷ2" in md
    per_triplet_only = ExperimentSpec("t", (RunSpec("a", "m0"),), reference="a", metrics=("psnr", "dice"))
    assert "flow midpoint" not in markdown_table(per_triplet_only, {"a": {0: m}}, seeds=range(1))


def test_the_seg_presets_show_foreground_columns_and_the_mmoe_row_is_named_for_its_gates():
    for name in ("seg_baselines", "mtl_methods", "cascades", "single_vs_multi", "ablation", "balancing"):
        assert "dice_fg" in PRESETS[name].metrics, name
    labels = {c.model: c.label for c in PRESETS["mtl_methods"].configs}
    assert "multi-gate" in labels["mtl_moe"] and "task-agnostic" not in labels["mtl_moe"]
