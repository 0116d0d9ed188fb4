"""Evaluation of a trained ResFormer checkpoint on a split of a 2-D image / mask / label folder.

Writes ``per_image.csv`` (per-image DSC / Jaccard, labels and predicted labels), ``summary.json`` and
``summary.md`` into ``out_dir`` (atomically) and returns the summary dict.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from tascmt.utils.atomic import write_json_atomic, write_text_atomic


def is_resformer_checkpoint(checkpoint: str | Path) -> bool:
    """True when the checkpoint (folder or file) holds a ResFormer model (reads only ``model.json``)."""
    from tascmt.models.checkpoint import read_meta
    from tascmt.models.resformer.config import is_resformer

    return is_resformer(read_meta(checkpoint)["model"])


def evaluate_resformer(
    checkpoint: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    split: str = "test",
    batch_size: int = 4,
    device: str = "cpu",
) -> dict[str, Any]:
    """Metrics of checkpoint ``checkpoint`` (a folder written by the trainer, e.g. ``RUN/best``) on ``split``.

    Returns ``{"model", "checkpoint", "data_dir", "split", "n", "class_names",
    "metrics": {dice, jaccard, accuracy_*, ...}}``.
    """
    import torch
    from torch.utils.data import DataLoader

    from tascmt.data.images2d.dataset import FolderDataset
    from tascmt.errors import InputError
    from tascmt.evaluation.metrics.resformer import MetricMeter, seg_scores
    from tascmt.models.checkpoint import load_model
    from tascmt.models.resformer.model import predictions

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model, meta = load_model(checkpoint, map_location=device)
    cfg = model.config
    data = FolderDataset(
        data_dir,
        split,
        img_size=cfg.img_size,
        in_chans=cfg.in_chans,
        seg_classes=cfg.seg_classes,
        cls_classes=cfg.cls_classes,
    )
    if len(data) == 0:
        raise InputError(f"the {split!r} split has no images", path=data_dir)
    names = data.class_names
    seg_names = [f"class{c}" for c in range(1, max(cfg.seg_classes, 2))]
    meter = MetricMeter(cfg.seg_classes, cfg.cls_classes)
    rows = []
    with torch.no_grad():
        for batch in DataLoader(data, batch_size=batch_size, shuffle=False):
            out = model(batch["x"].to(device))
            seg_pred, cls_pred = predictions(out, cfg.binary)
            seg_gt, cls_gt = batch["y_seg"].numpy(), batch["y_cls"].numpy()
            meter.update(seg_pred, seg_gt, cls_pred, cls_gt)
            for i, case in enumerate(batch["case_id"]):
                s = seg_scores(seg_pred[i], seg_gt[i], list(range(1, max(cfg.seg_classes, 2))))
                row: dict[str, Any] = {
                    "case_id": case,
                    "dice": float(s["dice"].mean()),
                    "jaccard": float(s["jaccard"].mean()),
                }
                if len(seg_names) > 1:
                    row.update({f"dice_{n}": float(v) for n, v in zip(seg_names, s["dice"])})
                row.update({f"true_{n}": int(v) for n, v in zip(names, cls_gt[i])})
                row.update({f"pred_{n}": int(v) for n, v in zip(names, cls_pred[i])})
                rows.append(row)
    metrics = meter.summary(names, seg_names if len(seg_names) > 1 else None)
    summary = {
        "model": meta["model"],
        "checkpoint": str(checkpoint),
        "data_dir": str(data_dir),
        "split": split,
        "n": len(rows),
        "class_names": names,
        "metrics": metrics,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / "per_image.csv", buf.getvalue())
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "summary.md", to_markdown(summary))
    return summary


def to_markdown(summary: dict[str, Any]) -> str:
    """A Markdown table of the summary's metrics (NaN shown as 'n/a')."""
    lines = [
        f"# {summary['model']} on {summary['data_dir']} ({summary['split']}, n = {summary['n']})",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for k, v in summary["metrics"].items():
        if k == "n":
            continue
        lines.append(f"| {k} | {'n/a' if not np.isfinite(v) else f'{v:.4f}'} |")
    return "\n".join(lines) + "\n"
