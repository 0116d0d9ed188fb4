"""Moved to :mod:`tascmt.training.resformer`; this path re-exports its public names."""

from tascmt.training.resformer import (  # noqa: F401
    RESFORMER_DEFAULTS,
    RESFORMER_MODELS,
    ResFormerTrainer,
    is_resformer,
    poly_factor,
    predictions,
    resformer_train_config,
    train_resformer,
    trainer_for_model,
    with_defaults,
)
