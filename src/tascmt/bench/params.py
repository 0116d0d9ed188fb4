"""Parameter counts: total, trainable and per top-level child module."""

from __future__ import annotations

from typing import Any

import torch.nn as nn


def count_parameters(model: nn.Module) -> dict[str, Any]:
    """Count the parameters of ``model``.

    Shared parameters are counted once (``model.parameters()`` de-duplicates them). The per-child counts
    cover the direct children of ``model``; a parameter shared between two children appears under both,
    and parameters registered directly on ``model`` are listed under ``"(own)"``.

    Returns ``{"total": int, "trainable": int, "by_child": {name: int}}``.
    """
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    by_child: dict[str, int] = {}
    for name, child in model.named_children():
        by_child[name] = sum(p.numel() for p in child.parameters())
    own = sum(p.numel() for p in model.parameters(recurse=False))
    if own:
        by_child["(own)"] = own
    return {"total": total, "trainable": trainable, "by_child": by_child}
