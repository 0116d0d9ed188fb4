"""``TripletDataset``: the torch Dataset over a triplet cache (see :mod:`tascmt.data.cache`).

Each item is normalised with the cache's strategy fitted on its two input frames only (on a ``native`` cache:
the two whole native slices, never a tile, never the target, exactly as ``predict`` fits it), cut to an S×S
tile on ``native`` caches (:mod:`tascmt.data.tiles`), optionally augmented (train split;
:mod:`tascmt.data.augment`), and returned as a dict of tensors.

Tiles on a ``native`` cache (S = the cache's ``size``): the train split draws a random tile per sample;
a seeded fraction (``fg_fraction``, default 1/3, as nnU-Net's oversampling) is centred on a random
foreground pixel of the middle mask Y2 when it has one, the rest are uniform, so interpolation learns from
every position of every triplet while segmentation sees foreground often. Other splits use one fixed tile
per triplet (seeded by its index), so validation is the same every epoch. ``tiles="whole"`` returns whole
slices (evaluation runs the tiled predictor on them). Augmentation is seeded by
``(seed, epoch, triplet index)``, so a sample is reproducible and independent of DataLoader workers; call
:meth:`TripletDataset.set_epoch` before each epoch (with ``persistent_workers=False``, the default, workers
get the updated dataset every epoch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tascmt.data.augment import AugmentConfig, PairedAugment
from tascmt.data.cache import Manifest, case_files, flow_file
from tascmt.data.inplane import InplanePolicy
from tascmt.data.normalize import normalizer_from_dict
from tascmt.data.tiles import pad_planes, random_foreground_pixel, tile_origin
from tascmt.errors import ConfigError

#: Fraction of training tiles centred on a foreground pixel of Y2 (when Y2 has foreground).
DEFAULT_FG_FRACTION = 1.0 / 3.0
TILE_MODES = ("auto", "random", "fixed", "whole")
_FIXED_TILE_SEED = 20260


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
        tiles: on a ``native`` cache, ``"auto"`` (random tiles for ``train``, fixed tiles otherwise),
            ``"random"``, ``"fixed"`` or ``"whole"`` (whole native slices); ignored on resized caches.
        fg_fraction: fraction of random tiles centred on foreground of Y2.

    Items (dict):
        ``x`` (2, H, W) float32 = [X1, X3] in [0, 1]; ``y_interp`` (1, H, W) float32 = X2 (clipped to [0, 1]);
        ``y_seg`` (3, H, W) float32 = [Y1, Y2, Y3] in {0, 1}; ``case_id`` (str); ``index`` (int, triplet id in
        the manifest); ``gap_mm`` (float); ``resampled`` (bool); ``fg_middle`` (bool, Y2 has foreground
        before augmentation); ``target_clipped`` (float, fraction of X2 outside [0, 1] before clipping);
        ``valid`` (1, H, W) float32, 1 on image pixels and 0 on the zero padding of slices smaller than the
        tile (and on augmentation fill): losses leave invalid pixels out.
    """

    def __init__(self, cache_dir: str | Path, split: str = "train", augment: bool = False, seed: int = 0,
                 fold: int | None = None, fg_policy: str | None = None,
                 augment_cfg: AugmentConfig | None = None, tiles: str = "auto",
                 fg_fraction: float = DEFAULT_FG_FRACTION):
        if tiles not in TILE_MODES:
            raise ConfigError(f"tiles must be one of {TILE_MODES}, got {tiles!r}")
        if not 0.0 <= fg_fraction <= 1.0:
            raise ConfigError(f"fg_fraction must be in [0, 1], got {fg_fraction}")
        self.manifest = Manifest.load(cache_dir)
        self.root = Path(cache_dir)
        self.split = split
        self.records = self.manifest.select(split, fg_policy, fold)
        self.fg_policy = fg_policy or self.manifest.default_policy(split)
        self.normalizer = normalizer_from_dict(self.manifest.params["norm"])
        self.augmenter = PairedAugment(augment_cfg or AugmentConfig()) if augment else None
        self.seed = int(seed)
        self.epoch = 0
        self.inplane = InplanePolicy.from_dict(self.manifest.params.get("inplane") or {"kind": "pad_resize",
                                                                                       "size": 256})
        self.tile_size = int(self.manifest.params["size"]) if self.inplane.tiled else None
        if self.tile_size is None or tiles == "whole":
            self.tile_mode = None
        elif tiles == "auto":
            self.tile_mode = "random" if split == "train" else "fixed"
        else:
            self.tile_mode = tiles
        self.fg_fraction = float(fg_fraction)
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._flows: dict[str, np.ndarray] = {}
        self.has_flow = self.manifest.params.get("flow") is not None

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw (same (seed, epoch, index) → same sample)."""
        self.epoch = int(epoch)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_arrays"] = {}  # memory maps are reopened in each worker
        state["_flows"] = {}
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
        x1, x2, x3 = (np.array(img[k], dtype=np.float32) for k in ks)  # whole slices (H, W)
        x1n, x2n, x3n, params, clipped = self.normalizer.normalize_triplet(x1, x2, x3)
        planes = [x1n, x3n, x2n]  # X1, X3, X2 (+ the flow midpoint F of the pair, same scale)
        if self.has_flow:
            cid = rec["case_id"]
            if cid not in self._flows:
                self._flows[cid] = np.load(self.root / flow_file(cid), mmap_mode="r")  # (T, H, W)
            fmid = np.asarray(self._flows[cid][rec["flow_index"]], dtype=np.float32)
            planes.append(self.normalizer.apply(fmid, params))
        frames = np.stack(planes).astype(np.float32, copy=False)  # (3 or 4, H, W)
        masks = np.stack([seg[k] for k in ks])  # (3, H, W) uint8
        valid = np.ones((1, *frames.shape[-2:]), np.uint8)  # (1, H, W)
        rng = np.random.default_rng([self.seed, self.epoch, int(rec["index"])])
        if self.tile_mode is not None:
            frames, masks, valid = self._tile(frames, masks, valid, rec, rng)  # (…, S, S)
        inputs = [0, 1, 3] if self.has_flow else [0, 1]
        x = torch.from_numpy(np.ascontiguousarray(frames[inputs]))  # (2, H, W), or (3, H, W) with F
        y_interp = torch.from_numpy(np.ascontiguousarray(frames[2:3]))  # (1, H, W)
        y_seg = torch.from_numpy(masks.astype(np.float32))  # (3, H, W)
        v = torch.from_numpy(valid.astype(np.float32))  # (1, H, W)
        if self.augmenter is not None:
            x, y_interp, y_seg, v = self.augmenter(x, y_interp, y_seg, rng, valid=v)
            x = x * v  # augmentation fill and padding are exactly 0, as at prediction time
        extra = {}
        if self.has_flow:
            x, extra["flow_mid"] = x[:2], x[2:].contiguous()  # (2, H, W), (1, H, W)
        return {
            **extra,
            "x": x.contiguous(),
            "y_interp": y_interp.contiguous(),
            "y_seg": y_seg.contiguous(),
            "case_id": rec["case_id"],
            "index": int(rec["index"]),
            "gap_mm": float(rec["gap_mm"]),
            "resampled": bool(rec["resampled"]),
            "fg_middle": bool(rec["fg"][1]),
            "target_clipped": float(clipped),
            "valid": v.contiguous(),
        }

    def _tile(self, frames: np.ndarray, masks: np.ndarray, valid: np.ndarray, rec: dict,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cut the same S×S tile from frames (3, H, W), masks (3, H, W) and valid (1, H, W), after zero
        padding of slices smaller than S (padding marked invalid)."""
        size = int(self.tile_size)  # type: ignore[arg-type]
        frames, masks, valid = (pad_planes(a, size) for a in (frames, masks, valid))
        hw = frames.shape[-2:]
        if self.tile_mode == "fixed":
            r0, c0 = tile_origin(hw, size, np.random.default_rng([_FIXED_TILE_SEED, int(rec["index"])]))
        else:
            centre = None
            if self.fg_fraction > 0 and rng.random() < self.fg_fraction:
                centre = random_foreground_pixel(masks[1], rng)
            r0, c0 = tile_origin(hw, size, rng, centre)
        win = (slice(None), slice(r0, r0 + size), slice(c0, c0 + size))
        return frames[win], masks[win], valid[win]
