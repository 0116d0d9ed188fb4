"""The ResFormer + DFE multi-task family (docs/design.md §9): segmentation + multilabel classification of
2-D images. Its parts live in the stages; this package re-exports them under one name.

- ``tascmt.models.resformer``: :class:`ResFormerMTL` (``resformer_mtl``, ``resformer_mtl_parallel``) and
  :class:`ResFormerConfig`; ``tascmt.models.dfe``: the DFE block (shared with ``mtl_cross_concat``).
- ``tascmt.losses.resformer``: :class:`ResFormerLoss` ((Dice + focal) + 0.25 × class-weighted multilabel
  soft-margin).
- ``tascmt.data.images2d``: ISIC-2017 / RETOUCH-style folders, :class:`FolderDataset`,
  :func:`make_synthetic_2d_task`.
- ``tascmt.evaluation.metrics.resformer``: DSC, Jaccard, accuracy, sensitivity, specificity (NumPy).
- ``tascmt.training.resformer``: :class:`ResFormerTrainer` (the project trainer's hooks),
  ``trainer_for_model``.
- ``tascmt.evaluation.resformer``: :func:`evaluate_resformer`.

The old sub-module paths (``tascmt.resformer.config``, ``.model``, ``.trainer``, ...) re-export the moved
modules. Names are imported on first use (most need torch).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ResFormerConfig": "tascmt.models.resformer.config",
    "is_resformer": "tascmt.models.resformer.config",
    "ResFormerMTL": "tascmt.models.resformer.model",
    "ResFormerLoss": "tascmt.losses.resformer",
    "FolderDataset": "tascmt.data.images2d.dataset",
    "make_synthetic_2d_task": "tascmt.data.images2d.synthetic",
    "ResFormerTrainer": "tascmt.training.resformer",
    "resformer_train_config": "tascmt.training.resformer",
    "train_resformer": "tascmt.training.resformer",
    "trainer_for_model": "tascmt.training.resformer",
    "with_defaults": "tascmt.training.resformer",
    "evaluate_resformer": "tascmt.evaluation.resformer",
    "is_resformer_checkpoint": "tascmt.evaluation.resformer",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tascmt.resformer' has no attribute {name!r}")
