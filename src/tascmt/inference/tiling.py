"""Blended S×S tiles over whole native-resolution slices (docs/design.md §5).

A model trained on S×S tiles is applied to an H×W slice pair by running it on overlapping S×S tiles and
blending the tile outputs with Gaussian importance weights (MONAI's ``sliding_window_inference``), for
the interpolation output and the mask probabilities alike. Slices smaller than S are first zero-padded
(after normalisation, centred: :func:`tascmt.data.tiles.pad_planes`, the same rule as in training) and the
padding is cropped off the result.

For a model whose interpolation is the linear average plus a correction (``interp_is_residual()``), the
blended quantity is the raw correction ``r`` (``predict()["interp_residual"]``), not the clamped frame: the
caller adds it to the full-resolution linear average in intensity units, so a model that learnt nothing
returns exactly linear interpolation and values outside the normalisation window survive. Models with the
paper's direct (sigmoid) head give the blended frame in [0, 1] instead, which is clipped to the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tascmt.data.tiles import pad_amounts, pad_planes

#: Default fraction of a tile shared with its neighbour.
DEFAULT_OVERLAP = 0.5
#: Default number of tiles per model call.
DEFAULT_TILE_BATCH = 8
#: Gaussian width as a fraction of the tile (MONAI's default).
SIGMA_SCALE = 0.125


@dataclass
class TiledOutputs:
    """Blended outputs for B pairs at their own in-plane size (H, W).

    ``interp`` (B, H, W) float32: the raw correction in normalised units when ``residual`` is True, else the
    frame in [0, 1]; ``seg`` (B, 3, H, W) float32 probabilities of (Y1, Y2, Y3); None when not asked for.
    """

    interp: np.ndarray | None
    seg: np.ndarray | None
    residual: bool
    n_tiles: int = 0


def is_residual_model(model: Any) -> bool:
    """Whether ``model.predict`` returns the raw correction ``interp_residual``."""
    fn = getattr(model, "interp_is_residual", None)
    return bool(fn()) if callable(fn) else False


def n_tiles(hw: tuple[int, int], tile: int, overlap: float) -> int:
    """Tiles per slice that the sliding window uses for an H×W slice (after padding to the tile)."""
    total = 1
    for n in hw:
        n = max(int(n), tile)
        stride = max(1, int(tile * (1.0 - overlap)))
        total *= 1 if n <= tile else int(np.ceil((n - tile) / stride)) + 1
    return total


def tiled_outputs(model: Any, pairs01: np.ndarray | torch.Tensor, *, tile: int,
                  overlap: float = DEFAULT_OVERLAP, tile_batch: int = DEFAULT_TILE_BATCH,
                  image: bool = True, mask: bool = True, device: str | torch.device = "cpu",
                  autocast_dtype: torch.dtype | None = None) -> TiledOutputs:
    """Run ``model.predict`` on blended S×S tiles of normalised pairs.

    Args:
        model: a pair-input model with ``predict(x)`` (x (n, 2, S, S) in [0, 1]).
        pairs01: (B, 2, H, W) normalised pairs [X1, X3] in [0, 1].
        tile: S, the model's training size.
        overlap: fraction of a tile shared with its neighbour, in [0, 1).
        tile_batch: tiles per model call.
        image, mask: which outputs to compute.
        device: where the model runs.
        autocast_dtype: run the model under CPU/CUDA autocast with this dtype (e.g. ``torch.bfloat16``);
            None (default) runs it in fp32.
    Returns:
        :class:`TiledOutputs` at (H, W).
    """
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"tile overlap must be in [0, 1), got {overlap}")
    if tile_batch < 1:
        raise ValueError(f"tile batch must be >= 1, got {tile_batch}")
    arr = pairs01.detach().cpu().numpy() if isinstance(pairs01, torch.Tensor) else np.asarray(pairs01)
    b, _, h, w = arr.shape
    (top, _), (left, _) = pad_amounts((h, w), tile)
    padded = np.ascontiguousarray(pad_planes(arr.astype(np.float32, copy=False), tile))  # (B, 2, Hp, Wp)
    residual = is_residual_model(model)
    dev = torch.device(device)

    def run(win: torch.Tensor) -> torch.Tensor:  # (n, 2, S, S) -> (n, C, S, S)
        on = autocast_dtype is not None
        with torch.autocast(dev.type, dtype=autocast_dtype or torch.float32, enabled=on):
            out = model.predict(win)
        parts = []
        if image:
            parts.append(out["interp_residual"] if residual else out["interp"])
        if mask:
            parts.append(out["seg"])
        return torch.cat(parts, dim=1).float()

    x = torch.from_numpy(padded).to(dev)
    hp, wp = padded.shape[-2:]
    with torch.no_grad():
        if hp == tile and wp == tile:  # one tile per slice: no blending needed
            res = torch.cat([run(x[i:i + tile_batch]) for i in range(0, b, tile_batch)], dim=0)
        else:
            from monai.inferers import sliding_window_inference

            res = sliding_window_inference(x, (tile, tile), tile_batch, run, overlap=overlap, mode="gaussian",
                                           sigma_scale=SIGMA_SCALE, padding_mode="constant", cval=0.0)
    res = res[:, :, top:top + h, left:left + w].cpu().numpy()  # (B, C, H, W)
    interp = np.ascontiguousarray(res[:, 0]) if image else None
    seg = np.ascontiguousarray(np.clip(res[:, 1 if image else 0:], 0.0, 1.0)) if mask else None
    return TiledOutputs(interp, seg, residual, b * n_tiles((h, w), tile, overlap))


def tiled_predict(model: Any, x: torch.Tensor, *, tile: int, overlap: float = DEFAULT_OVERLAP,
                  tile_batch: int = DEFAULT_TILE_BATCH) -> dict[str, torch.Tensor]:
    """``model.predict`` over whole normalised slices through blended S×S tiles, in ``predict``'s form.

    Args:
        x: (B, C, H, W) model input on the model's device (C = 2 for pairs, 3 for triplet segmenters).
    Returns:
        ``{"interp": (B, 1, H, W) in [0, 1], "seg": (B, 3, H, W)}`` (the model's tasks only); a residual
        model's ``interp`` is clamp((X1 + X3)/2 + blended correction) at full resolution.
    """
    tasks = tuple(getattr(getattr(model, "config", None), "tasks", ("interp", "seg")))
    image, mask = "interp" in tasks, "seg" in tasks
    out = tiled_outputs(model, x, tile=tile, overlap=overlap, tile_batch=tile_batch, image=image, mask=mask,
                        device=x.device)
    res: dict[str, torch.Tensor] = {}
    if image:
        interp = torch.from_numpy(out.interp)[:, None].to(x.device)  # (B, 1, H, W)
        if out.residual:
            base_fn = getattr(model, "interp_base", None)
            base = base_fn(x) if callable(base_fn) else 0.5 * (x[:, 0:1] + x[:, 1:2])
            interp = base + interp
        res["interp"] = interp.clamp(0, 1)
    if mask:
        res["seg"] = torch.from_numpy(out.seg).to(x.device)
    return res
