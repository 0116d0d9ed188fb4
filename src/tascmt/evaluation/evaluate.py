"""Evaluate a trained checkpoint on a prepared split (SPEC §8, §11.11).

``evaluate_checkpoint`` runs the model on every triplet of the split and writes into ``out_dir``:

- ``per_triplet.csv``: one row per triplet (identifiers, the model's and the linear baseline's
  PSNR/SSIM/EdgeSSIM/LPIPS, per-frame Dice/IoU/Precision/Recall for Y1, Y2, Y3, TCS, TCS_fg, TP/FP/FN);
- ``summary.json``: means over triplets, per-frame / frame-averaged / Ŷ2 / global segmentation metrics,
  per-volume Dice per case (triplet predictions reassembled per patient), the linear-interpolation
  baseline, and the acquired/resampled and foreground/empty subsets;
- ``summary.md``: the same as a readable report;
- ``figures/`` (``figures=True``): qualitative interpolation rows, segmentation overlays and, when the model
  exposes them, interpretability maps.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from tascmt.errors import ConfigError, InputError
from tascmt.evaluation.summary import summarise, to_markdown
from tascmt.evaluation.triplet_metrics import triplet_row
from tascmt.evaluation.volumes import VolumeAccumulator
from tascmt.utils.atomic import atomic_path, write_json_atomic, write_text_atomic

N_FIGURE_SAMPLES = 3


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    return device


def _check_size(meta: dict[str, Any], cache_size: int | None, checkpoint, cache_dir) -> None:
    """The in-plane size the checkpoint was trained at (``extra["size"]``, recorded from its cache) must be
    the evaluated cache's; checkpoints without that record (not from ``train``) are not checked."""
    extra = meta.get("extra") or {}
    trained = extra.get("size") or (extra.get("inplane") or {}).get("size")
    if trained is not None and cache_size is not None and int(trained) != int(cache_size):
        raise InputError(f"the cache holds {cache_size}×{cache_size} slices but checkpoint {checkpoint} was "
                         f"trained at {trained}×{trained}; prepare a cache with --size {trained}",
                         path=cache_dir)


def _figure_positions(records: list[dict[str, Any]], n: int = N_FIGURE_SAMPLES) -> list[int]:
    """Dataset positions for qualitative figures: spread over the triplets with a foreground middle slice."""
    fg = [i for i, r in enumerate(records) if r["fg"][1]] or list(range(len(records)))
    if not fg:
        return []
    picks = np.linspace(0, len(fg) - 1, num=min(n, len(fg))).round().astype(int)
    return sorted({fg[p] for p in picks})


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    cache_dir: str | os.PathLike,
    split: str = "test",
    out_dir: str | os.PathLike | None = None,
    batch_size: int = 4,
    device: str = "cpu",
    fg_policy: str | None = None,
    lpips_vgg: str | os.PathLike | None = None,
    lpips_lin: str | os.PathLike | None = None,
    figures: bool = True,
    max_triplets: int | None = None,
    progress: bool = False,
    volumes: bool = False,
) -> dict[str, Any]:
    """Evaluate ``checkpoint`` on ``split`` of the triplet cache ``cache_dir``.

    Args:
        checkpoint: a checkpoint folder or file written by ``tascmt.models.checkpoint.save_model``.
        cache_dir: the prepared triplet cache (``tascmt prepare``).
        split: "train", "val" or "test".
        out_dir: where the CSV, JSON, Markdown and figures go (None: nothing is written).
        batch_size: triplets per forward pass.
        device: "cpu", "cuda[:N]" or "auto".
        fg_policy: foreground policy for the split (default: the cache's evaluation policy, ``every``).
        lpips_vgg / lpips_lin: LPIPS weight files; without them LPIPS is reported as "unavailable".
        figures: also write qualitative figures into ``out_dir/figures``.
        max_triplets: evaluate only the first N triplets (quick checks).
        volumes: also evaluate whole volumes of the split through ``predict_volume``
            (`tascmt.evaluation.volume_eval.evaluate_volumes`; written as ``per_volume.csv``).

    Returns:
        The summary dict (also ``summary.json``). Single-task checkpoints get only their task's metrics
        (the linear baseline is always there).
    """
    import torch

    from tascmt.data.dataset import TripletDataset
    from tascmt.evaluation.metrics import load_lpips
    from tascmt.models.checkpoint import load_model

    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if split not in ("train", "val", "test"):
        raise ConfigError(f"split must be 'train', 'val' or 'test', got {split!r}")
    device = resolve_device(device)
    model, meta = load_model(checkpoint, map_location=device)
    tasks = tuple(getattr(model.config, "tasks", ("interp", "seg")))
    ds = TripletDataset(cache_dir, split=split, augment=False, fg_policy=fg_policy)
    _check_size(meta, ds.manifest.params.get("size"), checkpoint, cache_dir)
    if len(ds) == 0:
        raise InputError(f"split {split!r} has no triplets", path=cache_dir)
    n = len(ds) if max_triplets is None else min(len(ds), int(max_triplets))
    subset = torch.utils.data.Subset(ds, range(n))
    loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=False, num_workers=0)
    lpips_net = load_lpips(lpips_vgg, lpips_lin, device=device)
    fig_pos = set(_figure_positions(ds.records[:n])) if (figures and out_dir is not None) else set()
    fig_samples: list[dict[str, Any]] = []
    accumulator = VolumeAccumulator()
    rows: list[dict[str, Any]] = []
    pos = 0
    iterator = loader
    if progress:
        from tqdm import tqdm

        iterator = tqdm(loader, desc=f"evaluate {split}", unit="batch")
    with torch.no_grad():
        for batch in iterator:
            x = batch["x"].to(device)  # (B, 2, H, W)
            out = model.predict(x)
            linear = 0.5 * (x[:, :1] + x[:, 1:])  # (B, 1, H, W)
            y_i = batch["y_interp"].to(device)  # (B, 1, H, W)
            lp_model = lp_lin = None
            if lpips_net is not None:
                lp_lin = lpips_net(linear.clamp(0, 1), y_i).cpu().numpy()
                if "interp" in out:
                    lp_model = lpips_net(out["interp"].clamp(0, 1), y_i).cpu().numpy()
            pi = out["interp"][:, 0].cpu().numpy() if "interp" in out else None  # (B, H, W)
            ps = out["seg"].cpu().numpy() if "seg" in out else None  # (B, 3, H, W)
            xb, yi, ys = x.cpu().numpy(), y_i[:, 0].cpu().numpy(), batch["y_seg"].numpy()
            for b in range(x.shape[0]):
                rec = ds.records[pos]
                meta_b = {"case_id": batch["case_id"][b], "index": int(batch["index"][b]),
                          "gap_mm": float(batch["gap_mm"][b]), "resampled": bool(batch["resampled"][b]),
                          "fg_middle": bool(batch["fg_middle"][b])}
                pred_i = None if pi is None else pi[b]  # (H, W)
                pred_s = None if ps is None else ps[b]  # (3, H, W)
                rows.append(triplet_row(
                    meta_b, xb[b], yi[b], ys[b], pred_i, pred_s,
                    None if lp_model is None else float(lp_model[b]),
                    None if lp_lin is None else float(lp_lin[b]),
                    lpips_enabled=lpips_net is not None,
                ))
                if ps is not None:
                    accumulator.add(meta_b["case_id"], (rec["k0"], rec["k1"], rec["k2"]), ps[b], ys[b])
                if pos in fig_pos:
                    fig_samples.append({"meta": meta_b, "x": xb[b], "gt": yi[b], "seg_gt": ys[b],
                                        "pred": pred_i, "seg": pred_s})
                pos += 1
    summary: dict[str, Any] = {
        "checkpoint": str(checkpoint), "model": meta.get("model"), "tasks": list(tasks), "split": split,
        "cache_dir": str(cache_dir), "fg_policy": ds.fg_policy,
        "normalization": ds.manifest.params.get("norm"),
        "normalization_warning": ("the 'triplet' normalisation scales with the target slice's range "
                                  "(leaks the target; the public code's choice)")
        if getattr(ds.normalizer, "leaks_target", False) else None,
        "lpips": "computed" if lpips_net is not None else "unavailable (no LPIPS weight files given)",
    }
    summary.update(summarise(rows, tasks))
    if "seg" in tasks:
        summary["per_volume"] = accumulator.results()
    if volumes:
        from tascmt.evaluation.volume_eval import evaluate_volumes

        summary["whole_volumes"] = evaluate_volumes(checkpoint, cache_dir, split=split, device=device,
                                                    batch_size=batch_size)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_rows_csv(out_dir / "per_triplet.csv", rows)
        if volumes and summary["whole_volumes"]["cases"]:
            write_rows_csv(out_dir / "per_volume.csv", [{"case_id": c, **m} for c, m in
                                                        summary["whole_volumes"]["cases"].items()])
        if fig_samples:
            summary["figures"] = write_eval_figures(model, fig_samples, out_dir / "figures", device)
        write_json_atomic(out_dir / "summary.json", summary)
        write_text_atomic(out_dir / "summary.md", to_markdown(summary))
    return summary


def write_rows_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write dict rows as CSV (columns: union in first-seen order; NaN written as ``nan``)."""
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _cell(r.get(k)) for k in columns})
    return path


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    return v


def write_eval_figures(model, samples: list[dict[str, Any]], fig_dir: Path, device: str) -> list[str]:
    """Qualitative figures for a few triplets; returns the written file names."""
    import torch

    from tascmt.evaluation import figures as F

    fig_dir.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    titles = [f"{s['meta']['case_id']} #{s['meta']['index']}" for s in samples]
    if samples[0]["pred"] is not None:
        rows = [{"x1": s["x"][0], "gt": s["gt"], "pred": np.clip(s["pred"], 0, 1), "x3": s["x"][1]}
                for s in samples]
        written.append(F.plot_interpolation_rows(rows, fig_dir / "interpolation.png", titles=titles).name)
    if samples[0]["seg"] is not None:
        written.append(F.plot_segmentation_overlay(
            [s["gt"] for s in samples], [s["seg"][1] for s in samples], [s["seg_gt"][1] for s in samples],
            fig_dir / "segmentation_y2.png", titles=[f"{t} (Y2)" for t in titles],
        ).name)
    if hasattr(model, "forward_intermediates"):
        x = torch.from_numpy(samples[0]["x"][None]).to(device)  # (1, 2, H, W)
        with torch.no_grad():
            _, maps = model.forward_intermediates(x)
        maps2d = F.select_interpretability_maps({k: v.detach().float().cpu().numpy() for k, v in maps.items()
                                                 if torch.is_tensor(v)})
        if maps2d:
            written.append(F.plot_interpretability(maps2d, fig_dir / "interpretability.png",
                                                   image=samples[0]["gt"]).name)
    return written
