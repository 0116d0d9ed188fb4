"""``model_input``: the input tensor a model expects, built from a training/evaluation batch."""

from __future__ import annotations

import torch
from torch import nn


def input_frames(model: nn.Module) -> str:
    """``"pair"`` or ``"triplet"`` for ``model`` (DDP-wrapped or not); models without the attribute (the
    TASC-SwinMT family) take the pair."""
    inner = getattr(model, "module", model)
    frames = getattr(inner, "input_frames", None)
    if frames is None:
        frames = getattr(getattr(inner, "config", None), "input_frames", "pair")
    if frames not in ("pair", "triplet"):
        raise ValueError(f"{type(inner).__name__}: input_frames={frames!r} is not 'pair' or 'triplet'")
    return frames


def uses_flow_base(model: nn.Module) -> bool:
    """Whether ``model`` takes the flow midpoint as a third input channel (``interp_base="flow"``)."""
    inner = getattr(model, "module", model)
    return getattr(getattr(inner, "config", None), "interp_base", "linear") == "flow"


def model_input(model: nn.Module, batch: dict, device: torch.device | str | None = None) -> torch.Tensor:
    """``batch["x"]`` (B, 2, H, W) = [X1, X3] for pair models; [X1, X2, X3] (B, 3, H, W) for triplet
    models, with X2 = ``batch["y_interp"]`` (B, 1, H, W) (oracle setting: the real middle slice).

    Tensors are moved to ``device`` when given.
    """
    x = batch["x"]
    if device is not None:
        x = x.to(device, non_blocking=True)
    if x.ndim != 4 or x.shape[1] != 2:
        raise ValueError(f"model_input: batch['x'] must be (B, 2, H, W), got {tuple(x.shape)}")
    if uses_flow_base(model):  # [X1, X3, flow midpoint] (B, 3, H, W)
        if "flow_mid" not in batch:
            raise ValueError("model_input: this model corrects the flow midpoint and needs "
                             "batch['flow_mid']; prepare the cache with --flow-base")
        return torch.cat([x, batch["flow_mid"].to(x.device, x.dtype)], dim=1)
    if input_frames(model) == "pair":
        return x
    if "y_interp" not in batch:
        raise ValueError("model_input: a triplet model needs batch['y_interp'] (the middle frame X2)")
    mid = batch["y_interp"]
    if device is not None:
        mid = mid.to(device, non_blocking=True)
    if mid.shape != (x.shape[0], 1, *x.shape[2:]):
        raise ValueError(f"model_input: batch['y_interp'] must be {(x.shape[0], 1, *x.shape[2:])}, "
                         f"got {tuple(mid.shape)}")
    return torch.cat([x[:, :1], mid.to(x.dtype), x[:, 1:]], dim=1)  # (B, 3, H, W)
