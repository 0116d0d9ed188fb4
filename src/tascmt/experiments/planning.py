"""Planning an experiment's runs: where each run and cascade part lives, the key that identifies it,
whether a finished run may be reused, and which models a specification may name. ``runner.py`` executes
the plan (trains, evaluates, tabulates).

A finished run is reused only when everything its numbers depend on matches (:func:`run_key`): the data
(the cache's content fingerprint, `tascmt.data.cache.Manifest.fingerprint`, not its path), the evaluated
split, the evaluation options (:func:`evaluation_key`), and the model and training settings
(:func:`run_settings`; the fold is one of them). The key holds no absolute path and no time, so a result
committed with its small ``result.json`` is reused in another session, on another machine, from a cache
prepared elsewhere from the same data. A mismatch is never relabelled: the run is evaluated again, and
trained again when the training settings or the data differ (:func:`training_differences`; the earlier run
folder is kept beside it as ``<name>.superseded-<n>``), with a message saying what differs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tascmt.errors import ConfigError
from tascmt.experiments.presets import ExperimentSpec, RunSpec
from tascmt.training.config import RUNTIME_FIELDS

__all__ = [
    "EVAL_RUNTIME",
    "MARKER",
    "PART_FILE",
    "PART_MARKER",
    "RESULT_FILE",
    "REUSE_IGNORED",
    "DataId",
    "check_models",
    "check_settings",
    "checkpoint_in",
    "config_defaults",
    "evaluation_key",
    "find_equivalent",
    "input_kind",
    "is_reference_model",
    "key_differences",
    "load_finished",
    "part_dirs",
    "read_record",
    "run_key",
    "run_settings",
    "settings_differences",
    "supersede",
    "train_config",
    "training_differences",
]

MARKER = "COMPLETED"
RESULT_FILE = "result.json"
PART_MARKER = "TRAINED"
PART_FILE = "trained.json"

#: Training options that do not change what is trained (a finished run is reused despite them): the
#: trainer's runtime options except ``max_steps`` (a step budget does change the result), plus the cache
#: location (the data are identified by their fingerprint instead: a moved cache is the same data, another
#: cache in the same place is not).
REUSE_IGNORED = (RUNTIME_FIELDS - {"max_steps"}) | {"cache_dir"}
#: ``evaluate_checkpoint`` arguments that do not change its numbers (left out of the evaluation key).
EVAL_RUNTIME = frozenset({"batch_size", "device", "figures", "progress", "out_dir", "split"})


@dataclass
class DataId:
    """What identifies an experiment's data: the cache's content fingerprint, plus its parameter hash (to
    recognise runs recorded before fingerprints existed: their checkpoints name the cache build) and its
    parameters (the default evaluation policy)."""

    fingerprint: str
    param_hash: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, cache_dir: str | os.PathLike) -> DataId:
        from tascmt.data.cache import Manifest

        manifest = Manifest.load(cache_dir)
        return cls(manifest.fingerprint(), manifest.param_hash, dict(manifest.params))


def _plain(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples → lists), so that a fresh key equals a recorded one."""
    return json.loads(json.dumps(obj, default=str))


def evaluation_key(options: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The evaluation options that change a run's numbers, without absolute paths: the foreground policy
    (None resolved to the cache's evaluation default), whole volumes (None: the evaluator's default), the
    flow reference, the LPIPS weight files (by file name), ``max_triplets``, ``allow_mismatch``; any other
    option as given (a path by its file name). :data:`EVAL_RUNTIME` options are left out."""
    opts = {k: v for k, v in options.items() if k not in EVAL_RUNTIME}
    lpips = [opts.pop(k, None) for k in ("lpips_vgg", "lpips_lin")]
    key: dict[str, Any] = {
        "fg_policy": opts.pop("fg_policy", None) or (params or {}).get("fg_policy_eval", "every"),
        "volumes": opts.pop("volumes", None),
        "flow": bool(opts.pop("flow", True)),
        "lpips": None if lpips == [None, None] else [None if p is None else Path(p).name for p in lpips],
        "max_triplets": opts.pop("max_triplets", None),
        "allow_mismatch": bool(opts.pop("allow_mismatch", False)),
    }
    for k, v in sorted(opts.items()):
        key[k] = Path(v).name if isinstance(v, os.PathLike) else v
    return _plain(key)


def run_key(settings: dict[str, Any], fingerprint: str, split: str,
            evaluation: dict[str, Any]) -> dict[str, Any]:
    """What a finished run must match to be reused (recorded in its ``result.json`` under these names)."""
    return _plain({"settings": settings, "data_fingerprint": fingerprint, "split": split,
                   "evaluation": evaluation})


def train_config(spec_row: RunSpec, seed: int, cache_dir: Path, train_dir: Path, size: str,
                 base: dict[str, Any]) -> Any:
    """The ``TrainConfig`` of a row and seed: ``base`` options under the row's own."""
    from tascmt.training import TrainConfig

    options = {**base, **spec_row.train}
    return TrainConfig.from_dict({**options, "cache_dir": str(cache_dir), "out_dir": str(train_dir),
                                  "model": spec_row.model, "size": size, "seed": int(seed)})


def run_settings(cfg: Any) -> dict[str, Any]:
    """The settings that identify a run (its config without :data:`REUSE_IGNORED`)."""
    return {k: v for k, v in cfg.to_dict().items() if k not in REUSE_IGNORED}


def config_defaults() -> dict[str, Any]:
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


def read_record(run_dir: Path, marker: str, name: str) -> dict[str, Any]:
    """The JSON record ``name`` of a run folder marked ``marker`` (unreadable: ``ConfigError``)."""
    try:
        data = json.loads((run_dir / name).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as err:
        raise ConfigError(f"{run_dir}: marked {marker} but {name} is unreadable ({err}); "
                          f"delete the folder to re-run it") from err
    return data


def load_finished(run_dir: Path, key: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """``(result, [])``: the recorded result of a finished run (marker :data:`MARKER`) whose key matches
    ``key`` (:func:`run_key`); ``(None, differences)`` when it was finished with another key (what differs,
    in words); ``(None, [])`` when the run is not finished."""
    if not (run_dir / MARKER).exists():
        return None, []
    data = read_record(run_dir, MARKER, RESULT_FILE)
    diffs = key_differences(data, key)
    return (None, diffs) if diffs else (data, [])


def find_equivalent(run_dir: Path, key: dict[str, Any]) -> tuple[Path, dict[str, Any]] | None:
    """``(folder, result)`` of a finished run of another configuration (a sibling
    ``<runs>/<other label>/<seed folder>``) whose key matches ``key``: the same model trained with the same
    settings on the same data and evaluated the same way under another row's label (e.g. the full model's
    run as the Kendall row of a balancing table); None when there is none."""
    for other in sorted(run_dir.parent.parent.glob(f"*/{run_dir.name}")):
        if other == run_dir or not (other / MARKER).exists():
            continue
        try:
            recorded = read_record(other, MARKER, RESULT_FILE)
        except ConfigError:
            continue  # a damaged run is reported where it is used, not here
        if not key_differences(recorded, key):
            return other, recorded
    return None


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def settings_differences(recorded: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """``["key: recorded → requested", ...]`` for the settings that differ (a ``TrainConfig`` field added
    after a run finished compares as its default)."""
    defaults = config_defaults()
    missing = object()
    recorded, settings = _plain(recorded), _plain(settings)
    diff = sorted(
        k for k in set(recorded) | set(settings)
        if recorded.get(k, defaults.get(k, missing)) != settings.get(k, defaults.get(k, missing))
    )
    return [f"{k}: {_short(recorded.get(k))} → {_short(settings.get(k))}" for k in diff]


def key_differences(recorded: dict[str, Any], key: dict[str, Any]) -> list[str]:
    """What differs between a finished run's record and the requested :func:`run_key`, in words."""
    out = []
    if recorded.get("data_fingerprint") != key["data_fingerprint"]:
        out.append(f"data fingerprint {recorded.get('data_fingerprint') or 'not recorded'} → "
                   f"{key['data_fingerprint']}")
    if recorded.get("split") != key["split"]:
        out.append(f"split {recorded.get('split')!r} → {key['split']!r}")
    evaluation = recorded.get("evaluation")
    if not isinstance(evaluation, dict):
        out.append("evaluation options not recorded")
    elif evaluation != key["evaluation"]:
        names = sorted(set(evaluation) | set(key["evaluation"]))
        out += [f"evaluation {k}: {_short(evaluation.get(k))} → {_short(key['evaluation'].get(k))}"
                for k in names if evaluation.get(k) != key["evaluation"].get(k)]
    diff = settings_differences(recorded.get("settings") or {}, key["settings"])
    if diff:
        out.append("settings " + "; ".join(diff))
    return out


def training_differences(run_dir: Path, recorded: dict[str, Any], settings: dict[str, Any],
                         data: DataId) -> list[str]:
    """Why a trained model recorded in ``run_dir`` (``recorded``: its ``trained.json`` / ``result.json``)
    cannot be reused for ``settings`` on ``data``: the settings or the data differ. A record written before
    fingerprints existed counts as the same data when its checkpoint was trained on this very cache build
    (the checkpoint's ``cache_param_hash`` is the cache's parameter hash)."""
    out = []
    fingerprint = recorded.get("data_fingerprint")
    best = recorded.get("best_checkpoint")
    if fingerprint is None and data.param_hash is not None and (best is None or isinstance(best, str)):
        meta = checkpoint_in(run_dir, best) / "model.json"
        try:
            extra = json.loads(meta.read_text(encoding="utf-8")).get("extra") or {}
        except (OSError, ValueError, AttributeError):
            extra = {}
        if isinstance(extra, dict) and extra.get("cache_param_hash") == data.param_hash:
            fingerprint = data.fingerprint
    if fingerprint != data.fingerprint:
        out.append(f"data fingerprint {fingerprint or 'not recorded'} → {data.fingerprint}")
    diff = settings_differences(recorded.get("settings") or {}, settings)
    if diff:
        out.append("settings " + "; ".join(diff))
    return out


def supersede(run_dir: Path) -> Path:
    """Move a run folder that cannot be reused aside, to ``<name>.superseded-<n>`` beside it (kept, never
    deleted); returns where it went."""
    n = 1
    while (target := run_dir.with_name(f"{run_dir.name}.superseded-{n}")).exists():
        n += 1
    run_dir.rename(target)
    return target


def check_settings(run_dir: Path, recorded: dict[str, Any], settings: dict[str, Any]) -> None:
    """Refuse (``ConfigError``) when a finished run's recorded settings differ from the requested ones."""
    diff = settings_differences(recorded, settings)
    if diff:
        raise ConfigError(f"{run_dir}: finished run was trained with different settings ({'; '.join(diff)}); "
                          "use another output folder or delete it")


def checkpoint_in(run_dir: Path, recorded: str | None) -> Path:
    """A recorded best-checkpoint path, or ``run_dir/train/best`` when the folder was moved."""
    if recorded and Path(recorded).exists():
        return Path(recorded)
    return run_dir / "train" / "best"


def is_reference_model(model: str) -> bool:
    """Whether ``model`` is a parameter-free reference (evaluated without training)."""
    from tascmt.experiments.presets import REFERENCE_MODELS

    return model in REFERENCE_MODELS


def input_kind(spec_row: RunSpec, size: str) -> str:
    """``"pair"`` when the row's evaluation takes the input pair (whole volumes possible), else its kind."""
    if spec_row.is_reference or spec_row.interp is not None:
        return "reference" if spec_row.is_reference else "cascade"
    from tascmt.models import model_config

    return getattr(model_config(spec_row.model, size), "input_frames", "pair")


def part_dirs(spec: ExperimentSpec, runs_root: Path) -> Callable[[str, dict[str, Any], int], Path]:
    """Where a cascade part (model, train options, seed) is trained: the run folder (under ``runs_root``) of
    the experiment's plain row with the same model and options when there is one, else
    ``parts/<model>[_<hash>]/seed<k>`` beside ``runs_root``."""
    import hashlib

    def where(model: str, train: dict[str, Any], seed: int) -> Path:
        for c in spec.configs:
            if c.model == model and c.interp is None and not c.is_reference and c.train == train:
                return runs_root / c.slug / f"seed{seed}"
        tag = ""
        if train:
            tag = "_" + hashlib.sha1(json.dumps(train, sort_keys=True).encode()).hexdigest()[:8]
        return runs_root.parent / "parts" / f"{model}{tag}" / f"seed{seed}"

    return where


def check_models(spec: ExperimentSpec) -> None:
    """Every model a specification names must be registered, and a cascade must pair an interpolation
    model of the input pair with a segmenter of the three frames (``ConfigError`` otherwise)."""
    from tascmt.experiments.presets import REFERENCE_MODELS
    from tascmt.models import list_models, model_config

    known = set(list_models()) | set(REFERENCE_MODELS)
    unknown = sorted({m for c in spec.configs for m in (c.model, c.interp) if m is not None} - known)
    if unknown:
        raise ConfigError(f"experiment {spec.name!r}: unknown models {unknown}; known: {sorted(known)}")
    for c in spec.configs:
        if c.interp is None:
            continue
        kinds = {}
        for role, name in (("interp", c.interp), ("seg", c.model)):
            cfg = None if name in REFERENCE_MODELS else model_config(name, "tiny")
            kinds[role] = ("pair", ("interp",)) if cfg is None else (getattr(cfg, "input_frames", "pair"),
                                                                     tuple(cfg.tasks))
        if kinds["interp"][0] != "pair" or "interp" not in kinds["interp"][1] or c.interp == "cubic":
            raise ConfigError(f"experiment {spec.name!r}, configuration {c.label!r}: interp={c.interp!r} is "
                              "not an interpolation model of the input pair (cubic needs whole volumes)")
        if kinds["seg"][0] != "triplet" or "seg" not in kinds["seg"][1]:
            raise ConfigError(f"experiment {spec.name!r}, configuration {c.label!r}: a cascade's model "
                              f"{c.model!r} must be a segmenter of the three frames (input_frames='triplet')")
