"""``tascmt synth OUT``: write a small phantom task (MSD layout) for tests and demos."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "synth",
        help="write a small synthetic (phantom) task in the MSD layout",
        description="Write a phantom task: 'heart' (MRI-like, 1.25 mm pixels, 1.37 mm slices, a moving "
        "left-atrium-like blob) or 'lung' (CT-like in HU, tumours; slice spacing cycling 0.625/1.25/2.5 mm "
        "per case). Deterministic from --seed. Not patient data.",
    )
    p.add_argument("out", metavar="OUT", help="task folder to create")
    p.add_argument("--task", choices=("heart", "lung"), default="heart", help="phantom kind (default heart)")
    p.add_argument("--cases", type=int, default=10, help="number of patients (default 10)")
    p.add_argument("--size", type=int, default=64, help="in-plane size in voxels (default 64)")
    p.add_argument("--slices", type=int, default=24, help="slices per volume (default 24)")
    p.add_argument("--dz", type=float, default=None, help="slice spacing in mm for every case "
                   "(default: 1.37 heart; cycling 0.625/1.25/2.5 lung)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return p


def run(args: argparse.Namespace) -> int:
    from tascmt.data.synth import make_synthetic_task

    out = make_synthetic_task(args.out, task=args.task, n_cases=args.cases, size=args.size,
                              n_slices=args.slices, seed=args.seed, dz=args.dz)
    print(f"wrote synthetic {args.task} task with {args.cases} cases ({args.size}×{args.size}×{args.slices}) "
          f"to {out}")
    return 0
