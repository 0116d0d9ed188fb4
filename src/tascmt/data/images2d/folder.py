"""Reading 2-D image / mask / label folders (ISIC 2017 style and RETOUCH-style multi-class masks).

Layout of one split folder::

    images/<id>.png|.jpg|.jpeg        the image (RGB or grayscale; ISIC's <id>_superpixels.png are skipped)
    masks/<id>_segmentation.png       the mask (also accepted: <id>.png, <id>_mask.png)
    labels.csv (or the only *.csv)    optional: image_id,<class 1>,<class 2>,...  (0/1 per class)

Binary masks (ISIC: 0/255) are thresholded at > 0. Multi-class masks hold class indices 0..S-1
(0 = background). Without a CSV the K classification labels are derived from the mask: label k = class k+1
is present (RETOUCH: IRF/SRF/PED present in the B-scan), which needs K = S - 1.

Images and masks are resized to the model's square input (bilinear / nearest) without keeping the aspect
ratio, as for ISIC's variously sized photographs. A dataset root either has ``train/``, ``val/`` (and
``test/``) sub-folders of this layout, or is one such folder that :func:`split_samples` divides 70/15/15
with a fixed seed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tascmt.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SKIP_SUFFIXES = ("_superpixels",)  # ISIC 2017 ships superpixel maps beside the images
MASK_PATTERNS = ("{id}_segmentation.png", "{id}.png", "{id}_mask.png")
ID_COLUMNS = ("image_id", "image", "id")
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)


@dataclass(frozen=True)
class Sample:
    """One image with its mask and (when a CSV gave them) its classification labels."""

    case_id: str
    image: Path
    mask: Path
    labels: tuple[float, ...] | None = None


def read_labels_csv(path: Path) -> tuple[list[str], dict[str, tuple[float, ...]]]:
    """(class names, {image_id: labels}) from ``image_id,<class>,...``; values must be 0 or 1."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read the labels CSV ({err})", path=path) from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 2 or len(rows[0]) < 2 or rows[0][0].strip().lower() not in ID_COLUMNS:
        raise InputError(
            f"labels CSV needs a header '{ID_COLUMNS[0]},<class>,...' and at least one row; "
            f"got header {rows[0] if rows else []}",
            path=path,
        )
    names = [c.strip() for c in rows[0][1:]]
    labels: dict[str, tuple[float, ...]] = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(rows[0]):
            raise InputError(f"line {line} has {len(row)} columns, the header has {len(rows[0])}", path=path)
        try:
            values = tuple(float(v) for v in row[1:])
        except ValueError:
            raise InputError(
                f"line {line}: labels must be numbers 0 or 1, got {row[1:]}", path=path
            ) from None
        if any(v not in (0.0, 1.0) for v in values):
            raise InputError(f"line {line}: labels must be 0 or 1, got {row[1:]}", path=path)
        labels[Path(row[0].strip()).stem] = values
    return names, labels


def find_labels_csv(folder: Path) -> Path | None:
    """``labels.csv``, else the only ``*.csv`` in ``folder``, else None (several CSVs: error)."""
    if (folder / "labels.csv").is_file():
        return folder / "labels.csv"
    csvs = sorted(folder.glob("*.csv"))
    if len(csvs) > 1:
        raise InputError(
            f"several CSV files ({[p.name for p in csvs]}); name the labels file labels.csv", path=folder
        )
    return csvs[0] if csvs else None


def scan_folder(folder: str | Path) -> tuple[list[Sample], list[str] | None]:
    """The samples of one split folder (sorted by id) and the CSV's class names (None without a CSV).

    Raises ``InputError`` for a missing ``images/`` or ``masks/`` folder, no images, an image without a
    mask, an image missing from the CSV, an unreadable file or an image and mask of different sizes
    (checked from the file headers, for the whole folder).
    """
    folder = Path(folder)
    images_dir, masks_dir = folder / "images", folder / "masks"
    for d in (images_dir, masks_dir):
        if not d.is_dir():
            raise InputError(
                f"missing folder {d.name}/ (expected images/, masks/ and optionally labels.csv)", path=folder
            )
    images = sorted(
        p
        for p in images_dir.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.stem.endswith(SKIP_SUFFIXES)
    )
    if not images:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found", path=images_dir)
    csv_path = find_labels_csv(folder)
    names, table = read_labels_csv(csv_path) if csv_path is not None else (None, {})
    samples = []
    for img in images:
        case_id = img.stem
        mask = next(
            (
                masks_dir / p.format(id=case_id)
                for p in MASK_PATTERNS
                if (masks_dir / p.format(id=case_id)).is_file()
            ),
            None,
        )
        if mask is None:
            tried = ", ".join(p.format(id=case_id) for p in MASK_PATTERNS)
            raise InputError(f"no mask for image {img.name} (looked for {tried})", path=masks_dir)
        if csv_path is not None and case_id not in table:
            raise InputError(f"image {case_id!r} has no row in the labels CSV", path=csv_path)
        samples.append(Sample(case_id, img, mask, table.get(case_id)))
    check_pairs(samples)
    return samples, names


def split_samples(samples: list[Sample], split: str, seed: int = 42) -> list[Sample]:
    """The ``split`` part of a flat folder: a seeded permutation cut 70/15/15 (val/test get at least one
    sample each when there are at least three)."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not one of {SPLITS}")
    n = len(samples)
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(round(SPLIT_FRACTIONS[1] * n), 1 if n >= 3 else 0)
    n_test = max(round(SPLIT_FRACTIONS[2] * n), 1 if n >= 3 else 0)
    n_train = n - n_val - n_test
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, n)}
    lo, hi = bounds[split]
    return [samples[i] for i in sorted(order[lo:hi])]


def load_split(root: str | Path, split: str, seed: int = 42) -> tuple[list[Sample], list[str] | None]:
    """Samples of ``split`` from a dataset root with split sub-folders, or a seeded split of a flat folder."""
    root = Path(root)
    if not root.is_dir():
        raise InputError("dataset folder does not exist", path=root)
    if (root / "train").is_dir():
        if not (root / split).is_dir():
            return [], None
        return scan_folder(root / split)
    samples, names = scan_folder(root)
    return split_samples(samples, split, seed), names


def read_image(path: Path, channels: int, size: int) -> np.ndarray:
    """The image as (channels, size, size) float32 in [0, 1]: RGB (3) or grayscale (1), bilinear resize."""
    from PIL import Image, UnidentifiedImageError

    if channels not in (1, 3):
        raise ValueError(f"read_image: channels={channels} must be 1 (grayscale) or 3 (RGB)")
    try:
        with Image.open(path) as im:
            im = im.convert("RGB" if channels == 3 else "L")
            im = im.resize((size, size), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"cannot read the image ({err})", path=path) from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)  # (C, size, size)


def read_mask(path: Path, seg_classes: int, size: int | None = None) -> np.ndarray:
    """The mask as (size, size) int64 class indices (nearest resize; ``size=None`` keeps its size).

    Binary (``seg_classes == 1``): pixels > 0 are foreground (1). Multi-class: values must lie in
    0..seg_classes-1. A colour mask is accepted only if its channels are equal.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if size is not None:
                im = im.resize((size, size), Image.Resampling.NEAREST)
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"cannot read the mask ({err})", path=path) from None
    if arr.ndim == 3:
        if not all(np.array_equal(arr[..., 0], arr[..., c]) for c in range(1, min(arr.shape[2], 3))):
            raise InputError(
                f"mask must be single-channel (label values), got {arr.shape[2]} different colour channels",
                path=path,
            )
        arr = arr[..., 0]
    arr = arr.astype(np.int64)
    if seg_classes == 1:
        return (arr > 0).astype(np.int64)
    bad = np.unique(arr[(arr < 0) | (arr >= seg_classes)])
    if bad.size:
        raise InputError(
            f"mask values {bad[:10].tolist()} are outside 0..{seg_classes - 1} (seg_classes={seg_classes})",
            path=path,
        )
    return arr


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header (cheap)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"cannot read the image ({err})", path=path) from None


def check_pairs(samples: list[Sample]) -> None:
    """Raise ``InputError`` when an image and its mask differ in size (headers only)."""
    for s in samples:
        si, sm = image_size(s.image), image_size(s.mask)
        if si != sm:
            raise InputError(
                f"mask size {sm[0]}x{sm[1]} differs from its image {s.image.name} ({si[0]}x{si[1]})",
                path=s.mask,
            )
