"""tascmt.models: the TASC-SwinMT family, its registry of named variants, and checkpoint I/O."""

from __future__ import annotations

from tascmt.models.checkpoint import load_model, save_model
from tascmt.models.config import ModelConfigError, TascConfig
from tascmt.models.registry import create_model, list_models, list_sizes, model_config, register_model
from tascmt.models.tasc_swinmt import TascSwinMT  # importing it registers the variants

__all__ = [
    "ModelConfigError",
    "TascConfig",
    "TascSwinMT",
    "create_model",
    "list_models",
    "list_sizes",
    "load_model",
    "model_config",
    "register_model",
    "save_model",
]

# Importing these registers the comparison baselines, the multi-task methods and ResFormer + DFE.
from tascmt.models import baselines, mtl, resformer  # noqa: F401
