"""The learning curve a user can expect on a CPU: one training run, evaluated at native resolution at
several points of its budget, against linear interpolation and the flow-midpoint reference.

One run of ``tasc_swinmt`` size ``small`` (residual head correcting the ``--interp-base``, stable init,
lr 1e-3, cosine over the whole budget, epochs of 100 steps) for ``--minutes``; at the end of the first epoch
past each mark (default 5, 10, 20, 40 minutes) the current weights are saved, and each snapshot is then
evaluated on whole test volumes at every thinning offset (``tascmt.evaluation.volume_eval``). Datasets:
``demo`` (the MNI152 slabs of ``tascmt demo``: an average of 152 subjects, 2 mm gap) or ``ct`` (the CT lung
phantom, 192² slices, 2.5 mm gap).

Usage: ``python benchmarks/bench_learning_curve.py --dataset demo|ct [--minutes 40] [--threads 1]``
Writes ``benchmarks/results/learning_curve_<dataset>_<base>.json``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _data(dataset: str, work: Path, flow: bool) -> tuple[Path, float]:
    from tascmt.data.prepare import prepare_dataset

    if dataset == "demo":
        from tascmt.data.mni import build_mni_task

        task, gap = build_mni_task(work / "MNI152Slabs", n_slabs=6, guard=2), 2.0
    else:
        from tascmt.data.synth import make_synthetic_task

        task, gap = work / "Task06_LungPhantom", 2.5
        if not (task / "dataset.json").exists():
            make_synthetic_task(task, "lung", n_cases=10, size=192, n_slices=40, seed=0, dz=1.25)
    cache = work / ("cache_flow" if flow else "cache")
    prepare_dataset(task, cache, size=128, gap_mm=gap, progress=False, verbose=False, flow_base=flow)
    return cache, gap


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=("demo", "ct"), required=True)
    ap.add_argument("--minutes", type=float, default=40.0)
    ap.add_argument("--marks", default="5,10,20,40")
    ap.add_argument("--interp-base", choices=("linear", "flow"), default="flow")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from tascmt.evaluation.volume_eval import evaluate_volumes
    from tascmt.training import TrainConfig, checkpointing, train
    from tascmt.training.trainer import Trainer
    from tascmt.utils.atomic import write_json_atomic

    work = (args.work or Path(f"runs/learning_curve_{args.dataset}")).resolve()
    cache, _ = _data(args.dataset, work, args.interp_base == "flow")
    marks = [float(m) for m in args.marks.split(",")]
    snaps: list[dict] = []
    run_dir = work / f"run_{args.interp_base}_{args.minutes:g}min_seed{args.seed}"

    class SnapshotTrainer(Trainer):
        def on_epoch_end(self, epoch: int, record: dict) -> None:
            elapsed = (time.monotonic() - self._start_time) / 60.0
            due = [m for m in marks if elapsed >= m and all(s["mark"] != m for s in snaps)]
            if due and self.dist.is_main:
                folder = run_dir / f"snapshot_{due[0]:g}min"
                folder.mkdir(parents=True, exist_ok=True)
                self.save_model_files(folder, checkpointing._model_extra(self))
                for m in due:
                    snaps.append({"mark": m, "minutes": elapsed, "step": self.state.global_step,
                                  "folder": str(folder)})

    t0 = time.perf_counter()
    result = train(TrainConfig(
        cache_dir=str(cache), out_dir=str(run_dir), model="tasc_swinmt", size="small",
        model_overrides={"interp_base": args.interp_base}, lr=1e-3, batch_size=2, steps_per_epoch=100,
        epochs=10_000, patience=0, max_minutes=args.minutes, num_workers=0, device="cpu", progress=False,
        seed=args.seed), trainer_cls=SnapshotTrainer)
    train_s = time.perf_counter() - t0
    final = {"mark": args.minutes, "minutes": train_s / 60.0, "step": result.global_step,
             "folder": str(result.last_checkpoint)}
    if all(s["mark"] != args.minutes for s in snaps):
        snaps.append(final)
    rows, refs = [], None
    for s in sorted(snaps, key=lambda s: s["mark"]):
        wv = evaluate_volumes(s["folder"], cache, split="test", flow=refs is None)
        m = wv["mean"]
        if refs is None:
            keys = ("linear_psnr_synth", "flow_psnr_synth", "cubic_psnr_synth", "linear_edge_ssim_synth",
                    "flow_edge_ssim_synth", "flow_dice_synth")
            refs = {k: m.get(k) for k in keys}
        rows.append({**s, "psnr": m.get("psnr_synth"), "ssim": m.get("ssim_synth"),
                     "edge_ssim": m.get("edge_ssim_synth"), "dice": m.get("dice"),
                     "dice_synth": m.get("dice_synth"), "n_synth": wv["n_synth"],
                     "gain_over_linear_db": m["psnr_synth"] - refs["linear_psnr_synth"],
                     "gain_over_flow_db": m["psnr_synth"] - refs["flow_psnr_synth"]})
    out = {"dataset": args.dataset, "interp_base": args.interp_base, "minutes": args.minutes,
           "seed": args.seed, "references": refs, "rows": rows, "stop_reason": result.stop_reason,
           "threads": torch.get_num_threads(), "load_average_1m_at_end": os.getloadavg()[0]}
    path = RESULTS / f"learning_curve_{args.dataset}_{args.interp_base}.json"
    write_json_atomic(path, out)
    print(f"{args.dataset}: linear {refs['linear_psnr_synth']:.2f} dB, flow {refs['flow_psnr_synth']:.2f} dB")
    for r in rows:
        print(f"  {r['minutes']:5.1f} min, step {r['step']:5d}: PSNR {r['psnr']:.2f} dB "
              f"({r['gain_over_linear_db']:+.2f} vs linear, {r['gain_over_flow_db']:+.2f} vs flow), EdgeSSIM "
              f"{r['edge_ssim']:.4f}, Dice {r['dice']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
