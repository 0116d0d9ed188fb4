"""Volume prediction: thick-slice volume in, thin-slice volume and masks out.

The model sees every neighbouring pair of slices (k, k+1) and synthesises the slice between them; the
synthesised slices are interleaved with the acquired ones, which are copied through unchanged (×2 gives
2n−1 slices). Factors 4, 8, ... recurse on the result: each level runs the model on the neighbouring
pairs of the previous level's output and doubles the slice count again, so ×f gives f·(n−1)+1 slices.

Masks. Every output slice gets one. A slice synthesised by pair (k, k+1) gets that pair's Ŷ2. An acquired
interior slice k is predicted twice, as Ŷ3 of pair (k−1, k) and as Ŷ1 of pair (k, k+1): the two foreground
probabilities are averaged (a two-member ensemble; neither pair is privileged); the two end slices have a
single prediction. With factors above 2, a slice keeps the probability from the level that created it
(acquired slices: level 1, at the gap the model was trained for), so deeper levels only add Ŷ2 of their
new slices. Probabilities above 0.5 become the label value (1, or the checkpoint's label id).

Deeper levels run the model at half, a quarter, ... of the gap it was trained for; only the input's
spacing is compared with the checkpoint's ``gap_mm`` (a warning when 2·gap_mm is off by more than the
tolerance), and the in-plane pixel spacing with the training data's (a warning beyond 10 %). In-plane, a
``native`` checkpoint runs overlapping S×S tiles at the slices' own pixels and blends them
(:mod:`tascmt.inference.tiling`); a ``pad_resize`` checkpoint (the paper's protocol) resizes every slice to
the model size and back.

Memory. Pairs go through the model in batches of ``batch_size`` and results are written straight into
preallocated outputs, so memory beyond the output arrays does not grow with the number of slices: the
peak is the output arrays plus one batch of pairs and their tiles.

Nothing non-finite is returned: a model whose outputs contain NaN or Inf (e.g. damaged weights) raises
:class:`tascmt.errors.CheckpointError` before anything can be written.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tascmt.errors import CheckpointError, InputError
from tascmt.inference.factors import n_output_slices, resolve_factor
from tascmt.inference.predictor import Predictor

OUTPUTS = ("image", "mask")


#: Relative difference of in-plane pixel spacing (input vs training data) above which predict warns.
PIXEL_SPACING_TOL = 0.10


class SpacingWarning(UserWarning):
    """The input's slice or pixel spacing differs from the spacing the checkpoint was trained for."""


@dataclass
class PredictionResult:
    """Result of :func:`predict_volume`; arrays share the input's axis order, the slice axis up-sampled.

    Attributes:
        image: (X, Y, f·(n−1)+1) float32 in the input's intensity units, or None (mask-only).
        mask: same shape, uint8 label map (0 background, label id foreground), or None (image-only).
        probabilities: same shape, float32 foreground probabilities, when asked for.
        spacing: voxel spacing of the outputs (slice spacing divided by ``factor``), None if unknown.
        factor: the up-sampling factor used.
        slice_axis: the axis that was up-sampled.
        seconds: wall time of the prediction.
        affine: canonical (RAS) voxel-to-world affine of the outputs when the input was a
            :class:`tascmt.io.Volume` (slice axis scaled by 1/factor, voxel 0 in place); None for arrays.
        source: the input Volume (for :meth:`save`), None for arrays.
    """

    image: np.ndarray | None
    mask: np.ndarray | None
    probabilities: np.ndarray | None
    spacing: tuple[float, float, float] | None
    factor: int
    slice_axis: int = 2
    seconds: float = 0.0
    affine: np.ndarray | None = None
    source: Any = None

    @property
    def n_slices(self) -> int:
        arr = self.image if self.image is not None else self.mask
        return int(arr.shape[self.slice_axis])

    def save(self, image: str | Path | None = None, mask: str | Path | None = None,
             probabilities: str | Path | None = None) -> list[Path]:
        """Write the outputs as NIfTI in the input's original orientation and header, with the up-sampled
        affine (qform and sform each scaled along the slice axis); each file is written atomically and never
        over the input. Needs a result of a :class:`tascmt.io.Volume` input (``load_volume``)."""
        from tascmt.io.save import save_like

        if self.source is None or self.affine is None:
            raise ValueError("save() needs a prediction of a Volume (tascmt.io.load_volume); for an array "
                             "input, write result.image with your own affine")
        written = []
        for path, arr, dtype in ((image, self.image, np.float32), (mask, self.mask, np.uint8),
                                 (probabilities, self.probabilities, np.float32)):
            if path is None:
                continue
            if arr is None:
                raise ValueError(f"no output to write to {path} (it was not asked for)")
            save_like(arr, self.source, path, affine=self.affine, dtype=dtype)
            written.append(Path(path))
        return written


def predict_volume(
    volume: Any,
    spacing: Any = None,
    *args: Any,
    model: Any = None,
    factor: int | None = None,
    target_spacing: float | None = None,
    slice_axis: int | None = None,
    batch_size: int = 8,
    device: str = "cpu",
    return_probabilities: bool = False,
    progress: bool = True,
    outputs: tuple[str, ...] | list[str] = OUTPUTS,
    gap_tol_mm: float = 0.25,
    tile_overlap: float | None = None,
    tile_batch: int | None = None,
    precision: str | None = None,
    model_or_checkpoint: Any = None,
) -> PredictionResult:
    """Up-sample a volume along its slice axis and segment every output slice.

    Args:
        volume: a :class:`tascmt.io.Volume` (canonical RAS, from ``load_volume``) or an (X, Y, Z) array in
            intensity units (HU for CT).
        spacing: voxel sizes in mm of an array input (ignored for a Volume, which carries its own).
        model: (keyword only) checkpoint path, a :class:`Predictor`, a ``(model, meta)`` pair as returned by
            ``load_model``, or a bare model (then ``meta`` defaults apply and it must carry an in-plane
            size). A Predictor given here is never modified (options apply to a copy).
        factor: power of two ≥ 2 (default 2); ``target_spacing`` (mm) instead picks the smallest power of
            two f ≥ 2 with slice spacing / f ≤ target.
        slice_axis: the canonical axis to up-sample; default: the axis the checkpoint's training data was
            prepared with when that was set explicitly, else the spacing rule of
            :func:`tascmt.io.verify.through_plane_axis` (the odd one out of the spacings, else the largest).
        batch_size: slice pairs per model call (bounds memory).
        device: "cpu" or "cuda".
        return_probabilities: also return float32 foreground probabilities.
        progress: show a progress bar over slice pairs.
        outputs: which of "image", "mask" to produce (single-task checkpoints can produce one only).
        gap_tol_mm: warn when the slice spacing differs from 2·gap_mm of the checkpoint by more than this.
        tile_overlap: fraction of a tile shared with its neighbour (native checkpoints; default 0.5).
        tile_batch: tiles per model call (native checkpoints; default 8).
        precision: ``"fp32"`` (default), ``"bf16"`` or ``"auto"`` (:mod:`tascmt.utils.precision`).
        model_or_checkpoint: the old name of ``model``.

    Returns:
        :class:`PredictionResult`.
    """
    t0 = time.perf_counter()
    if args or (model is None and model_or_checkpoint is None and _looks_like_model(spacing)):
        raise TypeError("predict_volume() takes the model by keyword: write predict_volume(volume, spacing, "
                        "model=CHECKPOINT_OR_PREDICTOR, ...) (for a Volume the spacing can be left out)")
    model = model if model is not None else model_or_checkpoint
    if model is None:
        raise TypeError("predict_volume() needs model= (a checkpoint path or a Predictor)")
    image, spacing, name, modality = _unpack(volume, spacing)
    outputs = tuple(outputs)
    if not outputs or not set(outputs) <= set(OUTPUTS):
        raise ValueError(f"outputs must be a non-empty subset of {OUTPUTS}, got {outputs!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    predictor = as_predictor(model, device=device)
    opts = {k: v for k, v in (("tile_overlap", tile_overlap), ("tile_batch", tile_batch)) if v is not None}
    if precision is not None:
        from tascmt.utils.precision import resolve_precision

        opts["autocast_dtype"] = resolve_precision(precision, predictor.device)[0]
    if opts:
        predictor = predictor.with_options(**opts)

    axis = _slice_axis(spacing, slice_axis if slice_axis is not None else predictor.slice_axis)
    stack = np.moveaxis(image, axis, 0)  # (n, X, Y) view
    n = stack.shape[0]
    if n < 2:
        raise InputError(f"has {n} slice(s) along axis {axis}; prediction needs at least 2", path=name)
    predictor.check_inplane(stack.shape[1:], name)
    dz = None if spacing is None else float(spacing[axis])
    f = resolve_factor(factor, target_spacing, dz)
    predictor.check_outputs(outputs, f)
    if "mask" not in outputs:
        return_probabilities = False
    _warn_mismatch(predictor, dz, modality, name, gap_tol_mm)
    if spacing is not None:
        _warn_pixel_spacing(predictor, tuple(s for i, s in enumerate(spacing) if i != axis), name)

    img, msk, prob = _predict_stack(
        stack, predictor, f, outputs, return_probabilities, batch_size, progress, name
    )

    out_spacing = None
    if spacing is not None:
        out_spacing = tuple(float(s) / f if i == axis else float(s) for i, s in enumerate(spacing))

    def back(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else np.moveaxis(a, 0, axis)  # (N, X, Y) → the input's axis order

    affine = None
    if hasattr(volume, "affine") and hasattr(volume, "image"):
        from tascmt.io.orientation import upsampled_affine

        affine = upsampled_affine(volume.affine, axis, f)
    return PredictionResult(
        image=back(img) if "image" in outputs else None,
        mask=back(msk),
        probabilities=back(prob),
        spacing=out_spacing,  # type: ignore[arg-type]
        factor=f,
        slice_axis=axis,
        seconds=time.perf_counter() - t0,
        affine=affine,
        source=volume if affine is not None else None,
    )


def as_predictor(obj: Any, device: str = "cpu") -> Predictor:
    """A :class:`Predictor` from a checkpoint path, a Predictor, a ``(model, meta)`` pair or a model."""
    if isinstance(obj, Predictor):
        if device != "cpu" and obj.device != device:  # an explicit accelerator request: a moved copy
            return obj.with_options(device=device)
        return obj
    if isinstance(obj, str | Path):
        return Predictor.from_checkpoint(obj, device=device)
    if isinstance(obj, tuple) and len(obj) == 2:
        return Predictor.from_model(obj[0], obj[1], device=device)
    return Predictor.from_model(obj, None, device=device)


# ---------------------------------------------------------------------- the engine
def _predict_stack(
    stack: np.ndarray,
    predictor: Predictor,
    f: int,
    outputs: tuple[str, ...],
    return_probabilities: bool,
    batch_size: int,
    progress: bool,
    name: str,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Fill preallocated (N, X, Y) outputs, N = f·(n−1)+1, level by level (stride f, f/2, ..., 2)."""
    from tqdm.auto import tqdm

    n, x, y = stack.shape
    big_n = n_output_slices(n, f)
    want_mask = "mask" in outputs
    img = np.empty((big_n, x, y), np.float32)
    img[::f] = stack  # acquired slices copied through unchanged
    msk = np.zeros((big_n, x, y), np.uint8) if want_mask else None
    prob = np.zeros((big_n, x, y), np.float32) if return_probabilities else None
    label = np.uint8(predictor.label_id)

    def put_prob(k: int, p: np.ndarray) -> None:
        msk[k] = (p > 0.5) * label  # type: ignore[index]
        if prob is not None:
            prob[k] = p

    levels = []  # strides: f, f/2, ..., 2
    stride = f
    while stride >= 2:
        levels.append(stride)
        stride //= 2
    total = sum((big_n - 1) // s for s in levels)
    desc = f"predict {Path(str(name)).name}"
    bar = tqdm(total=total, disable=not progress, unit="pair", desc=desc, leave=False)
    try:
        for level, s in enumerate(levels):
            first = level == 0
            lows = np.arange(0, big_n - 1, s)  # lower slice of each pair at this level
            carry: np.ndarray | None = None  # Ŷ3 of the previous pair, waiting for its partner Ŷ1
            for b0 in range(0, len(lows), batch_size):
                lo_idx = lows[b0 : b0 + batch_size]
                out = predictor.run_pairs(
                    img[lo_idx],  # (B, X, Y)
                    img[lo_idx + s],
                    image=f > 2 or "image" in outputs,  # mask-only at ×2 synthesises no images
                    mask=want_mask,
                    side_probs=want_mask and first,
                )
                _check_finite(out, predictor.source)
                for j, lo in enumerate(lo_idx):
                    mid = lo + s // 2
                    if out.image is not None:
                        img[mid] = out.image[j]
                    if not want_mask:
                        continue
                    put_prob(mid, out.p_mid[j])  # type: ignore[index]
                    if first:  # acquired slices: average Ŷ3 of the pair below and Ŷ1 of the pair above
                        put_prob(lo, out.p_lo[j] if carry is None else 0.5 * (carry + out.p_lo[j]))  # type: ignore[index]
                        carry = out.p_hi[j]  # type: ignore[index]
                bar.update(len(lo_idx))
            if first and want_mask:
                put_prob(big_n - 1, carry)  # type: ignore[arg-type]
    finally:
        bar.close()
    return img, msk, prob


# ---------------------------------------------------------------------- helpers
def _looks_like_model(obj: Any) -> bool:
    return isinstance(obj, str | Path | Predictor | tuple) or hasattr(obj, "predict")


def _unpack(
    volume: Any, spacing: Any
) -> tuple[np.ndarray, tuple[float, float, float] | None, str, str | None]:
    """(image (X, Y, Z), spacing or None, name for messages, modality or None)."""
    if hasattr(volume, "image") and hasattr(volume, "spacing"):
        name = str(getattr(volume, "image_path", None) or getattr(volume, "case_id", "<volume>"))
        image, spacing, modality = volume.image, tuple(volume.spacing), getattr(volume, "modality", None)
    else:
        name, image, modality = "<array>", volume, None
    image = np.asarray(image)
    if image.ndim != 3:
        raise InputError(f"must be a 3D volume, but it is {image.ndim}D (shape {image.shape})", path=name)
    if not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
        raise InputError(f"has non-real voxel type {image.dtype}", path=name)
    if spacing is not None:
        spacing = tuple(float(s) for s in spacing)
        if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
            raise InputError(f"spacing must be three positive numbers of mm, got {spacing}", path=name)
    return image, spacing, name, modality


def _slice_axis(spacing: tuple[float, float, float] | None, slice_axis: int | None) -> int:
    if slice_axis is not None:
        if slice_axis not in (0, 1, 2, -1, -2, -3):
            raise ValueError(f"slice_axis must be 0, 1 or 2, got {slice_axis}")
        return slice_axis % 3
    if spacing is None:
        return 2
    from tascmt.data.triplets import slice_axis as pick

    return int(pick(spacing))


def _check_finite(out: Any, source: str) -> None:
    """Refuse outputs with NaN or Inf (damaged weights) before anything is written."""
    named = (("image", out.image), ("mask probabilities", out.p_mid), ("mask probabilities", out.p_lo),
             ("mask probabilities", out.p_hi))
    for what, arr in named:
        if arr is not None and not np.isfinite(arr).all():
            raise CheckpointError(f"{source}: the model produced non-finite {what} (NaN or Inf); its weights "
                                  "are probably damaged — nothing was written")


def _warn_pixel_spacing(predictor: Predictor, inplane: tuple[float, ...], name: str) -> None:
    trained = getattr(predictor, "pixel_spacing", None)
    if not trained or getattr(predictor.inplane, "kind", None) != "native":
        return
    rel = max(abs(a - b) / b for a, b in zip(inplane, trained))
    if rel > PIXEL_SPACING_TOL:
        warnings.warn(
            f"{name}: in-plane pixel spacing {' × '.join(f'{v:.3g}' for v in inplane)} mm differs from the "
            f"{' × '.join(f'{v:.3g}' for v in trained)} mm of the checkpoint's training data by "
            f"{100 * rel:.0f} % (more than {100 * PIXEL_SPACING_TOL:.0f} %): the model sees structures at "
            "another scale than it learnt", SpacingWarning, stacklevel=3)


def _warn_mismatch(
    predictor: Predictor, dz: float | None, modality: str | None, name: str, tol: float
) -> None:
    if predictor.gap_mm is not None and dz is not None and abs(dz - 2 * predictor.gap_mm) > tol:
        msg = (
            f"{name}: slice spacing {dz:.3g} mm differs from the {2 * predictor.gap_mm:.3g} mm "
            f"(2 × gap_mm {predictor.gap_mm:g}) the checkpoint was trained for by more than {tol:g} mm"
        )
        warnings.warn(msg, SpacingWarning, stacklevel=3)
    ck_mod = getattr(predictor, "modality", None)
    if ck_mod and modality and str(ck_mod).upper() != str(modality).upper():
        warnings.warn(f"{name}: modality {modality} but the checkpoint was trained on {ck_mod}", stacklevel=3)
