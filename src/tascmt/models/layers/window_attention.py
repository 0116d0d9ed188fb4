"""Window multi-head self-attention with a relative position bias (Swin), plus its window/mask helpers."""

from __future__ import annotations

import functools

import torch
from torch import nn


def window_partition(x: torch.Tensor, wh: int, ww: int) -> torch.Tensor:
    """Split an NHWC map into non-overlapping windows.

    x: (B, H, W, C) with H % wh == 0 and W % ww == 0 -> (B*nW, wh*ww, C), windows in row-major order.
    """
    b, h, w, c = x.shape
    x = x.view(b, h // wh, wh, w // ww, ww, c)  # (B, nH, wh, nW_, ww, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, wh * ww, c)  # (B*nW, wh*ww, C)


def window_reverse(windows: torch.Tensor, wh: int, ww: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B*nW, wh*ww, C) -> (B, H, W, C)."""
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // wh) * (w // ww))
    x = windows.view(b, h // wh, w // ww, wh, ww, c)  # (B, nH, nW_, wh, ww, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)  # (B, H, W, C)


@functools.lru_cache(maxsize=64)
def relative_position_index(wh: int, ww: int, window: int) -> torch.Tensor:
    """Index into a ((2*window-1)**2)-row bias table for every token pair of a (wh, ww) window.

    Returns (wh*ww, wh*ww) int64. A window clamped to a smaller map reuses the centre of the same table.
    """
    ys, xs = torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()])  # (2, N)
    rel = coords[:, :, None] - coords[:, None, :]  # (2, N, N), each in [-(w-1), w-1]
    return (rel[0] + window - 1) * (2 * window - 1) + (rel[1] + window - 1)  # (N, N)


@functools.lru_cache(maxsize=64)
def shift_attention_mask(hp: int, wp: int, wh: int, ww: int, sh: int, sw: int) -> torch.Tensor:
    """The shifted-window mask: 0 between tokens of the same pre-shift region, -100 otherwise.

    Rows and columns of the padded (hp, wp) map are labelled by which of the three bands
    [0, hp-wh), [hp-wh, hp-sh), [hp-sh, hp) they fall in (Swin's slice regions); a token's region is
    (row band, column band). Returns (nW, wh*ww, wh*ww) float32.
    """

    def bands(n: int, win: int, shift: int) -> torch.Tensor:
        i = torch.arange(n)
        return (i >= n - win).long() + (i >= n - shift).long() if shift else torch.zeros(n, dtype=torch.long)

    region = bands(hp, wh, sh)[:, None] * 3 + bands(wp, ww, sw)[None, :]  # (hp, wp)
    win = window_partition(region[None, :, :, None], wh, ww).squeeze(-1)  # (nW, wh*ww)
    diff = win[:, None, :] != win[:, :, None]  # (nW, N, N)
    return diff.float() * -100.0


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows, with a learned relative position bias.

    The bias table has (2*window-1)**2 rows per head (225h parameters for window 8).
    """

    def __init__(self, dim: int, num_heads: int, window: int = 8, qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")
        self.dim, self.num_heads, self.window = dim, num_heads, window
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def relative_bias(self, wh: int, ww: int) -> torch.Tensor:
        """(heads, wh*ww, wh*ww) bias for a (wh, ww) window."""
        idx = relative_position_index(wh, ww, self.window).to(self.relative_position_bias_table.device)
        n = wh * ww
        bias = self.relative_position_bias_table[idx.view(-1)].view(n, n, -1)  # (N, N, h)
        return bias.permute(2, 0, 1)  # (h, N, N)

    def forward(self, x: torch.Tensor, wh: int, ww: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B*nW, wh*ww, C); mask: (nW, N, N) additive or None -> (B*nW, wh*ww, C)."""
        bn, n, c = x.shape
        qkv = self.qkv(x).reshape(bn, n, 3, self.num_heads, c // self.num_heads)  # (B_, N, 3, h, d)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B_, h, N, d)
        attn = (q * self.scale) @ k.transpose(-2, -1)  # (B_, h, N, N)
        attn = attn + self.relative_bias(wh, ww).unsqueeze(0).to(attn.dtype)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(bn // nw, nw, self.num_heads, n, n) + mask[None, :, None].to(attn.dtype)
            attn = attn.view(bn, self.num_heads, n, n)  # (B_, h, N, N)
        attn = attn.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(bn, n, c)  # (B_, N, C)
        return self.proj(out)
