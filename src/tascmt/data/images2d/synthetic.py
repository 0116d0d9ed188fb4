"""A synthetic 2-D segmentation + classification task, written as an image / mask / label folder.

``kind="isic"``: RGB images with one lesion each on a noisy skin-coloured background; the lesion's shape
sets its label (disc = ``melanoma``, square = ``seborrheic_keratosis``, diamond = neither); binary masks
``masks/<id>_segmentation.png`` (0/255) and ``labels.csv`` as in ISIC 2017.
``kind="multiclass"``: grayscale images with up to three shapes, each present with probability 0.5,
painted with mask values 1 (disc), 2 (square), 3 (diamond) as in RETOUCH; no CSV, so the labels are the
presence of classes 1..3 derived from the mask.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tascmt.utils.atomic import atomic_path, write_text_atomic

KINDS = ("isic", "multiclass")
ISIC_CLASSES = ("melanoma", "seborrheic_keratosis")


def _shape_mask(kind: int, size: int, cy: float, cx: float, r: float) -> np.ndarray:
    """A (size, size) bool mask: 0 disc, 1 square, 2 diamond, centred at (cy, cx) with radius r."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    dy, dx = np.abs(yy - cy), np.abs(xx - cx)
    if kind == 0:
        return dy**2 + dx**2 <= r**2
    if kind == 1:
        return (dy <= 0.85 * r) & (dx <= 0.85 * r)
    return dy + dx <= 1.2 * r


def _save_png(arr: np.ndarray, dest: Path) -> None:
    from PIL import Image

    with atomic_path(dest) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")


def make_synthetic_2d_task(
    out_dir: str | Path, n: int = 16, size: int = 64, kind: str = "isic", seed: int = 0
) -> Path:
    """Write ``n`` samples of a ``size`` x ``size`` synthetic task into ``out_dir``; returns ``out_dir``."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}")
    if n < 1 or size < 16:
        raise ValueError(f"need n >= 1 and size >= 16, got n={n}, size={size}")
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = ["image_id," + ",".join(ISIC_CLASSES)]
    for i in range(n):
        case = f"case_{i:04d}"
        if kind == "isic":
            shape = i % 3  # balanced classes
            r = rng.uniform(0.18, 0.28) * size
            cy, cx = rng.uniform(r + 1, size - r - 1, size=2)
            fg = _shape_mask(shape, size, cy, cx, r)
            img = np.empty((size, size, 3))
            img[:] = (0.85, 0.65, 0.55)
            img += rng.normal(0, 0.04, img.shape)
            img[fg] = np.array([(0.25, 0.15, 0.12), (0.55, 0.40, 0.25), (0.45, 0.25, 0.30)][shape])
            img[fg] += rng.normal(0, 0.04, (int(fg.sum()), 3))
            _save_png((np.clip(img, 0, 1) * 255).astype(np.uint8), out / "images" / f"{case}.png")
            _save_png((fg * 255).astype(np.uint8), out / "masks" / f"{case}_segmentation.png")
            rows.append(f"{case},{int(shape == 0)},{int(shape == 1)}")
        else:
            label = np.zeros((size, size), np.uint8)
            img = 0.2 + rng.normal(0, 0.04, (size, size))
            present = rng.random(3) < 0.5
            centres = [(0.3, 0.3), (0.3, 0.7), (0.7, 0.5)]
            for k in np.flatnonzero(present):
                r = rng.uniform(0.10, 0.15) * size
                cy, cx = (np.array(centres[k]) + rng.uniform(-0.05, 0.05, 2)) * size
                fg = _shape_mask(int(k), size, cy, cx, r)
                label[fg] = k + 1
                img[fg] = (0.5, 0.7, 0.9)[k] + rng.normal(0, 0.04, int(fg.sum()))
            _save_png((np.clip(img, 0, 1) * 255).astype(np.uint8), out / "images" / f"{case}.png")
            _save_png(label, out / "masks" / f"{case}.png")
    if kind == "isic":
        write_text_atomic(out / "labels.csv", "\n".join(rows) + "\n")
    return out
