"""Stand-in models with hand-countable costs, behind a registry with ``create_model``'s signature."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclasses.dataclass
class TinyConfig:
    name: str
    size: str
    img_size: int = 32
    width: int = 4
    heads: int = 2
    four_d: bool = True


class ConvLinearNet(nn.Module):
    """Conv3×3 (2→w, bias) → BatchNorm2d(w) → Linear(w→3) over channels. Output dict like the real models."""

    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config = config
        self.conv = nn.Conv2d(2, config.width, 3, padding=1)
        self.bn = nn.BatchNorm2d(config.width)
        self.head = nn.Linear(config.width, 3)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.bn(self.conv(x))  # (B, w, H, W)
        y = self.head(f.permute(0, 2, 3, 1))  # (B, H, W, 3)
        return {"seg_logits": y.permute(0, 3, 1, 2)}


class AttnNet(nn.Module):
    """Conv1×1 (2→w, no bias) → global self-attention over the H·W tokens with SDPA (h heads or 3-D)."""

    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config = config
        self.proj = nn.Conv2d(2, config.width, 1, bias=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.proj(x)  # (B, C, H, W)
        b, c, h, w = f.shape
        t = f.flatten(2).transpose(1, 2)  # (B, N, C)
        if self.config.four_d:
            nh = self.config.heads
            q = t.reshape(b, h * w, nh, c // nh).transpose(1, 2)  # (B, h, N, C/h)
            o = F.scaled_dot_product_attention(q, q, q).transpose(1, 2).reshape(b, h * w, c)  # (B, N, C)
        else:
            o = F.scaled_dot_product_attention(t, t, t)  # (B, N, C)
        return {"interp": o.transpose(1, 2).reshape(b, c, h, w)[:, :1]}


_MODELS = {"tiny_convnet": ConvLinearNet, "tiny_attn": AttnNet}


def list_models() -> list[str]:
    return sorted(_MODELS)


def create_model(name: str, size: str = "small", **overrides) -> nn.Module:
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _MODELS[name](TinyConfig(name=name, size=size, **overrides))
