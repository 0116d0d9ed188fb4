"""SwinUNet-Interp: a Swin U-Net (Cao et al., "Swin-Unet", 2021) that maps the pair [X1, X3] to X2.

Swin-Unet's topology, as in the authors' code (``SwinTransformerSys``):

* encoder: PatchEmbed 4x4 + LayerNorm, then 4 stages of Swin blocks, each of the first three closed by a
  patch merging; LayerNorm on the bottleneck (the last stage's output, H/32);
* skips: what each stage's Swin blocks receive, i.e. the patch embedding (H/4, C) and the patch-merged
  tokens entering stages 2 and 3 (H/8, 2C; H/16, 4C) (``SwinEncoder(skips="stage_in")``);
* decoder: patch expanding from the bottleneck, then per stage concat(up, skip) -> Linear(2C, C) -> Swin
  blocks -> patch expanding; LayerNorm at H/4; final x4 patch expanding and a 1x1 projection.

Output: one channel, ``interp_output`` "direct" (sigmoid) or "residual" ((X1+X3)/2 + r) as in the main
model. Built from the project's own Swin layers (``tascmt.models.layers``) and initialised like every
other row (``init_weights``).

Skip point: an earlier version took each skip from the *output* of a stage's Swin blocks (after the
blocks, before the next patch merging), as Fig. 1 of the Swin-Unet paper draws it. The authors' code
instead stores each layer's *input* (``x_downsample.append(x)`` before ``x = layer(x)``, where a layer is
Swin blocks followed by patch merging), so its H/4 skip is the bare patch embedding and its H/8 and H/16
skips are the patch-merged tokens before any Swin block of that resolution. We follow the code. The
parameter count does not depend on the skip point; the patch-embedding and bottleneck LayerNorms (also
from the code) add 2·96 + 2·768 = 1,728 parameters at paper size.

``paper`` follows Swin-Unet's published configuration (embed 96, depths 2/2/2/2, decoder depths 2/2/2
as in its code, which ignores its ``depths_decoder`` argument, heads 3/6/12/24) with window 8 instead of 7
(512/4 = 128 is a multiple of 8, as in the main model): 27,173,988 parameters (published: 27.17 M).
``small``/``tiny`` shrink widths and depths for CPU training and tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tascmt.models.baselines.base import BaselineModel, Record, interp_from_head
from tascmt.models.baselines.config import BaselineConfig, sized
from tascmt.models.baselines.swin_common import FinalPatchExpand, SwinEncoder, SwinUDecoder
from tascmt.models.config import ModelConfigError
from tascmt.models.layers import init_weights
from tascmt.models.registry import register_model


@dataclass(frozen=True)
class SwinUNetConfig(BaselineConfig):
    """Swin-Unet topology: encoder ``dims``/``heads``/``depths`` (4 stages), decoder stages 1..3."""

    name: str = "swinunet_interp"
    in_chans: int = 2
    dims: tuple[int, ...] = (96, 192, 384, 768)
    heads: tuple[int, ...] = (3, 6, 12, 24)
    depths: tuple[int, ...] = (2, 2, 2, 2)
    dec_heads: tuple[int, ...] = (12, 6, 3)
    dec_depths: tuple[int, ...] = (2, 2, 2)
    window: int = 8
    mlp_ratio: float = 4.0
    interp_output: str = "direct"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_lengths(dims=self.dims, heads=self.heads, depths=self.depths)
        self.check_lengths(dec_heads=self.dec_heads, dec_depths=self.dec_depths, dims_minus_one=self.dims[1:])
        if any(self.dims[i] != 2 * self.dims[i - 1] for i in range(1, len(self.dims))):
            raise ModelConfigError(f"model config {self.name}: dims={self.dims} must double at every stage")


SIZES = {
    "paper": {},
    "small": dict(img_size=128, dims=(32, 64, 128, 256), heads=(1, 2, 4, 8), depths=(2, 2, 2, 2),
                  dec_heads=(4, 2, 1), dec_depths=(2, 2, 2)),
    "tiny": dict(img_size=64, dims=(8, 16, 32, 64), heads=(1, 1, 2, 2), depths=(1, 1, 1, 1),
                 dec_heads=(2, 1, 1), dec_depths=(1, 1, 1)),
}


class SwinUNetInterp(BaselineModel):
    """x (B, 2, H, W) = [X1, X3] in [0, 1] -> {"interp": (B, 1, H, W)}; H, W multiples of 32."""

    config_cls = SwinUNetConfig

    def __init__(self, config: SwinUNetConfig):
        super().__init__()
        cfg = self.config = config
        self.encoder = SwinEncoder(cfg.in_chans, cfg.dims, cfg.heads, cfg.depths, cfg.window, cfg.mlp_ratio,
                                   skips="stage_in", patch_norm=True, bottleneck_norm=True)
        self.decoder = SwinUDecoder(cfg.dims, cfg.dec_heads, cfg.dec_depths, cfg.window, cfg.mlp_ratio)
        self.head = FinalPatchExpand(cfg.dims[0], 1)
        self.apply(init_weights)

    def _forward(self, x: torch.Tensor, record: Record | None) -> dict[str, torch.Tensor]:
        skips = self.encoder(x)  # [patch embedding, merged H/8, merged H/16, bottleneck H/32]
        if record is not None:
            record.update({f"enc.s{k + 1}": s for k, s in enumerate(skips)})
        f = self.decoder(skips, record)  # (B, C, H/4, W/4)
        return {"interp": interp_from_head(self.head(f), x, self.config.interp_output)}

    def output_layers(self) -> list[nn.Module]:
        return [self.head.out]


@register_model(SwinUNetInterp)
def swinunet_interp(size: str) -> SwinUNetConfig:
    """SwinUNet-Interp baseline: a Swin U-Net, 2 frames in, the middle frame out."""
    return sized(SwinUNetConfig, "swinunet_interp", size, SIZES)
