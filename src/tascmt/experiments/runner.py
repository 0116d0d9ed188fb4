"""Run a named experiment: every configuration × seed is trained, its best checkpoint evaluated, and the
results collected into paper-style tables (Markdown + CSV) and figures.

Layout of ``out_dir``::

    runs/<config>/seed<k>/train/     the training run (config.json, epochs.csv, best/, last/)
    runs/<config>/seed<k>/eval/      evaluate_checkpoint's per_triplet.csv, summary.json/.md, figures/
    runs/<config>/seed<k>/result.json    metrics of the run + the settings it was trained with
    runs/<config>/seed<k>/COMPLETED      marker: the run is finished and is reused on the next call
    results.md, results.csv, per_run.csv, experiment.json, figures/

A run folder with ``COMPLETED`` is never trained again; if its recorded settings differ from the requested
ones (other than runtime options such as ``max_minutes``) the runner refuses instead of mixing them.
An interrupted run (``train/last`` exists, no marker) is resumed.

Rows that are not one trained model (`tascmt.experiments.presets.RunSpec`):

- references (``linear_interp``, ``cubic``): evaluated once, without training, in
  ``runs/<config>/reference/``; every seed reports the same (deterministic) numbers;
- cascades (``RunSpec.interp`` set): the interpolation model and the segmenter are trained as separate
  "parts" and the cascade evaluated with `tascmt.evaluation.evaluate.evaluate_cascade`. A part is the
  training run of a row of the same experiment with the same model and options when there is one (so the
  oracle row's segmenter is the cascade's segmenter), else ``parts/<model>/seed<k>/``; a part trained
  once (marker ``TRAINED``) is reused by every row that needs it.

``planning.py`` decides where each run lives and whether a finished one is reused; this module executes.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tascmt.errors import ConfigError
from tascmt.experiments.planning import (
    MARKER,
    PART_FILE,
    PART_MARKER,
    RESULT_FILE,
    check_models,
    check_settings,
    checkpoint_in,
    input_kind,
    is_reference_model,
    load_finished,
    part_dirs,
    run_settings,
    train_config,
)
from tascmt.experiments.presets import ExperimentSpec, RunSpec, resolve_spec
from tascmt.experiments.tables import csv_table, markdown_table, per_run_csv
from tascmt.utils.atomic import write_json_atomic, write_text_atomic


@dataclass
class ExperimentResult:
    """What `run_experiment` produced. ``results``: ``{label: {seed: metrics}}``."""

    spec: ExperimentSpec
    out_dir: Path
    results: dict[str, dict[int, dict[str, Any]]]
    tables: dict[str, Path]
    figures: list[Path] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    trained: list[str] = field(default_factory=list)


def extract_metrics(summary: dict[str, Any], history: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """Flatten an evaluation summary (and the training history) into the table's metric columns."""
    out: dict[str, Any] = {}
    interp = summary.get("interp", {})
    for k, v in interp.get("model", {}).items():
        out[k] = v
    for k, v in interp.get("linear", {}).items():
        out[f"linear_{k}"] = v
    seg = summary.get("seg")
    if seg:
        out.update(seg["frame_avg"])
        out["dice_y2"] = seg["y2"]["dice"]
        out["dice_global"] = seg["global_dice"].get("all")
        out["tcs"], out["tcs_fg"] = seg["tcs"], seg["tcs_fg"]
    if summary.get("per_volume"):
        out["dice_volume"] = summary["per_volume"].get("mean_dice")
    whole = (summary.get("whole_volumes") or {}).get("mean") or {}
    for k in ("dice", "hd95_mm", "surface_dice"):
        if k in whole:
            out[f"{k}_whole_volume"] = whole[k]
    vals = [h.get("val_loss") for h in history]
    vals = [float(v) for v in vals if isinstance(v, (int, float)) and math.isfinite(v)]
    out["val_loss"] = min(vals) if vals else None
    return {k: (None if v == "unavailable" else v) for k, v in out.items()}












@dataclass
class _Trained:
    """A trained model (a row's training run or a cascade part)."""

    checkpoint: Path
    history: list[dict[str, Any]]
    settings: dict[str, Any]
    stop_reason: str | None = None
    global_step: int | None = None
    reused: bool = False




def train_part(model: str, train: dict[str, Any], seed: int, cache_dir: Path, run_dir: Path, size: str,
               base: dict[str, Any], log: Callable[[str], None]) -> _Trained:
    """Train ``model`` with ``train`` options into ``run_dir/train`` or reuse it when already trained there
    (marker ``TRAINED``, or a row's ``COMPLETED``), after checking that the recorded settings match."""
    from tascmt.training import train as train_fn

    cfg = train_config(RunSpec(model, model, train), seed, cache_dir, run_dir / "train", size, base)
    settings = run_settings(cfg)
    for marker, name in ((PART_MARKER, PART_FILE), (MARKER, RESULT_FILE)):
        if (run_dir / marker).exists():
            try:
                data = json.loads((run_dir / name).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as err:
                raise ConfigError(f"{run_dir}: marked {marker} but {name} is unreadable ({err}); "
                                  "delete the folder to re-run it") from err
            check_settings(run_dir, data.get("settings", {}), settings)
            return _Trained(checkpoint_in(run_dir, data.get("best_checkpoint")), data.get("history", []),
                            settings, data.get("stop_reason"), data.get("global_step"), reused=True)
    resume = (run_dir / "train" / "last").exists()
    log(f"    {'resuming' if resume else 'training'} {model} (seed {seed}) in {run_dir}")
    res = train_fn(cfg, resume=resume)
    if res.best_checkpoint is None or not Path(res.best_checkpoint).exists():
        raise ConfigError(f"{run_dir / 'train'}: training produced no best checkpoint "
                          f"(stop reason {getattr(res, 'stop_reason', '?')})")
    trained = _Trained(Path(res.best_checkpoint), list(res.history), settings,
                       getattr(res, "stop_reason", None), getattr(res, "global_step", None))
    write_json_atomic(run_dir / PART_FILE, {
        "model": model, "seed": int(seed), "best_checkpoint": str(trained.checkpoint),
        "history": trained.history, "stop_reason": trained.stop_reason,
        "global_step": trained.global_step, "settings": settings,
    })
    write_text_atomic(run_dir / PART_MARKER, "ok\n")
    return trained


def run_one(spec_row: RunSpec, seed: int, cache_dir: Path, run_dir: Path, size: str, base: dict[str, Any],
            split: str, eval_batch_size: int, device: str, eval_figures: bool,
            log: Callable[[str], None],
            eval_options: dict[str, Any] | None = None,
            part_dir: Callable[[str, dict[str, Any], int], Path] | None = None,
            ) -> tuple[dict[str, Any], bool]:
    """Train + evaluate one configuration/seed (or reuse a finished run). Returns (result, reused).

    References are evaluated without training (in ``run_dir.parent / "reference"``, shared by all seeds);
    cascade rows train their parts in ``part_dir(model, train_options, seed)`` (default: inside
    ``run_dir``) and evaluate the cascade.
    """
    from tascmt.evaluation.evaluate import evaluate_cascade, evaluate_checkpoint

    options = dict(eval_options or {})
    if spec_row.is_reference:
        run_dir = run_dir.parent / "reference"
        settings: dict[str, Any] = {"reference": spec_row.model}
    elif spec_row.interp is not None:
        part_dir = part_dir or (lambda model, train, s: run_dir / ("interp" if model == spec_row.interp
                                                                   else "seg"))
        settings = {"cascade": [spec_row.interp, spec_row.model]}
    else:
        settings = run_settings(train_config(spec_row, seed, cache_dir, run_dir / "train", size, base))
    done = load_finished(run_dir, settings) if spec_row.interp is None else None
    if done is not None:
        log(f"  {spec_row.label} seed {seed}: finished earlier, reused")
        return done, True
    if input_kind(spec_row, size) != "pair" and options.pop("volumes", False):
        log(f"  {spec_row.label}: whole-volume evaluation needs a model of the input pair; skipped")
    eval_kw = dict(split=split, out_dir=run_dir / "eval", batch_size=eval_batch_size, device=device,
                   figures=eval_figures, **options)
    trained: _Trained | None = None
    if spec_row.is_reference:
        log(f"  {spec_row.label}: evaluating the reference {spec_row.model} (no training)")
        summary = evaluate_checkpoint(spec_row.model, cache_dir, **eval_kw)
        checkpoint: Any = None
    elif spec_row.interp is not None:
        parts: dict[str, Any] = {}
        for role, model in (("interp", spec_row.interp), ("seg", spec_row.model)):
            if is_reference_model(model):
                parts[role], settings[f"{role}_settings"] = model, {"reference": model}
                continue
            part = train_part(model, spec_row.train, seed, cache_dir, part_dir(model, spec_row.train, seed),
                              size, base, log)
            parts[role], settings[f"{role}_settings"] = part.checkpoint, part.settings
        done = load_finished(run_dir, settings)
        if done is not None:
            log(f"  {spec_row.label} seed {seed}: finished earlier, reused")
            return done, True
        log(f"  {spec_row.label} seed {seed}: evaluating the cascade {spec_row.interp} → {spec_row.model}")
        summary = evaluate_cascade(parts["interp"], parts["seg"], cache_dir, size=size, **eval_kw)
        checkpoint = {"interp": str(parts["interp"]), "seg": str(parts["seg"])}
    else:
        trained = train_part(spec_row.model, spec_row.train, seed, cache_dir, run_dir, size, base, log)
        log(f"  {spec_row.label} seed {seed}: evaluating {trained.checkpoint}")
        summary = evaluate_checkpoint(trained.checkpoint, cache_dir, **eval_kw)
        checkpoint = str(trained.checkpoint)
    result = {
        "label": spec_row.label, "model": spec_row.model, "interp": spec_row.interp, "seed": int(seed),
        "split": split, "setting": summary.get("setting"),
        "metrics": extract_metrics(summary, trained.history if trained is not None else ()),
        "best_checkpoint": checkpoint,
        "stop_reason": trained.stop_reason if trained else None,
        "global_step": trained.global_step if trained else None, "settings": settings,
    }
    write_json_atomic(run_dir / RESULT_FILE, result)
    write_text_atomic(run_dir / MARKER, "ok\n")
    return result, False






def run_experiment(
    preset_or_spec: str | os.PathLike | ExperimentSpec | dict,
    cache_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    budget: dict[str, Any] | None = None,
    size: str = "small",
    train_options: dict[str, Any] | None = None,
    split: str = "test",
    eval_batch_size: int = 4,
    device: str = "cpu",
    figures: bool = True,
    log: Callable[[str], None] | None = None,
    eval_options: dict[str, Any] | None = None,
) -> ExperimentResult:
    """Train and evaluate every configuration of an experiment for every seed; write tables and figures.

    Args:
        preset_or_spec: a preset name (``tascmt.experiments.presets.PRESETS``), a JSON spec path, a dict or
            an `ExperimentSpec`.
        cache_dir: the prepared triplet cache (one patient split shared by all runs).
        out_dir: experiment folder (see the module docstring); finished runs in it are reused.
        seeds: run seeds (0-4 by default); at least 2 for standard deviations and t-tests.
        budget: per-run training budget, ``TrainConfig`` fields such as ``epochs``, ``max_minutes``,
            ``max_steps``, ``max_steps_per_epoch``.
        size: model size for every configuration ("tiny", "small", "paper").
        train_options: other ``TrainConfig`` fields shared by all runs (e.g. ``batch_size``); a
            configuration's own options win over these.
        split: the split evaluated ("test"; "val" for model selection studies).
        device: training and evaluation device ("cpu", "cuda", "auto").
        figures: write loss curves, convergence and weight-trajectory figures (and per-run qualitative ones).
        log: progress messages (default: stderr).
        eval_options: further ``evaluate_checkpoint`` arguments (``lpips_vgg``, ``lpips_lin``, ``fg_policy``,
            ``volumes``); they are not part of a run's reuse check.
    """
    spec = resolve_spec(preset_or_spec)
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct and non-empty, got {seeds}")
    cache_dir, out_dir = Path(cache_dir), Path(out_dir)
    if not (cache_dir / "manifest.json").is_file():
        raise ConfigError(f"{cache_dir}: not a prepared cache (no manifest.json); run `tascmt prepare` first")
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    base = {"device": device, "progress": False, **(train_options or {}), **(budget or {})}
    check_models(spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "experiment.json", {
        "name": spec.name, "reference": spec.reference, "metrics": list(spec.metrics), "seeds": seeds,
        "size": size, "split": split, "cache_dir": str(cache_dir), "base_train_options": base,
        "configs": [{"label": c.label, "model": c.model, "train": c.train,
                     **({"interp": c.interp} if c.interp else {})} for c in spec.configs],
    })
    results: dict[str, dict[int, dict[str, Any]]] = {}
    reused, trained = [], []
    parts_at = part_dirs(spec, out_dir)
    log(f"experiment {spec.name}: {len(spec.configs)} configurations × {len(seeds)} seeds")
    for c in spec.configs:
        results[c.label] = {}
        for seed in seeds:
            run_dir = out_dir / "runs" / c.slug / f"seed{seed}"
            res, was_reused = run_one(c, seed, cache_dir, run_dir, size, base, split, eval_batch_size, device,
                                      eval_figures=figures and seed == seeds[0], log=log,
                                      eval_options=eval_options, part_dir=parts_at)
            results[c.label][seed] = res["metrics"]
            (reused if was_reused else trained).append(f"{c.slug}/seed{seed}")
    tables = {
        "markdown": write_text_atomic(out_dir / "results.md", f"# Experiment: {spec.name}\n\n"
                                      + markdown_table(spec, results, seeds)),
        "csv": write_text_atomic(out_dir / "results.csv", csv_table(spec, results)),
        "per_run": write_text_atomic(out_dir / "per_run.csv", per_run_csv(spec, results)),
    }
    figs: list[Path] = []
    if figures:
        from tascmt.experiments.figures import experiment_figures

        figs = experiment_figures(spec, out_dir, seeds, log)
    log(f"experiment {spec.name}: tables in {tables['markdown']}")
    return ExperimentResult(spec, out_dir, results, tables, figs, reused, trained)




