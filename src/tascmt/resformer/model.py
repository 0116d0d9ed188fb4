"""Moved to :mod:`tascmt.models.resformer.model`; this path re-exports its public names."""

from tascmt.models.resformer.model import (  # noqa: F401
    ClassificationHead,
    DecoderBlock,
    Record,
    ResFormerEncoder,
    ResFormerMTL,
    count_parameters,
    resformer_mtl,
    resformer_mtl_parallel,
)
