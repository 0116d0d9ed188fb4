"""TransUNet-Interp: CNN stem + ViT bottleneck U-Net (Chen et al., "TransUNet", 2021), pair in, X2 out.

* CNN stem (ResNet-50-like, as TransUNet's R50-ViT hybrid): Conv7x7/2 -> [skip H/2] -> MaxPool/2 ->
  3 stages of bottleneck blocks (strides 1, 2, 2) -> [skips H/4, H/8] -> features at H/16.
* ViT bottleneck: Conv1x1 patch embedding (patch 1 on the H/16 grid) + learned position embedding of
  (img_size/16)^2 tokens -> pre-norm transformer encoder layers -> LayerNorm.
* U-Net (TransUNet "CUP") decoder: Conv3x3 -> 4 x [bilinear x2, concat skip (H/8, H/4, H/2, none),
  2 x Conv3x3-GN-ReLU] -> Conv3x3 to 1 channel; ``interp_output`` direct / residual as the main model.

Position embedding for other sizes: the embedding is a (img_size/16)^2 grid; an input of another size
(a multiple of 32) gets the grid bilinearly resized to its own H/16 x W/16 (as ViT does when fine-tuned
at a new resolution), so any valid size runs, but the model is only trained at ``img_size``.

Normalisation: GroupNorm everywhere (TransUNet uses GroupNorm in the ResNet and BatchNorm in the decoder;
GroupNorm keeps batch-2 training and CPU DDP free of batch statistics; same parameter count).
``paper`` = R50 (3/4/9 blocks, widths 256/512/1024) + ViT-B (12 layers, 768, 12 heads, MLP 3072) +
decoder 256/128/64/16: 105.91 M parameters at img_size 512 (32² = 1024 tokens; the published
R50-ViT-B_16 TransUNet has 105.3 M at 224², whose position embedding has 196 tokens).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tascmt.models.baselines.base import BaselineModel, Record, interp_from_head
from tascmt.models.baselines.config import BaselineConfig, sized
from tascmt.models.config import ModelConfigError
from tascmt.models.layers import Mlp, init_weights
from tascmt.models.registry import register_model


def group_norm(c: int) -> nn.GroupNorm:
    """GroupNorm with up to 32 groups (the largest count dividing ``c``)."""
    return nn.GroupNorm(math.gcd(32, c), c)


def conv_norm_relu(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), group_norm(cout), nn.ReLU(True))


class Bottleneck(nn.Module):
    """Conv1x1 -> Conv3x3(stride) -> Conv1x1 (width out/4 inside), GN after each, identity/projected skip."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        mid = max(cout // 4, 1)
        self.body = nn.Sequential(
            conv_norm_relu(cin, mid, 1),
            conv_norm_relu(mid, mid, 3, stride),
            nn.Conv2d(mid, cout, 1, bias=False),
            group_norm(cout),
        )
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), group_norm(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in, H, W) -> (B, out, H/stride, W/stride)."""
        s = x if self.short is None else self.short(x)
        return F.relu(self.body(x) + s)


class TransformerLayer(nn.Module):
    """Pre-norm ViT layer: x + MHSA(LN(x)), then x + MLP(LN(x)). (B, N, C) -> (B, N, C)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int):
        super().__init__()
        if dim % heads:
            raise ModelConfigError(f"transformer hidden={dim} is not divisible by heads={heads}")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, c // self.heads)  # (B, N, 3, h, d)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, h, N, d)
        a = F.scaled_dot_product_attention(q, k, v)  # (B, h, N, d)
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, c))  # (B, N, C)
        return x + self.mlp(self.norm2(x))


@dataclass(frozen=True)
class TransUNetConfig(BaselineConfig):
    """R50-ViT hybrid topology: CNN stem widths/blocks, ViT size, decoder channels (4 up-stages)."""

    name: str = "transunet_interp"
    in_chans: int = 2
    stem: int = 64
    cnn_widths: tuple[int, ...] = (256, 512, 1024)
    cnn_blocks: tuple[int, ...] = (3, 4, 9)
    hidden: int = 768
    vit_layers: int = 12
    vit_heads: int = 12
    mlp_dim: int = 3072
    dec_in: int = 512
    dec_channels: tuple[int, ...] = (256, 128, 64, 16)
    interp_output: str = "direct"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_lengths(cnn_widths=self.cnn_widths, cnn_blocks=self.cnn_blocks, three=(0, 0, 0))
        if len(self.dec_channels) != 4:
            raise ModelConfigError(
                f"model config {self.name}: dec_channels={self.dec_channels} needs 4 entries"
            )
        if self.hidden % self.vit_heads:
            raise ModelConfigError(
                f"model config {self.name}: hidden={self.hidden} is not divisible by "
                f"vit_heads={self.vit_heads}"
            )


SIZES = {
    "paper": {},
    "small": dict(img_size=128, stem=32, cnn_widths=(64, 128, 256), cnn_blocks=(1, 2, 2), hidden=256,
                  vit_layers=4, vit_heads=4, mlp_dim=1024, dec_in=128, dec_channels=(64, 32, 16, 16)),
    "tiny": dict(img_size=64, stem=8, cnn_widths=(16, 32, 64), cnn_blocks=(1, 1, 1), hidden=32,
                 vit_layers=1, vit_heads=2, mlp_dim=64, dec_in=32, dec_channels=(16, 8, 8, 4)),
}


class TransUNetInterp(BaselineModel):
    """x (B, 2, H, W) = [X1, X3] in [0, 1] -> {"interp": (B, 1, H, W)}; H, W multiples of 32."""

    config_cls = TransUNetConfig

    def __init__(self, config: TransUNetConfig):
        super().__init__()
        cfg = self.config = config
        self.root = conv_norm_relu(cfg.in_chans, cfg.stem, 7, 2)  # H/2
        self.pool = nn.MaxPool2d(3, 2, 1)  # H/4
        stages, cin = [], cfg.stem
        for i, (w, n) in enumerate(zip(cfg.cnn_widths, cfg.cnn_blocks)):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(*(Bottleneck(cin if b == 0 else w, w, stride if b == 0 else 1)
                                          for b in range(n))))
            cin = w
        self.cnn = nn.ModuleList(stages)
        self.grid = cfg.img_size // 16
        self.patch_embed = nn.Conv2d(cfg.cnn_widths[-1], cfg.hidden, 1)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid, cfg.hidden))
        self.vit = nn.Sequential(*(TransformerLayer(cfg.hidden, cfg.vit_heads, cfg.mlp_dim)
                                   for _ in range(cfg.vit_layers)))
        self.vit_norm = nn.LayerNorm(cfg.hidden)
        self.conv_more = conv_norm_relu(cfg.hidden, cfg.dec_in)
        skip_chans = (cfg.cnn_widths[1], cfg.cnn_widths[0], cfg.stem, 0)  # H/8, H/4, H/2, none
        ins = (cfg.dec_in, *cfg.dec_channels[:-1])
        self.decoder = nn.ModuleList(
            nn.Sequential(conv_norm_relu(i + s, o), conv_norm_relu(o, o))
            for i, s, o in zip(ins, skip_chans, cfg.dec_channels)
        )
        self.head = nn.Conv2d(cfg.dec_channels[-1], 1, 3, padding=1)
        self.apply(init_weights)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def position_embedding(self, gh: int, gw: int) -> torch.Tensor:
        """(1, gh*gw, hidden): the learned grid, bilinearly resized when (gh, gw) differs from it."""
        if (gh, gw) == (self.grid, self.grid):
            return self.pos_embed
        grid = self.pos_embed.view(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)  # (1, C, g, g)
        grid = F.interpolate(grid, size=(gh, gw), mode="bilinear", align_corners=False)  # (1, C, gh, gw)
        return grid.flatten(2).transpose(1, 2)  # (1, gh*gw, C)

    def _forward(self, x: torch.Tensor, record: Record | None) -> dict[str, torch.Tensor]:
        f = self.root(x)  # (B, stem, H/2, W/2)
        skips = [f]
        f = self.pool(f)  # (B, stem, H/4, W/4)
        for k, stage in enumerate(self.cnn):
            f = stage(f)  # (B, w_k, H/4, H/8, H/16)
            if k < 2:
                skips.append(f)
        t = self.patch_embed(f)  # (B, hidden, gh, gw)
        b, c, gh, gw = t.shape
        t = t.flatten(2).transpose(1, 2) + self.position_embedding(gh, gw)  # (B, N, hidden)
        t = self.vit_norm(self.vit(t))  # (B, N, hidden)
        f = self.conv_more(t.transpose(1, 2).reshape(b, c, gh, gw))  # (B, dec_in, H/16, W/16)
        if record is not None:
            record["vit"] = f
        for j, block in enumerate(self.decoder):
            f = F.interpolate(f, scale_factor=2, mode="bilinear", align_corners=False)  # (B, C, 2h, 2w)
            if j < 3:
                f = torch.cat([f, skips[2 - j]], dim=1)  # + skip at H/8, H/4, H/2
            f = block(f)
            if record is not None:
                record[f"dec{j + 1}"] = f
        return {"interp": interp_from_head(self.head(f), x, self.config.interp_output)}

    def output_layers(self) -> list[nn.Module]:
        return [self.head]


@register_model(TransUNetInterp)
def transunet_interp(size: str) -> TransUNetConfig:
    """TransUNet-Interp baseline: CNN stem + ViT bottleneck U-Net, 2 frames in, the middle frame out."""
    return sized(TransUNetConfig, "transunet_interp", size, SIZES)
