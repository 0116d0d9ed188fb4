"""``tascmt train --cache DIR --out RUN_DIR``: train a model on a triplet cache (or ``--resume RUN_DIR``).

A thin wrapper over :func:`tascmt.training.train` / :func:`tascmt.training.resume`. The same command
under ``torchrun --nproc_per_node N`` trains with DDP.
"""

from __future__ import annotations

import argparse
from typing import Any

from tascmt.cli._args import key_value
from tascmt.errors import ConfigError

# (flag, TrainConfig field, type, help); every default is TrainConfig's (None here = "not given").
_OPTIONS: tuple[tuple[str, str, Any, str], ...] = (
    ("--model", "model", str, "registered model name (default tasc_swinmt)"),
    ("--size", "size", str, "model size: paper, small, tiny (default small)"),
    ("--epochs", "epochs", int, "epochs, also the cosine T_max without a budget (default 100)"),
    ("--steps-per-epoch", "steps_per_epoch", lambda v: "data" if v == "data" else int(v),
     "optimiser steps per epoch, sampled with replacement (default 250); 'data' = one pass (paper)"),
    ("--min-epochs", "min_epochs", int, "validation rounds before early stopping may act (default 0)"),
    ("--lr-schedule", "lr_schedule", str, "auto (default: cosine over --max-steps/--max-minutes when given, "
     "else over the epochs), budget or epochs"),
    ("--batch-size", "batch_size", int, "samples per step and process (default 2)"),
    ("--lr", "lr", float, "AdamW learning rate (default 1e-4 for --size paper, 1e-3 otherwise)"),
    ("--weight-decay", "weight_decay", float, "AdamW weight decay (default 1e-5)"),
    ("--min-lr", "min_lr", float, "cosine schedule's final lr (default 1e-6)"),
    ("--patience", "patience", int, "early-stopping patience in validation rounds, 0 = off (default 10)"),
    ("--grad-clip", "grad_clip", float, "gradient-norm clipping, <= 0 = off (default 1.0)"),
    ("--balancer", "balancer", str, "kendall (default), paper, fixed, gradnorm, dwa"),
    ("--balancer-lr", "balancer_lr", float, "lr of the balancer's group (default: the strategy's own; "
     "Kendall 1e-2)"),
    ("--interp-alpha", "interp_alpha", float, "L1 weight α in α·L1 + (1−α)·MSE (default 0.4)"),
    ("--seg-loss", "seg_loss", str, "bce (default) or dice_bce"),
    ("--seed", "seed", int, "run seed: initialisation, sampling, augmentation (default 0)"),
    ("--fold", "fold", int, "cross-validation fold from the cache's splits.json (default: fixed split)"),
    ("--max-minutes", "max_minutes", float, "time budget; stops cleanly and saves last/ and best/"),
    ("--max-steps", "max_steps", int, "stop after this many steps in total"),
    ("--max-steps-per-epoch", "max_steps_per_epoch", int, "shorten every epoch (quick runs)"),
    ("--num-workers", "num_workers", int, "DataLoader workers (default: 0 on CPU, up to 4 on CUDA)"),
    ("--device", "device", str, "auto (default), cpu or cuda"),
    ("--val-every", "val_every", int, "validate every N epochs (default 1)"),
    ("--checkpoint-every", "checkpoint_every", int,
     "also save last/ every N steps, 0 = only at epoch ends (default 200)"),
    ("--max-nonfinite", "max_nonfinite", int, "stop after N consecutive non-finite steps (default 5)"),
)
_FLAGS: tuple[tuple[str, str, bool, str], ...] = (
    ("--no-augment", "augment", False, "no training augmentation"),
    ("--no-amp", "amp", False, "no fp16 autocast on CUDA (never used on the CPU anyway)"),
    ("--no-progress", "progress", False, "no progress bar"),
    ("--no-tensorboard", "tensorboard", False, "no TensorBoard event files"),
    ("--ddp-find-unused", "ddp_find_unused", True, "DDP find_unused_parameters (variants with dead weights)"),
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="train a model on a triplet cache",
        description="Train (AdamW, cosine schedule over the epochs or the budget, Kendall loss balancing, "
        "early stopping on the sum of each task's validation loss relative to its first value) and write "
        "RUN_DIR: config.json, provenance.json, steps.csv, epochs.csv, "
        "tensorboard/, best/ and last/ checkpoints. Under torchrun it trains with DDP.",
    )
    p.add_argument("--cache", metavar="DIR", help="triplet cache from `tascmt prepare`")
    p.add_argument("--out", metavar="RUN_DIR", help="run folder to create")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its last/ checkpoint")
    for flag, field, typ, text in _OPTIONS:
        p.add_argument(flag, dest=field, type=typ, default=None, help=text)
    for flag, field, value, text in _FLAGS:
        p.add_argument(flag, dest=field, action="store_const", const=value, default=None, help=text)
    p.add_argument("--override", dest="model_overrides", type=key_value, action="append", default=None,
                   metavar="KEY=VALUE", help="model config override, e.g. --override img_size=128")
    p.add_argument("--balancer-arg", dest="balancer_kwargs", type=key_value, action="append", default=None,
                   metavar="KEY=VALUE", help="balancer option, e.g. --balancer-arg weights=[0.4,0.6]")
    return p


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields the user gave (others keep their defaults)."""
    out: dict[str, Any] = {}
    for _, field, _, _ in _OPTIONS:
        if getattr(args, field) is not None:
            value = getattr(args, field)
            out[field] = None if value == "data" else value  # --steps-per-epoch data: one-pass epochs
    for _, field, _, _ in _FLAGS:
        if getattr(args, field) is not None:
            out[field] = getattr(args, field)
    for field in ("model_overrides", "balancer_kwargs"):
        if getattr(args, field):
            out[field] = dict(getattr(args, field))
    return out


def run(args: argparse.Namespace) -> int:
    from tascmt.training import TrainConfig
    from tascmt.training.api import resume, train
    from tascmt.training.distributed import DistInfo

    options = options_from_args(args)
    if args.resume:
        if args.cache or args.out:
            raise ConfigError("--resume RUN_DIR continues a run with its saved config; do not combine "
                              "it with --cache or --out")
        result = resume(args.resume, **options)
    else:
        if not args.cache or not args.out:
            raise ConfigError("tascmt train needs --cache DIR and --out RUN_DIR (or --resume RUN_DIR)")
        from tascmt.training.resformer import with_defaults

        # ResFormer models train with their own defaults (docs/design.md §9) unless the user set them.
        result = train(TrainConfig(cache_dir=args.cache, out_dir=args.out, **with_defaults(options)))
    if DistInfo.from_env().is_main:
        best = min((h["val_loss"] for h in result.history if "val_loss" in h), default=None)
        tail = "" if best is None else f"; best validation loss {best:.6g}"
        print(f"training stopped ({result.stop_reason}) after {len(result.history)} epoch(s), "
              f"{result.global_step} steps{tail}")
        print(f"best checkpoint: {result.best_checkpoint}")
        print(f"last checkpoint: {result.last_checkpoint}")
    return 0
