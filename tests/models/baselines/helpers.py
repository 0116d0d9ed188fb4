"""Shared helpers of the baseline tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tascmt.models import baselines  # noqa: F401  (registers the baselines, as models/__init__ will)

INTERP = ("swinunet_interp", "transunet_interp", "vtn_interp")
SEG = ("unetpp_seg", "swinunetr_seg", "nnunet_seg")
TRAINABLE = INTERP + SEG
CASCADES = ("cascade_swinunet_nnunet", "cascade_transunet_swinunetr", "cascade_vtn_unetpp")


def tiny_input(name_or_frames: str, b: int = 2, size: int = 64) -> torch.Tensor:
    frames = 3 if name_or_frames in SEG or name_or_frames == "triplet" else 2
    return torch.rand(b, frames, size, size)


def every_output_loss(out: dict, gen: torch.Generator | None = None) -> torch.Tensor:
    """A loss using every output (deep-supervision heads included) against random targets."""
    loss = torch.zeros(())
    if "interp" in out:
        loss = loss + F.mse_loss(out["interp"], torch.rand(out["interp"].shape, generator=gen))
    logits = [out[k] for k in ("seg_logits",) if k in out] + list(out.get("seg_logits_ds", []))
    for lg in logits:
        target = (torch.rand(lg.shape, generator=gen) > 0.5).float()
        loss = loss + F.binary_cross_entropy_with_logits(lg, target)
    return loss
