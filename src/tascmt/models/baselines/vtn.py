"""VTN-Interp: a multi-scale video-transformer interpolator for the middle slice.

Design (the issue leaves it open; this is the one chosen, and why):

1. **Siamese Swin encoder.** X1 and X3 are encoded *separately* by one shared Swin encoder (the two frames
   run as one batch of 2B single-channel images), giving per-frame features at H/4, H/8, H/16, H/32.
   Shared weights put both frames in the same feature space and treat them alike, as video-frame
   interpolation transformers do (VFIT, Shi et al. 2022; VFIformer, Lu et al. 2022); early fusion (the
   SwinUNet/TransUNet baselines stack the two frames as channels) is what this baseline contrasts with.
2. **Cross-frame window attention at every scale.** Inside each (window x window) region the tokens of both
   frames (tagged with a learned frame embedding) attend jointly to one another (2N tokens), so a
   structure in X1 can find its counterpart in X3; the two attended halves are fused by Linear(2C, C) into
   the middle-frame feature of that scale. Fine scales catch small anatomical displacements, coarse scales
   (H/32: one window spans 256 px at 512²) large ones. Windowed attention keeps the cost linear in H*W.
   No optical flow / warping: between slices, "motion" is deformation with appearing and vanishing
   structures, where explicit flow is ill-posed and needs ``grid_sample``; attention aggregates instead.
3. **U-Net decoder** (the Swin-Unet decoder of ``swin_common``) over the fused multi-scale features, then a
   x4 patch expanding head predicting X2 (``interp_output`` direct / residual, as the main model).

``paper``: dims 64/128/256/512, heads 2/4/8/16, encoder depths 2/2/2/2, one cross-frame layer per scale,
decoder depths 2/2/2, window 8: 16.99 M parameters (between the published VFIT-S, 7.5 M, and VFIT-B, 29 M).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tascmt.models.baselines.base import BaselineModel, Record, interp_from_head
from tascmt.models.baselines.config import sized
from tascmt.models.baselines.swin_common import FinalPatchExpand, SwinEncoder, SwinUDecoder
from tascmt.models.baselines.swinunet import SwinUNetConfig
from tascmt.models.config import ModelConfigError
from tascmt.models.layers import Mlp, init_weights, window_geometry, window_partition, window_reverse
from tascmt.models.layers.helpers import pad_to_multiple, to_nchw, to_nhwc
from tascmt.models.registry import register_model


class CrossFrameFusion(nn.Module):
    """Joint window attention over the tokens of two frames, then Linear(2C, C) fusion.

    (a, b): two (B, C, H, W) maps -> (B, C, H, W). Per window: t = [a + e_1; b + e_3] (2N tokens),
    t = t + MHSA(LN(t)), t = t + MLP(LN(t)), out = Linear(cat(t_a, t_b)).
    """

    def __init__(self, dim: int, heads: int, window: int, mlp_ratio: float = 4.0):
        super().__init__()
        if dim % heads:
            raise ModelConfigError(f"CrossFrameFusion dim={dim} is not divisible by heads={heads}")
        self.heads, self.window = heads, window
        self.frame_embed = nn.Parameter(torch.zeros(2, dim))
        nn.init.trunc_normal_(self.frame_embed, std=0.02)
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.fuse = nn.Linear(2 * dim, dim)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        _, c, h, w = a.shape
        wh, ww, _, _ = window_geometry(h, w, self.window, 0)
        maps = [pad_to_multiple(to_nhwc(m), wh, ww) for m in (a, b)]  # 2 x (B, Hp, Wp, C)
        hp, wp = maps[0].shape[1:3]
        wins = [window_partition(m, wh, ww) + self.frame_embed[i] for i, m in enumerate(maps)]  # (B_, N, C)
        n = wh * ww
        t = torch.cat(wins, dim=1)  # (B_, 2N, C)
        bn = t.shape[0]
        qkv = self.qkv(self.norm1(t)).view(bn, 2 * n, 3, self.heads, c // self.heads)  # (B_, 2N, 3, h, d)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B_, h, 2N, d)
        att = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(bn, 2 * n, c)  # (B_, 2N, C)
        t = t + self.proj(att)
        t = t + self.mlp(self.norm2(t))
        fused = self.fuse(torch.cat([t[:, :n], t[:, n:]], dim=-1))  # (B_, N, C)
        out = window_reverse(fused, wh, ww, hp, wp)[:, :h, :w]  # (B, H, W, C)
        return to_nchw(out).contiguous()  # (B, C, H, W)


@dataclass(frozen=True)
class VTNConfig(SwinUNetConfig):
    """Siamese Swin encoder (per frame), cross-frame fusion heads per scale, Swin-Unet decoder (the
    Swin-Unet topology fields and checks; ``in_chans`` is unused: each frame is encoded alone)."""

    name: str = "vtn_interp"
    dims: tuple[int, ...] = (64, 128, 256, 512)
    heads: tuple[int, ...] = (2, 4, 8, 16)
    dec_heads: tuple[int, ...] = (8, 4, 2)


SIZES = {
    "paper": {},
    "small": dict(img_size=128, dims=(24, 48, 96, 192), heads=(1, 2, 4, 8), depths=(2, 2, 2, 2),
                  dec_heads=(4, 2, 1), dec_depths=(1, 1, 1)),
    "tiny": dict(img_size=64, dims=(8, 16, 32, 64), heads=(1, 1, 2, 2), depths=(1, 1, 1, 1),
                 dec_heads=(2, 1, 1), dec_depths=(1, 1, 1)),
}


class VTNInterp(BaselineModel):
    """x (B, 2, H, W) = [X1, X3] in [0, 1] -> {"interp": (B, 1, H, W)}; H, W multiples of 32."""

    config_cls = VTNConfig

    def __init__(self, config: VTNConfig):
        super().__init__()
        cfg = self.config = config
        self.encoder = SwinEncoder(1, cfg.dims, cfg.heads, cfg.depths, cfg.window, cfg.mlp_ratio)
        self.fusions = nn.ModuleList(
            CrossFrameFusion(d, h, cfg.window, cfg.mlp_ratio) for d, h in zip(cfg.dims, cfg.heads)
        )
        self.decoder = SwinUDecoder(cfg.dims, cfg.dec_heads, cfg.dec_depths, cfg.window, cfg.mlp_ratio)
        self.head = FinalPatchExpand(cfg.dims[0], 1)
        self.apply(init_weights)

    def _forward(self, x: torch.Tensor, record: Record | None) -> dict[str, torch.Tensor]:
        b = x.shape[0]
        frames = x.transpose(0, 1).reshape(2 * b, 1, *x.shape[-2:])  # (2B, 1, H, W): [X1 batch; X3 batch]
        feats = self.encoder(frames)  # 4 x (2B, C_k, h_k, w_k)
        fused = [fuse(f[:b], f[b:]) for fuse, f in zip(self.fusions, feats)]  # 4 x (B, C_k, h_k, w_k)
        if record is not None:
            record.update({f"fused.s{k + 1}": f for k, f in enumerate(fused)})
        f = self.decoder(fused, record)  # (B, C, H/4, W/4)
        return {"interp": interp_from_head(self.head(f), x, self.config.interp_output)}

    def output_layers(self) -> list[nn.Module]:
        return [self.head.out]


@register_model(VTNInterp)
def vtn_interp(size: str) -> VTNConfig:
    """VTN-Interp baseline: siamese Swin encoder, cross-frame window attention per scale, U-Net decoder."""
    return sized(VTNConfig, "vtn_interp", size, SIZES)
