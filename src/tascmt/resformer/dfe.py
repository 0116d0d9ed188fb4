"""Moved to :mod:`tascmt.models.dfe`; this path re-exports its public names."""

from tascmt.models.dfe import (  # noqa: F401
    DFE,
    SpatialAttention,
    capped_dilations,
)
