"""Small helpers shared by the model layers: size checks, layout permutes, fp32 guards, initialisation."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

SIZE_MULTIPLE = 32  # patch 4 x 3 merges: every in-plane size must be a multiple of this


def check_input_size(h: int, w: int, multiple: int = SIZE_MULTIPLE) -> None:
    """Raise ``ValueError`` naming the size and the nearest valid sizes unless ``h`` and ``w`` are multiples.

    >>> check_input_size(100, 96)
    Traceback (most recent call last):
    ...
    ValueError: H=100 is not a multiple of 32; nearest valid sizes are 96 and 128
    """
    for axis, size in (("H", h), ("W", w)):
        if size <= 0 or size % multiple:
            below = (size // multiple) * multiple
            above = below + multiple
            nearest = f"{below} and {above}" if below > 0 else f"{above}"
            plural = "sizes are" if below > 0 else "size is"
            raise ValueError(
                f"{axis}={size} is not a multiple of {multiple}; nearest valid {plural} {nearest}"
            )


def to_nhwc(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H, W, C)."""
    return x.permute(0, 2, 3, 1)


def to_nchw(x: torch.Tensor) -> torch.Tensor:
    """(B, H, W, C) -> (B, C, H, W)."""
    return x.permute(0, 3, 1, 2)


@contextlib.contextmanager
def no_autocast(device_type: str) -> Iterator[None]:
    """Disable autocast for ``device_type`` inside the block (FFT blocks run in fp32)."""
    with torch.autocast(device_type=device_type, enabled=False):
        yield


_HALF = (torch.float16, torch.bfloat16)


def float32_block(forward: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a ``forward`` so that it computes in fp32 with autocast off, whatever the input dtype.

    Half-precision tensor arguments are cast to float32 (float64 stays float64); tensor outputs (a tensor
    or a tuple of tensors) are cast back to the dtype of the first tensor argument. Used by the FFT blocks
    (docs/design.md §3, §10): |FFT| at DC sums up to H*W values and overflows fp16; CPU FFTs reject float16.
    """

    @functools.wraps(forward)
    def wrapped(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        dtype = tensors[0].dtype if tensors else torch.float32
        device_type = tensors[0].device.type if tensors else "cpu"
        args = tuple(a.float() if isinstance(a, torch.Tensor) and a.dtype in _HALF else a for a in args)
        with no_autocast(device_type):
            out = forward(self, *args, **kwargs)
        if isinstance(out, torch.Tensor):
            return out.to(dtype)
        return tuple(o.to(dtype) if isinstance(o, torch.Tensor) else o for o in out)

    return wrapped


def unit_phasor(spec: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``X / |X|`` with ``|X|`` clamped to ``eps``: the phase factor without ``exp(1j*angle)``
    (docs/design.md §3).

    Where a coefficient is exactly zero the phasor is 0 and its gradient finite (angle() gives NaN there).
    """
    return spec / spec.abs().clamp_min(eps)


def init_weights(module: nn.Module) -> None:
    """The paper's initialisation (docs/design.md §3): He-normal (fan_out, relu) convs with zero bias;
    trunc-normal(0.02) Linear with zero bias."""
    if isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.LayerNorm, nn.BatchNorm2d)):
        if module.weight is not None:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def pad_to_multiple(x: torch.Tensor, mh: int, mw: int) -> torch.Tensor:
    """Zero-pad an NHWC map (B, H, W, C) at the bottom/right so that H % mh == 0 and W % mw == 0."""
    _, h, w, _ = x.shape
    ph, pw = (-h) % mh, (-w) % mw
    if ph or pw:
        x = F.pad(x, (0, 0, 0, pw, 0, ph))  # (B, Hp, Wp, C)
    return x


def public_outputs(out: dict[str, torch.Tensor], x: torch.Tensor | None = None,
                   residual: bool = False, base: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The public form of a model's outputs: ``{"interp": clamp(interp, 0, 1)}`` and/or
    ``{"seg": sigmoid(seg_logits)}`` (probabilities), from the internal ``interp`` / ``seg_logits``.

    With ``residual=True`` (a model whose interpolation is the linear average plus a learnt correction) and
    the input pair ``x`` (B, 2, H, W), also ``"interp_residual"`` (B, 1, H, W): the raw, unclipped
    correction ``interp − base`` (base: (X1 + X3)/2 unless given, e.g. the flow midpoint). The tiled
    predictor blends it and adds it to the full-resolution base in intensity units, so values outside the
    normalisation window survive."""
    res = {}
    if "interp" in out:
        res["interp"] = out["interp"].clamp(0, 1)
        if residual and x is not None:
            ref = 0.5 * (x[:, 0:1] + x[:, 1:2]) if base is None else base
            res["interp_residual"] = out["interp"] - ref
    if "seg_logits" in out:
        res["seg"] = torch.sigmoid(out["seg_logits"])
    return res
