"""``tascmt verify TASK_DIR``: check a dataset before prepare/train (one line per problem)."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "verify",
        help="check a dataset (MSD folder or image/label folder) before prepare/train",
        description="Load every case and check it: readable, 3D, finite, non-constant, sane affine, "
        "image/label geometry, label values declared, >= 3 slices through-plane. "
        "Exit status 1 if any problem is found.",
    )
    p.add_argument("task_dir", metavar="TASK_DIR",
                   help="MSD task folder (dataset.json) or image/label folder")
    p.add_argument("--modality", default=None, help="modality of a plain folder (e.g. CT, MRI)")
    p.add_argument("--headers-only", action="store_true",
                   help="check headers and geometry only, without reading voxel values (faster)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(args) -> int:
    from tascmt.io import read_task, verify_task

    task = read_task(args.task_dir, modality=args.modality)
    problems = verify_task(task, check_values=not args.headers_only, progress=not args.no_progress)
    for line in problems:
        print(line)
    n = len(task.cases)
    if problems:
        print(f"{len(problems)} problem(s) in {n} case(s) of {task.name}", file=sys.stderr)
        return 1
    print(f"OK: {n} case(s) of {task.name} ({task.primary_modality}) verified")
    return 0
