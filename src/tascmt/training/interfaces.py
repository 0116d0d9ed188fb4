"""What checkpointing needs from a trainer, as a typing :class:`~typing.Protocol`.

``checkpointing.py`` saves and restores a trainer's state and ``trainer.py`` calls it, so the trainer owns
checkpointing and checkpointing knows the trainer only through this interface (no import back).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch
    from torch import nn

    from tascmt.training.config import TrainConfig
    from tascmt.training.distributed import DistInfo
    from tascmt.training.records import LoopState

__all__ = ["CheckpointedTrainer"]


class CheckpointedTrainer(Protocol):
    """The attributes and hooks of :class:`tascmt.training.trainer.Trainer` that ``checkpointing`` uses."""

    config: TrainConfig
    run_dir: Path
    resume: bool
    dist: DistInfo
    device: torch.device
    state: LoopState
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    balancer: nn.Module | None
    val_data: Any

    def save_model_files(self, folder: Path, extra: dict[str, Any]) -> None: ...

    def load_model_weights(self, folder: Path) -> None: ...

    def validate(self) -> dict[str, float]: ...
