"""Run logs: ``steps.csv`` (one row per optimiser step), ``epochs.csv`` (one row per epoch) and TensorBoard.

Only rank 0 creates a :class:`RunLogger`; the others get a disabled one. On resume the CSV rows written
after the checkpoint (by the interrupted process) are dropped, and TensorBoard's ``purge_step`` hides
its events after the checkpoint, so every step and epoch appears exactly once.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

from tascmt.utils.atomic import write_text_atomic

STEP_COLUMNS = ("step", "epoch", "loss", "L_interp", "L_seg", "w_interp", "w_seg", "lr", "grad_norm",
                "samples_per_s", "skipped")
EPOCH_COLUMNS = ("epoch", "step", "train_loss", "train_L_interp", "train_L_seg", "val_loss", "val_L_interp",
                 "val_L_seg", "val_criterion", "val_psnr", "val_dice", "w_interp", "w_seg", "lr",
                 "target_clip_frac", "skipped_steps", "epoch_s", "samples_per_s", "best")


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    return "" if v is None else v


class RunLogger:
    """Appends rows to the run's CSV files and scalars to TensorBoard (no-op when ``enabled`` is False)."""

    def __init__(self, run_dir: str | os.PathLike, enabled: bool = True, tensorboard: bool = True,
                 resume_step: int | None = None, resume_epoch: int | None = None):
        self.enabled = enabled
        self.run_dir = Path(run_dir)
        self.steps_path = self.run_dir / "steps.csv"
        self.epochs_path = self.run_dir / "epochs.csv"
        self._tb = None
        if not enabled:
            return
        if resume_step is not None:
            _truncate(self.steps_path, STEP_COLUMNS, "step", resume_step)
        if resume_epoch is not None:
            _truncate(self.epochs_path, EPOCH_COLUMNS, "epoch", resume_epoch)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self._tb = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"), purge_step=purge)

    def log_step(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        _append(self.steps_path, STEP_COLUMNS, row)
        if self._tb is not None:
            for key in ("loss", "L_interp", "L_seg", "w_interp", "w_seg", "lr", "grad_norm", "samples_per_s"):
                value = row.get(key)
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self._tb.add_scalar(f"train/{key}", value, row["step"])

    def log_epoch(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        _append(self.epochs_path, EPOCH_COLUMNS, row)
        if self._tb is not None:
            for key, value in row.items():
                if key in ("epoch", "step", "best") or not isinstance(value, (int, float)):
                    continue
                if math.isfinite(value):
                    group = "val" if key.startswith("val_") else "epoch"
                    self._tb.add_scalar(f"{group}/{key.removeprefix('val_')}", value, row["epoch"])
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _append(path: Path, columns: tuple[str, ...], row: dict[str, Any]) -> None:
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: _fmt(row.get(k)) for k in columns})


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a run CSV as dicts of strings (empty list when the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _truncate(path: Path, columns: tuple[str, ...], key: str, last: int) -> None:
    """Keep only the rows whose ``key`` column is ≤ ``last`` (rewritten atomically)."""
    rows = read_csv(path)
    if not rows:
        return
    kept = [r for r in rows if r.get(key) not in (None, "") and int(r[key]) <= last]
    if len(kept) == len(rows):
        return
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(kept)
    write_text_atomic(path, buf.getvalue())


def epoch_summary(r: dict[str, Any], epochs: int) -> str:
    """One human-readable line per epoch (printed by rank 0 when the progress display is on)."""
    def g(key: str, fmt: str = ".4g") -> str:
        return format(r[key], fmt) if isinstance(r.get(key), (int, float)) else "-"

    parts = [f"epoch {r['epoch']}/{epochs}", f"train {g('train_loss')} (L_interp {g('train_L_interp')}, "
             f"L_seg {g('train_L_seg')})"]
    if "val_loss" in r:
        parts.append(f"val {g('val_loss')} (PSNR {g('val_psnr', '.2f')} dB, Dice {g('val_dice', '.3f')})")
    parts.append(f"w_interp {g('w_interp', '.3g')}, w_seg {g('w_seg', '.3g')}, lr {g('lr', '.2e')}, "
                 f"{g('samples_per_s', '.2f')} samples/s" + (", best" if r.get("best") else ""))
    return " | ".join(parts)
