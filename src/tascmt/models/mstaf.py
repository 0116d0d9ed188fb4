"""MSTAF: cross-attention + multi-scale + spectral fusion of a decoder feature and a skip (docs/design.md §3).

Parameters (both outputs): 50C^2 + 17C + 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tascmt.models.layers.helpers import float32_block, pad_to_multiple, to_nchw, unit_phasor
from tascmt.models.layers.window_attention import window_partition, window_reverse

ATTN_IMPLS = ("global", "window", "pool", "materialised")
GATES = ("task", "noop")


def cross_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float,
    impl: str = "global",
    hw: tuple[int, int] | None = None,
    window: int = 8,
) -> torch.Tensor:
    """Single-head attention of query tokens over key/value tokens of the same (H, W) map.

    q, k, v: (B, N, C) -> (B, N, C). ``global`` uses ``F.scaled_dot_product_attention`` (O(N) memory);
    ``materialised`` forms the N x N matrix (reference maths); ``window`` attends inside non-overlapping
    ``window`` x ``window`` windows of the (H, W) map (clamped to the map, padded keys masked out).
    ``pool`` is handled by the caller (it shortens k, v) and then runs as ``global``.
    """
    if impl in ("global", "pool"):
        out = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None], scale=scale)  # (B, 1, N, C)
        return out[:, 0]
    if impl == "materialised":
        attn = torch.softmax((q @ k.transpose(-2, -1)) * scale, dim=-1)  # (B, N, N)
        return attn @ v  # (B, N, C)
    if impl == "window":
        if hw is None:
            raise ValueError("cross_attention(impl='window') needs hw=(H, W)")
        h, w = hw
        b, _, c = q.shape
        wh, ww = min(window, h), min(window, w)
        maps = [pad_to_multiple(t.view(b, h, w, c), wh, ww) for t in (q, k, v)]  # each (B, Hp, Wp, C)
        hp, wp = maps[0].shape[1:3]
        qw, kw, vw = (window_partition(t, wh, ww)[:, None] for t in maps)  # each (B*nW, 1, n, C)
        mask = None
        if (hp, wp) != (h, w):
            valid = torch.zeros(1, hp, wp, 1, dtype=torch.bool, device=q.device)
            valid[:, :h, :w] = True
            keep = window_partition(valid.expand(b, -1, -1, -1), wh, ww)  # (B*nW, n, 1)
            mask = keep.transpose(1, 2)[:, None]  # (B*nW, 1, 1, n): True = key is a real token
        out = F.scaled_dot_product_attention(qw, kw, vw, attn_mask=mask, scale=scale)  # (B*nW, 1, n, C)
        out = window_reverse(out[:, 0], wh, ww, hp, wp)[:, :h, :w]  # (B, H, W, C)
        return out.reshape(b, h * w, c)
    raise ValueError(f"attn_impl={impl!r} is not one of {ATTN_IMPLS}")


class SpectralFilter(nn.Module):
    """``Re(iFFT2(Conv1x1(|X|) * X/|X|))`` with ``X = FFT2(x)`` (norm "backward"), computed in fp32.

    x: (B, C, H, W) -> (B, C, H, W) in the input dtype.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 1)

    @float32_block
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = torch.fft.fft2(x, dim=(-2, -1))  # (B, C, H, W) complex
        filtered = self.conv(spec.abs()) * unit_phasor(spec)  # (B, C, H, W) complex
        return torch.fft.ifft2(filtered, dim=(-2, -1)).real


class MSTAF(nn.Module):
    """Fuse ``f_a`` (decoder feature) with ``f_b`` (encoder skip); returns the interp and/or seg output.

    1. ``A1 = Attn(q1(f_a), kv1(f_b))``, ``A2 = Attn(q2(f_b), kv2(f_a))``, single head, scale (C/8)^-1/2.
    2. ``F_att = Conv1x1(cat(A1, A2))``; ``F_multi = Conv1x1(cat(Conv1(F_att), Conv3(F_att), Conv5(F_att)))``.
    3. ``F_freq = SpectralFilter(F_multi)``.
    4. ``(W1, W2) = softmax(Linear(SiLU(GAP(Conv1x1(f_b)))))``. ``gate="noop"``: ``W1 F + W2 F`` (= F, the
       published form); ``gate="task"``: ``2 W1 F`` for interp and ``2 W2 F`` for seg.
    5. ``Out_int = fusion_int + Conv1x1(f_a)``; ``Out_seg = fusion_seg + Conv1x1(f_b)``.

    ``outputs`` chooses which output convs exist (single-task models build only one).
    """

    def __init__(
        self,
        dim: int,
        attn_impl: str = "global",
        gate: str = "task",
        outputs: tuple[str, ...] = ("interp", "seg"),
        scale_div: int = 8,
        window: int = 8,
        pool: int = 32,
    ):
        super().__init__()
        if attn_impl not in ATTN_IMPLS:
            raise ValueError(f"attn_impl={attn_impl!r} is not one of {ATTN_IMPLS}")
        if gate not in GATES:
            raise ValueError(f"gate={gate!r} is not one of {GATES}")
        if not outputs or set(outputs) - {"interp", "seg"}:
            raise ValueError(f"outputs={outputs!r} must be a non-empty subset of ('interp', 'seg')")
        self.attn_impl, self.gate, self.outputs = attn_impl, gate, tuple(outputs)
        self.scale = (dim / scale_div) ** -0.5
        self.window, self.pool = window, pool
        self.q1, self.kv1 = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim)
        self.q2, self.kv2 = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim)
        self.att_fuse = nn.Conv2d(2 * dim, dim, 1)
        self.ms1 = nn.Conv2d(dim, dim, 1)
        self.ms3 = nn.Conv2d(dim, dim, 3, padding=1)
        self.ms5 = nn.Conv2d(dim, dim, 5, padding=2)
        self.ms_fuse = nn.Conv2d(3 * dim, dim, 1)
        self.spectral = SpectralFilter(dim)
        self.gate_conv = nn.Conv2d(dim, dim, 1)
        self.gate_fc = nn.Linear(dim, 2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.out_a = nn.Conv2d(dim, dim, 1) if "interp" in outputs else None
        self.out_b = nn.Conv2d(dim, dim, 1) if "seg" in outputs else None

    def _attend(self, q_lin: nn.Linear, kv_lin: nn.Linear, fq: torch.Tensor, fkv: torch.Tensor):
        """fq, fkv: (B, C, H, W) -> attention of fq's tokens over fkv's tokens, (B, C, H, W)."""
        b, c, h, w = fq.shape
        q = q_lin(fq.flatten(2).transpose(1, 2))  # (B, N, C)
        if self.attn_impl == "pool":
            fkv = F.adaptive_avg_pool2d(fkv, (min(self.pool, h), min(self.pool, w)))  # (B, C, P, P)
        k, v = kv_lin(fkv.flatten(2).transpose(1, 2)).chunk(2, dim=-1)  # each (B, M, C)
        out = cross_attention(q, k, v, self.scale, self.attn_impl, (h, w), self.window)  # (B, N, C)
        return to_nchw(out.view(b, h, w, c))  # (B, C, H, W)

    def forward(
        self,
        f_a: torch.Tensor,
        f_b: torch.Tensor,
        outputs: tuple[str, ...] | None = None,
        record: dict[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """f_a, f_b: (B, C, H, W) -> {"interp": (B, C, H, W), "seg": (B, C, H, W)} (the requested ones).

        ``record`` (optional) receives ``attn`` (F_att), ``freq`` (F_freq) and ``gate`` (B, 2).
        """
        if f_a.shape != f_b.shape:
            raise ValueError(f"MSTAF inputs differ: f_a {tuple(f_a.shape)} vs f_b {tuple(f_b.shape)}")
        outputs = self.outputs if outputs is None else tuple(outputs)
        if set(outputs) - set(self.outputs):
            raise ValueError(f"outputs={outputs!r} not built; this MSTAF has {self.outputs}")
        a1 = self._attend(self.q1, self.kv1, f_a, f_b)  # (B, C, H, W)
        a2 = self._attend(self.q2, self.kv2, f_b, f_a)  # (B, C, H, W)
        f_att = self.att_fuse(torch.cat([a1, a2], dim=1))  # (B, C, H, W)
        f_multi = self.ms_fuse(torch.cat([self.ms1(f_att), self.ms3(f_att), self.ms5(f_att)], dim=1))
        f_freq = self.spectral(f_multi)  # (B, C, H, W)
        g = self.gap(self.gate_conv(f_b)).flatten(1)  # (B, C)
        weights = torch.softmax(self.gate_fc(F.silu(g)), dim=-1)  # (B, 2)
        w1, w2 = weights[:, 0, None, None, None], weights[:, 1, None, None, None]  # each (B, 1, 1, 1)
        if record is not None:
            record.update(attn=f_att, freq=f_freq, gate=weights)
        result: dict[str, torch.Tensor] = {}
        if self.gate == "noop":
            fusion = w1 * f_freq + w2 * f_freq
            fus_int = fus_seg = fusion
        else:
            fus_int, fus_seg = 2 * w1 * f_freq, 2 * w2 * f_freq
        if "interp" in outputs:
            result["interp"] = fus_int + self.out_a(f_a)
        if "seg" in outputs:
            result["seg"] = fus_seg + self.out_b(f_b)
        return result
