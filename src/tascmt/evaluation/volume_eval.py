"""Whole test volumes at the scan's own resolution, through ``predict_volume`` (the headline evaluation).

For each case of the split, with s = the case's triplet step (target slice at ±gap from its inputs), the
acquired volume is thinned to every (2·s)-th slice starting at each offset o = 0 … 2s−1 and up-sampled ×2 by
``predict_volume`` at native pixels. Every output slice stands for an acquired slice of the original
volume: the thinned inputs (their masks average Ŷ1/Ŷ3 of the neighbouring pairs) and the synthesised
slices (image and Ŷ2). Across the 2s offsets every interior acquired slice is synthesised once, so the
figures rest on (almost) every slice of every test volume, not on one thinning.

Interpolation, per synthesised slice k (inputs k−s and k+s), each image scaled to [0, 1] with the
checkpoint's normaliser fitted on the two inputs (clipped, as in training): PSNR, SSIM and EdgeSSIM of the
model, of linear interpolation (X(k−s)+X(k+s))/2, of Catmull-Rom cubic where k±3s exist (else it is the
linear value; ``cubic_support`` counts the slices with true cubic support), and of the flow midpoint
(:mod:`tascmt.data.flow`: TV-L1 optical flow between the two inputs, each warped halfway, averaged; no
training; default parameters of :class:`tascmt.data.flow.FlowParams`). As a segmentation reference for
the synthesised slices, the true masks of the two inputs carried halfway by the same flow
(``flow_dice_synth``, an oracle: it uses the acquired neighbours' true masks). For CT (``ct_window``)
also the mean absolute error in HU over the pixels whose true value lies outside the window (where [0, 1]
metrics are blind), for model, linear and flow.

Segmentation: Dice, IoU, Precision, Recall pooled over every output slice of every offset (TP/FP/FN
summed), and separately over input and synthesised slices; HD95 and surface Dice per (case, offset)
volume, averaged over the offsets. A (case, offset) volume with exactly one empty mask — a missed volume
(prediction empty) or a false-positive one (ground truth empty) — counts as the in-plane image diagonal in
mm (`tascmt.evaluation.folders.hd95_or_diagonal`; both empty: 0), so that missing a structure outright is
never left out of the mean; ``hd95_missed`` / ``hd95_false`` count those volumes per case (and in
``totals``).

Native caches read the cached arrays (exact int16 HU for CT); resized caches re-read the original files.
Caches built with ``protocol="resampled"`` are skipped (their targets are not acquired slices).
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tascmt.evaluation import metrics as M
from tascmt.evaluation.data_match import check_checkpoint_data
from tascmt.evaluation.folders import (
    HD95_CONVENTION,
    aggregate_hd95,
    hd95_or_diagonal,
    one_empty_kind,
    surface_metrics,
)

#: Image metrics computed for every method on each synthesised slice.
IMAGE_METRICS = ("psnr", "ssim", "edge_ssim")
PROTOCOL = ("every 2·step-th acquired slice as input at each offset 0…2·step−1, ×2 by predict_volume at "
            "native resolution; every output slice vs the acquired slice it stands for")


def _case_arrays(info: dict[str, Any], params: dict[str, Any], case_id: str, root: Path):
    """(image (n, X, Y), foreground (n, X, Y) bool, in-plane spacing (mm), dz) of one case."""
    inplane_kind = (params.get("inplane") or {}).get("kind", "pad_resize")
    if inplane_kind == "native":
        from tascmt.data.cache import case_files

        img_rel, seg_rel = case_files(case_id)
        img = np.load(root / img_rel, mmap_mode="r")  # (n, X, Y) int16 HU or float32
        fg = np.load(root / seg_rel, mmap_mode="r") > 0  # (n, X, Y)
        spacing = info.get("pixel_spacing") or [s for i, s in enumerate(info["spacing"])
                                                if i != int(info["slice_axis"])]
        return img, fg, tuple(float(s) for s in spacing), float(info["dz"])
    from tascmt.io import load_volume

    vol = load_volume(info["image"], info["label"], modality=params.get("modality"), case_id=case_id)
    axis = int(info["slice_axis"])
    img = np.moveaxis(vol.image, axis, 0)  # (n, X, Y)
    lab = np.moveaxis(vol.label, axis, 0)  # (n, X, Y)
    values = params.get("label_values")
    fg = lab > 0 if values is None else np.isin(lab, np.asarray(values))
    inplane = tuple(float(s) for i, s in enumerate(vol.spacing) if i != axis)
    return img, fg, inplane, float(vol.spacing[axis])


def _recorded_extra(checkpoint: Any, predictor: Any) -> dict[str, Any]:
    """The preprocessing a checkpoint recorded (``model.json``'s ``extra``), or, for an in-memory
    ``Predictor``, what it carries (normalisation, in-plane policy kind, gap when set; not the protocol)."""
    if isinstance(checkpoint, str | os.PathLike):
        from tascmt.models.checkpoint import read_meta

        return dict(read_meta(checkpoint).get("extra") or {})
    norm = getattr(predictor, "normalizer", None)
    kind = getattr(getattr(predictor, "inplane", None), "kind", None)
    return {"norm": norm.to_dict() if hasattr(norm, "to_dict") else None,
            "inplane": None if kind is None else {"kind": kind}, "gap_mm": getattr(predictor, "gap_mm", None)}


def _image_scores(pred01: np.ndarray, gt01: np.ndarray) -> dict[str, float]:
    return {"psnr": M.psnr(pred01, gt01), "ssim": M.ssim(pred01, gt01),
            "edge_ssim": M.edge_ssim(pred01, gt01)}


class _Pool:
    """Sums of per-slice image metrics per method, and pooled segmentation counts."""

    def __init__(self) -> None:
        self.img: dict[str, list[float]] = {}
        self.counts: dict[str, list[dict[str, int]]] = {}
        self.surface: list[tuple[float, float]] = []  # (HD95 or diagonal, surface Dice) per offset
        self.empty: list[str | None] = []  # one_empty_kind per offset

    def add_img(self, method: str, scores: dict[str, float]) -> None:
        for k, v in scores.items():
            self.img.setdefault(f"{method}.{k}", []).append(v)

    def add_counts(self, key: str, pred: np.ndarray, gt: np.ndarray) -> None:
        self.counts.setdefault(key, []).append(M.confusion(pred, gt))

    def means(self) -> dict[str, float]:
        out = {}
        for k, vals in self.img.items():
            finite = [v for v in vals if math.isfinite(v)]
            out[k] = float(np.mean(finite)) if finite else math.nan
        return out


def _overlap(counts) -> dict[str, float]:
    return {k: float(v) for k, v in M.aggregate_counts(counts).items() if k in ("dice", "iou", "precision",
                                                                                  "recall")}


def evaluate_volumes(
    checkpoint: Any,
    cache_dir: str | os.PathLike,
    split: str = "test",
    device: str = "cpu",
    batch_size: int = 8,
    tolerance_mm: float = 1.0,
    max_cases: int | None = None,
    offsets: str = "all",
    flow: bool = True,
    reformat_case: str | None = None,
    allow_mismatch: bool = False,
    check_data: bool = True,
) -> dict[str, Any]:
    """Whole-volume metrics per case of ``split`` at native resolution (see the module docstring).

    Args:
        checkpoint: checkpoint path or a :class:`tascmt.inference.Predictor`.
        cache_dir: the prepared cache whose split is evaluated.
        offsets: ``"all"`` (every thinning offset, default) or ``"first"`` (offset 0 only; quicker).
        flow: also score the flow-midpoint reference (TV-L1 optical flow; ~0.3 s per 200² slice pair and
            ~2 s per 512² pair on 2 cores).
        reformat_case: case whose volumes are returned under ``"reformat"`` for a through-plane figure:
            ``truth`` (n, X, Y), and ``model`` / ``linear`` where every slice that some offset synthesised is
            replaced by its synthesised version (the others, at the ends, stay acquired); None returns none.
        allow_mismatch: evaluate a checkpoint whose normalisation, target protocol or in-plane policy differ
            from the cache's (refused otherwise; `tascmt.evaluation.data_match`), labelled in the result.
        check_data: False when the caller has checked the checkpoint against the cache already
            (``evaluate_checkpoint`` does, and labels its own summary).
    Returns:
        ``{"protocol", "cases": {case: metrics}, "mean": {metric: mean over cases}, "pooled": {...},
        "skipped": {case: reason}, "n_synth": total synthesised slices}``. Per-case metrics:
        ``psnr_synth``, ``ssim_synth``, ``edge_ssim_synth`` (model) and the same with prefixes ``linear_``,
        ``cubic_`` (and ``flow_``); ``hu_mae_out_model`` / ``hu_mae_out_linear`` (CT); ``dice``, ``iou``,
        ``precision``, ``recall`` (pooled over all output slices), ``dice_inputs``, ``dice_synth``,
        ``hd95_mm``, ``surface_dice`` (mean over offsets; a missed or false-positive volume counts as the
        in-plane diagonal), ``hd95_missed`` / ``hd95_false`` (such volumes among the case's offsets),
        ``n_synth``, ``n_offsets``. ``totals``: ``hd95_missed``, ``hd95_false`` and ``hd95_volumes`` summed
        over cases.
    """
    from tascmt.data.cache import Manifest
    from tascmt.inference import Predictor, SpacingWarning, predict_volume

    if offsets not in ("all", "first"):
        raise ValueError(f"offsets must be 'all' or 'first', got {offsets!r}")
    manifest = Manifest.load(cache_dir)
    predictor = checkpoint if isinstance(checkpoint, Predictor) else Predictor.from_checkpoint(checkpoint,
                                                                                               device=device)
    labels: dict[str, Any] = {}
    if check_data:
        labels = check_checkpoint_data(
            _recorded_extra(checkpoint, predictor), manifest.params,
            checkpoint=getattr(predictor, "source", checkpoint), cache_dir=cache_dir,
            allow_mismatch=allow_mismatch,
            not_recorded_ok=("protocol", "gap_mm") if isinstance(checkpoint, Predictor) else ())
    norm = predictor.normalizer
    window = (norm.lo, norm.hi) if getattr(norm, "name", "") == "ct_window" else None
    tasks = tuple(predictor.tasks)
    outputs = tuple(o for o, t in (("image", "interp"), ("mask", "seg")) if t in tasks)
    cases: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    reformat: dict[str, Any] | None = None
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
        img, fg, inplane, dz = _case_arrays(info, manifest.params, cid, Path(cache_dir))
        step = int(info["step"])
        n = img.shape[0]
        pool = _Pool()
        hu_err: dict[str, list[float]] = {"model": [], "linear": [], "flow": []}
        n_synth = n_cubic = 0
        offs = range(2 * step) if offsets == "all" else range(1)
        used = 0
        for o in offs:
            inputs = np.arange(o, n, 2 * step)
            if len(inputs) < 2:
                continue
            used += 1
            originals = np.arange(o, int(inputs[-1]) + 1, step)  # acquired slices the output stands for
            thick = np.moveaxis(np.asarray(img[inputs], dtype=np.float32), 0, 2)  # (X, Y, m)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SpacingWarning)  # thinned spacing = 2·gap by construction
                res = predict_volume(thick, (*inplane, dz * 2 * step), model=predictor, factor=2,
                                     slice_axis=2, batch_size=batch_size, device=device, progress=False,
                                     outputs=outputs)
            if res.mask is not None:
                pred = np.moveaxis(res.mask, 2, 0) > 0  # (N, X, Y)
                gt = np.asarray(fg[originals])  # (N, X, Y)
                pool.add_counts("all", pred, gt)
                pool.add_counts("inputs", pred[0::2], gt[0::2])
                pool.add_counts("synth", pred[1::2], gt[1::2])
                spacing = (dz * step, *inplane)
                hd, nsd = surface_metrics(pred, gt, spacing, tolerance_mm)
                pool.surface.append((hd95_or_diagonal(pred, gt, spacing, slice_axis=0, hd95=hd), nsd))
                pool.empty.append(one_empty_kind(pred, gt))
            pred_img = None if res.image is None else np.moveaxis(res.image, 2, 0)  # (N, X, Y)
            if pred_img is not None:
                for j in range(1, len(originals), 2):
                    k = int(originals[j])
                    x1, x2, x3 = (np.asarray(img[i], dtype=np.float32) for i in (k - step, k, k + step))
                    p = norm.fit(x1, x3)
                    gt01 = norm.apply(x2, p)
                    linear = 0.5 * (x1 + x3)
                    pool.add_img("model", _image_scores(norm.apply(pred_img[j], p), gt01))
                    pool.add_img("linear", _image_scores(norm.apply(linear, p), gt01))
                    from tascmt.models.baselines.classical import cubic_middle, has_cubic_support

                    cub = cubic_middle(img, k, step).astype(np.float32)
                    n_cubic += int(has_cubic_support(n, k, step))
                    pool.add_img("cubic", _image_scores(norm.apply(cub, p), gt01))
                    fm = None
                    if flow:
                        from tascmt.data.flow import flow_midpoint, warp_masks_halfway

                        fmid = flow_midpoint(x1, x3)
                        fm = fmid.image
                        pool.add_img("flow", _image_scores(norm.apply(fm, p), gt01))
                        if res.mask is not None:
                            m1, m3 = (np.asarray(fg[i], dtype=np.float32) for i in (k - step, k + step))
                            warped = warp_masks_halfway(m1, m3, fmid.flow) > 0.5
                            pool.add_counts("flow_synth", warped, np.asarray(fg[k]))
                    if window is not None:
                        out = (x2 < window[0]) | (x2 > window[1])
                        if out.any():
                            hu_err["model"].append(float(np.abs(pred_img[j] - x2)[out].mean()))
                            hu_err["linear"].append(float(np.abs(linear - x2)[out].mean()))
                            if fm is not None:
                                hu_err["flow"].append(float(np.abs(fm - x2)[out].mean()))
                    n_synth += 1
            if reformat_case == cid and pred_img is not None:
                if reformat is None:
                    truth = np.asarray(img, dtype=np.float32)  # (n, X, Y)
                    reformat = {"case_id": cid, "step": step, "spacing": (dz, *inplane), "truth": truth,
                                "model": truth.copy(), "linear": truth.copy(), "synthesised": []}
                for j in range(1, len(originals), 2):
                    k = int(originals[j])
                    reformat["model"][k] = pred_img[j]
                    reformat["linear"][k] = 0.5 * (reformat["truth"][k - step] + reformat["truth"][k + step])
                    reformat["synthesised"].append(k)
        if not used:
            skipped[cid] = f"{n} slices: fewer than 2 inputs at stride {2 * step}"
            continue
        entry: dict[str, Any] = {"n_slices": int(n), "step": step, "n_offsets": used, "n_synth": n_synth}
        means = pool.means()
        for method in ("model", "linear", "cubic", "flow"):
            prefix = "" if method == "model" else f"{method}_"
            for m in IMAGE_METRICS:
                if f"{method}.{m}" in means:
                    entry[f"{prefix}{m}_synth"] = means[f"{method}.{m}"]
        if n_synth:
            entry["cubic_support"] = n_cubic
        for k, vals in hu_err.items():
            if vals:
                entry[f"hu_mae_out_{k}"] = float(np.mean(vals))
        if pool.counts:
            entry.update(_overlap(pool.counts["all"]))
            entry["dice_inputs"] = _overlap(pool.counts["inputs"])["dice"]
            entry["dice_synth"] = _overlap(pool.counts["synth"])["dice"]
            if "flow_synth" in pool.counts:
                entry["flow_dice_synth"] = _overlap(pool.counts["flow_synth"])["dice"]
            agg = aggregate_hd95([h for h, _ in pool.surface], pool.empty)
            nsd = [s for _, s in pool.surface]
            entry["hd95_mm"] = math.nan if agg["hd95_mm"] is None else agg["hd95_mm"]
            entry["hd95_missed"], entry["hd95_false"] = agg["n_missed"], agg["n_false"]
            entry["surface_dice"] = float(np.nanmean(nsd)) if any(math.isfinite(s) for s in nsd) else math.nan
        cases[cid] = entry
    keys = sorted({k for e in cases.values() for k in e if k not in ("n_slices", "n_offsets", "step")})
    mean = {}
    for k in keys:
        vals = [float(e[k]) for e in cases.values()
                if isinstance(e.get(k), int | float) and math.isfinite(e[k])]
        mean[k] = float(np.mean(vals)) if vals else None
    totals = {k: int(sum(e.get(k, 0) for e in cases.values())) for k in ("hd95_missed", "hd95_false")}
    totals["hd95_volumes"] = int(sum(e["n_offsets"] for e in cases.values() if "hd95_mm" in e))
    result = {
        "protocol": PROTOCOL, "resolution": "native", "offsets": offsets,
        "surface_tolerance_mm": tolerance_mm, "hd95_convention": HD95_CONVENTION, "cases": cases,
        "mean": mean, "totals": totals, "skipped": skipped,
        "n_synth": int(sum(e.get("n_synth", 0) for e in cases.values())),
        "checkpoint": str(getattr(predictor, "source", checkpoint)),
        "inplane": getattr(predictor.inplane, "kind", None), **labels,
    }
    if reformat is not None:
        result["reformat"] = reformat
    return result
