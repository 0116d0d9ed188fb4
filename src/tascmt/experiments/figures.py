"""Experiment-level figures from the runs' training logs (``train/epochs.csv``, else ``train/steps.csv``).

- ``loss_<config>.png``: training/validation loss curves of every seed of a configuration;
- ``convergence_val_psnr.png`` / ``convergence_val_dice.png``: a validation metric per configuration
  (first seed), written when the logs have validation values;
- ``weights.png``: per-task loss weights per configuration (first seed), e.g. the balancing strategies.

Per-run qualitative figures (interpolation rows, segmentation overlays, interpretability maps) are written
by the evaluation into ``runs/<config>/seed<first>/eval/figures``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tascmt.evaluation import figures as F
from tascmt.experiments.presets import ExperimentSpec

LOG_NAMES = ("epochs.csv", "steps.csv")  # per-epoch log; per-step log when no epoch finished


def _run_log(train_dir: Path) -> Path | None:
    for name in LOG_NAMES:
        p = train_dir / name
        if p.is_file() and p.stat().st_size > 0 and len(p.read_text(encoding="utf-8").splitlines()) > 1:
            return p
    return None


def _has_values(log_path: Path, column: str) -> bool:
    log = F.read_log(log_path)
    return column in log and bool(np.isfinite(log[column]).any())


def experiment_figures(spec: ExperimentSpec, out_dir: Path, seeds: Sequence[int],
                       log: Callable[[str], None] = print,
                       run_dirs: dict[str, dict[int, Path]] | None = None) -> list[Path]:
    """Write the experiment figures into ``out_dir/figures``; returns their paths. ``run_dirs``: the run
    folder of each configuration label and seed (default ``out_dir/runs/<config>/seed<k>``)."""
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    first: dict[str, Path] = {}
    for c in spec.configs:
        where = (run_dirs or {}).get(c.label, {})
        logs = {f"seed {s}": _run_log(where.get(s, out_dir / "runs" / c.slug / f"seed{s}") / "train")
                for s in seeds}
        logs = {k: p for k, p in logs.items() if p is not None}
        if not logs:
            log(f"  figures: no training log for {c.label!r}, skipped")
            continue
        first[c.label] = next(iter(logs.values()))
        written.append(F.plot_loss_curves(logs, fig_dir / f"loss_{c.slug}.png", title=f"Loss: {c.label}"))
    for metric in ("val_psnr", "val_dice"):
        usable = {lab: p for lab, p in first.items() if _has_values(p, metric)}
        if usable:
            written.append(F.plot_metric_convergence(usable, fig_dir / f"convergence_{metric}.png",
                                                     metric=metric))
    weighted = {lab: p for lab, p in first.items() if any(k.startswith("w_") for k in F.read_log(p))}
    if weighted:
        written.append(F.plot_weight_trajectories(weighted, fig_dir / "weights.png"))
    return written
