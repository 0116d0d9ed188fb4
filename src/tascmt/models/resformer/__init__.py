"""ResFormer + DFE (Bui et al.): segmentation + multilabel classification of 2-D images (docs/design.md §9).

Importing this package registers ``resformer_mtl`` (serial blocks) and ``resformer_mtl_parallel``. The rest
of the family sits in its stages: the loss in ``tascmt.losses.resformer``, the image folders in
``tascmt.data.images2d``, the metrics in ``tascmt.evaluation.metrics.resformer``, the trainer in
``tascmt.training.resformer`` and the checkpoint evaluation in ``tascmt.evaluation.resformer``;
``tascmt.resformer`` re-exports them all.
"""

from __future__ import annotations

from tascmt.models.resformer.config import RESFORMER_MODELS, ResFormerConfig, is_resformer
from tascmt.models.resformer.model import ResFormerMTL

__all__ = ["RESFORMER_MODELS", "ResFormerConfig", "ResFormerMTL", "is_resformer"]
