"""Folder evaluation (nnU-Net style): predicted NIfTI label maps against ground-truth ones, matched by name.

For every case and every label: Dice, IoU, HD95 (mm) and surface Dice at a tolerance (mm), with voxel
spacing read from the ground-truth header. Distances come from MONAI (`compute_hausdorff_distance` with
``percentile=95`` and `compute_surface_dice`).

Empty-mask conventions (those of the overlap metrics, extended to distances): both masks empty → Dice =
IoU = surface Dice = 1 and HD95 = 0; exactly one empty → Dice = IoU = surface Dice = 0 and HD95 has no
value (``hd95_mm`` NaN, counted in the summary as ``hd95_undefined``).

Leaving those volumes out of a mean HD95 would reward missing a tumour outright, so the summaries also give
``hd95_diag_mm``: HD95 where exactly one mask is empty counts as the in-plane image diagonal in mm (the
largest distance an in-plane error can have; :func:`hd95_or_diagonal`), and the numbers of such volumes:
``n_missed`` (ground truth has foreground, prediction empty) and ``n_false`` (prediction has foreground,
ground truth empty).
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from tascmt.errors import InputError
from tascmt.utils.atomic import atomic_path, write_json_atomic

_NIFTI_SUFFIXES = (".nii.gz", ".nii")
HD95_CONVENTION = ("HD95 with exactly one empty mask (a missed or a false-positive volume) counts as the "
                   "in-plane image diagonal in mm; both empty: 0")


def _case_name(path: Path) -> str | None:
    for suffix in _NIFTI_SUFFIXES:
        if path.name.endswith(suffix) and not path.name.startswith("._"):
            return path.name[: -len(suffix)]
    return None


def list_nifti(folder: str | os.PathLike) -> dict[str, Path]:
    """``{case name: path}`` of every ``.nii``/``.nii.gz`` in ``folder`` (AppleDouble ``._*`` skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("is not a folder", path=folder)
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        name = _case_name(p)
        if name is None or not p.is_file():
            continue
        if name in out:
            raise InputError(f"two files for case {name!r}: {out[name].name} and {p.name}", path=folder)
        out[name] = p
    if not out:
        raise InputError("contains no .nii/.nii.gz files", path=folder)
    return out


def match_cases(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike) -> list[tuple[str, Path, Path]]:
    """Pair predictions with ground truths by case name; any name in one folder only is an InputError."""
    preds, gts = list_nifti(pred_dir), list_nifti(gt_dir)
    missing = sorted(set(gts) - set(preds))
    extra = sorted(set(preds) - set(gts))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"no prediction for {len(missing)} ground-truth case(s): {', '.join(missing[:10])}")
        if extra:
            parts.append(f"no ground truth for {len(extra)} prediction(s): {', '.join(extra[:10])}")
        raise InputError("; ".join(parts) + " (files are matched by name)", path=pred_dir)
    return [(name, preds[name], gts[name]) for name in sorted(gts)]


def _load_labels(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as err:  # nibabel raises many types for unreadable files
        raise InputError(f"cannot read as NIfTI ({err})", path=path) from err
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim not in (2, 3):
        raise InputError(f"label map must be 2D or 3D, but it is {data.ndim}D {data.shape}", path=path)
    if not np.all(np.isfinite(data)):
        raise InputError("label map contains non-finite values", path=path)
    if np.any(data != np.round(data)):
        raise InputError("label map has non-integer values (expected labels, not probabilities)", path=path)
    zooms = tuple(float(z) for z in img.header.get_zooms()[: data.ndim])
    return data.astype(np.int32), img.affine, zooms


def _check_geometry(name: str, pred: tuple, gt: tuple, pred_path: Path, atol: float = 1e-3) -> None:
    (p_arr, p_aff, _), (g_arr, g_aff, _) = pred, gt
    if p_arr.shape != g_arr.shape:
        raise InputError(
            f"case {name!r}: prediction shape {p_arr.shape} differs from ground truth {g_arr.shape}",
            path=pred_path,
        )
    if not np.allclose(p_aff, g_aff, atol=atol):
        diff = float(np.abs(p_aff - g_aff).max())
        raise InputError(
            f"case {name!r}: prediction affine differs from ground truth (max abs difference {diff:.4g})",
            path=pred_path,
        )


def surface_metrics(
    pred: np.ndarray, gt: np.ndarray, spacing: tuple[float, ...], tolerance_mm: float = 1.0
) -> tuple[float, float]:
    """HD95 (mm) and surface Dice at ``tolerance_mm`` for two boolean masks of shape (X, Y[, Z]).

    Returns ``(hd95, surface_dice)``; see the module docstring for empty masks.
    """
    import warnings

    import torch
    from monai.metrics import compute_hausdorff_distance, compute_surface_dice

    p_any, g_any = bool(pred.any()), bool(gt.any())
    if not p_any and not g_any:
        return 0.0, 1.0
    if p_any != g_any:
        return math.nan, 0.0
    yp = torch.from_numpy(pred.astype(np.float32))[None, None]  # (1, 1, X, Y[, Z])
    yg = torch.from_numpy(gt.astype(np.float32))[None, None]
    sp = list(spacing)
    with warnings.catch_warnings():  # MONAI 1.5+ warns about its own internal deprecated argument
        warnings.simplefilter("ignore", FutureWarning)
        hd = compute_hausdorff_distance(yp, yg, include_background=True, percentile=95, spacing=sp)
        nsd = compute_surface_dice(yp, yg, [float(tolerance_mm)], include_background=True, spacing=sp)
    return float(hd.reshape(-1)[0]), float(nsd.reshape(-1)[0])


def one_empty_kind(pred: np.ndarray, gt: np.ndarray) -> str | None:
    """``"missed"`` (GT has foreground, prediction empty), ``"false"`` (prediction has foreground, GT
    empty), or None (both empty or both non-empty)."""
    p_any, g_any = bool(np.any(pred)), bool(np.any(gt))
    if g_any and not p_any:
        return "missed"
    if p_any and not g_any:
        return "false"
    return None


def _slice_axis(spacing: tuple[float, ...]) -> int:
    """The through-plane axis of a 3-D mask: the coarsest spacing (the last such axis on ties)."""
    coarsest = max(spacing)
    return max(i for i, s in enumerate(spacing) if s == coarsest)


def inplane_diagonal_mm(shape: tuple[int, ...], spacing: tuple[float, ...],
                        slice_axis: int | None = None) -> float:
    """Diagonal in mm of the in-plane extent: sqrt(sum over in-plane axes (n_i · s_i)²).

    2-D masks use both axes; 3-D masks leave out ``slice_axis`` (default: the coarsest-spaced axis).
    """
    if len(shape) != len(spacing) or len(shape) not in (2, 3):
        raise ValueError(f"inplane_diagonal_mm: shape {shape} and spacing {spacing} must be 2-D or 3-D alike")
    axes = range(len(shape))
    if len(shape) == 3:
        skip = _slice_axis(tuple(spacing)) if slice_axis is None else slice_axis % 3
        axes = [i for i in axes if i != skip]
    return float(math.sqrt(sum((shape[i] * float(spacing[i])) ** 2 for i in axes)))


def hd95_or_diagonal(pred: np.ndarray, gt: np.ndarray, spacing: tuple[float, ...], *,
                     slice_axis: int | None = None, hd95: float | None = None) -> float:
    """HD95 (mm) of two boolean masks with every volume counted: exactly one empty mask (a missed or a
    false-positive volume) gives the in-plane image diagonal (:func:`inplane_diagonal_mm`), both empty 0.

    ``hd95``: the value from :func:`surface_metrics` when already computed (avoids a second computation).
    """
    if one_empty_kind(pred, gt) is not None:
        return inplane_diagonal_mm(tuple(gt.shape), tuple(spacing), slice_axis)
    if hd95 is None:
        hd95 = surface_metrics(pred, gt, tuple(spacing))[0]
    return float(hd95)


def aggregate_hd95(values: list[float], kinds: list[str | None]) -> dict[str, Any]:
    """Mean of per-volume :func:`hd95_or_diagonal` values with the numbers of missed and false-positive
    volumes (``kinds``: :func:`one_empty_kind` of each volume): ``{"hd95_mm", "n_volumes", "n_missed",
    "n_false", "n_nonfinite"}``. Those values are finite by construction; a non-finite one (not expected)
    is left out of the mean and counted in ``n_nonfinite`` rather than hidden."""
    if len(values) != len(kinds):
        raise ValueError(f"aggregate_hd95: {len(values)} values but {len(kinds)} kinds")
    vals = np.asarray(values, dtype=float)
    finite = vals[np.isfinite(vals)]
    return {"hd95_mm": float(finite.mean()) if finite.size else None, "n_volumes": int(vals.size),
            "n_missed": kinds.count("missed"), "n_false": kinds.count("false"),
            "n_nonfinite": int(vals.size - finite.size)}


def overlap_metrics(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """(Dice, IoU) of two boolean masks; both empty → (1, 1)."""
    tp = int(np.logical_and(pred, gt).sum())
    fp = int(np.logical_and(pred, ~gt).sum())
    fn = int(np.logical_and(~pred, gt).sum())
    if tp + fp + fn == 0:
        return 1.0, 1.0
    return 2 * tp / (2 * tp + fp + fn), tp / (tp + fp + fn)


def evaluate_folders(
    pred_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    labels: list[int] | None = None,
    tolerance_mm: float = 1.0,
) -> dict[str, Any]:
    """Per-volume Dice, IoU, HD95 and surface Dice for NIfTI label maps matched by file name.

    Args:
        pred_dir: folder of predicted label maps (``<case>.nii.gz``).
        gt_dir: folder of ground-truth label maps with the same names and geometry.
        out_dir: receives ``per_case.csv`` and ``summary.json``.
        labels: label values to evaluate; default every non-zero value found in any ground truth.
        tolerance_mm: surface-Dice tolerance in mm.

    Returns:
        The summary dict (also written as ``summary.json``): per-label means over cases and the mean over
        labels (``mean``).
    """
    if tolerance_mm < 0:
        raise InputError(f"tolerance_mm must be >= 0, got {tolerance_mm}")
    cases = match_cases(pred_dir, gt_dir)
    loaded = []
    for name, p_path, g_path in cases:
        pred, gt = _load_labels(p_path), _load_labels(g_path)
        _check_geometry(name, pred, gt, p_path)
        loaded.append((name, pred[0], gt[0], gt[2]))
    if labels is None:
        found = set()
        for _, _, g, _ in loaded:
            found.update(int(v) for v in np.unique(g) if v != 0)
        labels = sorted(found)
        if not labels:
            raise InputError("no foreground label in any ground truth; pass labels explicitly", path=gt_dir)
    rows: list[dict[str, Any]] = []
    for name, p, g, spacing in loaded:
        for lab in labels:
            pm, gm = p == lab, g == lab
            dice, iou = overlap_metrics(pm, gm)
            hd95, nsd = surface_metrics(pm, gm, spacing, tolerance_mm)
            rows.append({
                "case_id": name, "label": int(lab), "dice": dice, "iou": iou, "hd95_mm": hd95,
                "hd95_diag_mm": hd95_or_diagonal(pm, gm, spacing, hd95=hd95),
                "empty": one_empty_kind(pm, gm) or "",
                "surface_dice": nsd, "gt_voxels": int(gm.sum()), "pred_voxels": int(pm.sum()),
            })
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_rows(out_dir / "per_case.csv", rows)
    summary = _summarise(rows, labels, tolerance_mm, pred_dir, gt_dir)
    write_json_atomic(out_dir / "summary.json", summary)
    return summary


def _summarise(rows, labels, tolerance_mm, pred_dir, gt_dir) -> dict[str, Any]:
    keys = ("dice", "iou", "hd95_mm", "surface_dice")
    per_label: dict[str, dict[str, Any]] = {}
    for lab in labels:
        sel = [r for r in rows if r["label"] == lab]
        entry: dict[str, Any] = {}
        for k in keys:
            vals = np.array([r[k] for r in sel], dtype=float)
            finite = vals[np.isfinite(vals)]
            entry[k] = float(finite.mean()) if finite.size else None
        entry["hd95_undefined"] = int(sum(not math.isfinite(r["hd95_mm"]) for r in sel))
        agg = aggregate_hd95([r["hd95_diag_mm"] for r in sel], [r["empty"] or None for r in sel])
        entry["hd95_diag_mm"] = agg["hd95_mm"]
        entry["n_missed"], entry["n_false"] = agg["n_missed"], agg["n_false"]
        entry["n_cases"] = len(sel)
        per_label[str(lab)] = entry
    mean = {}
    for k in (*keys, "hd95_diag_mm"):
        vals = [e[k] for e in per_label.values() if e[k] is not None]
        mean[k] = float(np.mean(vals)) if vals else None
    return {
        "pred_dir": str(pred_dir), "gt_dir": str(gt_dir), "labels": [int(x) for x in labels],
        "surface_tolerance_mm": float(tolerance_mm), "n_cases": len({r["case_id"] for r in rows}),
        "empty_convention": "both empty: Dice=IoU=surface Dice=1, HD95=0; one empty: 0 and HD95 undefined "
                            f"(hd95_mm, left out of its mean); hd95_diag_mm: {HD95_CONVENTION}",
        "per_label": per_label, "mean": mean,
    }


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        for r in rows:
            writer.writerow({k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()})
