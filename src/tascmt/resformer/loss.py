"""Moved to :mod:`tascmt.losses.resformer`; this path re-exports its public names."""

from tascmt.losses.resformer import (  # noqa: F401
    CLS_WEIGHT,
    ResFormerLoss,
    class_weights,
)
