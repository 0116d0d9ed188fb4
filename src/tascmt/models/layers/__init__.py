"""Reusable building blocks of the TASC-SwinMT family (no timm: these are written for this project)."""

from __future__ import annotations

from tascmt.models.layers.heads import PixelShuffleHead
from tascmt.models.layers.helpers import check_input_size, float32_block, init_weights, unit_phasor
from tascmt.models.layers.patch import PatchEmbed, PatchExpand, PatchMerging
from tascmt.models.layers.swin_block import Mlp, SwinTransformerBlock, window_geometry
from tascmt.models.layers.window_attention import (
    WindowAttention,
    relative_position_index,
    shift_attention_mask,
    window_partition,
    window_reverse,
)

__all__ = [
    "Mlp",
    "PatchEmbed",
    "PatchExpand",
    "PatchMerging",
    "PixelShuffleHead",
    "SwinTransformerBlock",
    "WindowAttention",
    "check_input_size",
    "float32_block",
    "init_weights",
    "relative_position_index",
    "shift_attention_mask",
    "unit_phasor",
    "window_geometry",
    "window_partition",
    "window_reverse",
]
