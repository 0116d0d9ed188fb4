"""A trained model together with everything ``predict`` needs to apply it exactly as in training.

A :class:`Predictor` bundles the model, the checkpoint's normalisation strategy (fitted on the two whole
input slices of every pair, at native resolution, never on anything else — as in training), its in-plane
policy, the inter-slice gap and pixel spacing it was trained at, and the label value written for foreground.
``run_pairs`` maps a batch of slice pairs in intensity units to the synthesised middle slices (intensity
units) and the foreground probabilities of all three slices of each triplet, in the slices' own in-plane
size.

In-plane policies: ``native`` (the default of new checkpoints) runs the model on overlapping S×S tiles at
native pixels and blends them (:mod:`tascmt.inference.tiling`); the blended correction of a residual model
is added to the full-resolution linear average in intensity units. ``pad_resize`` (the paper's protocol,
and every checkpoint written before native tiles existed) resizes each slice to the model size and back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tascmt.errors import CheckpointError, ConfigError, InputError
from tascmt.inference.tiling import DEFAULT_OVERLAP, DEFAULT_TILE_BATCH, tiled_outputs
from tascmt.utils.device import resolve_device

#: Smallest in-plane size (voxels per axis) that prediction accepts.
MIN_INPLANE = 16

#: What each checkpoint variant (its ``tasks``) can produce: "image" needs the interpolation head,
#: "mask" needs the segmentation head; factors above 2 recurse on synthesised images, so need "interp".
CAPABILITIES = {"interp": {"image"}, "seg": {"mask"}}


@dataclass
class PairOutput:
    """Outputs for B slice pairs (lo, hi), each (B, X, Y) float32 in the slices' own in-plane size.

    ``image``: synthesised middle slices in input intensity units (None when not asked for);
    ``p_mid``, ``p_lo``, ``p_hi``: foreground probabilities of the middle, lower and upper slice
    (Ŷ2, Ŷ1, Ŷ3), None when not asked for.
    """

    image: np.ndarray | None
    p_mid: np.ndarray | None
    p_lo: np.ndarray | None = None
    p_hi: np.ndarray | None = None


@dataclass
class Predictor:
    """A model plus its checkpoint's pre/post-processing.

    Attributes:
        model: module with ``predict(x)``: x (B, 2, S, S) in [0, 1] → dict with ``"interp"`` (B, 1, S, S)
            in [0, 1] and/or ``"seg"`` (B, 3, S, S) probabilities of (Y1, Y2, Y3).
        normalizer: strategy with ``fit(x1, x3) -> params``, ``apply(arr, params)``, ``invert(arr, params)``.
        inplane: policy with ``forward(slice2d, is_mask) -> (S, S)``, ``inverse(arr, original_hw, is_mask)``
            and ``kind`` ("pad_resize" or "none").
        gap_mm: distance from each input slice to the target the model was trained for (None if unknown).
        tasks: the model's tasks, ("interp", "seg") or one of them.
        label_id: value written into masks for foreground.
        source: where the model came from (for messages).
        device: torch device the model runs on.
        modality: modality the checkpoint was trained on ("CT", "MRI"), if recorded.
        slice_axis: the canonical slice axis the training data was prepared with when it was set explicitly
            (``tascmt prepare --slice-axis``); None when the spacing rule chose it.
        pixel_spacing: in-plane pixel spacing (mm) of the training data (native policy), if recorded.
        flow_params: TV-L1 settings (a ``FlowParams`` dict) of a model that corrects the flow midpoint.
        tile_overlap: fraction of a tile shared with its neighbour (native policy).
        tile_batch: tiles per model call (native policy).
        autocast_dtype: None (fp32, default) or a dtype to autocast the model with (e.g. bfloat16).
    """

    model: Any
    normalizer: Any
    inplane: Any
    gap_mm: float | None = None
    tasks: tuple[str, ...] = ("interp", "seg")
    label_id: int = 1
    source: str = "<model>"
    device: str = "cpu"
    modality: str | None = None
    slice_axis: int | None = None
    pixel_spacing: tuple[float, float] | None = None
    flow_params: dict | None = None
    tile_overlap: float = DEFAULT_OVERLAP
    tile_batch: int = DEFAULT_TILE_BATCH
    autocast_dtype: Any = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu") -> Predictor:
        """Load a checkpoint written by ``tascmt.models.checkpoint.save_model`` (raises CheckpointError)."""
        from tascmt.errors import TascmtError
        from tascmt.models.checkpoint import load_model

        path = Path(path)
        if not path.exists():
            raise CheckpointError(f"{path}: checkpoint not found")
        try:
            model, meta = load_model(path)
        except TascmtError:
            raise
        except Exception as err:  # a corrupt or foreign file: one clear message, no traceback
            raise CheckpointError(
                f"{path}: not a loadable tascmt checkpoint ({type(err).__name__}: {err})"
            ) from err
        return cls.from_model(model, meta, device=device, source=str(path))

    @classmethod
    def from_model(
        cls, model: Any, meta: dict | None = None, *, device: str = "cpu", source: str = "<model>"
    ) -> Predictor:
        """Bundle a model with the settings in ``meta["extra"]`` (as ``load_model`` returns them)."""
        extra = dict((meta or {}).get("extra") or {})
        norm_d = _first(extra, ("normalization", "normalisation", "norm", "normalizer"))
        if norm_d is None:
            raise CheckpointError(
                f"{source}: checkpoint has no normalisation settings (meta['extra']['norm']); save it with "
                "tascmt train, or pass a Predictor / (model, meta) with them"
            )
        inplane_d = _first(extra, ("inplane", "inplane_policy", "in_plane"))
        try:
            from tascmt.data import normalize

            normalizer = normalize.normalizer_from_dict(norm_d)
            inplane = _inplane_from_dict(inplane_d, model)
        except (KeyError, TypeError, ValueError, ConfigError) as err:
            raise CheckpointError(f"{source}: invalid pre-processing settings in checkpoint ({err})") from err
        gap = extra.get("gap_mm")
        return cls(
            model=model,
            normalizer=normalizer,
            inplane=inplane,
            gap_mm=None if gap is None else float(gap),
            tasks=model_tasks(model),
            label_id=_label_id(extra),
            source=source,
            device=device,
            modality=extra.get("modality"),
            slice_axis=extra.get("slice_axis"),
            pixel_spacing=_pixel_spacing(extra.get("pixel_spacing")),
            flow_params=extra.get("flow"),
        )

    def with_options(self, **changes: Any) -> Predictor:
        """A copy with some fields changed (e.g. ``tile_overlap``, ``device``); ``self`` is not modified."""
        changes = {k: v for k, v in changes.items() if getattr(self, k) != v}
        return dataclasses.replace(self, **changes) if changes else self

    def __post_init__(self) -> None:
        self.tasks = tuple(self.tasks)
        if not self.tasks or not set(self.tasks) <= set(CAPABILITIES):
            raise CheckpointError(
                f"{self.source}: unknown model tasks {self.tasks!r} (expected interp and/or seg)"
            )
        if not callable(getattr(self.model, "predict", None)):
            raise CheckpointError(f"{self.source}: model {type(self.model).__name__} has no predict(x)")
        if not 0.0 <= float(self.tile_overlap) < 1.0:
            raise ConfigError(f"tile overlap must be in [0, 1), got {self.tile_overlap}")
        if int(self.tile_batch) < 1:
            raise ConfigError(f"tile batch must be >= 1, got {self.tile_batch}")
        if not 1 <= int(self.label_id) <= 255:
            raise CheckpointError(f"{self.source}: label id {self.label_id} does not fit a uint8 mask")
        self.device = resolve_device(self.device)
        if isinstance(self.model, torch.nn.Module):
            self.model.to(self.device).eval()

    # ------------------------------------------------------------------ checks
    def can_produce(self) -> set[str]:
        out: set[str] = set()
        for t in self.tasks:
            out |= CAPABILITIES[t]
        return out

    def check_outputs(self, outputs: tuple[str, ...], factor: int) -> None:
        """Raise CheckpointError when this model variant cannot produce ``outputs`` at ``factor``."""
        missing = set(outputs) - self.can_produce()
        if missing:
            other = sorted(self.can_produce())
            raise CheckpointError(
                f"{self.source}: this checkpoint's model has tasks {self.tasks} and cannot produce "
                f"{' or '.join(sorted(missing))} output (an interpolation-only model gives no masks, a "
                f"segmentation-only model synthesises no images); ask only for {other} (CLI: --outputs "
                f"{','.join(other)})"
            )
        if factor > 2 and "interp" not in self.tasks:
            raise CheckpointError(
                f"{self.source}: factor {factor} recurses on synthesised slices, which a segmentation-only "
                f"model (tasks {self.tasks}) cannot make; use factor 2"
            )

    def check_inplane(self, shape_xy: tuple[int, int], path: str | Path | None) -> None:
        """Raise InputError when slices of in-plane shape ``shape_xy`` cannot be processed."""
        x, y = shape_xy
        if min(x, y) < MIN_INPLANE:
            raise InputError(
                f"in-plane size {x}×{y} is too small to process (at least {MIN_INPLANE} voxels per axis)",
                path=path,
            )
        if getattr(self.inplane, "kind", "pad_resize") == "none":
            size = getattr(self.inplane, "size", None)
            if size is not None and (x, y) != (size, size):
                raise InputError(
                    f"in-plane size {x}×{y} differs from the model size {size}×{size} and the checkpoint's "
                    "in-plane policy is 'none' (no resizing)",
                    path=path,
                )

    # ------------------------------------------------------------------ the model on pairs
    def run_pairs(
        self,
        lo: np.ndarray,
        hi: np.ndarray,
        *,
        image: bool = True,
        mask: bool = True,
        side_probs: bool = False,
    ) -> PairOutput:
        """Apply the model to B slice pairs.

        Args:
            lo, hi: (B, X, Y) slices in input intensity units (the lower and upper slice of each pair).
            image: return the synthesised middle slices.
            mask: return Ŷ2 (and Ŷ1, Ŷ3 with ``side_probs``).

        Returns:
            :class:`PairOutput` with (B, X, Y) float32 arrays.
        """
        if lo.shape != hi.shape or lo.ndim != 3:
            raise ValueError(f"lo and hi must both be (B, X, Y), got {lo.shape} and {hi.shape}")
        b, x, y = lo.shape
        params = [self.normalizer.fit(lo[j], hi[j]) for j in range(b)]  # from the two input slices only
        pairs = np.empty((b, 2, x, y), np.float32)  # (B, 2, X, Y) in [0, 1]
        for j, p in enumerate(params):
            pairs[j, 0] = self.normalizer.apply(lo[j], p)
            pairs[j, 1] = self.normalizer.apply(hi[j], p)
        base = None  # (B, X, Y) what the residual corrects, in intensity units (None: the linear average)
        if self.uses_flow_base:
            from tascmt.data.flow import FlowParams, flow_midpoint

            fp = FlowParams.from_dict(self.flow_params or {})
            base = np.stack([flow_midpoint(lo[j], hi[j], fp).image for j in range(b)])  # whole native slices
            f01 = np.stack([self.normalizer.apply(base[j], p) for j, p in enumerate(params)])
            pairs = np.concatenate([pairs, f01[:, None].astype(np.float32)], axis=1)  # (B, 3, X, Y)
        if getattr(self.inplane, "kind", None) == "native":
            return self._run_tiled(lo, hi, pairs, params, image, mask, side_probs, base)
        c = pairs.shape[1]
        model_in = self.inplane.forward(pairs.reshape(c * b, x, y), is_mask=False)  # (cB, S, S)
        size = model_in.shape[-1]
        batch = torch.from_numpy(np.ascontiguousarray(model_in, np.float32).reshape(b, c, size, size))
        dev = torch.device(self.device)
        on, dtype = self.autocast_dtype is not None, self.autocast_dtype or torch.float32
        with torch.no_grad(), torch.autocast(dev.type, dtype=dtype, enabled=on):
            out = self.model.predict(batch.to(self.device))  # {"interp": (B, 1, S, S), "seg": (B, 3, S, S)}

        img_out = None
        if image:
            interp = out["interp"][:, 0].float().cpu().numpy()  # (B, S, S) in [0, 1]
            back = self.inplane.inverse(interp, (x, y), is_mask=False)  # (B, X, Y)
            img_out = np.empty((b, x, y), np.float32)
            for j in range(b):
                img_out[j] = self.normalizer.invert(back[j], params[j])
        p_mid = p_lo = p_hi = None
        if mask:
            seg = out["seg"].float().cpu().numpy()  # (B, 3, S, S): (Y1, Y2, Y3)
            if side_probs:
                allp = self._probs_back(seg.reshape(3 * b, size, size), (x, y)).reshape(b, 3, x, y)
                p_lo, p_mid, p_hi = allp[:, 0], allp[:, 1], allp[:, 2]
            else:
                p_mid = self._probs_back(seg[:, 1], (x, y))
        return PairOutput(img_out, p_mid, p_lo, p_hi)

    @property
    def uses_flow_base(self) -> bool:
        """Whether the model corrects the flow midpoint (and takes it as a third input channel)."""
        return getattr(getattr(self.model, "config", None), "interp_base", "linear") == "flow"

    def _run_tiled(self, lo: np.ndarray, hi: np.ndarray, pairs: np.ndarray, params: list, image: bool,
                   mask: bool, side_probs: bool, base: np.ndarray | None = None) -> PairOutput:
        """Native policy: blended S×S tiles; residual corrections added to the full-resolution linear average
        in intensity units (so a zero correction returns exactly (lo + hi) / 2, values outside the
        normalisation window included)."""
        b, x, y = lo.shape
        out = tiled_outputs(self.model, pairs, tile=int(self.inplane.size), overlap=float(self.tile_overlap),
                            tile_batch=int(self.tile_batch), image=image, mask=mask, device=self.device,
                            autocast_dtype=self.autocast_dtype)
        img_out = None
        if image:
            img_out = np.empty((b, x, y), np.float32)
            for j, p in enumerate(params):
                if out.residual:
                    scale = 0.0 if p.constant else float(p.hi - p.lo)  # normalised units → intensity units
                    if base is None:
                        ref = 0.5 * (lo[j].astype(np.float32) + hi[j].astype(np.float32))  # (X, Y)
                    else:
                        ref = base[j].astype(np.float32)  # the flow midpoint
                    img_out[j] = ref + scale * out.interp[j]
                else:  # the paper's direct head: the blended frame, clipped to the normalisation window
                    img_out[j] = self.normalizer.invert(np.clip(out.interp[j], 0.0, 1.0), p)
        p_mid = p_lo = p_hi = None
        if mask:
            seg = out.seg  # (B, 3, X, Y)
            p_mid = seg[:, 1]
            if side_probs:
                p_lo, p_hi = seg[:, 0], seg[:, 2]
        return PairOutput(img_out, p_mid, p_lo, p_hi)

    def _probs_back(self, probs: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
        """(N, S, S) probabilities → (N, X, Y), resized as images (bilinear) and kept in [0, 1]."""
        back = self.inplane.inverse(probs, hw, is_mask=False)  # (N, X, Y)
        return np.clip(back, 0.0, 1.0).astype(np.float32, copy=False)


# ---------------------------------------------------------------------- helpers
def model_tasks(model: Any) -> tuple[str, ...]:
    cfg = getattr(model, "config", None)
    tasks = getattr(cfg, "tasks", None)
    if tasks is None and isinstance(cfg, dict):
        tasks = cfg.get("tasks")
    return tuple(tasks) if tasks else ("interp", "seg")


def model_size(model: Any) -> int | None:
    cfg = getattr(model, "config", None)
    size = getattr(cfg, "img_size", None)
    if isinstance(size, list | tuple):
        size = size[0]
    return None if size is None else int(size)


def _first(d: dict, keys: tuple[str, ...]) -> Any:
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def _inplane_from_dict(d: Any, model: Any) -> Any:
    from tascmt.data.inplane import InplanePolicy

    if d is None:  # no policy stored: resize to the model's size
        size = model_size(model)
        if size is None:
            raise KeyError("no in-plane policy and no model img_size")
        return InplanePolicy(kind="pad_resize", size=size)
    if isinstance(d, InplanePolicy):
        return d
    return InplanePolicy.from_dict(d)


def _pixel_spacing(value: Any) -> tuple[float, float] | None:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return (a, b) if a > 0 and b > 0 else None


def _label_id(extra: dict) -> int:
    if extra.get("label_id") is not None:
        return int(extra["label_id"])
    labels = extra.get("label_values", extra.get("labels"))  # e.g. [0, 1] or {"0": "bg", "1": "tumour"}
    if isinstance(labels, dict | list | tuple):
        ids = sorted({int(k) for k in labels if int(k) != 0})
        if len(ids) == 1:  # one foreground value: write it; several (merged in training): write 1
            return ids[0]
    return 1


