"""Shared behaviour of the baseline models: ``predict``, ``forward_intermediates``, input checks, the
interpolation output formulation, and the frame-wise wrapper that runs a 2-D segmentation net on each frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tascmt.models.layers import check_input_size
from tascmt.models.layers.helpers import public_outputs

Record = dict[str, torch.Tensor]

#: Factor applied to the output layers' weights by ``init="stable"`` (as TASC-SwinMT's stable_init_gain).
STABLE_GAIN = 0.01


class BaselineModel(nn.Module):
    """Base of every baseline: subclasses set ``config_cls`` and implement ``_forward(x, record)``.

    ``trainable`` (class attribute) is False for parameter-free references that the trainer must skip.
    ``input_frames`` mirrors the config: ``"pair"`` takes x = (B, 2, H, W) = [X1, X3], ``"triplet"`` takes
    x = (B, 3, H, W) = [X1, X2, X3].
    """

    config_cls: type = object
    trainable: bool = True
    size_multiple: int = 32  # H and W must be multiples of this (window attention pads up to it)

    @property
    def input_frames(self) -> str:
        return self.config.input_frames

    @property
    def in_frames(self) -> int:
        return 2 if self.input_frames == "pair" else 3

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` naming the shape unless x is (B, 2 or 3, H, W) with valid H, W."""
        if x.ndim != 4 or x.shape[1] != self.in_frames:
            raise ValueError(
                f"{self.config.name}: input must be (B, {self.in_frames}, H, W) "
                f"(input_frames={self.input_frames!r}), got {tuple(x.shape)}"
            )
        check_input_size(x.shape[-2], x.shape[-1], self.size_multiple)

    def _forward(self, x: torch.Tensor, record: Record | None) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: (B, 2|3, H, W) -> {"interp": (B, 1, H, W)} or {"seg_logits": (B, 3, H, W)}."""
        self.check_input(x)
        return self._forward(x, None)

    def forward_intermediates(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], Record]:
        """Like ``forward`` and also a dict of named intermediate maps (model-specific names)."""
        self.check_input(x)
        record: Record = {}
        return self._forward(x, record), record

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"interp": clamp(interp, 0, 1)} and/or {"seg": sigmoid(seg_logits)} without gradients.

        Does not change train/eval mode: call ``model.eval()`` first for inference.
        """
        return public_outputs(self.forward(x), x, self.interp_is_residual())

    def output_layers(self) -> list[nn.Module]:
        """The layers that write the model's outputs (scaled down by ``init="stable"``); none by default."""
        return []

    @torch.no_grad()
    def apply_stable_init(self, gain: float = STABLE_GAIN) -> None:
        """``init="stable"``: multiply the weights of :meth:`output_layers` by ``gain``."""
        for layer in self.output_layers():
            layer.weight.mul_(gain)

    def interp_is_residual(self) -> bool:
        """Whether ``interp`` is the input pair's linear average plus a correction (``predict`` then also
        returns the raw correction as ``"interp_residual"``)."""
        return getattr(self.config, "interp_output", None) == "residual"


def interp_from_head(r: torch.Tensor, x: torch.Tensor, mode: str) -> torch.Tensor:
    """Head output r (B, 1, H, W) -> interpolated frame: sigmoid(r) ("direct") or (X1+X3)/2 + r
    ("residual", docs/design.md §3); x is the (B, 2, H, W) input pair."""
    if mode == "direct":
        return torch.sigmoid(r)
    return 0.5 * (x[:, 0:1] + x[:, 1:2]) + r


def framewise(net: nn.Module, x: torch.Tensor, multiple: int = 1) -> torch.Tensor:
    """Run a 2-D single-channel network on every frame of x as a batch of images.

    x: (B, T, H, W) -> net((B*T, 1, H', W')) -> (B*T, K..., H', W') -> cropped to H, W and reshaped to
    (B, T, K..., H, W); H', W' are H, W zero-padded at the bottom/right to a multiple of ``multiple``.
    The net's output may carry extra axes after the batch axis (e.g. MONAI DynUNet's stacked deep
    supervision heads (B*T, 1+n, 1, H, W)); the channel axis of size 1 is squeezed.
    """
    b, t, h, w = x.shape
    frames = x.reshape(b * t, 1, h, w)  # (B*T, 1, H, W)
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        frames = F.pad(frames, (0, pw, 0, ph))  # (B*T, 1, H', W')
    y = net(frames)[..., :h, :w]  # (B*T, [n,] 1, H, W)
    if y.shape[-3] != 1:
        raise ValueError(f"framewise: the 2-D net must output 1 channel per frame, got {tuple(y.shape)}")
    y = y.squeeze(-3)  # (B*T, [n,] H, W)
    y = y.reshape(b, t, *y.shape[1:])  # (B, T, [n,] H, W)
    return y if y.ndim == 4 else y.transpose(1, 2)  # (B, T, H, W) or (B, n, T, H, W)


class FramewiseSegModel(BaselineModel):
    """A 2-D single-frame segmentation network applied to each of the three given frames.

    x (B, 3, H, W) = [X1, X2, X3] -> {"seg_logits": (B, 3, H, W)} (one foreground logit map per frame).
    Subclasses build ``self.net`` ((N, 1, h, w) -> (N, 1, h, w)) and may override ``run_net``.
    """

    pad_multiple: int = 1  # inputs are zero-padded to a multiple of this for the net, then cropped back

    def run_net(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 1, h, w) -> (N, 1, h, w) logits (or (N, 1+n, 1, h, w) with deep-supervision heads)."""
        return self.net(frames)

    def _forward(self, x: torch.Tensor, record: Record | None) -> dict[str, torch.Tensor]:
        return {"seg_logits": framewise(self.run_net, x, self.pad_multiple)}  # (B, 3, H, W)
