"""The learning-rate schedule's arithmetic (docs/design.md §6): cosine annealing over the epochs or over a
budget (``max_steps`` / ``max_minutes``). ``Trainer.build_scheduler`` turns it into a ``LambdaLR``."""

from __future__ import annotations

import math
import time

from tascmt.errors import ConfigError
from tascmt.training.config import TrainConfig

__all__ = ["budget_progress", "cosine_factor", "follows_budget"]


def cosine_factor(epoch: float, t_max: float, floor: float) -> float:
    """lr multiplier after ``epoch`` scheduler steps: ``floor + (1 − floor)·(1 + cos(π·e/T))/2``."""
    e = min(epoch, t_max)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * e / t_max))


def follows_budget(cfg: TrainConfig) -> bool:
    """Whether the lr follows the budget: ``lr_schedule="budget"``, or ``"auto"`` with a budget set."""
    if cfg.lr_schedule == "epochs":
        return False
    has_budget = cfg.max_steps is not None or cfg.max_minutes is not None
    if cfg.lr_schedule == "budget" and not has_budget:
        raise ConfigError("lr_schedule 'budget' needs max_steps or max_minutes")
    return has_budget


def budget_progress(cfg: TrainConfig, global_step: int, start_time: float) -> float:
    """Fraction of the training budget used: steps of ``max_steps``, or the minutes since ``start_time``
    (``time.monotonic()``; 0: not started) of ``max_minutes`` (whichever is further along when both are
    set), clipped to [0, 1]."""
    p = 0.0
    if cfg.max_steps is not None:
        p = global_step / cfg.max_steps
    if cfg.max_minutes is not None and start_time:
        p = max(p, (time.monotonic() - start_time) / (60.0 * cfg.max_minutes))
    return min(max(p, 0.0), 1.0)
