"""Training configuration: one dataclass, saved as ``config.json`` in the run folder and read back on resume.

Defaults (docs/design.md §6): AdamW (weight decay 1e-5; lr 1e-4 for the ``paper`` size, 1e-3 — measured
best within CPU budgets — for ``small`` and ``tiny``), batch 2, at most 100 epochs of 250 optimiser steps
each (sampled with replacement; ``steps_per_epoch=None`` gives the paper's one-pass epochs), cosine
annealing of the learning rate to 1e-6 — over the epochs, or over the budget when ``max_steps`` or
``max_minutes`` is set — gradient-norm clipping at 1.0, early stopping with patience 10 validation rounds
(after ``min_epochs``) on a scale-free criterion (each task's validation loss relative to its first
value, summed, so that neither task dominates by its loss scale), the Kendall balancer whose parameters get
their own optimiser group (its own default lr, no weight decay).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tascmt.errors import ConfigError

#: AdamW learning rate of the paper protocol, and the one measured best for CPU-size models in a budget.
PAPER_LR = 1e-4
SMALL_LR = 1e-3
#: Optimiser steps per epoch of the CPU sizes (the ``paper`` size keeps one-pass epochs).
STEPS_PER_EPOCH = 250

#: Fields that may differ between a run and its resumption (they do not change the maths of training).
RUNTIME_FIELDS = frozenset(
    {"max_minutes", "max_steps", "num_workers", "device", "progress", "tensorboard", "out_dir",
     "checkpoint_every"}
)


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    Attributes:
        cache_dir: the triplet cache written by ``tascmt prepare`` (``manifest.json``, ``splits.json``).
        out_dir: the run folder (config, provenance, logs, ``best/`` and ``last/`` checkpoints).
        model / size / model_overrides: passed to ``tascmt.models.create_model(model, size, **overrides)``.
        epochs: number of epochs (≤ 100 in the paper protocol); also the cosine schedule's ``T_max`` when no
            budget (``max_steps`` / ``max_minutes``) is set.
        steps_per_epoch: optimiser steps per epoch, samples drawn with replacement; None for epochs of one
            pass over the training triplets; ``"auto"`` (default): one pass for the ``paper`` size (its
            protocol), 250 otherwise.
        min_epochs: validation rounds before early stopping may act.
        lr_schedule: ``"auto"`` (cosine over the budget when ``max_steps`` or ``max_minutes`` is set, stepped
            every optimiser step; else over ``epochs``), ``"budget"`` or ``"epochs"``.
        batch_size: samples per optimiser step *per process* (DDP multiplies it by the world size).
        lr / weight_decay: AdamW settings for the model parameters; ``lr=None`` picks 1e-4 for the ``paper``
            size and 1e-3 for the others.
        min_lr: the cosine schedule's ``eta_min``.
        patience: validation rounds without improvement of the selection criterion Σ_k L_k / L_k(first
            validation) before stopping (0 disables early stopping; docs/design.md §6). Without a validation
            split the criterion is computed on the training losses.
        grad_clip: maximum global gradient norm (``<= 0`` disables clipping).
        balancer / balancer_kwargs / balancer_lr: loss balancing strategy (``tascmt.losses.make_balancer``);
            its parameters (e.g. Kendall's θ) form a separate optimiser group with ``balancer_lr`` (None: the
            strategy's own default) and no weight decay.
        interp_alpha: weight of L1 in the hybrid interpolation loss ``α·L1 + (1−α)·MSE``.
        seg_loss: ``"bce"`` or ``"dice_bce"``.
        seed: run seed (initialisation, sampling order, augmentation); the patient split is fixed by
            the cache's ``splits.json``.
        fold: cross-validation fold (patient-level, from ``splits.json``), or None for the fixed split.
        augment: random paired augmentation of the training triplets.
        max_minutes: wall-clock budget of this invocation's training loop (setup excluded); training stops
            at the next step boundary and saves ``last/``, and ``best/`` when none exists yet (the current
            model, validated; early-stopping state untouched so that a resume stays exact).
        max_steps: stop after this many optimiser steps in total (counting the resumed ones).
        max_steps_per_epoch: shorten every epoch to this many steps (quick runs).
        num_workers: DataLoader worker processes; None (default) = 0 on the CPU (workers compete with
            torch's compute threads for the cores, measured many times slower on 2 cores) and
            ``min(4, cpu_count // processes)`` on CUDA.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        amp: fp16 autocast + GradScaler; only ever used on CUDA (never on the CPU: bf16 is hundreds of times
            slower on some CPUs and CPU FFTs reject float16).
        val_every: validate every this many epochs (and always after the last epoch).
        checkpoint_every: also save ``last/`` every this many optimiser steps (0: only at epoch ends);
            the default 200 bounds the work a kill or a crash loses to a few minutes.
        max_nonfinite: stop with an error after this many consecutive non-finite steps.
        progress / tensorboard: progress bar and TensorBoard logging (rank 0 only).
        ddp_find_unused: ``find_unused_parameters`` for DDP (needed for variants with dead parameters).
    """

    cache_dir: str
    out_dir: str
    model: str = "tasc_swinmt"
    size: str = "small"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    epochs: int = 100
    steps_per_epoch: int | str | None = "auto"
    min_epochs: int = 0
    lr_schedule: str = "auto"
    batch_size: int = 2
    lr: float | None = None
    weight_decay: float = 1e-5
    min_lr: float = 1e-6
    patience: int = 10
    grad_clip: float = 1.0
    balancer: str = "kendall"
    balancer_kwargs: dict[str, Any] = field(default_factory=dict)
    balancer_lr: float | None = None
    interp_alpha: float = 0.4
    seg_loss: str = "bce"
    seed: int = 0
    fold: int | None = None
    augment: bool = True
    max_minutes: float | None = None
    max_steps: int | None = None
    max_steps_per_epoch: int | None = None
    num_workers: int | None = None
    device: str = "auto"
    amp: bool = True
    val_every: int = 1
    checkpoint_every: int = 200
    max_nonfinite: int = 5
    progress: bool = True
    tensorboard: bool = True
    ddp_find_unused: bool = False

    def __post_init__(self) -> None:
        self.cache_dir = str(self.cache_dir)
        self.out_dir = str(self.out_dir)
        if self.lr is None:
            self.lr = PAPER_LR if self.size == "paper" else SMALL_LR
        if self.steps_per_epoch == "auto":  # the paper protocol keeps one-pass epochs
            self.steps_per_epoch = None if self.size == "paper" else STEPS_PER_EPOCH
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid option and its value."""
        positive_int = ("epochs", "batch_size", "val_every", "max_nonfinite")
        for name in positive_int:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"train option {name!r} must be an integer >= 1, got {value!r}")
        for name in ("max_steps", "max_steps_per_epoch", "steps_per_epoch"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"train option {name!r} must be None or an integer >= 1, got {value!r}")
        if self.num_workers is not None and (not isinstance(self.num_workers, int) or self.num_workers < 0):
            raise ConfigError(f"train option 'num_workers' must be None or an integer >= 0, got "
                              f"{self.num_workers!r}")
        for name in ("patience", "checkpoint_every", "seed", "min_epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"train option {name!r} must be an integer >= 0, got {value!r}")
        for name in ("lr", "balancer_lr"):
            if name == "balancer_lr" and self.balancer_lr is None:
                continue
            if not getattr(self, name) > 0:
                raise ConfigError(f"train option {name!r} must be > 0, got {getattr(self, name)!r}")
        for name in ("weight_decay", "min_lr"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"train option {name!r} must be >= 0, got {getattr(self, name)!r}")
        if self.min_lr > self.lr:
            raise ConfigError(f"train option 'min_lr' ({self.min_lr}) must not exceed 'lr' ({self.lr})")
        if not 0.0 <= self.interp_alpha <= 1.0:
            raise ConfigError(f"train option 'interp_alpha' must lie in [0, 1], got {self.interp_alpha!r}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError(f"train option 'max_minutes' must be > 0, got {self.max_minutes!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"train option 'device' must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.fold is not None and (not isinstance(self.fold, int) or self.fold < 0):
            raise ConfigError(f"train option 'fold' must be None or an integer >= 0, got {self.fold!r}")
        if self.lr_schedule not in ("auto", "budget", "epochs"):
            raise ConfigError(f"train option 'lr_schedule' must be 'auto', 'budget' or 'epochs', got "
                              f"{self.lr_schedule!r}")
        if self.seg_loss not in ("bce", "dice_bce"):
            raise ConfigError(f"train option 'seg_loss' must be 'bce' or 'dice_bce', got {self.seg_loss!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from a dict (e.g. ``config.json``); unknown keys raise :class:`ConfigError` naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown train option(s) {unknown}; known options: {sorted(known)}")
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ConfigError(f"{path}: cannot read the training configuration ({err})") from err
        if isinstance(data, dict):  # a run written before fixed-step epochs: one-pass epochs, annealed over
            data.setdefault("steps_per_epoch", None)  # the epochs (a fresh dict gets today's defaults)
            data.setdefault("lr_schedule", "epochs")
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)
