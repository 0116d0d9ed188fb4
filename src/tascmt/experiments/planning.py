"""Planning an experiment's runs: where each run and cascade part lives, the settings that identify it,
whether a finished run may be reused, and which models a specification may name. ``runner.py`` executes
the plan (trains, evaluates, tabulates).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tascmt.errors import ConfigError
from tascmt.experiments.presets import ExperimentSpec, RunSpec
from tascmt.training.config import RUNTIME_FIELDS

__all__ = [
    "MARKER",
    "PART_FILE",
    "PART_MARKER",
    "RESULT_FILE",
    "REUSE_IGNORED",
    "check_models",
    "check_settings",
    "checkpoint_in",
    "config_defaults",
    "input_kind",
    "is_reference_model",
    "load_finished",
    "part_dirs",
    "run_settings",
    "train_config",
]

MARKER = "COMPLETED"
RESULT_FILE = "result.json"
PART_MARKER = "TRAINED"
PART_FILE = "trained.json"

#: Training options that do not change what is trained (a finished run is reused despite them): the
#: trainer's runtime options except ``max_steps`` (a step budget does change the result), plus the cache
#: location (a moved cache is the same data).
REUSE_IGNORED = (RUNTIME_FIELDS - {"max_steps"}) | {"cache_dir"}


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


def load_finished(run_dir: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The recorded result of a finished run (marker :data:`MARKER`) with the same settings, else None."""
    if not (run_dir / MARKER).exists():
        return None
    try:
        data = json.loads((run_dir / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{run_dir}: marked {MARKER} but {RESULT_FILE} is unreadable ({err}); "
                          f"delete the folder to re-run it") from err
    check_settings(run_dir, data.get("settings", {}), settings)
    return data


def check_settings(run_dir: Path, recorded: dict[str, Any], settings: dict[str, Any]) -> None:
    """Refuse (``ConfigError``) when a finished run's recorded settings differ from the requested ones."""
    defaults = config_defaults()
    missing = object()
    diff = sorted(
        k for k in set(recorded) | set(settings)
        if recorded.get(k, defaults.get(k, missing)) != settings.get(k, defaults.get(k, missing))
    )
    if diff:
        raise ConfigError(f"{run_dir}: finished run was trained with different settings {diff} "
                          f"(recorded {[recorded.get(k) for k in diff]}, requested "
                          f"{[settings.get(k) for k in diff]}); use another output folder or delete it")


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


def part_dirs(spec: ExperimentSpec, out_dir: Path) -> Callable[[str, dict[str, Any], int], Path]:
    """Where a cascade part (model, train options, seed) is trained: the run folder of the experiment's
    plain row with the same model and options when there is one, else ``parts/<model>[_<hash>]/seed<k>``."""
    import hashlib

    def where(model: str, train: dict[str, Any], seed: int) -> Path:
        for c in spec.configs:
            if c.model == model and c.interp is None and not c.is_reference and c.train == train:
                return out_dir / "runs" / c.slug / f"seed{seed}"
        tag = ""
        if train:
            tag = "_" + hashlib.sha1(json.dumps(train, sort_keys=True).encode()).hexdigest()[:8]
        return out_dir / "parts" / f"{model}{tag}" / f"seed{seed}"

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
