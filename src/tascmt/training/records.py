"""The records the training loop keeps: one step's outcome, the resumable loop state, the run's result."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class StepOutput:
    """What one training step did. ``losses``: raw per-task losses; ``skipped``: no parameter update."""

    losses: dict[str, float]
    total: float
    grad_norm: float
    batch_size: int
    skipped: bool = False
    reason: str = ""
    counts_as_nonfinite: bool = False
    target_clipped: float | None = None


@dataclass
class LoopState:
    """Counters and accumulators of the loop; all of it goes into the training checkpoint.

    ``epoch`` is the index of the epoch in progress (= completed epochs), ``step_in_epoch`` the batches of
    it already done (the sampler skips them on resume), ``global_step`` the batches done in total.
    """

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best_val: float = math.inf
    best_epoch: int | None = None
    bad_rounds: int = 0
    nonfinite_streak: int = 0
    skipped_total: int = 0
    epoch_sums: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    val_ref: dict[str, float] = field(default_factory=dict)  # first validation losses (selection scale)


@dataclass
class RunResult:
    """Outcome of :func:`tascmt.training.train`: the run folder, the best model checkpoint folder, the
    per-epoch records (as in ``epochs.csv``) and why training stopped."""

    run_dir: Path
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    history: list[dict[str, Any]]
    stop_reason: str
    global_step: int
