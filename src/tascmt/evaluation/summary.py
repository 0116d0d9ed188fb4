"""Aggregating per-triplet metric rows into the evaluation summary (JSON) and its Markdown rendering.

A row is one triplet: identifiers (``case_id``, ``index``, ``gap_mm``, ``resampled``, ``fg_middle``) and
metric columns. Interpolation columns are ``psnr, ssim, edge_ssim, lpips`` for the model and the same names
prefixed ``linear_`` for the linear-interpolation baseline on the same triplet; segmentation columns are
``{dice,iou,precision,recall}_{y1,y2,y3}``, their frame averages ``dice, iou, precision, recall``, the Y2
values repeated on foreground middle slices ``{dice,iou,precision,recall}_fg`` (NaN where the ground-truth
Y2 is empty), ``tcs``, ``tcs_fg`` and confusion counts ``{tp,fp,fn}_{y1,y2,y3}``. ``lpips`` is the string
``"unavailable"`` when no LPIPS weights were given; ``edge_ssim`` is NaN when the target has no edge pixels
(left out of means).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from tascmt.evaluation.metrics import metrics_from_counts

FRAMES = ("y1", "y2", "y3")
SEG_KEYS = ("dice", "iou", "precision", "recall")
INTERP_KEYS = ("psnr", "ssim", "edge_ssim", "lpips")
UNAVAILABLE = "unavailable"
EMPTY_CONVENTION = (
    "masks binarised at 0.5; both empty: Dice=IoU=Precision=Recall=1; one empty: Dice=IoU=0; "
    "empty GT: Recall=1; empty prediction: Precision=1"
)
#: What each segmentation summary averages over (stated under every segmentation table).
SEG_CONVENTIONS = {
    "fg_y2": "the middle frame Ŷ2 only, mean over the triplets whose ground-truth Y2 has foreground; "
             "predicting nothing scores Dice = IoU = Recall = 0 (Precision = 1: nothing predicted)",
    "pooled": "TP/FP/FN summed over every frame of every triplet, then one value (empty frames add "
              "nothing unless something is predicted on them)",
    "frame_avg": "mean over every triplet and its three frames of the per-frame value; a frame whose "
                 "prediction and ground truth are both empty scores 1, so predicting nothing scores high "
                 "where most slices are empty",
    "empty": EMPTY_CONVENTION,
}


def nanmean(values: Iterable[Any]) -> float | str | None:
    """Mean of the finite numbers; ``"unavailable"`` if every value is; None when there are none."""
    vals = list(values)
    if vals and all(v == UNAVAILABLE for v in vals):
        return UNAVAILABLE
    nums = np.array([float(v) for v in vals
                     if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)], dtype=float)
    nums = nums[np.isfinite(nums)]
    return float(nums.mean()) if nums.size else None


def column_means(rows: Sequence[Mapping[str, Any]], keys: Iterable[str]) -> dict[str, Any]:
    """``{key: nanmean over rows}`` for the keys present in the rows."""
    present = [k for k in keys if rows and k in rows[0]]
    return {k: nanmean(r[k] for r in rows) for k in present}


def global_dice(rows: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """Dice from TP/FP/FN summed over all triplets, per frame and over the three frames (``all``)."""
    out: dict[str, float | None] = {}
    tot = np.zeros(3)
    for f in FRAMES:
        if f"tp_{f}" not in rows[0]:
            return {}
        c = np.array([[r[f"tp_{f}"], r[f"fp_{f}"], r[f"fn_{f}"]] for r in rows], dtype=float).sum(axis=0)
        tot += c
        out[f.upper()] = _dice_from_counts(*c)
    out["all"] = _dice_from_counts(*tot)

    return out


def _dice_from_counts(tp: float, fp: float, fn: float) -> float:
    """Dice of pooled counts with the project's empty-mask convention (both empty: 1)."""
    return float(metrics_from_counts({"tp": int(tp), "fp": int(fp), "fn": int(fn), "tn": 0})["dice"])


def _summed_counts(rows: Sequence[Mapping[str, Any]], frames: Sequence[str] = FRAMES) -> dict[str, int]:
    return {k: int(sum(int(r[f"{k}_{f}"]) for r in rows for f in frames)) for k in ("tp", "fp", "fn")}


def pooled_metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Dice, IoU, Precision, Recall of TP/FP/FN summed over all frames of all rows (empty conventions on
    the sums); ``{}`` when the rows carry no counts."""
    if not rows or any(f"tp_{f}" not in rows[0] for f in FRAMES):
        return {}
    return metrics_from_counts({**_summed_counts(rows), "tn": 0})


def gt_y2_has_foreground(row: Mapping[str, Any]) -> bool:
    """Whether the row's ground-truth Y2 has foreground: from its Y2 counts (TP + FN > 0) when present,
    else the dataset's ``fg_middle`` flag."""
    if "tp_y2" in row and "fn_y2" in row:
        return int(row["tp_y2"]) + int(row["fn_y2"]) > 0
    return bool(row["fg_middle"])


def foreground_y2(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Ŷ2 Dice, IoU, Precision, Recall averaged over the rows whose ground-truth Y2 has foreground
    (``n_triplets`` of them; the metrics are None when there is none)."""
    sel = [r for r in rows if gt_y2_has_foreground(r)]
    out: dict[str, Any] = {"n_triplets": len(sel)}
    out.update({k: nanmean(r[f"{k}_y2"] for r in sel) for k in SEG_KEYS})
    return out


def subset_rows(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Split rows by target kind (acquired / resampled) and middle-slice foreground (foreground / empty)."""
    return {
        "acquired": [r for r in rows if not r["resampled"]],
        "resampled": [r for r in rows if r["resampled"]],
        "foreground": [r for r in rows if r["fg_middle"]],
        "empty": [r for r in rows if not r["fg_middle"]],
    }


def summarise(rows: Sequence[Mapping[str, Any]], tasks: Sequence[str]) -> dict[str, Any]:
    """Summary dict for a list of per-triplet rows of a model with ``tasks`` (see the module docstring)."""
    if not rows:
        raise ValueError("summarise needs at least one row")
    out: dict[str, Any] = {"n_triplets": len(rows), "n_cases": len({r["case_id"] for r in rows})}
    out["targets"] = {"acquired": sum(not r["resampled"] for r in rows),
                      "resampled": sum(bool(r["resampled"]) for r in rows)}
    out["slices"] = {"foreground": sum(bool(r["fg_middle"]) for r in rows),
                     "empty": sum(not r["fg_middle"] for r in rows)}
    out["interp"] = {"linear": column_means(rows, [f"linear_{k}" for k in INTERP_KEYS])}
    out["interp"]["linear"] = {k.removeprefix("linear_"): v for k, v in out["interp"]["linear"].items()}
    if "interp" in tasks:
        out["interp"]["model"] = column_means(rows, INTERP_KEYS)
    out["interp"]["edge_ssim_skipped"] = sum(
        1 for r in rows if isinstance(r.get("linear_edge_ssim"), float) and math.isnan(r["linear_edge_ssim"]))
    if "seg" in tasks:
        out["seg"] = {
            "frame_avg": column_means(rows, SEG_KEYS),
            "per_frame": {f.upper(): {k: nanmean(r[f"{k}_{f}"] for r in rows) for k in SEG_KEYS}
                          for f in FRAMES},
            "global_dice": global_dice(rows),
            "pooled": pooled_metrics(rows),
            "fg_y2": foreground_y2(rows),
            "tcs": nanmean(r["tcs"] for r in rows),
            "tcs_fg": nanmean(r["tcs_fg"] for r in rows),
            "empty_convention": EMPTY_CONVENTION,
            "conventions": dict(SEG_CONVENTIONS),
        }
        out["seg"]["y2"] = out["seg"]["per_frame"]["Y2"]
    out["subsets"] = {}
    for name, sub in subset_rows(rows).items():
        entry: dict[str, Any] = {"n_triplets": len(sub)}
        if sub:
            entry["linear"] = {k.removeprefix("linear_"): v
                               for k, v in column_means(sub, [f"linear_{k}" for k in INTERP_KEYS]).items()}
            if "interp" in tasks:
                entry["model"] = column_means(sub, INTERP_KEYS)
            if "seg" in tasks:
                entry["seg"] = {**column_means(sub, SEG_KEYS),
                                "dice_y2": nanmean(r["dice_y2"] for r in sub),
                                "dice_fg": foreground_y2(sub)["dice"],
                                "tcs": nanmean(r["tcs"] for r in sub)}
        out["subsets"][name] = entry
    return out


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return f"{v:.{digits}f}"


#: Whole-volume per-case entries that are counts (shown as integers; totals in the mean row).
_COUNT_KEYS = ("hd95_missed", "hd95_false")


def whole_volume_markdown(wv: Mapping[str, Any] | None) -> list[str]:
    """The headline tables: whole test volumes at native resolution (model vs linear, cubic, flow)."""
    if not wv or not wv.get("cases"):
        return []
    mean = wv["mean"]
    lines = ["## Whole volumes at the scan's own resolution (headline)", "",
             f"Protocol: {wv['protocol']}. {wv.get('n_synth', '?')} synthesised slices in "
             f"{len(wv['cases'])} volume(s); images scored on the normaliser's clipped [0, 1] scale.", ""]
    if "psnr_synth" in mean or "linear_psnr_synth" in mean:
        lines += ["| method | PSNR (dB) | SSIM | EdgeSSIM |", "|---|---|---|---|"]
        methods = (("model", ""), ("linear (X1+X3)/2", "linear_"), ("cubic (Catmull-Rom)", "cubic_"),
                   ("flow midpoint (TV-L1)", "flow_"))
        for label, prefix in methods:
            if mean.get(f"{prefix}psnr_synth") is None:
                continue
            cells = [_fmt(mean.get(f"{prefix}psnr_synth"), 2), _fmt(mean.get(f"{prefix}ssim_synth")),
                     _fmt(mean.get(f"{prefix}edge_ssim_synth"))]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        if mean.get("hu_mae_out_model") is not None:
            lines.append("")
            lines.append(f"CT values outside the normalisation window: mean absolute error "
                         f"{_fmt(mean['hu_mae_out_model'], 1)} HU (model) vs "
                         f"{_fmt(mean.get('hu_mae_out_linear'), 1)} HU (linear), "
                         f"{_fmt(mean.get('hu_mae_out_flow'), 1)} HU (flow).")
        lines.append("")
    seg_keys = [k for k in ("dice", "iou", "precision", "recall", "dice_inputs", "dice_synth",
                            "flow_dice_synth", "hd95_mm", "hd95_missed", "hd95_false", "surface_dice")
                if k in mean]
    if seg_keys:
        totals = wv.get("totals") or {}
        lines += ["| case | slices | " + " | ".join(seg_keys) + " |", "|---|---|" + "---|" * len(seg_keys)]
        for case, m in wv["cases"].items():
            cells = " | ".join(str(m[k]) if k in _COUNT_KEYS and k in m else _fmt(m.get(k)) for k in seg_keys)
            lines.append(f"| {case} | {m['n_slices']} | {cells} |")
        lines.append("| **mean** (counts: total) | | "
                     + " | ".join(str(totals[k]) if k in _COUNT_KEYS and k in totals else _fmt(mean[k])
                                  for k in seg_keys) + " |")
        lines.append("")
        lines.append("Masks: TP/FP/FN pooled over all output slices; dice_inputs on the acquired input "
                     "slices (Ŷ1/Ŷ3 of the two neighbouring pairs averaged), dice_synth on the synthesised "
                     "slices (Ŷ2); flow_dice_synth: the neighbours' TRUE masks carried halfway by the flow "
                     "(an oracle reference, not available at prediction time).")
        if "hd95_mm" in seg_keys:
            lines.append(f"HD95 per (case, offset) volume, mean over offsets: "
                         f"{wv.get('hd95_convention') or 'exactly one empty mask counts as the diagonal'}; "
                         "hd95_missed / hd95_false: volumes with an empty prediction / an empty ground "
                         "truth.")
    if wv.get("skipped"):
        lines.append("")
        lines.append("Skipped: " + "; ".join(f"{c}: {r}" for c, r in wv["skipped"].items()))
    lines.append("")
    return lines


def _seg_markdown(seg: Mapping[str, Any]) -> list[str]:
    """The segmentation table: foreground middle slices and pooled counts first (they cannot be gamed by
    predicting nothing), then the frame average and the frames; the conventions stated under it."""
    lines = ["## Segmentation", "", "| summary | Dice | IoU | Precision | Recall |", "|---|---|---|---|---|"]
    fg = seg.get("fg_y2")
    if fg is not None:
        lines.append(f"| Ŷ2 on foreground middle slices (n = {fg['n_triplets']}) | "
                     + " | ".join(_fmt(fg.get(k)) for k in SEG_KEYS) + " |")
    pooled = seg.get("pooled")
    if pooled:
        lines.append("| pooled over all frames (TP/FP/FN summed) | "
                     + " | ".join(_fmt(pooled.get(k)) for k in SEG_KEYS) + " |")
    avg = seg["frame_avg"]
    lines.append("| frame average (empty ∧ empty = 1) | " + " | ".join(_fmt(avg.get(k)) for k in SEG_KEYS)
                 + " |")
    for f, m in seg["per_frame"].items():
        lines.append(f"| frame {f} (all triplets) | " + " | ".join(_fmt(m[k]) for k in SEG_KEYS) + " |")
    lines.append("")
    gd = seg["global_dice"]
    if gd:
        lines.append("Pooled Dice per frame: " + ", ".join(f"{k} {_fmt(v)}" for k, v in gd.items()) + ".")
    lines.append(f"TCS {_fmt(seg['tcs'])}, TCS_fg {_fmt(seg['tcs_fg'])}.")
    lines.append("")
    conv = seg.get("conventions") or {"empty": seg["empty_convention"]}
    names = {"fg_y2": "Foreground middle slices", "pooled": "Pooled", "frame_avg": "Frame average",
             "empty": "Empty masks"}
    lines += [f"- {names.get(k, k)}: {v}." for k, v in conv.items()]
    lines.append("")
    return lines


def to_markdown(summary: Mapping[str, Any]) -> str:
    """A human-readable Markdown report of an evaluation summary produced by `evaluate_checkpoint`."""
    lines = [f"# Evaluation: {summary.get('model', '?')} on split '{summary.get('split', '?')}'", ""]
    lines.append(f"- checkpoint: `{summary.get('checkpoint', '?')}`")
    lines.append(f"- tasks: {', '.join(summary.get('tasks', []))}")
    if summary.get("setting"):
        lines.append(f"- setting: **{summary['setting']}** ({summary.get('setting_note', '')})")
    if summary.get("cubic_note"):
        sup = summary.get("cubic_support") or {}
        lines.append(f"- {summary['cubic_note']}; here: {sup.get('cubic', '?')} cubic, "
                     f"{sup.get('linear_fallback', '?')} linear fallback")
    lines.append(f"- triplets: {summary['n_triplets']} from {summary['n_cases']} case(s); targets: "
                 f"{summary['targets']['acquired']} acquired, {summary['targets']['resampled']} resampled "
                 "(a resampled target is z-interpolated and favours linear interpolation)")
    lines.append(f"- middle slice: {summary['slices']['foreground']} with foreground, "
                 f"{summary['slices']['empty']} empty")
    if summary.get("normalization"):
        lines.append(f"- normalisation: {summary['normalization']}")
    if summary.get("normalization_warning"):
        lines.append(f"- **warning: {summary['normalization_warning']}**")
    if summary.get("data_mismatch"):
        lines.append("- **data mismatch: the checkpoint was trained on data prepared differently from this "
                     f"cache: {'; '.join(summary['data_mismatch'])}**")
    if summary.get("data_unrecorded"):
        lines.append(f"- **unchecked: {summary['data_unrecorded']}**")
    if summary.get("data_fingerprint"):
        trained = summary.get("checkpoint_data_fingerprint")
        same = "" if not trained else (" (the checkpoint's training data)" if trained == summary[
            "data_fingerprint"] else f" (the checkpoint was trained on data {trained})")
        lines.append(f"- cache data fingerprint: `{summary['data_fingerprint']}`{same}")
    if summary.get("resolution"):
        lines.append(f"- per-triplet figures below: {summary['resolution']}")
    lines.append("")
    lines += whole_volume_markdown(summary.get("whole_volumes"))
    interp = summary["interp"]
    lines += ["## Interpolation (X̂2 vs X2)", "", "| method | PSNR (dB) | SSIM | EdgeSSIM | LPIPS |",
              "|---|---|---|---|---|"]
    rows = [("model", interp["model"])] if "model" in interp else []
    rows.append(("linear (X1+X3)/2", interp["linear"]))
    for name, m in rows:
        lines.append(f"| {name} | {_fmt(m.get('psnr'), 2)} | {_fmt(m.get('ssim'))} | "
                     f"{_fmt(m.get('edge_ssim'))} | {_fmt(m.get('lpips'))} |")
    if interp.get("edge_ssim_skipped"):
        lines.append(f"EdgeSSIM skipped on {interp['edge_ssim_skipped']} triplet(s) whose target has no "
                     "edges.")
    lines.append("")
    if "seg" in summary:
        lines += _seg_markdown(summary["seg"])
    pv = summary.get("per_volume")
    if pv and pv.get("cases"):
        lines += [f"## Per-volume (3-D) Dice ({pv['source']})", "", "| case | slices | Dice | IoU |",
                  "|---|---|---|---|"]
        for case, m in pv["cases"].items():
            lines.append(f"| {case} | {m['n_slices']} | {_fmt(m['dice'])} | {_fmt(m['iou'])} |")
        lines.append(f"| **mean** | | {_fmt(pv['mean_dice'])} | {_fmt(pv['mean_iou'])} |")
        lines.append("")
    lines += ["## Subsets", "", "| subset | triplets | PSNR model | PSNR linear | SSIM model | SSIM linear "
              "| Dice (frame avg.) | Dice Ŷ2 |", "|---|---|---|---|---|---|---|---|"]
    for name, e in summary["subsets"].items():
        model, lin, seg = e.get("model", {}), e.get("linear", {}), e.get("seg", {})
        lines.append(f"| {name} | {e['n_triplets']} | {_fmt(model.get('psnr'), 2)} | "
                     f"{_fmt(lin.get('psnr'), 2)} | {_fmt(model.get('ssim'))} | {_fmt(lin.get('ssim'))} | "
                     f"{_fmt(seg.get('dice'))} | {_fmt(seg.get('dice_y2'))} |")
    lines.append("")
    return "\n".join(lines)
