"""``tascmt prepare TASK OUT``: build the triplet cache (patient split, triplets, in-plane resize)."""

from __future__ import annotations

import argparse

from tascmt.cli._args import int_list
from tascmt.data.foreground import FG_POLICIES
from tascmt.errors import ConfigError


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
    p.add_argument("--size", type=int, default=256,
                   help="model in-plane size: the tile size with --inplane native (default 256)")
    p.add_argument("--gap-mm", type=float, default=1.25, help="input-to-target distance in mm (default 1.25)")
    p.add_argument("--tol-mm", type=float, default=0.25, help="gap tolerance in mm (default 0.25)")
    p.add_argument("--protocol", choices=("acquired", "resampled", "index"), default="acquired",
                   help="target slices: acquired (default), resampled along z, or index (the public code's "
                   "consecutive slices; with --fg-train fg_all --fg-eval fg_all it reproduces its selection)")
    p.add_argument("--fg-train", choices=FG_POLICIES, default="every",
                   help="foreground policy for training (default every: interpolation learns from every "
                        "triplet; segmentation sees foreground through tile oversampling)")
    p.add_argument("--fg-eval", choices=FG_POLICIES, default="every",
                   help="foreground policy for val/test (default every)")
    p.add_argument("--bg-fraction", type=float, default=0.25,
                   help="fg_plus_bg: fraction of background-only triplets kept (default 0.25)")
    p.add_argument("--norm", default=None,
                   help="ct_window, minmax_pair, percentile_pair or triplet (default: from the modality)")
    p.add_argument("--inplane", choices=("native", "pad_resize", "none"), default="native",
                   help="in-plane policy: native (default: slices keep their pixels, the model sees --size "
                        "tiles), pad_resize (the paper's protocol: every slice resized to --size), none")
    p.add_argument("--split-seed", type=int, default=42, help="patient split seed (default 42)")
    p.add_argument("--flow-base", action="store_true",
                   help="also store each triplet's flow midpoint (TV-L1 optical flow between its inputs), "
                        "for models trained with --override interp_base=flow (~0.3 s per 200² pair, ~2 s "
                        "per 512²)")
    p.add_argument("--resample-tilt", action="store_true",
                   help="resample gantry-tilted DICOM series onto a regular grid (default: refuse them)")
    p.add_argument("--allow-tiny-split", action="store_true",
                   help="with fewer than 3 cases, train on all of them (no validation or test split, no "
                        "early stopping) instead of refusing")
    p.add_argument("--labels", type=int_list, default=None, metavar="IDS",
                   help="label values counted as foreground, e.g. 1,2 (default: every label > 0)")
    p.add_argument("--slice-axis", type=int, choices=(0, 1, 2), default=None,
                   help="force the slice axis (default: from the voxel spacing)")
    p.add_argument("--modality", default=None, help="override the task's modality (CT, MRI)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def check_label_ids(labels: list[int] | None, task_path: str, modality: str | None = None) -> None:
    """Refuse ``--labels`` values outside 1..255 (0 is background, label maps are uint8) and, when the
    task's dataset.json declares its labels, values it does not declare.

    Raises:
        ConfigError: naming the option, the offending values and what is allowed.
    """
    if labels is None:
        return
    if not labels:
        raise ConfigError("--labels needs at least one label value, e.g. --labels 1,2")
    given = ",".join(str(v) for v in labels)
    bad = [v for v in labels if not 1 <= v <= 255]
    if bad:
        raise ConfigError(f"--labels {given}: label values are integers from 1 to 255 (0 is the "
                          f"background); out of range: {', '.join(str(v) for v in bad)}")
    from tascmt.io import read_task

    task = read_task(task_path, modality=modality)
    if not task.labels:
        return  # a plain folder: no declared labels to check against
    undeclared = [v for v in labels if v not in task.labels or v == 0]
    if undeclared:
        declared = ", ".join(f"{v} ({name})" for v, name in task.labels.items() if v > 0) or "none"
        raise ConfigError(f"--labels {given}: not a label of task {task.name!r}: "
                          f"{', '.join(str(v) for v in undeclared)} (its dataset.json declares {declared})")


def run(args: argparse.Namespace) -> int:
    from tascmt.data.prepare import prepare_dataset

    check_label_ids(args.labels, args.task, args.modality)
    prepare_dataset(
        args.task, args.out, size=args.size, gap_mm=args.gap_mm, tol_mm=args.tol_mm, protocol=args.protocol,
        fg_policy_train=args.fg_train, fg_policy_eval=args.fg_eval, bg_fraction=args.bg_fraction,
        norm=args.norm, inplane=args.inplane, split_seed=args.split_seed,
        allow_tiny_split=args.allow_tiny_split, flow_base=args.flow_base, resample_tilt=args.resample_tilt,
        label_values=args.labels,
        slice_axis=args.slice_axis, modality=args.modality, progress=not args.no_progress,
    )
    return 0
