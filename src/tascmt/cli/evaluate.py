"""``tascmt evaluate``: a checkpoint on a prepared split, or a folder of predicted masks against ground truth.

- ``tascmt evaluate -m CHECKPOINT --cache DIR [--split test] -o OUT``: per-triplet CSV, summary JSON and
  Markdown (with the linear-interpolation baseline, acquired/resampled and foreground/empty subsets).
  ``-m linear_interp`` / ``-m cubic`` evaluate the references without training; ``--cascade-seg SEG``
  evaluates the cascade -m → SEG. A checkpoint trained on data normalised, protocolled or in-plane processed
  differently from the cache is refused unless ``--allow-mismatch`` (then labelled in the report).
- ``tascmt evaluate --pred-dir P --gt-dir G -o OUT``: per-volume Dice, IoU, HD95 and surface Dice of NIfTI
  label maps matched by file name (nnU-Net style).
"""

from __future__ import annotations

import argparse
import json

from tascmt.cli._args import int_list
from tascmt.errors import ConfigError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a checkpoint on a prepared split, or predicted masks against ground truth",
        description="Checkpoint mode (-m, --cache): metrics per triplet and their summary, always with the "
        "linear-interpolation baseline. Folder mode (--pred-dir, --gt-dir): per-volume Dice, IoU, HD95 and "
        "surface Dice of NIfTI masks matched by name.",
    )
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="output folder")
    g = p.add_argument_group("checkpoint mode")
    g.add_argument("-m", "--model", metavar="CHECKPOINT",
                   help="checkpoint folder (e.g. RUN/best); or a reference evaluated without training: "
                   "'linear_interp' or 'cubic' (Catmull-Rom). A triplet-input segmenter is evaluated in the "
                   "oracle setting (given the real middle slice)")
    g.add_argument("--cascade-seg", metavar="SEG", default=None,
                   help="evaluate the cascade -m (an interpolation checkpoint, or linear_interp) → SEG (a "
                   "triplet-input segmenter checkpoint) in the cascade setting")
    g.add_argument("--cache", metavar="DIR", help="prepared triplet cache")
    g.add_argument("--split", choices=("train", "val", "test"), default="test", help="split (default test)")
    g.add_argument("--batch-size", type=int, default=4, help="triplets per forward pass (default 4)")
    g.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    g.add_argument("--fg-policy", default=None, help="foreground policy (default: the cache's, 'every')")
    g.add_argument("--lpips-vgg", default=None, metavar="FILE", help="VGG16 weights for LPIPS")
    g.add_argument("--lpips-lin", default=None, metavar="FILE", help="LPIPS v0.1 linear-head weights")
    g.add_argument("--no-figures", action="store_true", help="do not write qualitative figures")
    g.add_argument("--max-triplets", type=int, default=None, help="evaluate only the first N triplets")
    g.add_argument("--volumes", action=argparse.BooleanOptionalAction, default=None,
                   help="whole test volumes at native resolution through predict_volume, every thinning "
                   "offset (PSNR/SSIM/EdgeSSIM vs linear and cubic, Dice/HD95 per volume); default on for "
                   "pair models; --no-volumes for per-triplet figures only")
    g.add_argument("--flow", action=argparse.BooleanOptionalAction, default=True,
                   help="the flow-midpoint reference (TV-L1 optical flow, no training) in the whole-volume "
                   "figures (default on; --no-flow skips it: ~2 s per 512² slice pair)")
    g.add_argument("--allow-mismatch", action="store_true",
                   help="evaluate a checkpoint whose training data were normalised, protocolled or in-plane "
                   "processed differently from the cache (refused by default), labelled as such in the "
                   "report; a different gap is always evaluated, with a warning and a label")
    f = p.add_argument_group("folder mode")
    f.add_argument("--pred-dir", metavar="P", help="folder of predicted label maps (NIfTI)")
    f.add_argument("--gt-dir", metavar="G", help="folder of ground-truth label maps with the same names")
    f.add_argument("--labels", type=int_list, default=None, metavar="IDS",
                   help="label values to evaluate, e.g. 1,2 (default: every label in the ground truth)")
    f.add_argument("--tolerance-mm", type=float, default=1.0, help="surface Dice tolerance in mm (default 1)")
    return p


def run(args: argparse.Namespace) -> int:
    folder_mode = args.pred_dir is not None or args.gt_dir is not None
    ckpt_mode = args.model is not None or args.cache is not None
    if folder_mode == ckpt_mode:
        raise ConfigError("give either -m CHECKPOINT with --cache DIR, or --pred-dir with --gt-dir")
    if folder_mode:
        if args.pred_dir is None or args.gt_dir is None:
            raise ConfigError("folder mode needs both --pred-dir and --gt-dir")
        from tascmt.evaluation.folders import evaluate_folders

        summary = evaluate_folders(args.pred_dir, args.gt_dir, args.out, labels=args.labels,
                                   tolerance_mm=args.tolerance_mm)
        print(json.dumps({"n_cases": summary["n_cases"], "mean": summary["mean"]}, indent=2))
        return 0
    if args.model is None or args.cache is None:
        raise ConfigError("checkpoint mode needs both -m CHECKPOINT and --cache DIR")
    from pathlib import Path

    from tascmt.evaluation.resformer import evaluate_resformer, is_resformer_checkpoint

    # segmentation + classification on a 2-D image folder
    if Path(args.model).exists() and is_resformer_checkpoint(args.model):
        from tascmt.evaluation.resformer import to_markdown as resformer_markdown

        summary = evaluate_resformer(args.model, args.cache, args.out, split=args.split,
                                     batch_size=args.batch_size, device=args.device)
        print(resformer_markdown(summary))
        return 0
    from tascmt.evaluation.evaluate import evaluate_cascade, evaluate_checkpoint
    from tascmt.evaluation.summary import to_markdown

    if args.cascade_seg is not None:
        if args.volumes:  # None (default) or False is fine
            raise ConfigError("--volumes is not available for a cascade (whole volumes need a pair model)")
        summary = evaluate_cascade(
            args.model, args.cascade_seg, args.cache, split=args.split, out_dir=args.out,
            batch_size=args.batch_size, device=args.device, fg_policy=args.fg_policy,
            lpips_vgg=args.lpips_vgg, lpips_lin=args.lpips_lin, figures=not args.no_figures,
            max_triplets=args.max_triplets, progress=True, allow_mismatch=args.allow_mismatch,
        )
        print(to_markdown(summary))
        return 0
    summary = evaluate_checkpoint(
        args.model, args.cache, split=args.split, out_dir=args.out, batch_size=args.batch_size,
        device=args.device, fg_policy=args.fg_policy, lpips_vgg=args.lpips_vgg, lpips_lin=args.lpips_lin,
        figures=not args.no_figures, max_triplets=args.max_triplets, progress=True, volumes=args.volumes,
        flow=args.flow, allow_mismatch=args.allow_mismatch,
    )
    print(to_markdown(summary))
    return 0
