"""Prediction on files: NIfTI file(s) or DICOM series in, ``<case>_image/_mask/_prob.nii.gz`` out.

This is what ``tascmt predict`` runs. Every output is written atomically, in the input's original
orientation and header, with the slice spacing divided by the factor and both end slices (so the first
slice's position) kept; nothing is ever written over an input, and existing outputs are only replaced
with ``overwrite=True``. All output paths, and that the output folder can be written, are checked before
the first volume is processed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tascmt.errors import ConfigError, InputError
from tascmt.inference.predict import OUTPUTS, predict_volume
from tascmt.inference.predictor import Predictor
from tascmt.utils.writable import check_writable_folder


@dataclass
class CasePaths:
    """One input and the files written for it (None: not written)."""

    case_id: str
    input: Path
    image: Path | None
    mask: Path | None
    prob: Path | None

    def outputs(self) -> list[Path]:
        return [p for p in (self.image, self.mask, self.prob) if p is not None]


def find_inputs(path: str | Path) -> list[Path]:
    """The volumes under ``path``: a NIfTI file; a folder of NIfTI files; a DICOM series folder; or a
    folder whose sub-folders are DICOM series."""
    from tascmt.io.nifti import is_nifti_path

    path = Path(path)
    if not path.exists():
        raise InputError("input not found", path=path)
    if path.is_file():
        if not is_nifti_path(path):
            raise InputError("not a NIfTI file (.nii / .nii.gz) or a DICOM series folder", path=path)
        return [path]
    entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))  # skips AppleDouble ._*
    niftis = [p for p in entries if p.is_file() and is_nifti_path(p)]
    if niftis:
        return niftis
    files = [p for p in entries if p.is_file()]
    subdirs = [p for p in entries if p.is_dir()]
    if not files and subdirs:
        return subdirs  # one DICOM series per sub-folder
    return [path]  # a DICOM series folder (load_volume checks it)


def plan_outputs(
    inputs: list[Path],
    output: str | Path,
    outputs: tuple[str, ...] = OUTPUTS,
    save_probabilities: bool = False,
    overwrite: bool = False,
) -> list[CasePaths]:
    """Output paths for every input; raises before anything is computed when they clash.

    ``output`` is a folder (created if needed; ``<case>_image.nii.gz``, ``<case>_mask.nii.gz``,
    ``<case>_prob.nii.gz``) or, for a single input, a ``.nii``/``.nii.gz`` file that receives the image (the
    mask when only masks are produced), with ``_mask`` / ``_prob`` added to its name for the others.
    """
    from tascmt.io.nifti import case_id_from_path, is_nifti_path

    output = Path(output)
    plans = []
    if is_nifti_path(output):
        if len(inputs) != 1:
            raise ConfigError(f"output {output} is a file but there are {len(inputs)} inputs; give a folder")
        if output.is_dir():
            raise ConfigError(f"output {output} is an existing folder but is named like a NIfTI file")
        stem = case_id_from_path(output)
        ext = ".nii.gz" if output.name.lower().endswith(".nii.gz") else ".nii"
        main_kind = "image" if "image" in outputs else "mask"
        named = {k: output.with_name(f"{stem}_{k}{ext}") for k in ("mask", "prob")}
        named[main_kind] = output
        plans.append(_case(case_id_from_path(inputs[0]), inputs[0], named, outputs, save_probabilities))
    else:
        if output.exists() and not output.is_dir():
            raise ConfigError(f"output {output} exists and is not a folder (or a .nii/.nii.gz path)")
        for inp in inputs:
            cid = case_id_from_path(inp)
            named = {k: output / f"{cid}_{k}.nii.gz" for k in ("image", "mask", "prob")}
            plans.append(_case(cid, inp, named, outputs, save_probabilities))
    _check_plans(plans, overwrite)
    return plans


def _case(cid: str, inp: Path, named: dict, outputs: tuple[str, ...], save_prob: bool) -> CasePaths:
    return CasePaths(
        case_id=cid,
        input=inp,
        image=named["image"] if "image" in outputs else None,
        mask=named["mask"] if "mask" in outputs else None,
        prob=named["prob"] if save_prob and "mask" in outputs else None,
    )


def _check_plans(plans: list[CasePaths], overwrite: bool) -> None:
    inputs = [p.input.resolve() for p in plans]
    seen: dict[Path, Path] = {}
    for plan in plans:
        for out in plan.outputs():
            dest = out.resolve()
            for src in inputs:
                if dest == src or (src.is_dir() and src in dest.parents):
                    raise InputError(f"refusing to write {out} over or into the input {src}", path=out)
            if dest in seen:
                raise ConfigError(f"inputs {seen[dest]} and {plan.input} would both write {out}")
            seen[dest] = plan.input
            if out.exists() and not overwrite:
                raise InputError("output exists; use --overwrite to replace it", path=out)


def predict_files(
    input: str | Path,
    output: str | Path,
    checkpoint: str | Path | Predictor,
    *,
    factor: int | None = None,
    target_spacing: float | None = None,
    slice_axis: int | None = None,
    device: str = "cpu",
    batch_size: int = 8,
    outputs: tuple[str, ...] = OUTPUTS,
    save_probabilities: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    gap_tol_mm: float = 0.25,
    echo: Callable[[str], None] | None = print,
    tile_overlap: float | None = None,
    tile_batch: int | None = None,
    precision: str | None = None,
    resample_tilt: bool = False,
) -> list[dict]:
    """Predict every volume under ``input`` and write the results under ``output``.

    Returns:
        One summary dict per case: ``case_id``, ``input``, ``outputs`` (paths), ``n_in`` / ``n_out``
        (slices), ``factor``, ``spacing`` (output, canonical), ``seconds`` (prediction), ``s_per_slice``.
    """
    from tascmt.io.load import load_volume
    from tascmt.io.nifti import is_nifti_path
    from tascmt.io.orientation import upsampled_affine
    from tascmt.io.save import save_like

    outputs = tuple(outputs)
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    if Path(input).is_dir() and Path(output).resolve() == Path(input).resolve():
        raise ConfigError(f"output folder {output} is the input folder; choose another (outputs would be "
                          "mixed with the inputs)")
    plans = plan_outputs(find_inputs(input), output, outputs, save_probabilities, overwrite)
    check_writable_folder(Path(output).parent if is_nifti_path(output) else output)  # before any work
    if isinstance(checkpoint, Predictor):
        predictor = checkpoint
    else:
        predictor = Predictor.from_checkpoint(checkpoint, device)
    summaries = []
    for plan in plans:
        vol = load_volume(plan.input, resample_tilt=resample_tilt)
        t0 = time.perf_counter()
        res = predict_volume(
            vol,
            model=predictor,
            factor=factor,
            target_spacing=target_spacing,
            slice_axis=slice_axis,
            batch_size=batch_size,
            device=device,
            return_probabilities=plan.prob is not None,
            progress=progress,
            outputs=outputs,
            gap_tol_mm=gap_tol_mm,
            tile_overlap=tile_overlap,
            tile_batch=tile_batch,
            precision=precision,
        )
        seconds = time.perf_counter() - t0
        affine = upsampled_affine(vol.affine, res.slice_axis, res.factor)
        for path, arr, dtype in (
            (plan.image, res.image, np.float32),
            (plan.mask, res.mask, np.uint8),
            (plan.prob, res.probabilities, np.float32),
        ):
            if path is not None:
                save_like(arr, vol, path, affine=affine, dtype=dtype)
        n_in, n_out = vol.shape[res.slice_axis], res.n_slices
        summary = {
            "case_id": plan.case_id,
            "input": str(plan.input),
            "outputs": [str(p) for p in plan.outputs()],
            "n_in": int(n_in),
            "n_out": int(n_out),
            "factor": res.factor,
            "spacing": res.spacing,
            "seconds": seconds,
            "s_per_slice": seconds / n_out,
        }
        summaries.append(summary)
        if echo is not None:
            dz_in, dz_out = vol.spacing[res.slice_axis], res.spacing[res.slice_axis]
            echo(
                f"{plan.case_id}: {n_in} → {n_out} slices (×{res.factor}, slice spacing {dz_in:.3g} → "
                f"{dz_out:.3g} mm) in {seconds:.1f} s, {1000 * seconds / n_out:.0f} ms per output slice; "
                "wrote " + ", ".join(p.name for p in plan.outputs())
            )
        del vol, res
    return summaries
