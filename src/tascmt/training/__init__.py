"""tascmt.training: one training loop with hooks, exact resume, DDP and run logs (docs/design.md §6).

>>> from tascmt.training import TrainConfig, train          # doctest: +SKIP
>>> result = train(TrainConfig(cache_dir="cache", out_dir="runs/a", size="tiny", epochs=2))  # doctest: +SKIP
>>> result.best_checkpoint                                   # doctest: +SKIP
PosixPath('runs/a/best')

``train``, ``resume``, ``Trainer`` and ``RunResult`` import torch, so they load on first use.
"""

from __future__ import annotations

from typing import Any

from tascmt.training.config import TrainConfig

__all__ = ["RunResult", "TrainConfig", "Trainer", "resume", "train"]


def __getattr__(name: str) -> Any:
    if name in ("train", "resume"):
        from tascmt.training import api

        return getattr(api, name)
    if name in ("Trainer", "RunResult"):
        from tascmt.training import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'tascmt.training' has no attribute {name!r}")
