"""Paper-style result tables: mean ± std over seeds, Welch's t-test against the reference configuration.

``results`` everywhere is ``{configuration label: {seed: {metric: value}}}`` (values may be None/NaN when a
metric does not apply, e.g. PSNR of a segmentation-only model; such cells read "n/a").
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
    "psnr": "PSNR (dB)", "ssim": "SSIM", "lpips": "LPIPS", "edge_ssim": "EdgeSSIM", "dice": "Dice",
    "iou": "IoU", "precision": "Precision", "recall": "Recall", "dice_y2": "Dice Ŷ2",
    "dice_global": "global Dice", "tcs": "TCS", "tcs_fg": "TCS_fg", "val_loss": "val. loss (unweighted)",
    "dice_volume": "3-D Dice (triplets)", "dice_whole_volume": "3-D Dice (volumes)",
    "hd95_mm_whole_volume": "HD95 (mm)", "surface_dice_whole_volume": "surface Dice",
}
DIGITS = {"psnr": 2, "val_loss": 4, "hd95_mm_whole_volume": 2}
#: Metrics where the linear-interpolation baseline has a value (shown as an extra, seed-independent row).
LINEAR_METRICS = ("psnr", "ssim", "lpips", "edge_ssim")


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


def linear_row(results: Results) -> dict[str, float | None]:
    """Mean over all runs of the linear-interpolation baseline (identical across runs on one split)."""
    out: dict[str, float | None] = {}
    for metric in LINEAR_METRICS:
        vals = [m.get(f"linear_{metric}") for per_seed in results.values() for m in per_seed.values()]
        s = summarize([v if isinstance(v, (int, float)) else None for v in vals])
        out[metric] = s.mean if s.n else None
    return out


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
    lin = linear_row(results)
    has_linear_row = any(c.is_reference and c.model == "linear_interp" for c in spec.configs)
    if not has_linear_row and any(m in LINEAR_METRICS and lin.get(m) is not None for m in spec.metrics):
        cells = ["–" if m not in LINEAR_METRICS or lin.get(m) is None else f"{lin[m]:.{DIGITS.get(m, 4)}f}"
                 for m in spec.metrics]
        lines.append("| linear (X1+X3)/2 | – | " + " | ".join(cells) + " |")
    lines += ["", f"Mean ± sample std over seeds {list(seeds)}; Welch's t-test against **{spec.reference}**: "
              "\\* p < 0.05, \\*\\* p < 0.01, \\*\\*\\* p < 0.001 (no marker: not significant or undefined)."]
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


def model_cell(c: RunSpec) -> str:
    """The table's model column: the registered name, ``interp → seg`` for a cascade, and a note for
    references evaluated without training."""
    if c.interp is not None:
        return f"`{c.interp}` → `{c.model}`"
    return f"`{c.model}`" + (" *(no training)*" if c.is_reference else "")


def delta_markdown(spec: ExperimentSpec, comp: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """Differences of means over the ``deltas_from`` row (Tables 11-12): dB for PSNR, else points (×100)."""
    base = spec.deltas_from
    heads = [f"Δ{HEADERS[m]}" if m == "psnr" else f"Δ{HEADERS[m]} (points ×100)" for m in spec.metrics]
    lines = [f"### Differences over {base}", "", "| configuration | " + " | ".join(heads) + " |",
             "|" + "---|" * (len(spec.metrics) + 1)]
    for c in spec.configs:
        cells = []
        for m in spec.metrics:
            a, b = comp[m][c.label]["mean"], comp[m][base]["mean"]
            if not (isinstance(a, float) and isinstance(b, float) and math.isfinite(a) and math.isfinite(b)):
                cells.append("n/a")
                continue
            d = a - b if m in ("psnr", "val_loss") else 100.0 * (a - b)
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
