"""``TripletDataset``: the torch Dataset over a triplet cache (see :mod:`tascmt.data.cache`).

Each item is normalised with the cache's strategy fitted on its two input frames only, optionally augmented
(train split; :mod:`tascmt.data.augment`), and returned as a dict of tensors. Augmentation is seeded by
``(seed, epoch, triplet index)``, so a sample is reproducible and independent of DataLoader workers; call
:meth:`TripletDataset.set_epoch` before each epoch (with ``persistent_workers=False``, the default, workers
get the updated dataset every epoch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tascmt.data.augment import AugmentConfig, PairedAugment
from tascmt.data.cache import Manifest, case_files
from tascmt.data.normalize import normalizer_from_dict


class TripletDataset(torch.utils.data.Dataset):
    """Triplets of one split.

    Args:
        cache_dir: folder written by ``prepare_dataset``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        augment: apply the paired augmentation.
        seed: augmentation seed.
        fold: use cross-validation fold ``fold``'s train/val patients instead of the main split.
        fg_policy: foreground policy (default: the manifest's train or eval policy).
        augment_cfg: augmentation settings.

    Items (dict):
        ``x`` (2, H, W) float32 = [X1, X3] in [0, 1]; ``y_interp`` (1, H, W) float32 = X2 (clipped to [0, 1]);
        ``y_seg`` (3, H, W) float32 = [Y1, Y2, Y3] in {0, 1}; ``case_id`` (str); ``index`` (int, triplet id in
        the manifest); ``gap_mm`` (float); ``resampled`` (bool); ``fg_middle`` (bool, Y2 has foreground
        before augmentation); ``target_clipped`` (float, fraction of X2 outside [0, 1] before clipping).
    """

    def __init__(self, cache_dir: str | Path, split: str = "train", augment: bool = False, seed: int = 0,
                 fold: int | None = None, fg_policy: str | None = None,
                 augment_cfg: AugmentConfig | None = None):
        self.manifest = Manifest.load(cache_dir)
        self.root = Path(cache_dir)
        self.split = split
        self.records = self.manifest.select(split, fg_policy, fold)
        self.fg_policy = fg_policy or self.manifest.default_policy(split)
        self.normalizer = normalizer_from_dict(self.manifest.params["norm"])
        self.augmenter = PairedAugment(augment_cfg or AugmentConfig()) if augment else None
        self.seed = int(seed)
        self.epoch = 0
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw (same (seed, epoch, index) → same sample)."""
        self.epoch = int(epoch)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_arrays"] = {}  # memory maps are reopened in each worker
        return state

    def _case(self, case_id: str) -> tuple[np.ndarray, np.ndarray]:
        if case_id not in self._arrays:
            img_rel, seg_rel = case_files(case_id)
            self._arrays[case_id] = (np.load(self.root / img_rel, mmap_mode="r"),
                                     np.load(self.root / seg_rel, mmap_mode="r"))
        return self._arrays[case_id]

    def __getitem__(self, i: int) -> dict:
        rec = self.records[i]
        img, seg = self._case(rec["case_id"])  # (Z, H, W) float32 raw, (Z, H, W) uint8
        ks = (rec["k0"], rec["k1"], rec["k2"])
        x1, x2, x3 = (np.array(img[k], dtype=np.float32) for k in ks)
        x1n, x2n, x3n, _, clipped = self.normalizer.normalize_triplet(x1, x2, x3)
        x = torch.from_numpy(np.stack([x1n, x3n]).astype(np.float32))  # (2, H, W)
        y_interp = torch.from_numpy(x2n.astype(np.float32)[None])  # (1, H, W)
        y_seg = torch.from_numpy(np.stack([seg[k] for k in ks]).astype(np.float32))  # (3, H, W)
        if self.augmenter is not None:
            rng = np.random.default_rng([self.seed, self.epoch, int(rec["index"])])
            x, y_interp, y_seg = self.augmenter(x, y_interp, y_seg, rng)
        return {
            "x": x.contiguous(),
            "y_interp": y_interp.contiguous(),
            "y_seg": y_seg.contiguous(),
            "case_id": rec["case_id"],
            "index": int(rec["index"]),
            "gap_mm": float(rec["gap_mm"]),
            "resampled": bool(rec["resampled"]),
            "fg_middle": bool(rec["fg"][1]),
            "target_clipped": float(clipped),
        }
