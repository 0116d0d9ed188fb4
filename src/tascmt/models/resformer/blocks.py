"""Encoder building blocks of ResFormer: ResNet BasicBlock stages, ECA, multi-scale conv patch tokens, the
Swin stage and the serial / parallel ResFormer stage that combines them (docs/design.md §9)."""

from __future__ import annotations

import math

import torch
from torch import nn

from tascmt.models.layers import SwinTransformerBlock


def conv_bn_relu(c_in: int, c_out: int, k: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """Conv(k, stride, dilation, 'same' padding, no bias) -> BN -> ReLU."""
    pad = dilation * (k - 1) // 2
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class BasicBlock(nn.Module):
    """ResNet BasicBlock: two 3x3 conv-BN with an identity (or 1x1 conv-BN) shortcut, then ReLU.

    x: (B, C_in, H, W) -> (B, C_out, H/stride, W/stride).
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.down = None
        if stride != 1 or c_in != c_out:
            self.down = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.down is None else self.down(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def res_stage(c_in: int, c_out: int, depth: int, stride: int) -> nn.Sequential:
    """``depth`` BasicBlocks; the first one changes width and stride (ResNet-34 layer)."""
    blocks = [BasicBlock(c_in, c_out, stride)] + [BasicBlock(c_out, c_out) for _ in range(depth - 1)]
    return nn.Sequential(*blocks)


class ECA(nn.Module):
    """Efficient channel attention (Wang et al., 2020): GAP -> 1-D conv over channels (adaptive odd kernel
    ``|log2(C)/2 + 1/2|``) -> sigmoid -> channel rescaling. x: (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int, gamma: int = 2, b: int = 1):
        super().__init__()
        k = int(abs(math.log2(channels) / gamma + b / gamma))
        k = k if k % 2 else k + 1
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean(dim=(2, 3))[:, None, :]  # (B, 1, C)
        y = torch.sigmoid(self.conv(y))[:, 0, :, None, None]  # (B, C, 1, 1)
        return x * y


class MultiScalePatchTokens(nn.Module):
    """Multi-scale conv patch tokens with ECA: convs with kernels s, s+2, s+4 (all stride s, centred) whose
    outputs (C/2, C/4, C/4 channels) are concatenated, batch-normalised and reweighted by ECA.

    x: (B, C_in, H, W) -> (B, C_out, H/s, W/s); ``C_out`` must be a multiple of 4.
    """

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        widths = (c_out // 2, c_out // 4, c_out - c_out // 2 - c_out // 4)
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, w, stride + 2 * i, stride=stride, padding=i, bias=False)
            for i, w in enumerate(widths)
        )
        self.norm = nn.BatchNorm2d(c_out)
        self.eca = ECA(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = torch.cat([conv(x) for conv in self.convs], dim=1)  # (B, C_out, H/s, W/s)
        return self.eca(self.norm(tokens))


class SwinStage(nn.Module):
    """``depth`` Swin blocks (the odd ones shifted by window/2). x: (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, dim: int, heads: int, depth: int, window: int, mlp_ratio: float = 4.0):
        super().__init__()
        shift = window // 2
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(dim, heads, window, shift if i % 2 else 0, mlp_ratio) for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        return x


class ResFormerStage(nn.Module):
    """One encoder stage: a ResNet-34 layer, multi-scale patch tokens (with ECA) and a Swin stage.

    ``serial``:   y = Swin(ResNet(x) + Tokens(t))
    ``parallel``: y = ResNet(x) + Swin(Tokens(t))

    x: (B, C_in, H, W) the previous stage's output; t: the tokens' source, (B, C_t, H*s_t, W*s_t) — the
    previous output again (``token_stride == res_stride``), or the image for the first stage.
    Returns (B, C_out, H/res_stride, W/res_stride). Both designs have the same parameters.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        res_depth: int,
        res_stride: int,
        heads: int,
        swin_depth: int,
        window: int,
        mlp_ratio: float,
        block: str,
        token_in: int | None = None,
        token_stride: int | None = None,
    ):
        super().__init__()
        if block not in ("serial", "parallel"):
            raise ValueError(f"ResFormerStage: block={block!r} is not 'serial' or 'parallel'")
        self.block = block
        self.res = res_stage(c_in, c_out, res_depth, res_stride)
        self.tokens = MultiScalePatchTokens(token_in or c_in, c_out, token_stride or res_stride)
        self.swin = SwinStage(c_out, heads, swin_depth, window, mlp_ratio)

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        tokens = self.tokens(x if t is None else t)  # (B, C_out, H', W')
        if self.block == "serial":
            return self.swin(self.res(x) + tokens)
        return self.res(x) + self.swin(tokens)
