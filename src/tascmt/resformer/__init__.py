"""The ResFormer + DFE multi-task family (SPEC §9): segmentation + multilabel classification of 2-D images.

- ``model``: :class:`ResFormerMTL`, registered as ``resformer_mtl`` (serial blocks) and
  ``resformer_mtl_parallel`` (sizes ``paper``/``small``/``tiny``).
- ``loss``: :class:`ResFormerLoss` ((Dice + focal) + 0.25 × class-weighted multilabel soft-margin).
- ``metrics``: DSC, Jaccard, accuracy, sensitivity, specificity (NumPy).
- ``folder`` / ``dataset``: ISIC-2017-style and RETOUCH-style image/mask/label folders.
- ``synthetic``: :func:`make_synthetic_2d_task` for tests and demos.
- ``trainer``: :class:`ResFormerTrainer` (the project trainer's hooks), ``trainer_for_model``.
- ``evaluate``: :func:`evaluate_resformer`.

Submodules that need torch are imported on first use of their names.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ResFormerConfig": "config",
    "ResFormerMTL": "model",
    "ResFormerLoss": "loss",
    "FolderDataset": "dataset",
    "make_synthetic_2d_task": "synthetic",
    "ResFormerTrainer": "trainer",
    "resformer_train_config": "trainer",
    "train_resformer": "trainer",
    "trainer_for_model": "trainer",
    "is_resformer": "config",
    "evaluate_resformer": "evaluate",
    "is_resformer_checkpoint": "evaluate",
    "with_defaults": "trainer",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"tascmt.resformer.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'tascmt.resformer' has no attribute {name!r}")
