"""Multi-task methods on the main model's Swin backbone (paper §4.5, Tables 13/14).

Importing this package registers ``mtl_concat`` (direct concatenation Conv1x1(cat(F_interp, F_seg)) at
every decoder level), ``mtl_shared_bottom`` (Shared-Bottom), ``mtl_cross_concat`` (cross-task feature
concatenation with DFE skips, ResFormer-style) and ``mtl_moe`` (multi-gate mixture of expert encoders,
one gate per task), each at sizes paper/small/tiny with the ``tasc_swinmt`` encoder of that size (no TALA,
MSTAF or CTCI). ``DFE`` and ``capped_dilations`` are re-exported from `tascmt.models.dfe`, the one DFE
implementation. docs/baselines.md says how each row relates to its published method.
"""

from __future__ import annotations

from tascmt.models.dfe import DFE, capped_dilations
from tascmt.models.mtl.common import MTLModel, TaskTower
from tascmt.models.mtl.concat import MTLConcat
from tascmt.models.mtl.config import CrossConcatConfig, MoEConfig, MTLConfig
from tascmt.models.mtl.cross_concat import MTLCrossConcat
from tascmt.models.mtl.moe import MTLMoE
from tascmt.models.mtl.shared_bottom import MTLSharedBottom

MTL_MODELS = ("mtl_concat", "mtl_shared_bottom", "mtl_cross_concat", "mtl_moe")

__all__ = [
    "DFE",
    "MTL_MODELS",
    "CrossConcatConfig",
    "MTLConcat",
    "MTLConfig",
    "MTLCrossConcat",
    "MTLMoE",
    "MTLModel",
    "MTLSharedBottom",
    "MoEConfig",
    "TaskTower",
    "capped_dilations",
]
