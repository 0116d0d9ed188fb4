"""``tascmt prepare TASK OUT``: build the triplet cache (patient split, triplets, in-plane resize)."""

from __future__ import annotations

import argparse

from tascmt.cli._args import int_list
from tascmt.data.foreground import FG_POLICIES


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "prepare",
        help="build the triplet cache of a task (split, triplets, resize)",
        description="Check every case, split patients 7:1:2 (split seed, reused from OUT/splits.json), "
        "plan triplets (acquired target slices at ±gap mm by default), resize slices in-plane and write "
        "the cache with its manifest. Re-running with the same parameters is a no-op.",
    )
    p.add_argument("task", metavar="TASK", help="MSD task folder or image/label folder")
    p.add_argument("out", metavar="OUT", help="cache folder to write")
    p.add_argument("--size", type=int, default=256, help="model in-plane size (default 256)")
    p.add_argument("--gap-mm", type=float, default=1.25, help="input-to-target distance in mm (default 1.25)")
    p.add_argument("--tol-mm", type=float, default=0.25, help="gap tolerance in mm (default 0.25)")
    p.add_argument("--protocol", choices=("acquired", "resampled", "index"), default="acquired",
                   help="target slices: acquired (default), resampled along z, or index (the public code's "
                   "consecutive slices; with --fg-train fg_all --fg-eval fg_all it reproduces its selection)")
    p.add_argument("--fg-train", choices=FG_POLICIES, default="fg_plus_bg",
                   help="foreground policy for training (default fg_plus_bg)")
    p.add_argument("--fg-eval", choices=FG_POLICIES, default="every",
                   help="foreground policy for val/test (default every)")
    p.add_argument("--bg-fraction", type=float, default=0.25,
                   help="fg_plus_bg: fraction of background-only triplets kept (default 0.25)")
    p.add_argument("--norm", default=None,
                   help="ct_window, minmax_pair, percentile_pair or triplet (default: from the modality)")
    p.add_argument("--inplane", choices=("pad_resize", "none"), default="pad_resize",
                   help="in-plane policy (default pad_resize)")
    p.add_argument("--split-seed", type=int, default=42, help="patient split seed (default 42)")
    p.add_argument("--labels", type=int_list, default=None, metavar="IDS",
                   help="label values counted as foreground, e.g. 1,2 (default: every label > 0)")
    p.add_argument("--slice-axis", type=int, choices=(0, 1, 2), default=None,
                   help="force the slice axis (default: from the voxel spacing)")
    p.add_argument("--modality", default=None, help="override the task's modality (CT, MRI)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    from tascmt.data.prepare import prepare_dataset

    prepare_dataset(
        args.task, args.out, size=args.size, gap_mm=args.gap_mm, tol_mm=args.tol_mm, protocol=args.protocol,
        fg_policy_train=args.fg_train, fg_policy_eval=args.fg_eval, bg_fraction=args.bg_fraction,
        norm=args.norm, inplane=args.inplane, split_seed=args.split_seed, label_values=args.labels,
        slice_axis=args.slice_axis, modality=args.modality, progress=not args.no_progress,
    )
    return 0
