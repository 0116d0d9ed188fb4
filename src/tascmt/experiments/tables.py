"""Paper-style result tables: mean ± std over seeds, Welch's t-test against the reference configuration.

``results`` everywhere is ``{configuration label: {seed: {metric: value}}}`` (values may be None/NaN when a
metric does not apply, e.g. PSNR of a segmentation-only model; such cells read "n/a").

Every table states, under it, the conventions of the segmentation columns it shows (:data:`CONVENTIONS`):
the frame-averaged Dice/IoU/Precision/Recall count a frame whose prediction and ground truth are both empty
as 1 (so predicting nothing scores well where most slices are empty); the ``*_fg`` columns are the middle
frame's values over the triplets whose ground-truth Y2 has foreground (predicting nothing scores 0 there,
Precision 1 by convention); ``dice_global`` is pooled (TP/FP/FN summed). HD95 counts a volume with exactly
one empty mask (a missed or a false-positive volume) as the in-plane image diagonal in mm
(`tascmt.evaluation.folders.hd95_or_diagonal`), and the table reports how many volumes were missed and
false (``hd95_missed_whole_volume`` / ``hd95_false_whole_volume`` per run, summed over seeds).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tascmt.evaluation.stats import compare_rows, summarize
from tascmt.experiments.presets import ExperimentSpec, RunSpec

Results = Mapping[str, Mapping[int, Mapping[str, Any]]]

HEADERS = {
    "psnr": "PSNR (dB)", "ssim": "SSIM", "lpips": "LPIPS", "edge_ssim": "EdgeSSIM",
    "dice": "Dice (frame avg.)", "iou": "IoU (frame avg.)", "precision": "Precision (frame avg.)",
    "recall": "Recall (frame avg.)", "dice_y2": "Dice Ŷ2 (all)",
    "dice_fg": "Dice (fg Ŷ2)", "iou_fg": "IoU (fg Ŷ2)", "precision_fg": "Precision (fg Ŷ2)",
    "recall_fg": "Recall (fg Ŷ2)", "dice_global": "Dice (pooled)", "tcs": "TCS", "tcs_fg": "TCS_fg",
    "val_loss": "val. loss (unweighted)", "dice_volume": "3-D Dice (triplets)",
    "dice_whole_volume": "3-D Dice (volumes)", "hd95_mm_whole_volume": "HD95 (mm; miss = diagonal)",
    "hd95_missed_whole_volume": "missed volumes", "hd95_false_whole_volume": "false-positive volumes",
    "surface_dice_whole_volume": "surface Dice",
    "psnr_synth": "PSNR (dB, volumes)", "ssim_synth": "SSIM (volumes)",
    "edge_ssim_synth": "EdgeSSIM (volumes)",
    "dice_synth": "Dice (volumes, synth. slices)", "flow_psnr_synth": "flow PSNR (dB, volumes)",
    "flow_ssim_synth": "flow SSIM (volumes)", "flow_edge_ssim_synth": "flow EdgeSSIM (volumes)",
    "flow_dice_synth": "flow Dice (volumes, oracle)",
}
DIGITS = {"psnr": 2, "val_loss": 4, "hd95_mm_whole_volume": 2, "hd95_missed_whole_volume": 1,
          "hd95_false_whole_volume": 1, "psnr_synth": 2, "flow_psnr_synth": 2}
#: Metrics whose differences (``deltas_from`` tables) are in their own unit (dB, mm, a loss, a count), not in
#: points ×100.
UNIT_METRICS = ("psnr", "val_loss", "psnr_synth", "flow_psnr_synth", "hd95_mm_whole_volume",
                "hd95_missed_whole_volume", "hd95_false_whole_volume")
#: The convention stated under a table for each segmentation column it shows.
CONVENTIONS = {
    "dice": "frame avg.: mean over triplets and their three frames; a frame with empty prediction and empty "
            "ground truth scores 1 (so predicting nothing scores high where most slices are empty)",
    "dice_y2": "Ŷ2 (all): the middle frame over every triplet, empty ∧ empty = 1",
    "dice_fg": "fg Ŷ2: the middle frame over the triplets whose ground-truth Y2 has foreground; predicting "
               "nothing scores Dice = IoU = Recall = 0 (Precision = 1: nothing predicted)",
    "dice_global": "pooled: TP/FP/FN summed over every frame of every triplet, then one Dice",
    "hd95_mm_whole_volume": "HD95 per whole volume; a volume with exactly one empty mask (missed or false "
                            "positive) counts as the in-plane image diagonal in mm; both empty: 0",
}
_CONVENTION_OF = {"iou": "dice", "precision": "dice", "recall": "dice", "iou_fg": "dice_fg",
                  "precision_fg": "dice_fg", "recall_fg": "dice_fg", "hd95_missed_whole_volume":
                  "hd95_mm_whole_volume", "hd95_false_whole_volume": "hd95_mm_whole_volume"}
HD95_COUNTS = ("hd95_missed_whole_volume", "hd95_false_whole_volume")
#: Per-triplet metrics where the linear-interpolation baseline has a value (``linear_<metric>``).
LINEAR_METRICS = ("psnr", "ssim", "lpips", "edge_ssim")
#: Parameter-free references shown as extra, seed-independent rows under a table: (row label, the prefix of
#: their values in a run's metrics). A row shows the metrics for which ``<prefix><metric>`` was recorded:
#: linear for the per-triplet and whole-volume image metrics, the flow midpoint (TV-L1) for the whole-volume
#: ones (``*_synth``; its Dice carries the neighbours' true masks halfway, an oracle).
REFERENCE_ROWS = (("linear (X1+X3)/2", "linear_"), ("flow midpoint (TV-L1)", "flow_"))


def _values(results: Results, label: str, metric: str) -> list[float | None]:
    out = []
    for m in results.get(label, {}).values():
        v = m.get(metric)
        out.append(v if isinstance(v, (int, float)) and not isinstance(v, bool) else None)
    return out


def comparison(spec: ExperimentSpec, results: Results) -> dict[str, dict[str, dict[str, Any]]]:
    """``{metric: {label: {"mean", "std", "n", "p", "marker", "cell"}}}`` against ``spec.reference``."""
    labels = [c.label for c in spec.configs]
    return {metric: compare_rows({lab: _values(results, lab, metric) for lab in labels}, spec.reference,
                                 digits=DIGITS.get(metric, 4))
            for metric in spec.metrics}


def reference_row(results: Results, prefix: str, metrics: Sequence[str]) -> dict[str, float | None]:
    """Mean over all runs of a parameter-free reference's value ``<prefix><metric>`` of each metric (the
    same in every run on one split; None where no run recorded it)."""
    out: dict[str, float | None] = {}
    for metric in metrics:
        vals = [m.get(f"{prefix}{metric}") for per_seed in results.values() for m in per_seed.values()]
        s = summarize([v if isinstance(v, (int, float)) and not isinstance(v, bool) else None for v in vals])
        out[metric] = s.mean if s.n else None
    return out


def linear_row(results: Results) -> dict[str, float | None]:
    """Mean over all runs of the linear-interpolation baseline (identical across runs on one split)."""
    return reference_row(results, "linear_", LINEAR_METRICS)


def markdown_table(spec: ExperimentSpec, results: Results, seeds: Sequence[int]) -> str:
    """The experiment's main table as Markdown (with a legend and the linear baseline row)."""
    comp = comparison(spec, results)
    head = "| configuration | model | " + " | ".join(HEADERS[m] for m in spec.metrics) + " |"
    lines = [f"## {spec.name}", ""] + ([spec.description, ""] if spec.description else [])
    lines += [head, "|" + "---|" * (len(spec.metrics) + 2)]
    for c in spec.configs:
        ref = " (reference)" if c.label == spec.reference else ""
        cells = [comp[m][c.label]["cell"] for m in spec.metrics]
        lines.append(f"| {c.label}{ref} | {model_cell(c)} | " + " | ".join(cells) + " |")
    references = reference_rows_markdown(spec, results)
    lines += references
    lines += ["", f"Mean ± sample std over seeds {list(seeds)}; Welch's t-test against **{spec.reference}**: "
              "\\* p < 0.05, \\*\\* p < 0.01, \\*\\*\\* p < 0.001 (no marker: not significant or undefined)."]
    lines += conventions_markdown(spec, results)
    if any(line.startswith(f"| {REFERENCE_ROWS[1][0]} |") for line in references):
        lines += ["", f"*{REFERENCE_ROWS[1][0]}*: each synthesised slice's two inputs warped halfway along "
                  "their TV-L1 optical flow and averaged (no training; docs/design.md §7), on the same "
                  "whole-volume slices; its Dice carries the neighbours' true masks halfway (an oracle, not "
                  "available at prediction time)."]
    kinds = {c.kind for c in spec.configs}
    if "reference" in kinds:
        lines += ["", "Rows marked *(no training)* are parameter-free references: the same numbers for every "
                  "seed (std 0)."]
    if "cascade" in kinds:
        lines += ["", "Segmentation settings: *oracle* = the segmenter is given the real middle slice X2 "
                  "(an upper bound; not available at prediction time); *cascade* = it is given X̂2 from the "
                  "interpolation model named before the arrow, trained separately."]
    if spec.deltas_from:
        lines += ["", delta_markdown(spec, comp)]
    return "\n".join(lines) + "\n"


def reference_rows_markdown(spec: ExperimentSpec, results: Results) -> list[str]:
    """The table rows of the parameter-free references (:data:`REFERENCE_ROWS`) with a value in at least
    one of the table's columns. A configuration row of the linear reference already shows its per-triplet
    metrics, which the linear row then leaves out."""
    has_linear_row = any(c.is_reference and c.model == "linear_interp" for c in spec.configs)
    lines = []
    for label, prefix in REFERENCE_ROWS:
        values = reference_row(results, prefix, spec.metrics)
        if prefix == "linear_" and has_linear_row:
            values = {m: (None if m in LINEAR_METRICS else v) for m, v in values.items()}
        if all(v is None for v in values.values()):
            continue
        cells = ["–" if values[m] is None else f"{values[m]:.{DIGITS.get(m, 4)}f}" for m in spec.metrics]
        lines.append(f"| {label} | – | " + " | ".join(cells) + " |")
    return lines


def conventions_markdown(spec: ExperimentSpec, results: Results) -> list[str]:
    """The conventions of the table's segmentation columns, and missed / false-positive volume counts when
    an HD95 column is shown (``[]`` when the table has no such column)."""
    keys = []
    for m in spec.metrics:
        k = _CONVENTION_OF.get(m, m)
        if k in CONVENTIONS and k not in keys:
            keys.append(k)
    if not keys:
        return []
    lines = ["", "Conventions: empty masks: both empty → Dice = IoU = Precision = Recall = 1; one empty → "
             "Dice = IoU = 0; empty ground truth → Recall = 1; empty prediction → Precision = 1."]
    lines += [f"- {CONVENTIONS[k]}." for k in keys]
    if "hd95_mm_whole_volume" in keys:
        lines.append("- volumes counted at the diagonal (summed over seeds): "
                     + "; ".join(f"{c.label}: {hd95_counts(results, c.label)}" for c in spec.configs) + ".")
    return lines


def hd95_counts(results: Results, label: str) -> str:
    """``"m missed, f false"`` summed over a configuration's seeds, or ``"not reported"`` when its runs
    carry no counts (``hd95_missed_whole_volume`` / ``hd95_false_whole_volume``)."""
    sums: list[str | None] = []
    for key in HD95_COUNTS:
        vals = [v for v in _values(results, label, key) if v is not None and math.isfinite(v)]
        sums.append(str(round(sum(vals))) if vals else None)
    if sums == [None, None]:
        return "not reported"
    missed, false = (x if x is not None else "?" for x in sums)
    return f"{missed} missed, {false} false"


def model_cell(c: RunSpec) -> str:
    """The table's model column: the registered name, ``interp → seg`` for a cascade, and a note for
    references evaluated without training."""
    if c.interp is not None:
        return f"`{c.interp}` → `{c.model}`"
    return f"`{c.model}`" + (" *(no training)*" if c.is_reference else "")


def delta_markdown(spec: ExperimentSpec, comp: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """Differences of means over the ``deltas_from`` row (Tables 11-12): dB for PSNR, else points (×100)."""
    base = spec.deltas_from
    heads = [f"Δ{HEADERS[m]}" if m in UNIT_METRICS else f"Δ{HEADERS[m]} (points ×100)" for m in spec.metrics]
    lines = [f"### Differences over {base}", "", "| configuration | " + " | ".join(heads) + " |",
             "|" + "---|" * (len(spec.metrics) + 1)]
    for c in spec.configs:
        cells = []
        for m in spec.metrics:
            a, b = comp[m][c.label]["mean"], comp[m][base]["mean"]
            if not (isinstance(a, float) and isinstance(b, float) and math.isfinite(a) and math.isfinite(b)):
                cells.append("n/a")
                continue
            d = a - b if m in UNIT_METRICS else 100.0 * (a - b)
            cells.append(f"{d:+.2f}")
        lines.append(f"| {c.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def csv_table(spec: ExperimentSpec, results: Results) -> str:
    """One row per configuration: for each metric its mean, std, n, Welch p and marker."""
    comp = comparison(spec, results)
    buf = io.StringIO()
    writer = csv.writer(buf)
    cols = ["configuration", "model", "interp", "reference"]
    for m in spec.metrics:
        cols += [f"{m}_mean", f"{m}_std", f"{m}_n", f"{m}_p", f"{m}_marker"]
    writer.writerow(cols)
    for c in spec.configs:
        row: list[Any] = [c.label, c.model, c.interp or "", int(c.label == spec.reference)]
        for m in spec.metrics:
            e = comp[m][c.label]
            row += [_num(e["mean"]), _num(e["std"]), e["n"], _num(e["p"]), e["marker"]]
        writer.writerow(row)
    return buf.getvalue()


def per_run_csv(spec: ExperimentSpec, results: Results) -> str:
    """Every run's metrics: one row per (configuration, seed)."""
    keys: list[str] = []
    for per_seed in results.values():
        for m in per_seed.values():
            keys += [k for k in m if k not in keys]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["configuration", "seed", *keys])
    for c in spec.configs:
        for seed, m in sorted(results.get(c.label, {}).items()):
            writer.writerow([c.label, seed, *(_num(m.get(k)) for k in keys)])
    return buf.getvalue()


def _num(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)) and not math.isfinite(v):
        return "nan"
    return v
