"""thop-compatible multiply-accumulate (MAC) counts.

The paper's "FLOPs (G)" column is ``thop.profile``'s number (docs/design.md §4): a MAC count over a fixed set
of module types (convolutions, linear layers, normalisation layers, pooling, softmax, upsampling). Anything
that is not one of those modules is **not** counted: attention matmuls (``q @ k.T``,
``F.scaled_dot_product_attention``), FFTs, element-wise ops, activations (GELU, SiLU) and functional calls.

``count_macs`` uses the pinned ``thop`` package when it imports; otherwise (or with ``tool="builtin"``)
it applies the same per-module rules itself (the rules of thop 0.1.1.post2209072238, ``vision/basic_hooks``).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

MACS_NOTE = (
    "thop MACs: counts conv/linear/norm/pool/softmax/upsample modules only; attention matmuls "
    "(incl. scaled_dot_product_attention), FFTs and element-wise ops are not counted"
)


def count_macs(model: nn.Module, example_input: torch.Tensor, tool: str = "auto") -> dict[str, Any]:
    """MACs of one forward of ``model`` on ``example_input`` (B, C, H, W), the way ``thop.profile`` counts.

    ``tool``: ``"thop"`` (the installed package; error if it does not import), ``"builtin"`` (the same
    rules implemented here) or ``"auto"`` (thop if it imports, else builtin). The model runs once under
    ``torch.no_grad`` in eval mode; its training flag is restored afterwards.

    Returns ``{"macs": int, "tool": str, "tool_version": str, "by_child": {name: int}, "note": str}``.
    """
    if tool not in ("auto", "thop", "builtin"):
        raise ValueError(f"tool must be 'auto', 'thop' or 'builtin', got {tool!r}")
    thop_profile = _import_thop() if tool != "builtin" else None
    if tool == "thop" and thop_profile is None:
        raise RuntimeError("tool='thop' was requested but the thop package does not import")
    if thop_profile is not None:
        macs, by_child = _count_with_thop(thop_profile, model, example_input)
        name, version = "thop", _thop_version()
    else:
        macs, by_child = _count_builtin(model, example_input)
        name, version = "tascmt-builtin (thop rules)", _thop_version() or "thop 0.1.1 rules"
    return {"macs": int(macs), "tool": name, "tool_version": version, "by_child": by_child, "note": MACS_NOTE}


def _import_thop() -> Callable[..., Any] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # thop imports distutils' LooseVersion (deprecated)
            from thop import profile
    except Exception:  # thop missing or broken on this Python/torch: fall back to the builtin rules
        return None
    return profile


def _thop_version() -> str | None:
    try:
        return importlib.metadata.version("thop")
    except importlib.metadata.PackageNotFoundError:
        return None


def _count_with_thop(profile: Callable[..., Any], model: nn.Module, x: torch.Tensor) -> tuple[int, dict]:
    had = {m: {"total_ops", "total_params"} & set(m._buffers) for m in model.modules()}
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            total, _params, layers = profile(model, inputs=(x,), verbose=False, ret_layer_info=True)
    finally:
        # thop leaves its counting buffers on modules that have no rule; remove every one it added.
        for m, keep in had.items():
            for key in ("total_ops", "total_params"):
                if key not in keep:
                    m._buffers.pop(key, None)
    by_child = {name: int(info[0]) for name, info in layers.items()}
    return int(total), by_child


# ---- builtin rules (same numbers as thop's vision/basic_hooks.py) ----------------------------------------


def _conv(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    return y.numel() * (x.shape[1] // m.groups) * math.prod(m.weight.shape[2:])


def _norm(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    affine = getattr(m, "affine", False) or getattr(m, "elementwise_affine", False)
    return 2 * x.numel() * (2 if affine else 1)


def _linear(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    return m.in_features * y.numel()


def _softmax(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    n = x.shape[m.dim]
    return (x.numel() // n) * (3 * n - 1)


def _prelu(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    return 0 if m.training else x.numel()


def _avgpool(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    return y.numel()


def _adaptive_avgpool(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    kernel = math.prod(a / b for a, b in zip(x.shape[2:], y.shape[2:]))
    return int((kernel + 1) * y.numel())


def _upsample(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    per = {"nearest": 1, "linear": 5, "bilinear": 11, "bicubic": 259, "trilinear": 31}
    return per.get(m.mode, 0) * y.numel()


def _zero(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    return 0


_RULES: dict[type, Callable[[nn.Module, torch.Tensor, torch.Tensor], int]] = {
    **dict.fromkeys(
        (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d), _conv
    ),
    **dict.fromkeys(
        (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.LayerNorm,
         nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d),
        _norm,
    ),
    nn.Linear: _linear,
    nn.Softmax: _softmax,
    nn.PReLU: _prelu,
    **dict.fromkeys((nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d), _avgpool),
    **dict.fromkeys((nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d), _adaptive_avgpool),
    **dict.fromkeys((nn.Upsample, nn.UpsamplingBilinear2d, nn.UpsamplingNearest2d), _upsample),
    **dict.fromkeys((nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Dropout, nn.ZeroPad2d, nn.PixelShuffle), _zero),
    **dict.fromkeys((nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d), _zero),
    **dict.fromkeys((nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d), _zero),
}


def _count_builtin(model: nn.Module, x: torch.Tensor) -> tuple[int, dict]:
    """Apply thop's rules with forward hooks (exact module types, like thop; every call is counted)."""
    by_child: dict[str, int] = {name: 0 for name, _ in model.named_children()}
    total = 0
    handles = []

    def make_hook(child: str | None, rule: Callable[..., int]) -> Callable[..., None]:
        def hook(m: nn.Module, inputs: tuple, output: Any) -> None:
            nonlocal total
            ops = rule(m, inputs[0], output)
            total += ops
            if child is not None:
                by_child[child] += ops

        return hook

    for name, m in model.named_modules():
        rule = _RULES.get(type(m))
        if rule is not None:
            child = name.split(".", 1)[0] if name else None
            handles.append(m.register_forward_hook(make_hook(child, rule)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total, by_child
