"""Per-volume evaluation on whole test volumes through ``predict_volume`` (SPEC §11.11).

For each case of the split, the acquired volume is thinned to every (2·s)-th slice (s = the case's triplet
step, so the thinned spacing is 2·gap as in training) and up-sampled ×2 by ``predict_volume``. Every output
slice is then an acquired slice of the original volume: even outputs are the thinned inputs (their masks
average Ŷ1/Ŷ3 of the neighbouring pairs), odd outputs are synthesised (image and Ŷ2). Against the original
labels this gives per-volume Dice, IoU, HD95 and surface Dice, also split into input and synthesised slices,
and for interpolation checkpoints the PSNR of the synthesised slices and of linear interpolation on the same
slices, each scaled with the checkpoint's normaliser fitted on the two neighbouring inputs (as in training).
Only the offset-0 thinning is used; caches built with ``protocol="resampled"`` are not supported.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from tascmt.evaluation import metrics as M
from tascmt.evaluation.folders import surface_metrics


def _case_arrays(info: dict[str, Any], params: dict[str, Any], case_id: str):
    """(image (n, X, Y), label (n, X, Y) bool, spacing of (X, Y) in mm, dz) of one cached case."""
    from tascmt.io import load_volume

    vol = load_volume(info["image"], info["label"], modality=params.get("modality"), case_id=case_id)
    axis = int(info["slice_axis"])
    img = np.moveaxis(vol.image, axis, 0)  # (n, X, Y)
    lab = np.moveaxis(vol.label, axis, 0)  # (n, X, Y)
    values = params.get("label_values")
    fg = lab > 0 if values is None else np.isin(lab, np.asarray(values))
    inplane = tuple(float(s) for i, s in enumerate(vol.spacing) if i != axis)
    return img, fg, inplane, float(vol.spacing[axis])


def _interp_psnr(pred: np.ndarray, img: np.ndarray, originals: np.ndarray, normalizer) -> tuple[float, float]:
    """Mean PSNR of the synthesised slices (odd outputs) and of linear interpolation, on [0, 1] scales."""
    model_vals, linear_vals = [], []
    for j in range(1, len(originals), 2):
        x1, x2, x3 = img[originals[j - 1]], img[originals[j]], img[originals[j + 1]]
        p = normalizer.fit(x1, x3)
        gt = normalizer.apply(x2, p)
        model_vals.append(M.psnr(normalizer.apply(pred[j], p), gt))
        linear_vals.append(M.psnr(0.5 * (normalizer.apply(x1, p) + normalizer.apply(x3, p)), gt))
    return float(np.mean(model_vals)), float(np.mean(linear_vals))


def _overlap(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    return {k: v for k, v in M.aggregate_counts(M.confusion(pred, gt)).items()
            if k in ("dice", "iou", "precision", "recall")}


def evaluate_volumes(
    checkpoint: str | os.PathLike,
    cache_dir: str | os.PathLike,
    split: str = "test",
    device: str = "cpu",
    batch_size: int = 8,
    tolerance_mm: float = 1.0,
    max_cases: int | None = None,
) -> dict[str, Any]:
    """Whole-volume metrics per case of ``split`` (see the module docstring).

    Returns:
        ``{"protocol", "cases": {case: metrics}, "mean": {metric: mean over cases}, "skipped": {case:
        reason}}``; metrics are ``dice, iou, precision, recall, hd95_mm, surface_dice, dice_inputs,
        dice_synth, n_slices`` (segmentation) and ``psnr_synth, linear_psnr_synth`` (interpolation).
    """
    import warnings

    from tascmt.data.cache import Manifest
    from tascmt.inference import Predictor, SpacingWarning, predict_volume

    manifest = Manifest.load(cache_dir)
    predictor = Predictor.from_checkpoint(checkpoint, device=device)
    tasks = tuple(predictor.tasks)
    outputs = tuple(o for o, t in (("image", "interp"), ("mask", "seg")) if t in tasks)
    cases: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    protocol = manifest.params.get("protocol", "acquired")
    ids = sorted(c for c, info in manifest.cases.items() if info.get("split") == split)
    if max_cases is not None:
        ids = ids[:max_cases]
    for cid in ids:
        info = manifest.cases[cid]
        if protocol == "resampled":
            skipped[cid] = "cache built with protocol 'resampled' (targets are not acquired slices)"
            continue
        if info.get("excluded") or not info.get("step"):
            skipped[cid] = f"excluded from the cache ({info.get('excluded', 'no triplets')})"
            continue
        img, fg, inplane, dz = _case_arrays(info, manifest.params, cid)
        step = int(info["step"])
        inputs = np.arange(0, img.shape[0], 2 * step)
        if len(inputs) < 2:
            skipped[cid] = f"{img.shape[0]} slices: fewer than 2 inputs at stride {2 * step}"
            continue
        originals = np.arange(0, int(inputs[-1]) + 1, step)  # the acquired slices the output stands for
        thick = np.moveaxis(img[inputs], 0, 2)  # (X, Y, m)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpacingWarning)  # the thinned spacing is 2·gap by construction
            res = predict_volume(thick, (*inplane, dz * 2 * step), predictor, factor=2, slice_axis=2,
                                 batch_size=batch_size, device=device, progress=False, outputs=outputs)
        entry: dict[str, Any] = {"n_slices": len(originals), "n_inputs": len(inputs),
                                 "step": step}
        if res.mask is not None:
            pred = np.moveaxis(res.mask, 2, 0) > 0  # (N, X, Y)
            gt = fg[originals]  # (N, X, Y)
            entry.update(_overlap(pred, gt))
            entry["dice_inputs"] = _overlap(pred[0::2], gt[0::2])["dice"]
            entry["dice_synth"] = _overlap(pred[1::2], gt[1::2])["dice"]
            hd, nsd = surface_metrics(pred, gt, (dz * step, *inplane), tolerance_mm)
            entry["hd95_mm"], entry["surface_dice"] = hd, nsd
        if res.image is not None:
            pred_img = np.moveaxis(res.image, 2, 0)  # (N, X, Y)
            entry["psnr_synth"], entry["linear_psnr_synth"] = _interp_psnr(
                pred_img, img, originals, predictor.normalizer)
        cases[cid] = entry
    keys = sorted({k for e in cases.values() for k in e if k not in ("n_slices", "n_inputs", "step")})
    mean = {}
    for k in keys:
        vals = [e[k] for e in cases.values() if isinstance(e.get(k), float) and math.isfinite(e[k])]
        mean[k] = float(np.mean(vals)) if vals else None
    return {
        "protocol": "every 2·step-th acquired slice as input, ×2 by predict_volume, all outputs vs acquired "
                    "slices (offset 0)",
        "surface_tolerance_mm": tolerance_mm, "cases": cases, "mean": mean, "skipped": skipped,
        "checkpoint": str(Path(checkpoint)),
    }
