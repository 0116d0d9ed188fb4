"""Torch dataset over a 2-D image / mask / label folder (see ``folder.py``), with paired augmentation.

Items: ``x`` (C, S, S) float32 in [0, 1]; ``y_seg`` (S, S) int64 class indices (binary: 0/1); ``y_cls``
(K,) float32 in {0, 1}; ``case_id`` (str); ``index`` (int). S is the model's ``img_size`` (images are
resized bilinearly, masks by nearest neighbour). Augmentation (training): horizontal flip (p = 0.5) and a
rotation uniform in ±25°, drawn from (seed, epoch, index) so that a run is reproducible.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from tascmt.data.images2d.folder import Sample, load_split, read_image, read_mask
from tascmt.errors import InputError

MAX_ROTATION_DEG = 25.0


def augment(
    x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator, max_deg: float = MAX_ROTATION_DEG
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random horizontal flip and rotation of an image (C, H, W) and its label map (H, W), alike.

    The image is resampled bilinearly, the labels by nearest neighbour; outside the image is 0.
    """
    flip = rng.random() < 0.5
    angle = math.radians(rng.uniform(-max_deg, max_deg))
    if flip:
        x, y = x.flip(-1), y.flip(-1)
    cos, sin = math.cos(angle), math.sin(angle)
    theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=torch.float32)[None]  # (1, 2, 3)
    grid = F.affine_grid(theta, [1, 1, *x.shape[-2:]], align_corners=False)  # (1, H, W, 2)
    x = F.grid_sample(x[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
    y = F.grid_sample(y[None, None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return x, y[0, 0].round().long()


class FolderDataset(Dataset):
    """One split of a 2-D image / mask / label dataset, shaped for a ResFormer model.

    Args:
        root: dataset root (split sub-folders, or one flat folder split 70/15/15 with ``split_seed``).
        split: "train", "val" or "test".
        img_size / in_chans / seg_classes / cls_classes: from the model config.
        augment: random flip + rotation (training). seed: augmentation seed.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        *,
        img_size: int,
        in_chans: int,
        seg_classes: int,
        cls_classes: int,
        augment: bool = False,
        seed: int = 0,
        split_seed: int = 42,
    ):
        self.root = Path(root)
        self.split, self.img_size, self.in_chans = split, img_size, in_chans
        self.seg_classes, self.cls_classes = seg_classes, cls_classes
        self.augment, self.seed, self.epoch = augment, seed, 0
        self.samples, names = load_split(self.root, split, split_seed)
        self.from_mask = names is None
        if names is not None and len(names) != cls_classes:
            raise InputError(
                f"the labels CSV has {len(names)} classes {names}, the model expects "
                f"cls_classes={cls_classes}",
                path=self.root,
            )
        if self.from_mask and self.samples and cls_classes != seg_classes - 1:
            raise InputError(
                f"no labels CSV, so the {cls_classes} classification labels would come from the "
                f"mask classes 1..{seg_classes - 1}; that needs cls_classes = seg_classes - 1 "
                f"(got seg_classes={seg_classes})",
                path=self.root,
            )
        self.class_names = names or [f"class{k}" for k in range(1, seg_classes)]
        self._labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Augmentation is drawn from (seed, epoch, index)."""
        self.epoch = int(epoch)

    def _mask_labels(self, mask: np.ndarray) -> np.ndarray:
        return np.array([float((mask == k).any()) for k in range(1, self.seg_classes)], dtype=np.float32)

    def _sample_labels(self, s: Sample) -> np.ndarray:
        if s.labels is not None:
            return np.asarray(s.labels, dtype=np.float32)
        return self._mask_labels(read_mask(s.mask, self.seg_classes))

    def labels_array(self) -> np.ndarray:
        """(N, K) float32 classification labels of the whole split (reads the masks once when they define
        the labels; used for the loss's class weights)."""
        if self._labels is None:
            rows = [self._sample_labels(s) for s in self.samples]
            self._labels = np.stack(rows) if rows else np.zeros((0, self.cls_classes), dtype=np.float32)
        return self._labels

    def __getitem__(self, index: int) -> dict[str, Any]:
        s = self.samples[index]
        x = torch.from_numpy(read_image(s.image, self.in_chans, self.img_size))  # (C, S, S)
        mask = read_mask(s.mask, self.seg_classes, self.img_size)  # (S, S)
        labels = np.asarray(s.labels, dtype=np.float32) if s.labels is not None else None
        if labels is None:  # from the full-resolution mask: a small lesion must not vanish by resizing
            labels = self._mask_labels(read_mask(s.mask, self.seg_classes))
        y = torch.from_numpy(mask)
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            x, y = augment(x, y, rng)
        return {"x": x, "y_seg": y, "y_cls": torch.from_numpy(labels), "case_id": s.case_id, "index": index}
