"""The comparison presets of the paper's tables (docs/design.md §9: interpolation baselines, segmentation baselines in the oracle and
cascade settings, multi-task methods): resolution, validation, and end-to-end runs on a phantom cache
(tiny models, one optimiser step per training run)."""

from __future__ import annotations

import csv
import json
import time

import pytest

from tascmt.errors import ConfigError
from tascmt.experiments.planning import check_models
from tascmt.experiments.presets import PRESETS, REFERENCE_MODELS, ExperimentSpec, RunSpec, resolve_spec
from tascmt.experiments.runner import MARKER, PART_MARKER, run_experiment
from tests.experiments._helpers import make_cache

RUNTIME = {"num_workers": 0, "tensorboard": False}
BUDGET = {"epochs": 1, "max_steps_per_epoch": 1, "batch_size": 2}
COMPARISONS = ("interp_baselines", "seg_baselines", "mtl_methods", "cascades")


def _json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_comparison_presets_resolve_to_registered_models():
    from tascmt.models import list_models, model_config

    known = set(list_models())
    for name in COMPARISONS:
        spec = resolve_spec(name)
        check_models(spec)  # raises on unknown names and on ill-formed cascades
        assert spec.reference == "full" and spec.configs[-1].model == "tasc_swinmt"
        for c in spec.configs:
            assert c.model in known or c.model in REFERENCE_MODELS, (name, c)
            if c.model == "nnunet_seg":
                assert "nnU-Net-style" in c.label
    interp = PRESETS["interp_baselines"]
    assert {c.model for c in interp.configs} == {"linear_interp", "cubic", "swinunet_interp",
                                                 "transunet_interp", "vtn_interp", "tasc_swinmt"}
    assert [c.kind for c in interp.configs][:2] == ["reference", "reference"]
    assert set(interp.metrics) == {"psnr", "ssim", "lpips", "edge_ssim"}
    seg = PRESETS["seg_baselines"]
    for model in ("nnunet_seg", "unetpp_seg", "swinunetr_seg"):
        rows = [c for c in seg.configs if c.model == model]
        assert sorted(c.kind for c in rows) == ["cascade", "trained"]
        assert any("(oracle)" in c.label for c in rows) and any("(cascade" in c.label for c in rows)
        assert model_config(model, "tiny").input_frames == "triplet"
    assert {"dice", "iou", "precision", "recall"} <= set(seg.metrics)
    mtl = PRESETS["mtl_methods"]
    assert {c.model for c in mtl.configs} == {"mtl_concat", "mtl_shared_bottom", "mtl_cross_concat",
                                              "mtl_moe", "tasc_swinmt"}
    assert {"psnr", "psnr_synth", "dice_fg", "dice_synth", "hd95_mm_whole_volume"} <= set(mtl.metrics)
    from tascmt.models.baselines.cascade import CASCADES

    pairs = {(c.interp, c.model) for c in PRESETS["cascades"].configs if c.interp}
    assert pairs == {v for k, v in CASCADES.items() if k != "cascade"}  # the registered efficiency cascades
    assert any("nnU-Net-style" in c.label for c in PRESETS["cascades"].configs)


def test_spec_validation_for_references_and_cascades():
    spec = resolve_spec({"name": "s", "configs": [
        {"label": "c", "model": "unetpp_seg", "interp": "swinunet_interp"},
        {"label": "lin", "model": "linear_interp"}]})
    assert spec.configs[0].interp == "swinunet_interp" and spec.configs[0].kind == "cascade"
    assert spec.configs[1].is_reference
    with pytest.raises(ConfigError, match="without training"):
        ExperimentSpec("s", (RunSpec("cubic", "cubic", {"lr": 1e-3}),), reference="cubic")
    for interp, model in (("cubic", "unetpp_seg"), ("unetpp_seg", "unetpp_seg"),
                          ("swinunet_interp", "tasc_swinmt")):
        bad = ExperimentSpec("s", (RunSpec("x", model, interp=interp),), reference="x")
        with pytest.raises(ConfigError, match=r"cascade|interpolation model"):
            check_models(bad)


def test_mixed_kinds_end_to_end_and_reuse(tmp_path):
    """One fast run over every kind of row: references, an oracle segmenter, its cascade (whose segmenter
    is the oracle row's run) and a cascade with the linear reference; then everything is reused."""
    cache = make_cache(tmp_path, n_slices=10)
    spec = {"name": "mixed", "reference": "UNet++ (oracle)", "metrics": ["psnr", "ssim", "dice", "dice_y2"],
            "configs": [
                {"label": "linear", "model": "linear_interp"},
                {"label": "cubic", "model": "cubic"},
                {"label": "UNet++ (oracle)", "model": "unetpp_seg"},
                {"label": "UNet++ (cascade, SwinUNet)", "model": "unetpp_seg", "interp": "swinunet_interp"},
                {"label": "UNet++ (cascade, linear)", "model": "unetpp_seg", "interp": "linear_interp"}]}
    out = tmp_path / "out"
    t0 = time.perf_counter()
    result = run_experiment(spec, cache, out, seeds=(0, 1), size="tiny", budget=BUDGET,
                            train_options=RUNTIME, log=lambda m: None, figures=False)
    first = time.perf_counter() - t0
    where = (("linear", "reference"), ("cubic", "reference"), ("UNet++ (oracle)", "seed0"),
             ("UNet++ (cascade, SwinUNet)", "seed0"))
    settings = {lab: _json(out / "runs" / RunSpec(lab, "x").slug / sub / "result.json")["setting"]
                for lab, sub in where}
    assert settings == {"linear": "reference", "cubic": "reference", "UNet++ (oracle)": "oracle",
                        "UNet++ (cascade, SwinUNet)": "cascade"}
    # References: evaluated once, the same numbers for both seeds.
    assert result.results["cubic"][0] == result.results["cubic"][1]
    assert result.results["linear"][0]["psnr"] == pytest.approx(result.results["linear"][0]["linear_psnr"])
    # The cascade's segmenter is the oracle row's training run; the interpolator is a shared part.
    cascade = _json(out / "runs" / "UNet_cascade_SwinUNet" / "seed1" / "result.json")
    assert cascade["best_checkpoint"]["seg"].startswith(str(out / "runs" / "UNet_oracle" / "seed1"))
    assert (out / "parts" / "swinunet_interp" / "seed1" / PART_MARKER).is_file()
    assert not (out / "parts" / "unetpp_seg").exists()
    # Oracle and cascade rows differ in what the segmenter saw, so their Dice Ŷ2 may differ, but the
    # linear cascade reports the linear interpolation as its interpolation column.
    lin_cascade = result.results["UNet++ (cascade, linear)"][0]
    assert lin_cascade["psnr"] == pytest.approx(lin_cascade["linear_psnr"])
    assert "psnr" not in result.results["UNet++ (oracle)"][0]  # a segmenter has no interpolation column
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "| cubic | `cubic` *(no training)* |" in md
    assert "`swinunet_interp` → `unetpp_seg`" in md and "*oracle*" in md
    assert "| linear (X1+X3)/2 | – |" not in md  # the linear row is a configuration here
    rows = {r["configuration"]: r for r in csv.DictReader((out / "results.csv").open(encoding="utf-8"))}
    assert rows["UNet++ (cascade, SwinUNet)"]["interp"] == "swinunet_interp"
    for run in ("UNet_oracle/seed0", "UNet_cascade_linear/seed1", "cubic/reference"):
        assert (out / "runs" / run / MARKER).is_file()
    t0 = time.perf_counter()
    again = run_experiment(spec, cache, out, seeds=(0, 1), size="tiny", budget=BUDGET,
                           train_options=RUNTIME, log=lambda m: None, figures=False)
    assert again.trained == [] and again.results == result.results
    assert time.perf_counter() - t0 < first


def _cache64(root):
    """A 64×64 phantom cache: Swin UNETR's bottleneck is 1×1 at 32×32, where its instance norm cannot
    train (MONAI raises 'Expected more than 1 spatial element')."""
    from tascmt.data.prepare import prepare_dataset
    from tascmt.data.synth import make_synthetic_task

    task = make_synthetic_task(root / "task", "heart", n_cases=10, size=64, n_slices=6, seed=0)
    prepare_dataset(task, root / "cache", size=64, progress=False, verbose=False)
    return root / "cache"


@pytest.mark.parametrize("preset", COMPARISONS)
def test_comparison_preset_end_to_end(tmp_path, preset):
    cache = _cache64(tmp_path) if preset in ("seg_baselines", "cascades") else make_cache(tmp_path)
    result = run_experiment(preset, cache, tmp_path / "out", seeds=(0,), size="tiny", budget=BUDGET,
                            train_options=RUNTIME, log=lambda m: None, figures=False)
    spec = PRESETS[preset]
    assert set(result.results) == {c.label for c in spec.configs}
    md = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    for c in spec.configs:
        assert f"| {c.label}" in md
        metrics = result.results[c.label][0]
        main = "psnr" if preset == "interp_baselines" else "dice"
        assert isinstance(metrics[main], float), (c.label, metrics)


def test_whole_volume_option_skips_rows_without_a_pair_model(tmp_path):
    cache = make_cache(tmp_path)
    spec = {"name": "v", "reference": "UNet++ (oracle)", "metrics": ["psnr", "dice"],
            "configs": [{"label": "cubic", "model": "cubic"},
                        {"label": "UNet++ (oracle)", "model": "unetpp_seg"}]}
    messages: list[str] = []
    result = run_experiment(spec, cache, tmp_path / "out", seeds=(0,), size="tiny", budget=BUDGET,
                            train_options=RUNTIME, log=messages.append, figures=False,
                            eval_options={"volumes": True})
    assert sum("whole-volume evaluation needs a model of the input pair" in m for m in messages) == 2
    assert "dice_whole_volume" not in result.results["UNet++ (oracle)"][0]
