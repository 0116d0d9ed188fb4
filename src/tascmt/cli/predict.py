"""``tascmt predict``: thick-slice volumes in, thin-slice volumes and masks out (a thin wrapper over
:func:`tascmt.inference.predict_files`)."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
Up-sample volumes along their slice axis with a trained tascmt checkpoint and segment every output slice.

INPUT is a NIfTI file (.nii/.nii.gz), a folder of NIfTI files, or a DICOM series folder (or a folder of
DICOM series folders). OUTPUT is a folder receiving <case>_image.nii.gz, <case>_mask.nii.gz and, with
--save-probabilities, <case>_prob.nii.gz; for a single input it may be a .nii.gz file name (the image; the
mask and probabilities get _mask / _prob added). Outputs keep the input's orientation, header and first
slice position; the slice spacing is divided by the factor. They are written atomically, never over an
input, and existing files are replaced only with --overwrite.

How it works: the model synthesises the slice between every neighbouring pair of slices; acquired slices
are copied through unchanged (x2 gives 2n-1 slices). --factor 4, 8, ... repeats this on the result
(x f gives f(n-1)+1 slices); --target-spacing MM picks the smallest power of two f >= 2 whose spacing is
at most MM. Each pair is normalised exactly as in training, from its two slices only. In-plane, slices are
padded to a square and resized to the model's size and the outputs resized back (resize-and-restore, the
checkpoint's in-plane policy); tiling is not implemented. Masks: a synthesised slice gets its pair's
middle prediction; an acquired slice is predicted by the pair below and the pair above and the two
probabilities are averaged (end slices: one prediction); probabilities > 0.5 become the label.
A warning is printed when the slice spacing differs from the 2 x gap_mm the checkpoint was trained for by
more than --gap-tolerance. Prints the time per output slice.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict",
        help="up-sample thick-slice volumes and segment every slice",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-i", "--input", required=True, metavar="INPUT",
                   help="NIfTI file, folder of NIfTI files, or DICOM series folder")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="output folder (or a .nii.gz file name for a single input)")
    p.add_argument("-m", "--model", required=True, metavar="CHECKPOINT",
                   help="checkpoint written by tascmt train (folder or model.json / model.safetensors)")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--factor", type=int, default=None,
                       help="up-sampling factor along the slice axis: 2, 4, 8, ... (default 2)")
    scale.add_argument("--target-spacing", type=float, default=None, metavar="MM",
                       help="desired slice spacing; uses the smallest power-of-two factor reaching it")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--batch-size", type=int, default=8,
                   help="slice pairs per model call; bounds memory (default 8)")
    p.add_argument("--outputs", default="image,mask", choices=("image,mask", "image", "mask"), metavar="WHAT",
                   help="image,mask (default), image or mask: single-task checkpoints produce only one")
    p.add_argument("--save-probabilities", action="store_true",
                   help="also write foreground probabilities (<case>_prob.nii.gz, float32)")
    p.add_argument("--slice-axis", type=int, default=None, choices=(0, 1, 2),
                   help="canonical (RAS) axis to up-sample (default: the through-plane axis)")
    p.add_argument("--gap-tolerance", type=float, default=0.25, metavar="MM",
                   help="warn when slice spacing differs from 2 x the checkpoint's gap_mm by more (0.25)")
    p.add_argument("--tile-overlap", type=float, default=None, metavar="F",
                   help="fraction of a tile shared with its neighbour (native checkpoints; default 0.5; 0.25 "
                        "is about twice as fast)")
    p.add_argument("--tile-batch", type=int, default=None, metavar="N",
                   help="tiles per model call (native checkpoints; default 8)")
    p.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32",
                   help="fp32 (default), bf16 autocast, or auto (detects bf16 units and says what it chose)")
    p.add_argument("--resample-tilt", action="store_true",
                   help="resample gantry-tilted DICOM series onto a regular grid (default: refuse them)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    import warnings

    from tascmt.inference import predict_files

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # one line, no source
        print(f"tascmt predict: warning: {message}", file=sys.stderr)

    if args.precision != "fp32":
        from tascmt.utils.precision import resolve_precision

        chosen = resolve_precision(args.precision, args.device)[1]
        print(f"tascmt predict: precision {chosen}", file=sys.stderr)
    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = show
        summaries = predict_files(
            args.input,
            args.output,
            args.model,
            factor=args.factor,
            target_spacing=args.target_spacing,
            slice_axis=args.slice_axis,
            device=args.device,
            batch_size=args.batch_size,
            outputs=tuple(args.outputs.split(",")),
            save_probabilities=args.save_probabilities,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            gap_tol_mm=args.gap_tolerance,
            tile_overlap=args.tile_overlap,
            tile_batch=args.tile_batch,
            precision=args.precision,
            resample_tilt=args.resample_tilt,
        )
    n_out = sum(s["n_out"] for s in summaries)
    seconds = sum(s["seconds"] for s in summaries)
    if len(summaries) > 1:
        print(f"{len(summaries)} volumes, {n_out} output slices in {seconds:.1f} s "
              f"({1000 * seconds / max(n_out, 1):.0f} ms per output slice)")
    return 0
