"""Moved to :mod:`tascmt.data.images2d.folder`; this path re-exports its public names."""

from tascmt.data.images2d.folder import (  # noqa: F401
    ID_COLUMNS,
    IMAGE_SUFFIXES,
    MASK_PATTERNS,
    SKIP_SUFFIXES,
    SPLIT_FRACTIONS,
    SPLITS,
    Sample,
    check_pairs,
    find_labels_csv,
    image_size,
    load_split,
    read_image,
    read_labels_csv,
    read_mask,
    scan_folder,
    split_samples,
)
