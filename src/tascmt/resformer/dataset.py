"""Moved to :mod:`tascmt.data.images2d.dataset`; this path re-exports its public names."""

from tascmt.data.images2d.dataset import (  # noqa: F401
    MAX_ROTATION_DEG,
    FolderDataset,
    augment,
)
