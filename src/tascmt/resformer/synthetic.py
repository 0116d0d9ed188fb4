"""Moved to :mod:`tascmt.data.images2d.synthetic`; this path re-exports its public names."""

from tascmt.data.images2d.synthetic import (  # noqa: F401
    ISIC_CLASSES,
    KINDS,
    make_synthetic_2d_task,
)
