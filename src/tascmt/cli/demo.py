"""``tascmt demo``: prepare, train, evaluate and report on the real-data default (MNI152 template)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from tascmt.demo.run import DemoConfig

    d = DemoConfig()
    p = sub.add_parser(
        "demo",
        help="end-to-end demo on the MNI152 template shipped with nilearn",
        description="Build an MSD task from the MNI152 2009a template (an average of 152 subjects, shipped "
        "inside the nilearn wheel), prepare triplets, train the small TASC-SwinMT on the CPU within a time "
        "budget, evaluate it against linear interpolation and an intensity-band segmentation baseline, and "
        "write a report folder.",
    )
    p.add_argument("-o", "--out", default=d.out_dir, help="output folder (default: %(default)s)")
    p.add_argument("--minutes", type=float, default=d.minutes,
                   help="training wall-time budget in minutes (default: %(default)s)")
    p.add_argument("--size", type=int, default=d.size, help="in-plane model size (default: %(default)s)")
    p.add_argument("--gap-mm", type=float, default=d.gap_mm,
                   help="distance of each input slice from the target (default: %(default)s)")
    p.add_argument("--interp-output", choices=("direct", "residual"),
                   default=d.model_overrides.get("interp_output", "direct"),
                   help="interpolation head formulation (default: %(default)s)")
    p.add_argument("--init", choices=("paper", "stable"), default=d.model_overrides.get("init", "paper"),
                   help="model initialisation (default: %(default)s; see TascConfig)")
    p.add_argument("--lr", type=float, default=d.lr, help="AdamW learning rate (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--interp-base", choices=("linear", "flow"), default=d.interp_base,
                   help="what the model's correction is added to: the linear average or the flow midpoint "
                        "(default: %(default)s)")
    p.add_argument("--steps-per-epoch", type=int, default=d.steps_per_epoch,
                   help="optimiser steps between validations (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def run(args: argparse.Namespace) -> int:
    from tascmt.demo.run import DemoConfig, run_demo

    d = DemoConfig()
    cfg = DemoConfig(out_dir=args.out, minutes=args.minutes, size=args.size, gap_mm=args.gap_mm,
                     model_overrides={**d.model_overrides, "interp_output": args.interp_output,
                                      "init": args.init},
                     lr=args.lr, seed=args.seed, steps_per_epoch=args.steps_per_epoch,
                     interp_base=args.interp_base,
                     progress=not args.no_progress)
    run_demo(cfg)
    return 0
