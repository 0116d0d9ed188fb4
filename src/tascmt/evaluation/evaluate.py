"""Evaluate a trained checkpoint, a cascade or a classical reference on a prepared split (docs/design.md §7).

``evaluate_checkpoint`` runs the model on every triplet of the split and writes into ``out_dir``:

- ``per_triplet.csv``: one row per triplet (identifiers, the model's and the linear baseline's
  PSNR/SSIM/EdgeSSIM/LPIPS, per-frame Dice/IoU/Precision/Recall for Y1, Y2, Y3, TCS, TCS_fg, TP/FP/FN);
- ``summary.json``: means over triplets, per-frame / frame-averaged / Ŷ2 / global segmentation metrics,
  per-volume Dice per case (triplet predictions reassembled per patient), the linear-interpolation
  baseline, and the acquired/resampled and foreground/empty subsets;
- ``summary.md``: the same as a readable report;
- ``figures/`` (``figures=True``): qualitative interpolation rows, segmentation overlays and, when the model
  exposes them, interpretability maps.

A checkpoint is checked against the cache first (`tascmt.evaluation.data_match`): another normalisation,
target protocol or in-plane policy than its training data's is refused (``allow_mismatch=True`` evaluates
it, labelled ``data_mismatch`` in the summary); another gap is evaluated with a warning and the same label.
The summary records the cache's data fingerprint and the one the checkpoint was trained on.

What is evaluated (a subject, ``subjects.py``), and the ``setting`` the summary records (the comparison
tables of docs/design.md §9 report the settings as separate rows):

- a checkpoint of a pair-input model (TASC-SwinMT family, interpolation baselines, MTL methods): setting
  ``"pair"`` — the model sees only X1, X3;
- a checkpoint of a triplet-input segmenter (``unetpp_seg``, ``swinunetr_seg``, ``nnunet_seg``): setting
  ``"oracle"`` — it segments [X1, X2, X3] with the real, acquired middle slice X2 (``model_input``);
- ``evaluate_cascade(interp, seg, ...)``: setting ``"cascade"`` — the segmenter sees [X1, X̂2, X3] with X̂2
  from the interpolation model, whose interpolation metrics are reported as the cascade's;
- a parameter-free reference by name, without training: ``"linear_interp"`` (any registered model without
  parameters) or ``"cubic"`` (:data:`CUBIC`); setting ``"reference"``.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

from tascmt.errors import ConfigError, InputError
from tascmt.evaluation.data_match import check_checkpoint_data
from tascmt.evaluation.eval_figures import figure_positions, write_eval_figures
from tascmt.evaluation.subjects import (
    CUBIC,
    CUBIC_NOTE,
    SETTINGS,
    Subject,
    check_size,
    cubic_subject,
    img_size_override,
    is_reference_name,
    model_subject,
    native_tile,
)
from tascmt.evaluation.summary import summarise, to_markdown
from tascmt.evaluation.triplet_metrics import triplet_row
from tascmt.evaluation.volumes import VolumeAccumulator
from tascmt.utils.atomic import atomic_path, write_json_atomic, write_text_atomic
from tascmt.utils.device import resolve_device

# CUBIC, CUBIC_NOTE, SETTINGS, is_reference_name (subjects.py) and write_eval_figures (eval_figures.py) are
# re-exported: they were defined here before the split.
__all__ = ["CUBIC", "CUBIC_NOTE", "RESOLUTION_NOTES", "SETTINGS", "evaluate_cascade", "evaluate_checkpoint",
           "is_reference_name", "write_eval_figures", "write_rows_csv"]

RESOLUTION_NOTES = {
    "native": "native resolution: whole slices at the scan's own pixels (the model runs on blended tiles)",
    "pad_resize": "model space (pad_resize, the paper's protocol): slices padded to a square and resized to "
                  "the model size; a secondary figure, not the scan's own resolution",
    "none": "native resolution (slices already at the model size)",
}


def _open_split(cache_dir, split: str, fg_policy: str | None, batch_size: int):
    from tascmt.data.dataset import TripletDataset

    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if split not in ("train", "val", "test"):
        raise ConfigError(f"split must be 'train', 'val' or 'test', got {split!r}")
    ds = TripletDataset(cache_dir, split=split, augment=False, fg_policy=fg_policy, tiles="whole")
    if len(ds) == 0:
        raise InputError(f"split {split!r} has no triplets", path=cache_dir)
    return ds


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
    volumes: bool | None = None,
    flow: bool = True,
    allow_mismatch: bool = False,
) -> dict[str, Any]:
    """Evaluate ``checkpoint`` on ``split`` of the triplet cache ``cache_dir``.

    Args:
        checkpoint: a checkpoint folder or file written by ``tascmt.models.checkpoint.save_model``; or a
            reference evaluated without training (`is_reference_name`): ``"cubic"``, ``"linear_interp"``.
            A triplet-input segmenter is evaluated in the oracle setting (module docstring).
        cache_dir: the prepared triplet cache (``tascmt prepare``).
        split: "train", "val" or "test".
        out_dir: where the CSV, JSON, Markdown and figures go (None: nothing is written).
        batch_size: triplets per forward pass.
        device: "cpu", "cuda[:N]" or "auto".
        fg_policy: foreground policy for the split (default: the cache's evaluation policy, ``every``).
        lpips_vgg / lpips_lin: LPIPS weight files; without them LPIPS is reported as "unavailable".
        figures: also write qualitative figures into ``out_dir/figures``.
        max_triplets: evaluate only the first N triplets (quick checks).
        volumes: also evaluate whole volumes of the split at native resolution through ``predict_volume``
            (`tascmt.evaluation.volume_eval.evaluate_volumes`, every thinning offset; written as
            ``per_volume.csv``); default (None): on for pair-input checkpoints of acquired-slice caches.
        flow: add the flow-midpoint reference (TV-L1) to the whole-volume figures (default on).
        allow_mismatch: evaluate a checkpoint whose training data were normalised, protocolled or in-plane
            processed differently from the cache (refused by default), labelled in the report
            (`tascmt.evaluation.data_match`).

    Returns:
        The summary dict (also ``summary.json``), with ``setting`` ("pair", "oracle", "reference"),
        ``data_fingerprint`` (the cache's) and ``checkpoint_data_fingerprint`` (the checkpoint's training
        data), and ``data_mismatch`` / ``data_unrecorded`` when the checkpoint's preprocessing differs from
        the cache's or is not recorded. Single-task checkpoints get only their task's metrics (the linear
        baseline is always there).

    Raises:
        ConfigError: the checkpoint's normalisation, target protocol or in-plane policy differ from the
            cache's and ``allow_mismatch`` is False.
    """
    from tascmt.models.checkpoint import load_model

    if out_dir is not None:  # fail before the evaluation, not after it
        from tascmt.utils.writable import check_writable_folder

        check_writable_folder(out_dir, "evaluation output folder")
    device = resolve_device(device)
    ds = _open_split(cache_dir, split, fg_policy, batch_size)
    cache_size = ds.manifest.params.get("size")
    if is_reference_name(checkpoint):
        if str(checkpoint) == CUBIC:
            subject = cubic_subject(ds)
        else:
            from tascmt.models import create_model

            model = create_model(str(checkpoint), size="tiny", **img_size_override(cache_size))
            subject = model_subject(model.to(device).eval(), str(checkpoint), {}, tile=native_tile(ds))
        subject.info["checkpoint"] = f"{checkpoint} (reference, not trained)"
    else:
        model, meta = load_model(checkpoint, map_location=device)
        check_size(meta, cache_size, checkpoint, cache_dir)
        labels = check_checkpoint_data(meta.get("extra"), ds.manifest.params, checkpoint=checkpoint,
                                       cache_dir=cache_dir, allow_mismatch=allow_mismatch)
        info = {"checkpoint": str(checkpoint), **labels,
                "checkpoint_data_fingerprint": (meta.get("extra") or {}).get("data_fingerprint")}
        subject = model_subject(model, meta.get("model"), info, checkpoint=checkpoint, tile=native_tile(ds))
    if volumes is None:  # default on where predict_volume can run: pair models with their pre-processing
        extra = (meta.get("extra") or {}) if subject.checkpoint is not None else {}
        volumes = (subject.checkpoint is not None and subject.setting == "pair" and bool(extra.get("norm"))
                   and ds.manifest.params.get("protocol", "acquired") != "resampled")
    subject.info["flow"] = bool(flow)
    if volumes and (subject.checkpoint is None or subject.setting != "pair"):
        raise ConfigError(f"volumes=True needs a checkpoint of a model that takes the input pair; "
                          f"{checkpoint} is evaluated in the {subject.setting!r} setting")
    return _evaluate(subject, ds, cache_dir, split, out_dir, batch_size, device, lpips_vgg, lpips_lin,
                     figures, max_triplets, progress, volumes, allow_mismatch=allow_mismatch)


def evaluate_cascade(
    interp_checkpoint: str | os.PathLike,
    seg_checkpoint: str | os.PathLike,
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
    size: str = "small",
    allow_mismatch: bool = False,
) -> dict[str, Any]:
    """Evaluate the cascade interpolation model → segmenter (setting ``"cascade"``).

    The segmenter (a triplet-input model, e.g. ``nnunet_seg``) sees [X1, X̂2, X3] where X̂2 is the
    interpolation model's output (``tascmt.models.baselines.build_cascade``); the summary's interpolation
    metrics are the interpolator's, its segmentation metrics the segmenter's on the synthesised triplet.
    Each part is a checkpoint written by ``save_model``/``train`` or a registered name (``linear_interp``;
    other names give untrained models at ``size``). Each checkpoint part's recorded preprocessing is checked
    against the cache as `evaluate_checkpoint` checks it (``allow_mismatch``). The other arguments are
    `evaluate_checkpoint`'s.

    Returns the summary dict (same format as `evaluate_checkpoint`; ``setting`` = "cascade",
    ``interp_checkpoint``, ``seg_checkpoint``).
    """
    from tascmt.models.baselines import build_cascade

    if out_dir is not None:  # fail before the evaluation, not after it
        from tascmt.utils.writable import check_writable_folder

        check_writable_folder(out_dir, "evaluation output folder")
    device = resolve_device(device)
    ds = _open_split(cache_dir, split, fg_policy, batch_size)
    cache_size = ds.manifest.params.get("size")
    parts = {}
    for role, part in (("interp", interp_checkpoint), ("seg", seg_checkpoint)):
        if Path(str(part)).exists() or not isinstance(part, (str, os.PathLike)):
            parts[role] = part
        else:  # a registered name: build it at the cache's size
            from tascmt.models import create_model

            try:
                parts[role] = create_model(str(part), size=size, **img_size_override(cache_size))
            except ValueError as err:
                raise ConfigError(f"cascade {role} part {str(part)!r} is neither a checkpoint nor a "
                                  f"registered model: {err}") from err
    try:
        cascade, metas = build_cascade(parts["interp"], parts["seg"], size=size, map_location=device)
    except ValueError as err:  # wrong part kinds (ModelConfigError names them)
        raise ConfigError(f"cannot build the cascade {interp_checkpoint} → {seg_checkpoint}: {err}") from err
    mismatch: list[str] = []
    unrecorded: list[str] = []
    for role, meta in metas.items():
        part = interp_checkpoint if role == "interp" else seg_checkpoint
        check_size(meta, cache_size, part, cache_dir)
        found = check_checkpoint_data(meta.get("extra"), ds.manifest.params, checkpoint=part,
                                      cache_dir=cache_dir, allow_mismatch=allow_mismatch)
        mismatch += [f"{role}: {note}" for note in found.get("data_mismatch", [])]
        if "data_unrecorded" in found:
            unrecorded.append(f"{role}: {found['data_unrecorded']}")
    labels: dict[str, Any] = {"data_mismatch": mismatch} if mismatch else {}
    if unrecorded:
        labels["data_unrecorded"] = "; ".join(unrecorded)
    cascade = cascade.to(device).eval()
    names = (cascade.config.interp_model, cascade.config.seg_model)
    info = {"interp_checkpoint": str(interp_checkpoint), "seg_checkpoint": str(seg_checkpoint),
            "checkpoint": f"{interp_checkpoint} → {seg_checkpoint}", "cascade": list(names), **labels}
    subject = model_subject(cascade, f"cascade({names[0]} → {names[1]})", info, tile=native_tile(ds))
    subject.setting = "cascade"
    return _evaluate(subject, ds, cache_dir, split, out_dir, batch_size, device, lpips_vgg, lpips_lin,
                     figures, max_triplets, progress, volumes=False)


def _evaluate(subject: Subject, ds, cache_dir, split: str, out_dir, batch_size: int, device: str,
              lpips_vgg, lpips_lin, figures: bool, max_triplets: int | None, progress: bool,
              volumes: bool, allow_mismatch: bool = False) -> dict[str, Any]:
    """The per-triplet loop shared by every subject; writes the outputs and returns the summary."""
    import torch

    from tascmt.evaluation.metrics import load_lpips

    tasks = subject.tasks
    n = len(ds) if max_triplets is None else min(len(ds), int(max_triplets))
    sizes = {tuple(c["hw"]) for c in ds.manifest.cases.values() if c.get("hw") and c.get("split") == split}
    if native_tile(ds) is not None and len(sizes) > 1:
        batch_size = 1  # whole native slices of different sizes cannot share a batch
    subset = torch.utils.data.Subset(ds, range(n))
    loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=False, num_workers=0)
    lpips_net = load_lpips(lpips_vgg, lpips_lin, device=device)
    fig_pos = set(figure_positions(ds.records[:n])) if (figures and out_dir is not None) else set()
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
            records = ds.records[pos:pos + x.shape[0]]
            out = subject.predict({**batch, "x": x}, records)
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
                rec = records[b]
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
                                        "pred": pred_i, "seg": pred_s,
                                        "flow_mid": None if "flow_mid" not in batch
                                        else batch["flow_mid"][b].numpy()})
                pos += 1
    summary: dict[str, Any] = {
        "checkpoint": subject.info.get("checkpoint"), "model": subject.name, "tasks": list(tasks),
        "setting": subject.setting, "setting_note": SETTINGS[subject.setting], "split": split,
        "cache_dir": str(cache_dir), "fg_policy": ds.fg_policy,
        "inplane": ds.inplane.kind, "resolution": RESOLUTION_NOTES[ds.inplane.kind],
        "normalization": ds.manifest.params.get("norm"),
        "normalization_warning": ("the 'triplet' normalisation scales with the target slice's range "
                                  "(leaks the target; the public code's choice)")
        if getattr(ds.normalizer, "leaks_target", False) else None,
        "lpips": "computed" if lpips_net is not None else "unavailable (no LPIPS weight files given)",
        "data_fingerprint": ds.manifest.fingerprint(),
        **{k: v for k, v in subject.info.items() if k != "checkpoint"},
    }
    summary.update(summarise(rows, tasks))
    if "seg" in tasks:
        summary["per_volume"] = accumulator.results()
    if volumes:
        from tascmt.evaluation.volume_eval import evaluate_volumes

        summary["whole_volumes"] = evaluate_volumes(subject.checkpoint, cache_dir, split=split, device=device,
                                                    batch_size=batch_size,
                                                    flow=subject.info.get("flow", False),
                                                    allow_mismatch=allow_mismatch, check_data=False)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_rows_csv(out_dir / "per_triplet.csv", rows)
        summary.get("whole_volumes", {}).pop("reformat", None)
        if volumes and summary["whole_volumes"]["cases"]:
            write_rows_csv(out_dir / "per_volume.csv", [{"case_id": c, **m} for c, m in
                                                        summary["whole_volumes"]["cases"].items()])
        if fig_samples:
            summary["figures"] = write_eval_figures(subject.model, fig_samples, out_dir / "figures", device)
        write_json_atomic(out_dir / "summary.json", summary)
        write_text_atomic(out_dir / "summary.md", to_markdown(summary))
    return summary


def write_rows_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write dict rows as CSV (columns: union in first-seen order; NaN written as ``nan``)."""
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
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


