"""Run a named experiment: every configuration × seed is trained, its best checkpoint evaluated, and the
results collected into paper-style tables (Markdown + CSV) and figures.

Layout of ``out_dir``::

    runs/<config>/seed<k>/train/     the training run (config.json, epochs.csv, best/, last/)
    runs/<config>/seed<k>/eval/      evaluate_checkpoint's per_triplet.csv, summary.json/.md, figures/
    runs/<config>/seed<k>/result.json    metrics of the run + the settings it was trained with
    runs/<config>/seed<k>/COMPLETED      marker: the run is finished and is reused on the next call
    results.md, results.csv, per_run.csv, experiment.json, figures/

A run folder with ``COMPLETED`` is reused when its ``result.json`` records the same key as the requested
run: the data fingerprint of the cache (its content, not its path), the split, the evaluation options and
the model and training settings (other than runtime options such as ``max_minutes``). Otherwise it is
never relabelled: the message says what differs, and the run is evaluated again — trained again too, when
the settings or the data differ, the earlier folder kept beside it as ``seed<k>.superseded-<n>``
(``planning.py``). An interrupted run (``train/last`` exists, no marker) is resumed when its settings and
data match, else started afresh the same way.

Rows that are not one trained model (`tascmt.experiments.presets.RunSpec`):

- references (``linear_interp``, ``cubic``): evaluated once, without training, in
  ``runs/<config>/reference/``; every seed reports the same (deterministic) numbers;
- cascades (``RunSpec.interp`` set): the interpolation model and the segmenter are trained as separate
  "parts" and the cascade evaluated with `tascmt.evaluation.evaluate.evaluate_cascade`. A part is the
  training run of a row of the same experiment with the same model and options when there is one (so the
  oracle row's segmenter is the cascade's segmenter), else ``parts/<model>/seed<k>/``; a part trained
  once (marker ``TRAINED``) is reused by every row that needs it.

With ``runs_dir`` (``tascmt experiment --runs DIR``) the runs live in ``DIR/<config>/seed<k>`` (cascade
parts in ``DIR/../parts``) instead, so that several experiments share them: a table's row is reused from
another experiment's row of the same label, or of another label whose key matches (the full model's run
serves as the Kendall row of the balancing table). The committed summaries of such a folder
(``result.json`` + ``COMPLETED``) rebuild the tables without training.

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
    REUSE_IGNORED,
    DataId,
    check_models,
    checkpoint_in,
    evaluation_key,
    find_equivalent,
    input_kind,
    is_reference_model,
    load_finished,
    part_dirs,
    read_record,
    run_key,
    run_settings,
    settings_differences,
    supersede,
    train_config,
    training_differences,
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
        fg = seg.get("fg_y2") or {}
        for k in ("dice", "iou", "precision", "recall"):
            if k in fg:
                out[f"{k}_fg"] = fg[k]
    if summary.get("per_volume"):
        out["dice_volume"] = summary["per_volume"].get("mean_dice")
    volumes = summary.get("whole_volumes") or {}
    whole = volumes.get("mean") or {}
    for k in ("dice", "hd95_mm", "surface_dice"):
        if k in whole:
            out[f"{k}_whole_volume"] = whole[k]
    if "hd95_mm" in whole:  # volumes counted at the diagonal, summed over the run's cases and offsets
        totals = volumes.get("totals") or {}
        for k in ("hd95_missed", "hd95_false"):
            out[f"{k}_whole_volume"] = totals.get(k)
    for k, v in whole.items():  # the model and the references (linear, cubic, flow) on synthesised slices
        if (k.endswith("_synth") and k != "n_synth") or k.startswith("hu_mae_out_"):
            out[k] = v
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


def _interrupted_differences(run_dir: Path, settings: dict[str, Any], data: DataId) -> list[str]:
    """Why an interrupted training in ``run_dir/train`` (``last/`` without a marker) cannot be resumed for
    ``settings`` on ``data`` (its saved config or its checkpoint's data fingerprint differ)."""
    out = []
    try:
        saved = json.loads((run_dir / "train" / "config.json").read_text(encoding="utf-8"))
        extra = json.loads((run_dir / "train" / "last" / "model.json").read_text(encoding="utf-8"))["extra"]
    except (OSError, ValueError, KeyError, TypeError):
        return out  # a damaged run: the resume names the problem
    fingerprint = extra.get("data_fingerprint") if isinstance(extra, dict) else None
    if fingerprint is not None and fingerprint != data.fingerprint:
        out.append(f"data fingerprint {fingerprint} → {data.fingerprint}")
    if isinstance(saved, dict):
        diff = settings_differences({k: v for k, v in saved.items() if k not in REUSE_IGNORED}, settings)
        if diff:
            out.append("settings " + "; ".join(diff))
    return out


def train_part(model: str, train: dict[str, Any], seed: int, cache_dir: Path, run_dir: Path, size: str,
               base: dict[str, Any], log: Callable[[str], None], data: DataId | None = None) -> _Trained:
    """Train ``model`` with ``train`` options into ``run_dir/train``, or reuse it when already trained there
    (marker ``TRAINED``, or a row's ``COMPLETED``) with the same settings on the same data (``data``:
    default the cache's). A run trained with other settings or on other data (or an interrupted one) is
    moved aside (`tascmt.experiments.planning.supersede`) and trained again, saying what differs."""
    from tascmt.training import train as train_fn

    data = data or DataId.of(cache_dir)
    cfg = train_config(RunSpec(model, model, train), seed, cache_dir, run_dir / "train", size, base)
    settings = run_settings(cfg)
    for marker, name in ((PART_MARKER, PART_FILE), (MARKER, RESULT_FILE)):
        if (run_dir / marker).exists():
            recorded = read_record(run_dir, marker, name)
            diffs = training_differences(run_dir, recorded, settings, data)
            if not diffs:
                return _Trained(checkpoint_in(run_dir, recorded.get("best_checkpoint")),
                                recorded.get("history", []), settings, recorded.get("stop_reason"),
                                recorded.get("global_step"), reused=True)
            moved = supersede(run_dir)
            log(f"    {model} (seed {seed}) in {run_dir} was trained with other {', '.join(diffs)}: training "
                f"it again (the earlier run is kept in {moved})")
            break
    resume = (run_dir / "train" / "last").exists()
    if resume:
        diffs = _interrupted_differences(run_dir, settings, data)
        if diffs:
            moved = supersede(run_dir)
            log(f"    the interrupted run {run_dir} had other {', '.join(diffs)}: training it afresh (the "
                f"earlier run is kept in {moved})")
            resume = False
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
        "global_step": trained.global_step, "settings": settings, "data_fingerprint": data.fingerprint,
    })
    write_text_atomic(run_dir / PART_MARKER, "ok\n")
    return trained


def run_one(spec_row: RunSpec, seed: int, cache_dir: Path, run_dir: Path, size: str, base: dict[str, Any],
            split: str, eval_batch_size: int, device: str, eval_figures: bool,
            log: Callable[[str], None],
            eval_options: dict[str, Any] | None = None,
            part_dir: Callable[[str, dict[str, Any], int], Path] | None = None,
            data: DataId | None = None,
            ) -> tuple[dict[str, Any], bool]:
    """Train + evaluate one configuration/seed, or reuse a finished run whose key
    (`tascmt.experiments.planning.run_key`: data fingerprint, split, evaluation options, settings) matches.
    Returns (result, reused). A finished run with another key is evaluated again (and trained again when
    its settings or data differ), with a message saying what differs.

    References are evaluated without training (in ``run_dir.parent / "reference"``, shared by all seeds);
    cascade rows train their parts in ``part_dir(model, train_options, seed)`` (default: inside
    ``run_dir``) and evaluate the cascade.
    """
    from tascmt.evaluation.evaluate import evaluate_cascade, evaluate_checkpoint

    data = data or DataId.of(cache_dir)
    options = dict(eval_options or {})
    pair = input_kind(spec_row, size) == "pair"
    skip_volumes = not pair and bool(options.pop("volumes", False))
    volumes = options.get("volumes")
    if pair and volumes is None:  # the evaluator's default for a trained pair model: on unless resampled
        volumes = data.params.get("protocol", "acquired") != "resampled"
    evaluation = evaluation_key({**options, "volumes": volumes}, data.params)
    if spec_row.is_reference:
        run_dir = run_dir.parent / "reference"
        settings: dict[str, Any] = {"reference": spec_row.model}
    elif spec_row.interp is not None:
        part_dir = part_dir or (lambda model, train, s: run_dir / ("interp" if model == spec_row.interp
                                                                   else "seg"))
        settings = {"cascade": [spec_row.interp, spec_row.model]}
    else:
        settings = run_settings(train_config(spec_row, seed, cache_dir, run_dir / "train", size, base))

    def finished() -> dict[str, Any] | None:
        key = run_key(settings, data.fingerprint, split, evaluation)
        done, diffs = load_finished(run_dir, key)
        if done is not None:
            log(f"  {spec_row.label} seed {seed}: finished earlier, reused")
        elif diffs:
            log(f"  {spec_row.label} seed {seed}: the finished run in {run_dir} does not match "
                f"({'; '.join(diffs)}); running it again")
        elif spec_row.kind == "trained" and (twin := find_equivalent(run_dir, key)) is not None:
            log(f"  {spec_row.label} seed {seed}: the same model, settings, data and evaluation as the "
                f"finished run {twin[0]}; reused")
            done = {**twin[1], "run_dir": str(twin[0])}
        return done

    done = finished() if spec_row.interp is None else None
    if done is not None:
        return done, True
    if skip_volumes:
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
                              size, base, log, data=data)
            parts[role], settings[f"{role}_settings"] = part.checkpoint, part.settings
        done = finished()
        if done is not None:
            return done, True
        log(f"  {spec_row.label} seed {seed}: evaluating the cascade {spec_row.interp} → {spec_row.model}")
        summary = evaluate_cascade(parts["interp"], parts["seg"], cache_dir, size=size, **eval_kw)
        checkpoint = {"interp": str(parts["interp"]), "seg": str(parts["seg"])}
    else:
        trained = train_part(spec_row.model, spec_row.train, seed, cache_dir, run_dir, size, base, log,
                             data=data)
        log(f"  {spec_row.label} seed {seed}: evaluating {trained.checkpoint}")
        summary = evaluate_checkpoint(trained.checkpoint, cache_dir, **eval_kw)
        checkpoint = str(trained.checkpoint)
    key = run_key(settings, data.fingerprint, split, evaluation)
    result = {
        "label": spec_row.label, "model": spec_row.model, "interp": spec_row.interp, "seed": int(seed),
        "split": split, "setting": summary.get("setting"),
        "metrics": extract_metrics(summary, trained.history if trained is not None else ()),
        "best_checkpoint": checkpoint,
        "stop_reason": trained.stop_reason if trained else None,
        "global_step": trained.global_step if trained else None, "settings": key["settings"],
        "data_fingerprint": key["data_fingerprint"], "evaluation": key["evaluation"],
    }
    for label in ("data_mismatch", "data_unrecorded"):
        if summary.get(label):
            result[label] = summary[label]
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
    runs_dir: str | os.PathLike | None = None,
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
            ``volumes``, ``flow``, ``allow_mismatch``); those that change the numbers are part of a run's
            reuse key (`tascmt.experiments.planning.evaluation_key`).
        runs_dir: where the runs live (default ``out_dir/runs``); experiments given the same folder share
            their runs (a row of one is reused by a row of another with the same label, or with another
            label and the same model, settings, data and evaluation).

    A finished run is reused only when the data fingerprint, the split, the evaluation options and the
    model and training settings all match; otherwise it is evaluated (and, when its settings or data
    differ, trained) again, with a message saying what differs (`tascmt.experiments.planning`).
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
    data = DataId.of(cache_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs_root = Path(runs_dir) if runs_dir is not None else out_dir / "runs"
    write_json_atomic(out_dir / "experiment.json", {
        "name": spec.name, "reference": spec.reference, "metrics": list(spec.metrics), "seeds": seeds,
        "size": size, "split": split, "cache_dir": str(cache_dir), "data_fingerprint": data.fingerprint,
        "base_train_options": base, "runs_dir": str(runs_root),
        "configs": [{"label": c.label, "model": c.model, "train": c.train,
                     **({"interp": c.interp} if c.interp else {})} for c in spec.configs],
    })
    results: dict[str, dict[int, dict[str, Any]]] = {}
    reused, trained = [], []
    parts_at = part_dirs(spec, runs_root)
    locations: dict[str, dict[int, Path]] = {}
    log(f"experiment {spec.name}: {len(spec.configs)} configurations × {len(seeds)} seeds on split {split!r} "
        f"of data {data.fingerprint}")
    for c in spec.configs:
        results[c.label], locations[c.label] = {}, {}
        for seed in seeds:
            run_dir = runs_root / c.slug / f"seed{seed}"
            res, was_reused = run_one(c, seed, cache_dir, run_dir, size, base, split, eval_batch_size, device,
                                      eval_figures=figures and seed == seeds[0], log=log,
                                      eval_options=eval_options, part_dir=parts_at, data=data)
            results[c.label][seed] = res["metrics"]
            locations[c.label][seed] = Path(res.get("run_dir") or run_dir)
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

        figs = experiment_figures(spec, out_dir, seeds, log, run_dirs=locations)
    log(f"experiment {spec.name}: tables in {tables['markdown']}")
    return ExperimentResult(spec, out_dir, results, tables, figs, reused, trained)


