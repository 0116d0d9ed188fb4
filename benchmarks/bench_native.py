"""Native-resolution comparison: a model trained for a CPU budget against linear (and cubic) interpolation.

Builds the CT lung phantom (MSD layout, HU, 192×192 slices — larger than the 128² tiles the model sees),
prepares it with the native in-plane policy, trains ``tasc_swinmt`` size ``small`` (residual head, stable
initialisation, lr 1e-3) for ``--minutes`` on the CPU, and evaluates every test volume at the scan's own
resolution with every thinning offset (``tascmt.evaluation.volume_eval``). Optionally adds the demo's
native figures (``--demo-dir``, the folder of a finished ``tascmt demo``).

Usage: ``python benchmarks/bench_native.py [--minutes 10] [--threads 1] [--interp-base linear|flow]
[--demo-dir tascmt_demo ...] [--out PATH]``. Writes ``benchmarks/results/native_<interp-base>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--work", type=Path, default=Path("runs/bench_native"))
    ap.add_argument("--demo-dir", type=Path, action="append", default=[],
                    help="a finished `tascmt demo` folder whose native figures to include (repeatable)")
    ap.add_argument("--interp-base", choices=("linear", "flow"), default="linear")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from tascmt.data.prepare import prepare_dataset
    from tascmt.data.synth import make_synthetic_task
    from tascmt.evaluation.volume_eval import evaluate_volumes
    from tascmt.training import TrainConfig, train
    from tascmt.utils.atomic import write_json_atomic

    work = args.work.resolve()
    task = work / "Task06_LungPhantom"
    if not (task / "dataset.json").exists():
        make_synthetic_task(task, "lung", n_cases=10, size=192, n_slices=40, seed=0, dz=1.25)
    flow = args.interp_base == "flow"
    cache = work / ("cache_flow" if flow else "cache")
    prepare_dataset(task, cache, size=128, gap_mm=2.5, progress=False, verbose=True, flow_base=flow)
    t0 = time.perf_counter()
    result = train(TrainConfig(
        cache_dir=str(cache), out_dir=str(work / f"run_{args.interp_base}_{args.minutes:g}min"),
        model="tasc_swinmt", size="small",
        model_overrides={"interp_output": "residual", "init": "stable", "interp_base": args.interp_base},
        lr=1e-3,
        batch_size=2, max_minutes=args.minutes, num_workers=0, device="cpu", progress=False, seed=0))
    train_s = time.perf_counter() - t0
    ct = evaluate_volumes(result.best_checkpoint, cache, split="test")
    ct.pop("reformat", None)
    out = {"ct_phantom": {"minutes": args.minutes, "interp_base": args.interp_base, "train_s": train_s,
                          "steps": result.global_step,
                          "stop_reason": result.stop_reason, "whole_volumes": ct},
           "threads": torch.get_num_threads(), "load_average_1m_at_end": os.getloadavg()[0]}
    for demo in args.demo_dir:
        summary = json.loads((demo / "demo_summary.json").read_text(encoding="utf-8"))
        out[f"demo:{demo.name}"] = {"whole_volumes": summary["evaluation"].get("whole_volumes"),
                                    "interp_base": summary["config"].get("interp_base", "linear"),
                                    "global_step": summary.get("global_step"),
                                    "timings": summary.get("timings")}
    args.out = args.out or RESULTS / f"native_{args.interp_base}.json"
    write_json_atomic(args.out, out)
    for name, entry in out.items():
        if isinstance(entry, dict) and entry.get("whole_volumes"):
            m = entry["whole_volumes"]["mean"]
            print(f"{name}: {entry['whole_volumes']['n_synth']} synthesised slices; PSNR model "
                  f"{m.get('psnr_synth'):.2f} dB, linear {m.get('linear_psnr_synth'):.2f} dB, cubic "
                  f"{m.get('cubic_psnr_synth'):.2f} dB, flow {m.get('flow_psnr_synth') or float('nan'):.2f} "
                  "dB; "
                  f"EdgeSSIM model {m.get('edge_ssim_synth'):.4f}, "
                  f"linear {m.get('linear_edge_ssim_synth'):.4f}; Dice {m.get('dice')}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
