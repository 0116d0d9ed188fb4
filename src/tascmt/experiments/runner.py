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
from tascmt.experiments.presets import ExperimentSpec, RunSpec, resolve_spec
from tascmt.experiments.tables import csv_table, markdown_table, per_run_csv
from tascmt.utils.atomic import write_json_atomic, write_text_atomic

MARKER = "COMPLETED"
RESULT_FILE = "result.json"

#: Training options that do not change what is trained (a finished run is reused despite them).
_RUNTIME = {"max_minutes", "num_workers", "device", "progress", "tensorboard", "out_dir", "cache_dir"}


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


def _train_config(spec_row: RunSpec, seed: int, cache_dir: Path, train_dir: Path, size: str,
                  base: dict[str, Any]) -> Any:
    from tascmt.training import TrainConfig

    options = {**base, **spec_row.train}
    return TrainConfig.from_dict({**options, "cache_dir": str(cache_dir), "out_dir": str(train_dir),
                                  "model": spec_row.model, "size": size, "seed": int(seed)})


def _settings(cfg: Any) -> dict[str, Any]:
    return {k: v for k, v in cfg.to_dict().items() if k not in _RUNTIME}


def _defaults() -> dict[str, Any]:
    """``TrainConfig`` field defaults (a field added after a run finished compares as its default)."""
    import dataclasses

    from tascmt.training import TrainConfig

    out = {}
    for f in dataclasses.fields(TrainConfig):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def _load_finished(run_dir: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    if not (run_dir / MARKER).exists():
        return None
    try:
        data = json.loads((run_dir / RESULT_FILE).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{run_dir}: marked {MARKER} but {RESULT_FILE} is unreadable ({err}); "
                          f"delete the folder to re-run it") from err
    recorded = data.get("settings", {})
    defaults = _defaults()
    missing = object()
    diff = sorted(
        k for k in set(recorded) | set(settings)
        if recorded.get(k, defaults.get(k, missing)) != settings.get(k, defaults.get(k, missing))
    )
    if diff:
        raise ConfigError(f"{run_dir}: finished run was trained with different settings {diff} "
                          f"(recorded {[recorded.get(k) for k in diff]}, requested "
                          f"{[settings.get(k) for k in diff]}); use another output folder or delete it")
    return data


def run_one(spec_row: RunSpec, seed: int, cache_dir: Path, run_dir: Path, size: str, base: dict[str, Any],
            split: str, eval_batch_size: int, device: str, eval_figures: bool,
            log: Callable[[str], None],
            eval_options: dict[str, Any] | None = None) -> tuple[dict[str, Any], bool]:
    """Train + evaluate one configuration/seed (or reuse a finished run). Returns (result, reused)."""
    from tascmt.evaluation.evaluate import evaluate_checkpoint
    from tascmt.training import train

    cfg = _train_config(spec_row, seed, cache_dir, run_dir / "train", size, base)
    settings = _settings(cfg)
    done = _load_finished(run_dir, settings)
    if done is not None:
        log(f"  {spec_row.label} seed {seed}: finished earlier, reused")
        return done, True
    resume = (run_dir / "train" / "last").exists()
    log(f"  {spec_row.label} seed {seed}: {'resuming' if resume else 'training'} {spec_row.model}")
    res = train(cfg, resume=resume)
    if res.best_checkpoint is None or not Path(res.best_checkpoint).exists():
        raise ConfigError(f"{run_dir / 'train'}: training produced no best checkpoint "
                          f"(stop reason {getattr(res, 'stop_reason', '?')})")
    log(f"  {spec_row.label} seed {seed}: evaluating {res.best_checkpoint}")
    summary = evaluate_checkpoint(res.best_checkpoint, cache_dir, split=split, out_dir=run_dir / "eval",
                                  batch_size=eval_batch_size, device=device, figures=eval_figures,
                                  **(eval_options or {}))
    result = {
        "label": spec_row.label, "model": spec_row.model, "seed": int(seed), "split": split,
        "metrics": extract_metrics(summary, res.history),
        "best_checkpoint": str(res.best_checkpoint), "stop_reason": getattr(res, "stop_reason", None),
        "global_step": getattr(res, "global_step", None), "settings": settings,
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
        seeds: run seeds (SPEC §6: 0-4); at least 2 for standard deviations and t-tests.
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
    _check_models(spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "experiment.json", {
        "name": spec.name, "reference": spec.reference, "metrics": list(spec.metrics), "seeds": seeds,
        "size": size, "split": split, "cache_dir": str(cache_dir), "base_train_options": base,
        "configs": [{"label": c.label, "model": c.model, "train": c.train} for c in spec.configs],
    })
    results: dict[str, dict[int, dict[str, Any]]] = {}
    reused, trained = [], []
    log(f"experiment {spec.name}: {len(spec.configs)} configurations × {len(seeds)} seeds")
    for c in spec.configs:
        results[c.label] = {}
        for seed in seeds:
            run_dir = out_dir / "runs" / c.slug / f"seed{seed}"
            res, was_reused = run_one(c, seed, cache_dir, run_dir, size, base, split, eval_batch_size, device,
                                      eval_figures=figures and seed == seeds[0], log=log,
                                      eval_options=eval_options)
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


def _check_models(spec: ExperimentSpec) -> None:
    from tascmt.models import list_models

    known = set(list_models())
    unknown = sorted({c.model for c in spec.configs} - known)
    if unknown:
        raise ConfigError(f"experiment {spec.name!r}: unknown models {unknown}; known: {sorted(known)}")
