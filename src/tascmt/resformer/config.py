"""Moved to :mod:`tascmt.models.resformer.config`; this path re-exports its public names."""

from tascmt.models.resformer.config import (  # noqa: F401
    BLOCKS,
    RESFORMER_MODELS,
    SIZE_MULTIPLE,
    SIZES,
    TASKS,
    ResFormerConfig,
    is_resformer,
    size_config,
)
