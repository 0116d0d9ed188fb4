"""Swin Transformer block (pre-norm, window attention, optional cyclic shift with the standard mask)."""

from __future__ import annotations

import torch
from torch import nn

from tascmt.models.layers.helpers import pad_to_multiple, to_nchw, to_nhwc
from tascmt.models.layers.window_attention import (
    WindowAttention,
    shift_attention_mask,
    window_partition,
    window_reverse,
)


class Mlp(nn.Module):
    """Linear(C, rC) -> GELU -> Linear(rC, C) on the last axis."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def window_geometry(h: int, w: int, window: int, shift: int) -> tuple[int, int, int, int]:
    """(wh, ww, sh, sw) for an (h, w) map: a window no larger than the map, and no shift along an axis
    where the map fits in one window (as in Swin's ``min(input_resolution) <= window_size`` rule)."""
    wh, sh = (h, 0) if h <= window else (window, shift)
    ww, sw = (w, 0) if w <= window else (window, shift)
    return wh, ww, sh, sw


class SwinTransformerBlock(nn.Module):
    """``x = x + WMSA(LN(x))``; ``x = x + MLP(LN(x))``. Parameters: 12C^2 + 13C + 225h (window 8, ratio 4).

    Maps whose size is not a multiple of the window are zero-padded at the bottom/right and cropped back;
    the window is clamped to the map when the map is smaller (then no shift along that axis).
    ``shift_mask=False`` rolls without a mask (the public reference code: windows wrap across borders).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: int = 8,
        shift: int = 0,
        mlp_ratio: float = 4.0,
        shift_mask: bool = True,
    ):
        super().__init__()
        if not 0 <= shift < window:
            raise ValueError(f"shift={shift} must be in [0, window={window})")
        self.window, self.shift, self.shift_mask = window, shift, shift_mask
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def _attention(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, H, W, C) normalised -> (B, H, W, C) attention output."""
        _, h, w, _ = x.shape
        wh, ww, sh, sw = window_geometry(h, w, self.window, self.shift)
        x = pad_to_multiple(x, wh, ww)  # (B, Hp, Wp, C)
        hp, wp = x.shape[1:3]
        mask = None
        if sh or sw:
            x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
            if self.shift_mask:
                mask = shift_attention_mask(hp, wp, wh, ww, sh, sw).to(x.device)  # (nW, N, N)
        windows = window_partition(x, wh, ww)  # (B*nW, wh*ww, C)
        windows = self.attn(windows, wh, ww, mask)  # (B*nW, wh*ww, C)
        x = window_reverse(windows, wh, ww, hp, wp)  # (B, Hp, Wp, C)
        if sh or sw:
            x = torch.roll(x, shifts=(sh, sw), dims=(1, 2))
        return x[:, :h, :w, :].contiguous()  # (B, H, W, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        x = to_nhwc(x)  # (B, H, W, C)
        x = x + self._attention(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return to_nchw(x).contiguous()  # (B, C, H, W)
