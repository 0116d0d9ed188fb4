"""The Python API of the training stage: ``train(config)`` and ``resume(run_dir)``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tascmt.errors import CheckpointError, ConfigError
from tascmt.training.config import RUNTIME_FIELDS, TrainConfig
from tascmt.training.resformer import trainer_for_model
from tascmt.training.trainer import RunResult, Trainer


def _trainer_for(model: str, trainer_cls: type[Trainer] | None) -> type[Trainer]:
    """The trainer class: the one given, else the model family's (ResFormer's own hooks), else ``Trainer``."""
    if trainer_cls is not None:
        return trainer_cls
    return trainer_for_model(model)


def train(config: TrainConfig | dict[str, Any], *, resume: bool = False,
          trainer_cls: type[Trainer] | None = None) -> RunResult:
    """Train (or, with ``resume=True``, continue) the run described by ``config``.

    Works unchanged under ``torchrun --nproc_per_node N`` (DDP). Returns
    ``RunResult(run_dir, best_checkpoint, last_checkpoint, history, stop_reason, global_step)``.
    """
    if isinstance(config, dict):
        try:
            config = TrainConfig.from_dict(config)
        except (TypeError, ValueError) as err:  # a value of the wrong type, e.g. lr="fast"
            raise ConfigError(f"invalid training configuration ({err})") from err
    return _trainer_for(config.model, trainer_cls)(config, resume=resume).fit()


def resume(run_dir: str | os.PathLike, *, trainer_cls: type[Trainer] | None = None,
           **overrides: Any) -> RunResult:
    """Continue the run in ``run_dir`` from its ``last/`` checkpoint with the saved ``config.json``.

    Only options that do not change the training maths may be overridden
    (``max_minutes``, ``max_steps``, ``num_workers``, ``device``, ``progress``, ``tensorboard``).
    """
    run_dir = Path(run_dir)
    config = load_run_config(run_dir / "config.json")
    bad = sorted(set(overrides) - RUNTIME_FIELDS)
    if bad:
        raise ConfigError(f"cannot change {bad} when resuming {run_dir}; only {sorted(RUNTIME_FIELDS)} may "
                          "differ from the saved config.json")
    config = config.replace(**{**overrides, "out_dir": str(run_dir)})
    return train(config, resume=True, trainer_cls=trainer_cls)


def load_run_config(path: str | os.PathLike) -> TrainConfig:
    """A run folder's ``config.json``; a damaged one (not an object, a value of the wrong type, an invalid
    value) is a one-line :class:`CheckpointError` naming the file."""
    path = Path(path)
    try:
        return TrainConfig.load(path)
    except ConfigError as err:
        if str(path) in str(err):  # already names the file (unreadable, not JSON)
            raise
        raise CheckpointError(f"{path}: {err}") from err
    except (TypeError, ValueError, AttributeError) as err:
        detail = " ".join(str(err).split()) or type(err).__name__
        raise CheckpointError(f"{path}: not a valid training configuration ({detail})") from err
