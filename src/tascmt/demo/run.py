"""``tascmt demo``: the whole pipeline on the real-data default, in minutes on a 2-core CPU.

Steps (each reuses its output when it is already there with the same settings):

1. data: an MSD task built from the MNI152 2009a template shipped inside the nilearn wheel (an average of
   152 subjects, not a patient scan): axial slabs as pseudo-patients, label = grey-matter probability > 0.5;
2. prepare: triplets of acquired slices ``gap_mm`` apart, in-plane ``size``², patient-level 7:1:2 split;
3. train: the ``small`` TASC-SwinMT within a wall-time budget;
4. evaluate on the test slabs: the model against linear interpolation ((X1+X3)/2) and against an
   intensity-band segmentation baseline whose band is fitted on the training slices;
5. report: ``report.md`` with the tables, figures and the run's real numbers.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tascmt.demo.band import IntensityBand, fit_intensity_band
from tascmt.errors import ConfigError, TascmtError
from tascmt.utils.atomic import write_json_atomic, write_text_atomic
from tascmt.utils.lock import lock_folder
from tascmt.utils.provenance import write_run_info


@dataclass
class DemoConfig:
    """Settings of the demo. The defaults were chosen by measurement (see the README's demo section)."""

    out_dir: str = "tascmt_demo"
    minutes: float = 8.0  # training wall-time budget (prepare's flow midpoints and evaluation add ~2 min)
    size: int = 128  # tile size: the model sees 128² tiles of the template's native 197×233 slices
    gap_mm: float = 2.0  # distance from each input slice to the target slice
    n_slabs: int = 6  # pseudo-patients (3/1/2 split): 24-slice slabs, so the test volumes are tall enough
    guard: int = 2  # axial slices discarded between slabs
    model: str = "tasc_swinmt"
    model_size: str = "small"
    model_overrides: dict[str, Any] = field(
        default_factory=lambda: {"interp_output": "residual", "init": "stable"})
    balancer: str = "kendall"
    lr: float = 1e-3  # 10× the paper's 1e-4: measured to learn far faster within a minutes-long CPU budget
    seed: int = 0
    batch_size: int = 2
    epochs: int = 100
    steps_per_epoch: int = 250
    # What the residual head corrects. Measured on this demo at native resolution (10 min, one seed): linear
    # base +0.08 dB over linear interpolation; flow base +3.24 dB (the flow midpoint itself +3.24).
    interp_base: str = "flow"
    num_workers: int = 0
    progress: bool = True


def _log(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def run_demo(config: DemoConfig | None = None) -> Path:
    """Run the demo end to end; returns the path of ``report.md``.

    The output folder must be new, empty or an earlier demo's (:func:`claim_demo_folder`); it is locked
    while the demo runs, so two demos never write the same folder at once.
    """
    cfg = config or DemoConfig()
    out = Path(cfg.out_dir).resolve()
    claim_demo_folder(out)
    with lock_folder(out, "demo folder"):
        return _run_demo(cfg, out)


#: Marks a folder the demo created (its output folder).
DEMO_MARK = ".tascmt-demo"
#: What a training run writes into its folder: the only entries the demo ever removes from ``run/``.
_RUN_ENTRIES = frozenset({"config.json", "provenance.json", "steps.csv", "epochs.csv", "tensorboard", "best",
                          "last", "last.prev", "last.damaged", ".best.old", ".last.old",
                          "demo_done.json"})
_RUN_DEBRIS = (".best.tmp-", ".last.tmp-", ".last.trash-")


def claim_demo_folder(out: Path) -> None:
    """Refuse an output folder that holds anything the demo did not create; mark the folder as the demo's.

    Accepted: a new or empty folder, a folder marked by an earlier demo (``.tascmt-demo``), or an earlier
    demo's folder from before the mark (its ``config.json`` holds the demo's settings).
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"demo output {out} exists and is not a folder")
    if out.is_dir() and not (out / DEMO_MARK).exists():
        entries = sorted(p.name for p in out.iterdir())
        if entries and not _earlier_demo_folder(out):
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise ConfigError(f"demo output folder {out} already holds files the demo did not create "
                              f"({shown}); choose a new or empty folder with -o")
    out.mkdir(parents=True, exist_ok=True)
    if not (out / DEMO_MARK).exists():
        write_text_atomic(out / DEMO_MARK, "created by `tascmt demo`; the demo reuses and replaces only its "
                                           "own outputs in this folder\n")


def _earlier_demo_folder(out: Path) -> bool:
    try:
        config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and {"minutes", "n_slabs", "guard", "gap_mm"} <= set(config)


def _discard_run(run_dir: Path) -> None:
    """Remove an earlier (unfinished or differently configured) training run of the demo: only the entries a
    training run writes; anything else in the folder stops the demo instead of being deleted."""
    import shutil

    from tascmt.utils.lock import LOCK_NAME

    foreign = sorted(p.name for p in run_dir.iterdir() if p.name not in _RUN_ENTRIES
                     and p.name != LOCK_NAME and not p.name.startswith(_RUN_DEBRIS))
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ConfigError(f"{run_dir} holds files that a training run does not write ({shown}); the demo "
                          "would have to replace this folder: move those files away or choose another -o")
    _log(f"discarding the previous (unfinished or differently configured) run in {run_dir}")
    with lock_folder(run_dir, "run folder"):  # not while another process trains in it
        for p in run_dir.iterdir():
            if p.name == LOCK_NAME:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()


def _run_demo(cfg: DemoConfig, out: Path) -> Path:
    from tascmt.data.mni import DESCRIPTION, build_mni_task
    from tascmt.data.prepare import prepare_dataset
    from tascmt.evaluation.evaluate import evaluate_checkpoint
    from tascmt.training import TrainConfig, train

    write_run_info(out, asdict(cfg))
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    _log(f"1/5 data: {DESCRIPTION}")
    t0 = time.perf_counter()
    task = build_mni_task(out / "data" / "MNI152Slabs", n_slabs=cfg.n_slabs, guard=cfg.guard)
    timings["data_s"] = time.perf_counter() - t0

    _log(f"2/5 prepare: triplets {cfg.gap_mm} mm each side of an acquired middle slice, {cfg.size}² in-plane")
    t0 = time.perf_counter()
    cache = out / "cache"
    manifest = prepare_dataset(task, cache, size=cfg.size, gap_mm=cfg.gap_mm, progress=cfg.progress,
                               flow_base=cfg.interp_base == "flow")
    timings["prepare_s"] = time.perf_counter() - t0

    _log(f"3/5 train: {cfg.model} ({cfg.model_size}) for at most {cfg.minutes:g} min on the CPU")
    train_cfg = TrainConfig(
        cache_dir=str(cache), out_dir=str(out / "run"), model=cfg.model, size=cfg.model_size,
        model_overrides={**cfg.model_overrides,
                         **({"interp_base": "flow"} if cfg.interp_base == "flow" else {})},
        epochs=cfg.epochs, batch_size=cfg.batch_size,
        steps_per_epoch=cfg.steps_per_epoch,
        lr=cfg.lr, balancer=cfg.balancer, seed=cfg.seed, max_minutes=cfg.minutes, num_workers=cfg.num_workers,
        device="cpu", progress=cfg.progress,
    )
    result = _train_or_reuse(train_cfg, train)
    timings["train_s"] = result.train_s
    _log("4/5 evaluate the test slabs at native resolution (model, linear, cubic, intensity band)")
    t0 = time.perf_counter()
    from tascmt.evaluation.figures.reformat import plot_reformat
    from tascmt.evaluation.volume_eval import evaluate_volumes

    test_ids = sorted(c for c, i in manifest.cases.items() if i.get("split") == "test")
    whole = evaluate_volumes(result.best_checkpoint, cache, split="test", device="cpu",
                             reformat_case=test_ids[0] if test_ids else None)
    ref = whole.pop("reformat", None)
    summary = evaluate_checkpoint(result.best_checkpoint, cache, split="test", out_dir=out / "eval",
                                  device="cpu", progress=cfg.progress, volumes=False)
    summary["whole_volumes"] = whole
    write_json_atomic(out / "eval" / "summary.json", summary)
    reformat_png = None
    if ref is not None and ref.get("model") is not None:
        reformat_png = plot_reformat(ref["truth"], ref["model"], out / "figures" / "reformat_coronal.png",
                                     linear=ref["linear"], spacing=ref["spacing"], axis="coronal",
                                     title=f"test slab {ref['case_id']}: coronal reformat, "
                                           f"{ref['truth'].shape[0]} slices at {ref['spacing'][0]:g} mm; "
                                           f"{len(ref['synthesised'])} rows synthesised from the slices "
                                           f"{ref['step'] * ref['spacing'][0]:g} mm either side")
    band = fit_intensity_band(_band_training_pairs(cache))
    band_summary = evaluate_band(band, cache, split="test")
    write_json_atomic(out / "eval" / "band_baseline.json", band_summary)
    timings["evaluate_s"] = time.perf_counter() - t0

    _log("5/5 report")
    figures = _training_figures(result.run_dir, out / "figures")
    if reformat_png is not None:
        figures = {"reformat_coronal": str(reformat_png), **figures}
    timings["total_s"] = time.perf_counter() - t_start
    report = render_report(cfg, manifest_counts(manifest), result, summary, band_summary, figures, timings,
                           out)
    path = write_text_atomic(out / "report.md", report)
    write_json_atomic(out / "demo_summary.json", {
        "config": asdict(cfg), "timings": timings, "stop_reason": result.stop_reason,
        "global_step": result.global_step, "evaluation": summary, "band_baseline": band_summary,
    })
    _log(f"report: {path}")
    return path


@dataclass
class _TrainOutcome:
    run_dir: Path
    best_checkpoint: Path
    stop_reason: str
    global_step: int
    train_s: float
    reused: bool = False


def _train_or_reuse(train_cfg: Any, train: Any) -> _TrainOutcome:
    """Train, or reuse a finished demo run in the same folder trained with the same settings.

    An unfinished or differently configured run left in the demo's own ``run/`` folder is discarded
    (:func:`_discard_run`: only what a training run writes; never a file the demo did not create).
    """
    from tascmt.training.config import RUNTIME_FIELDS

    run_dir = Path(train_cfg.out_dir)
    marker = run_dir / "demo_done.json"
    # Settings that change the result decide reuse (the time budget does; progress bars, workers don't).
    ignored = RUNTIME_FIELDS - {"max_minutes"}
    wanted = {k: v for k, v in train_cfg.to_dict().items() if k not in ignored}
    if marker.exists():
        done = json.loads(marker.read_text(encoding="utf-8"))
        if done.get("config") == wanted and Path(done["best_checkpoint"]).exists():
            _log(f"reusing the finished training run in {run_dir}")
            return _TrainOutcome(run_dir, Path(done["best_checkpoint"]), done["stop_reason"],
                                 done["global_step"], done["train_s"], reused=True)
    if run_dir.is_dir() and any(run_dir.iterdir()):
        _discard_run(run_dir)
    t0 = time.perf_counter()
    result = train(train_cfg)
    if result.best_checkpoint is None:
        raise TascmtError(f"training produced no checkpoint (stop reason: {result.stop_reason})")
    outcome = _TrainOutcome(Path(result.run_dir), Path(result.best_checkpoint), result.stop_reason,
                            result.global_step, time.perf_counter() - t0)
    write_json_atomic(marker, {"config": wanted, "best_checkpoint": str(outcome.best_checkpoint),
                               "stop_reason": outcome.stop_reason, "global_step": outcome.global_step,
                               "train_s": outcome.train_s})
    return outcome


def manifest_counts(manifest: Any) -> dict[str, Any]:
    try:
        return dict(manifest.counts())
    except (AttributeError, TypeError):
        return {}


def _band_training_pairs(cache: Path):
    """(normalised frame, mask) pairs of every frame of the training triplets (no augmentation)."""
    from tascmt.data.dataset import TripletDataset

    ds = TripletDataset(cache, split="train", augment=False, fg_policy="every")
    for i in range(len(ds)):
        item = ds[i]
        frames = (item["x"][0], item["y_interp"][0], item["x"][1])  # X1, X2, X3: (H, W) each
        for f, img in enumerate(frames):
            yield img.numpy(), item["y_seg"][f].numpy()


def evaluate_band(band: IntensityBand, cache: Path, split: str = "test") -> dict[str, Any]:
    """Score the band on every triplet of ``split``: Y1 from X1, Y3 from X3, and Y2 twice — from the real
    middle slice (oracle) and from the linear interpolation of X1 and X3 (what is available at prediction
    time). Per-triplet means and global (pooled) Dice."""
    from tascmt.data.dataset import TripletDataset
    from tascmt.evaluation.metrics import aggregate_counts, confusion, seg_metrics

    ds = TripletDataset(cache, split=split, augment=False, fg_policy="every")
    keys = ("dice", "iou", "precision", "recall")
    per: dict[str, list[dict[str, float]]] = {"y1": [], "y2_oracle": [], "y2_linear": [], "y3": []}
    counts: dict[str, list] = {k: [] for k in per}
    for i in range(len(ds)):
        item = ds[i]
        x1, x3 = item["x"][0].numpy(), item["x"][1].numpy()
        x2 = item["y_interp"][0].numpy()
        gt = item["y_seg"].numpy()  # (3, H, W)
        preds = {"y1": (band.predict(x1), gt[0]), "y2_oracle": (band.predict(x2), gt[1]),
                 "y2_linear": (band.predict(0.5 * (x1 + x3)), gt[1]), "y3": (band.predict(x3), gt[2])}
        for k, (p, g) in preds.items():
            per[k].append(seg_metrics(p, g))
            counts[k].append(confusion(p, g))
    out: dict[str, Any] = {"band": {"low": band.low, "high": band.high, "train_dice": band.train_dice},
                           "n_triplets": len(ds), "split": split}
    for k in per:
        out[k] = {m: float(np.mean([r[m] for r in per[k]])) for m in keys}
        out[k]["global_dice"] = float(aggregate_counts(counts[k])["dice"])
    # Frame average as the model is scored (Y1, Y2, Y3), with Y2 from the linear interpolation.
    out["frame_avg_linear_y2"] = {m: float(np.mean([out[f][m] for f in ("y1", "y2_linear", "y3")]))
                                  for m in keys}
    return out


def _training_figures(run_dir: Path, fig_dir: Path) -> dict[str, str]:
    from tascmt.evaluation.figures import plot_loss_curves, plot_weight_trajectories

    fig_dir.mkdir(parents=True, exist_ok=True)
    log = Path(run_dir) / "epochs.csv"
    figs: dict[str, str] = {}
    if log.exists():
        figs["loss_curves"] = str(plot_loss_curves({"demo": log}, fig_dir / "loss_curves.png"))
        figs["task_weights"] = str(plot_weight_trajectories({"kendall": log}, fig_dir / "task_weights.png"))
    return figs


def _f(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    return f"{v:.{digits}f}"


def render_report(cfg: DemoConfig, counts: dict[str, Any], result: Any, summary: dict[str, Any],
                  band: dict[str, Any], figures: dict[str, str], timings: dict[str, float], out: Path) -> str:
    """The Markdown report: what was run, the numbers it got, and what they mean."""
    from tascmt.evaluation.summary import whole_volume_markdown

    interp = summary.get("interp", {})
    model_i, lin_i = interp.get("model", {}), interp.get("linear", {})
    wv = summary.get("whole_volumes") or {}
    wmean = wv.get("mean") or {}
    d_native = (wmean.get("psnr_synth") or 0.0) - (wmean.get("linear_psnr_synth") or 0.0)
    verdict_native = ("beats" if d_native > 0.05 else "ties with" if d_native > -0.05 else "falls short of")
    seg = summary.get("seg", {})
    d_psnr = (model_i.get("psnr") or 0.0) - (lin_i.get("psnr") or 0.0)
    verdict = ("beats" if d_psnr > 0.05 else "ties with" if d_psnr > -0.05 else "falls short of")

    def rel(p: str) -> str:
        return str(Path(p).resolve().relative_to(out)) if p else p

    lines = [
        "# tascmt demo report", "",
        "**Data.** The MNI ICBM152 2009a nonlinear symmetric T1 template shipped inside the nilearn wheel — "
        "an *average of 152 subjects*, not a patient scan, smoother than any single MRI. Its axial slabs "
        f"are used as {cfg.n_slabs} pseudo-patients ({cfg.guard} slices discarded between slabs), split "
        "7:1:2 by slab. Label: grey-matter probability > 0.5.", "",
        f"**Protocol.** Each sample is a triplet of *acquired* slices: inputs X1 and X3, {cfg.gap_mm:g} mm "
        "either side of the target X2 (the 1 mm template, so the inputs are "
        f"{2 * cfg.gap_mm:g} mm apart: a {2 * cfg.gap_mm:g} mm thick-slice scan up-sampled ×2). Native "
        f"in-plane pixels (197×233 at 1 mm): the model trains on random {cfg.size}×{cfg.size} tiles and "
        "predicts whole slices by blending overlapping tiles. Min–max normalisation over the two whole "
        "input slices only. Triplets per split (all / used): "
        + ", ".join(f"{k} {v.get('all')}/{v.get('selected')}" for k, v in counts.items()) + ".", "",
        f"**Model.** `{cfg.model}` size `{cfg.model_size}` with {json.dumps(cfg.model_overrides)}, loss "
        f"balancing `{cfg.balancer}`, AdamW lr {cfg.lr:g}, seed {cfg.seed}; trained for "
        f"{timings.get('train_s', 0) / 60:.1f} min "
        f"on the CPU ({result.global_step} steps, stop: {result.stop_reason}). One seed: differences "
        "below are not tested for significance (`tascmt experiment` runs several seeds).", "",
        *whole_volume_markdown(wv),
        *([f"![coronal reformat]({rel(figures['reformat_coronal'])})", ""] if figures.get("reformat_coronal")
          else []),
        f"On whole test volumes at native resolution the model **{verdict_native}** linear interpolation "
        f"({d_native:+.2f} dB PSNR on the synthesised slices).", "",
        f"## Per triplet, whole native slices ({summary.get('n_triplets', '?')} test triplets)", "",
        "| method | PSNR (dB) | SSIM | EdgeSSIM | LPIPS |", "|---|---|---|---|---|",
        f"| TASC-SwinMT ({cfg.model_size}) | {_f(model_i.get('psnr'), 2)} | {_f(model_i.get('ssim'))} | "
        f"{_f(model_i.get('edge_ssim'))} | {_f(model_i.get('lpips'))} |",
        f"| linear interpolation (X1+X3)/2 | {_f(lin_i.get('psnr'), 2)} | {_f(lin_i.get('ssim'))} | "
        f"{_f(lin_i.get('edge_ssim'))} | {_f(lin_i.get('lpips'))} |", "",
        f"Per triplet the model **{verdict}** linear interpolation ({d_psnr:+.2f} dB PSNR). LPIPS needs "
        "ImageNet VGG16 weights that cannot be downloaded here; it is reported only when weight files are "
        "given (`tascmt evaluate --lpips-vgg ... --lpips-lin ...`).", "",
    ]
    if seg:
        fa, y2 = seg.get("frame_avg", {}), seg.get("y2", {})
        gd = seg.get("global_dice", {})
        lines += [
            "## Grey-matter segmentation", "",
            "| method | Dice (Y1,Y2,Y3 avg) | Dice Y2 (middle) | IoU Y2 | Precision Y2 | Recall Y2 | "
            "global Dice Y2 |", "|---|---|---|---|---|---|---|",
            f"| TASC-SwinMT — Y2 from X1, X3 only | {_f(fa.get('dice'))} | {_f(y2.get('dice'))} | "
            f"{_f(y2.get('iou'))} | {_f(y2.get('precision'))} | {_f(y2.get('recall'))} | "
            f"{_f(gd.get('Y2'))} |",
            f"| intensity band on linear X̂2 (same inputs) | {_f(band['frame_avg_linear_y2']['dice'])} | "
            f"{_f(band['y2_linear']['dice'])} | {_f(band['y2_linear']['iou'])} | "
            f"{_f(band['y2_linear']['precision'])} | {_f(band['y2_linear']['recall'])} | "
            f"{_f(band['y2_linear']['global_dice'])} |",
            f"| intensity band on the real X2 (oracle) | – | {_f(band['y2_oracle']['dice'])} | "
            f"{_f(band['y2_oracle']['iou'])} | {_f(band['y2_oracle']['precision'])} | "
            f"{_f(band['y2_oracle']['recall'])} | {_f(band['y2_oracle']['global_dice'])} |", "",
            f"The band [{band['band']['low']:.3f}, {band['band']['high']:.3f}) of normalised intensity was "
            f"chosen on the training slices (pooled training Dice {band['band']['train_dice']:.3f}). "
            f"Temporal consistency TCS {_f(seg.get('tcs'))}, TCS_fg {_f(seg.get('tcs_fg'))}. "
            f"{seg.get('empty_convention', '')}.", "",
        ]
    figs = dict(figures)
    figs.update({Path(p).stem: str(out / "eval" / "figures" / p) for p in summary.get("figures", [])})
    if figs:
        lines += ["## Figures", ""]
        for name, p in figs.items():
            lines.append(f"- {name}: ![{name}]({rel(p)})")
        lines.append("")
    lines += [
        "## Files", "",
        "- `eval/summary.json`, `eval/per_triplet.csv`: every metric per test triplet, foreground and empty "
        "middle slices reported separately in `summary.json` (`subsets`);",
        "- `eval/band_baseline.json`: the intensity-band baseline;",
        "- `run/`: training logs (`epochs.csv`, `steps.csv`, TensorBoard), `best/` and `last/` checkpoints "
        "(safetensors + JSON), resolved config and provenance;",
        "- `config.json`, `provenance.json`: this demo's settings, library versions and git commit.", "",
        "Timings (s): " + ", ".join(f"{k[:-2]} {v:.0f}" for k, v in timings.items()) + ".", "",
    ]
    return "\n".join(lines)
