"""Curves from a run's training logs (``epochs.csv`` / ``steps.csv``): loss, validation metric, weights."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from tascmt.errors import InputError
from tascmt.evaluation.figures._common import _plt, _save


def read_log(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Numeric columns of a CSV log as ``{column: (rows,) float array}``; non-numeric cells become NaN."""
    path = Path(path)
    if not path.is_file():
        raise InputError("log file not found", path=path)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise InputError("log file has no rows", path=path)
    out: dict[str, np.ndarray] = {}
    for col in rows[0]:
        vals = []
        for r in rows:
            try:
                vals.append(float(r[col]))
            except (TypeError, ValueError):
                vals.append(math.nan)
        arr = np.asarray(vals, dtype=float)
        if np.isfinite(arr).any():
            out[col] = arr
    return out


METRIC_LABELS = {"val_psnr": "validation PSNR (dB)", "val_dice": "validation Dice",
                 "val_loss": "validation loss (unweighted)"}


def _integer_x(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _x_axis(log: Mapping[str, np.ndarray]) -> tuple[np.ndarray, str]:
    """The x values of a log: ``epoch`` when it increases strictly (an epochs log), else ``step``."""
    for key in ("epoch", "step", "iteration"):
        if key in log and (len(log[key]) < 2 or bool(np.all(np.diff(log[key]) > 0))):
            return log[key], key
    n = len(next(iter(log.values())))
    return np.arange(1, n + 1, dtype=float), "row"


def _find_column(log: Mapping[str, np.ndarray], candidates: Sequence[str], path) -> str:
    for c in candidates:
        if c in log:
            return c
    raise InputError(f"none of the columns {list(candidates)} found (has {sorted(log)})", path=path)


def _as_logs(logs) -> dict[str, Path]:
    if isinstance(logs, Mapping):
        return {str(k): Path(v) for k, v in logs.items()}
    return {Path(p).parent.name or Path(p).stem: Path(p) for p in logs}


TRAIN_LOSS_COLUMNS = ("train_loss", "loss")
VAL_LOSS_COLUMNS = ("val_loss", "valid_loss")
#: Raw task losses whose sum is the unweighted training loss (comparable with the unweighted ``val_loss``):
#: ``epochs.csv`` names, then ``steps.csv`` names.
TRAIN_TASK_LOSSES = (("train_L_interp", "train_L_seg"), ("L_interp", "L_seg"))


def unweighted_train_loss(log: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """Sum of the raw per-task training losses in an ``epochs.csv``/``steps.csv`` log (None if absent)."""
    for names in TRAIN_TASK_LOSSES:
        parts = [np.nan_to_num(log[c]) for c in names if c in log]
        if parts:
            return np.sum(parts, axis=0)
    return None


def plot_loss_curves(
    logs: Mapping[str, str | os.PathLike] | Sequence[str | os.PathLike],
    out_png: str | os.PathLike,
    train_columns: Sequence[str] = TRAIN_LOSS_COLUMNS,
    val_columns: Sequence[str] = VAL_LOSS_COLUMNS,
    title: str = "Training and validation loss",
) -> Path:
    """Training (solid) and validation (dashed) loss against epoch, one colour per fold/run.

    The training curve is the unweighted sum of the raw task losses (``train_L_interp + train_L_seg``, or
    ``L_interp + L_seg`` in a ``steps.csv``) when the log has them, so that it is comparable with the
    unweighted validation loss; otherwise the first of ``train_columns`` found.

    Args:
        logs: ``{fold label: CSV path}`` or a list of CSV paths (labelled by their folder name);
            the training run's ``epochs.csv`` (columns ``epoch``, ``train_L_*``, ``val_loss``, ...).
        out_png: destination PNG.
        train_columns / val_columns: column names tried in order in each log.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (label, path) in enumerate(_as_logs(logs).items()):
        log = read_log(path)
        x, xname = _x_axis(log)
        colour = f"C{i % 10}"
        train = unweighted_train_loss(log)
        if train is None:
            train = log[_find_column(log, train_columns, path)]
        ax.plot(x, train, "-", color=colour, label=f"{label} train")
        va = next((c for c in val_columns if c in log), None)
        if va is not None:
            ok = np.isfinite(log[va])
            ax.plot(x[ok], log[va][ok], "--o", color=colour, ms=3, label=f"{label} val")
    ax.set_xlabel(xname)
    _integer_x(ax)
    ax.set_ylabel("loss (unweighted)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out_png)


def plot_metric_convergence(
    logs: Mapping[str, str | os.PathLike],
    out_png: str | os.PathLike,
    metric: str = "val_psnr",
    title: str | None = None,
) -> Path:
    """A validation metric against epoch, one line per strategy/run (``{label: CSV path}``)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (label, path) in enumerate(_as_logs(logs).items()):
        log = read_log(path)
        x, xname = _x_axis(log)
        col = _find_column(log, (metric,), path)
        ok = np.isfinite(log[col])
        ax.plot(x[ok], log[col][ok], "-o", ms=3, color=f"C{i % 10}", label=label)
    ax.set_xlabel(xname)
    _integer_x(ax)
    label = METRIC_LABELS.get(metric, metric)
    ax.set_ylabel(label)
    ax.set_title(title or f"{label[0].upper()}{label[1:]} by configuration")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out_png)


def plot_weight_trajectories(
    logs: Mapping[str, str | os.PathLike],
    out_png: str | os.PathLike,
    weight_prefix: str = "w_",
) -> Path:
    """Per-task loss weights against epoch: one panel per strategy, one line per ``w_*`` column
    (``w_interp``, ``w_seg`` in the training run's ``epochs.csv``)."""
    plt = _plt()
    items = list(_as_logs(logs).items())
    fig, axes = plt.subplots(1, len(items), figsize=(4.4 * len(items), 3.6), squeeze=False,
                             layout="constrained")
    for ax, (label, path) in zip(axes[0], items):
        log = read_log(path)
        x, xname = _x_axis(log)
        cols = [c for c in log if c.startswith(weight_prefix)]
        if not cols:
            raise InputError(f"no '{weight_prefix}*' columns (has {sorted(log)})", path=path)
        for j, c in enumerate(cols):
            ax.plot(x, log[c], "-", color=f"C{j}", label=c[len(weight_prefix):])
        ax.set_title(label)
        ax.set_xlabel(xname)
        _integer_x(ax)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("task weight")
    fig.suptitle("Task-weight trajectories")
    return _save(fig, out_png)
