"""Swin U-Net pieces shared by the SwinUNet and VTN baselines, built from the project's Swin layers.

* ``SwinEncoder``: PatchEmbed (4x4) [-> LayerNorm] then stages [PatchMerging] -> depth x
  SwinTransformerBlock (shift 0 / window/2 alternating) -> features at H/4, H/8, H/16 and the bottleneck
  at H/32 [-> LayerNorm]. Where the skips are taken is an option (``skips``): ``"stage_out"`` (each stage's
  Swin-block output; VTN) or ``"stage_in"`` (what each stage's Swin blocks receive: the patch embedding at
  H/4 and the patch-merged tokens at H/8 and H/16; the Swin-Unet authors' code).
* ``SwinUDecoder`` (Swin-Unet, Cao et al. 2021): PatchExpand from the bottleneck, then per stage
  concat(up, skip) -> Linear(2C, C) -> Swin blocks -> PatchExpand; LayerNorm at the end (H/4).
* ``FinalPatchExpand``: Linear(C, 16C) -> rearrange to (4H, 4W, C) -> LN -> Conv1x1(C, out).
"""

from __future__ import annotations

import torch
from torch import nn

from tascmt.models.layers import PatchEmbed, PatchExpand, PatchMerging, SwinTransformerBlock
from tascmt.models.layers.helpers import to_nchw, to_nhwc

Record = dict[str, torch.Tensor]


def swin_stage(dim: int, heads: int, depth: int, window: int, mlp_ratio: float = 4.0) -> nn.Sequential:
    """``depth`` Swin blocks, shift 0 and window/2 alternating (the standard W-MSA / SW-MSA pairs)."""
    return nn.Sequential(
        *(SwinTransformerBlock(dim, heads, window, 0 if b % 2 == 0 else window // 2, mlp_ratio)
          for b in range(depth))
    )


SKIP_POINTS = ("stage_out", "stage_in")


class SwinEncoder(nn.Module):
    """(B, in, H, W) -> [F1 (B, C, H/4, W/4), F2 (2C, H/8), F3 (4C, H/16), bottleneck (8C, H/32)].

    ``skips="stage_out"``: F_k is the output of stage k's Swin blocks. ``skips="stage_in"``: F_k is the
    input of stage k's Swin blocks, i.e. the patch embedding (k = 1) or the output of the patch merging
    that opens stage k (k = 2, 3). The last entry is always the bottleneck, the output of the last stage's
    blocks. ``patch_norm`` adds a LayerNorm after the patch embedding and ``bottleneck_norm`` one on the
    bottleneck (both as in Swin-Unet).
    """

    def __init__(self, in_chans: int, dims: tuple[int, ...], heads: tuple[int, ...], depths: tuple[int, ...],
                 window: int, mlp_ratio: float = 4.0, skips: str = "stage_out", patch_norm: bool = False,
                 bottleneck_norm: bool = False):
        super().__init__()
        if skips not in SKIP_POINTS:
            raise ValueError(f"SwinEncoder skips={skips!r} is not one of {SKIP_POINTS}")
        self.skip_point = skips
        self.embed = PatchEmbed(in_chans, dims[0])
        self.embed_norm = nn.LayerNorm(dims[0]) if patch_norm else None
        self.merges = nn.ModuleList(PatchMerging(dims[k - 1]) for k in range(1, len(dims)))
        self.stages = nn.ModuleList(
            swin_stage(d, h, n, window, mlp_ratio) for d, h, n in zip(dims, heads, depths)
        )
        self.norm = nn.LayerNorm(dims[-1]) if bottleneck_norm else None

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        f = self.embed(x)  # (B, C, H/4, W/4)
        if self.embed_norm is not None:
            f = to_nchw(self.embed_norm(to_nhwc(f))).contiguous()
        last = len(self.stages) - 1
        for k, stage in enumerate(self.stages):
            if k > 0:
                f = self.merges[k - 1](f)  # (B, 2C, h/2, w/2)
            if self.skip_point == "stage_in" and k < last:
                feats.append(f)
            f = stage(f)
            if self.skip_point == "stage_out" and k < last:
                feats.append(f)
        if self.norm is not None:
            f = to_nchw(self.norm(to_nhwc(f))).contiguous()
        feats.append(f)  # the bottleneck (B, 8C, H/32, W/32)
        return feats


class SwinUDecoder(nn.Module):
    """Swin-Unet decoder: skips [S1..S4] -> (B, C, H/4, W/4) (layer-normalised).

    Stage j = 1..3 at width ``dims[-1-j]``: U = PatchExpand(F) (2x up, half the channels),
    F = Blocks(Linear(2C, C)(cat(U, S_{4-j}))). ``dec_depths`` and ``dec_heads`` list stages 1..3.
    """

    def __init__(self, dims: tuple[int, ...], dec_heads: tuple[int, ...], dec_depths: tuple[int, ...],
                 window: int, mlp_ratio: float = 4.0):
        super().__init__()
        dec_dims = dims[-2::-1]  # (4C, 2C, C)
        self.expands = nn.ModuleList(PatchExpand(2 * d) for d in dec_dims)
        self.fuses = nn.ModuleList(nn.Linear(2 * d, d) for d in dec_dims)
        self.stages = nn.ModuleList(
            swin_stage(d, h, n, window, mlp_ratio) for d, h, n in zip(dec_dims, dec_heads, dec_depths)
        )
        self.norm = nn.LayerNorm(dims[0])

    def forward(self, skips: list[torch.Tensor], record: Record | None = None) -> torch.Tensor:
        f = skips[-1]  # (B, 8C, H/32, W/32)
        for j in range(len(self.stages)):
            u = self.expands[j](f)  # (B, C_j, 2h, 2w)
            cat = to_nhwc(torch.cat([u, skips[-2 - j]], dim=1))  # (B, h, w, 2 C_j)
            f = self.stages[j](to_nchw(self.fuses[j](cat)).contiguous())  # (B, C_j, h, w)
            if record is not None:
                record[f"dec{j + 1}"] = f
        return to_nchw(self.norm(to_nhwc(f))).contiguous()  # (B, C, H/4, W/4)


class FinalPatchExpand(nn.Module):
    """Swin-Unet's final x4 patch expanding and linear projection: (B, C, h, w) -> (B, out, 4h, 4w)."""

    def __init__(self, dim: int, out_chans: int, scale: int = 4):
        super().__init__()
        self.scale = scale
        self.expand = nn.Linear(dim, scale * scale * dim, bias=False)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Conv2d(dim, out_chans, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        s = self.scale
        y = self.expand(to_nhwc(x))  # (B, h, w, s*s*C)
        y = y.view(b, h, w, s, s, c).permute(0, 1, 3, 2, 4, 5)  # (B, h, s, w, s, C)
        y = self.norm(y.reshape(b, s * h, s * w, c))  # (B, 4h, 4w, C)
        return self.out(to_nchw(y).contiguous())  # (B, out, 4h, 4w)
