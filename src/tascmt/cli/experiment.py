"""``tascmt experiment PRESET --cache DIR -o OUT``: configurations × seeds → paper-style tables, figures.

Presets include the paper's comparison tables (docs/design.md §9: ``interp_baselines``, ``seg_baselines``,
``mtl_methods``) besides the ablation and training-choice studies; they run on any prepared cache.
"""

from __future__ import annotations

import argparse

from tascmt.cli._args import key_value
from tascmt.experiments.presets import PRESETS


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "experiment",
        help="run a named experiment (ablation, balancing, ...) over several seeds and tabulate it",
        description="Train every configuration of PRESET for every seed on the cache's split, evaluate "
        "each best checkpoint and write mean ± std tables with Welch's t-test against the reference "
        "configuration (* p<0.05, ** p<0.01, *** p<0.001). Finished runs in OUT (or --runs) are reused. "
        "References (linear, cubic) are evaluated without training; in seg_baselines each segmenter is "
        "reported in the oracle setting (given the real middle slice) and the cascade setting (given an "
        "interpolation baseline's output) as separate rows. "
        f"Presets: {', '.join(sorted(PRESETS))}; or a JSON spec file.",
    )
    p.add_argument("preset", metavar="PRESET", help="preset name or JSON spec file")
    p.add_argument("--cache", required=True, metavar="DIR", help="prepared triplet cache")
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="experiment folder")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="run seeds (default 0-4)")
    p.add_argument("--size", choices=("tiny", "small", "paper"), default="small", help="model size")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (default: training default)")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget per run")
    p.add_argument("--max-steps", type=int, default=None, help="optimiser steps per run")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="shorten every epoch to N steps")
    p.add_argument("--batch-size", type=int, default=None, help="training batch size")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate for every run (default: 1e-3, 1e-4 for the paper size)")
    p.add_argument("--model-override", action="append", default=[], metavar="KEY=VALUE", type=key_value,
                   help="model config value for every run (repeatable; JSON values, e.g. "
                   "interp_output=residual); a configuration's own model_overrides replace these")
    p.add_argument("--split", choices=("val", "test"), default="test", help="evaluated split (default test)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--num-workers", type=int, default=None, help="DataLoader workers for training")
    p.add_argument("--no-figures", action="store_true", help="do not write figures")
    p.add_argument("--lpips-vgg", default=None, metavar="FILE", help="VGG16 weights for LPIPS")
    p.add_argument("--lpips-lin", default=None, metavar="FILE", help="LPIPS v0.1 linear-head weights")
    p.add_argument("--volumes", action=argparse.BooleanOptionalAction, default=None,
                   help="evaluate whole test volumes at native resolution through predict_volume (every "
                   "thinning offset; model, linear, cubic and flow rows; 3-D Dice, HD95); default: on for "
                   "models of the input pair on an acquired-protocol cache")
    p.add_argument("--runs", default=None, metavar="DIR",
                   help="folder of the training runs (default OUT/runs); experiments given the same DIR "
                   "share their runs: a row trained for one is reused by another with the same model, "
                   "settings, data and evaluation, whatever its label")
    return p


def run(args: argparse.Namespace) -> int:
    from tascmt.experiments.runner import run_experiment

    budget = {k: v for k, v in (("epochs", args.epochs), ("max_minutes", args.max_minutes),
                                ("max_steps", args.max_steps), ("max_steps_per_epoch", args.steps_per_epoch))
              if v is not None}
    options = {k: v for k, v in (("batch_size", args.batch_size), ("num_workers", args.num_workers),
                                 ("lr", args.lr)) if v is not None}
    if args.model_override:
        options["model_overrides"] = dict(args.model_override)
    result = run_experiment(args.preset, args.cache, args.out, seeds=args.seeds, budget=budget,
                            size=args.size, train_options=options, split=args.split, device=args.device,
                            figures=not args.no_figures, runs_dir=args.runs,
                            eval_options={"lpips_vgg": args.lpips_vgg, "lpips_lin": args.lpips_lin,
                                          "volumes": args.volumes})
    print(result.tables["markdown"].read_text(encoding="utf-8"))
    return 0
