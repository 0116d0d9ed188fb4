"""Configuration of the ResFormer + DFE multi-task model (docs/design.md §9): a frozen dataclass stored in
checkpoints.

Sizes are presets of the same topology:

| size  | dims (stem = dims[0]) | ResNet depths | Swin depth / heads | img | window |
|-------|-----------------------|---------------|--------------------|-----|--------|
| paper | 64/128/256/512        | 3/4/6/3       | 2 / 2/4/8/16       | 256 | 16     |
| small | 32/64/128/256         | 2/2/2/2       | 2 / 1/2/4/8        | 128 | 8      |
| tiny  | 8/16/32/64            | 1/1/1/1       | 2 / 1/1/2/2        | 64  | 4      |

``window = 0`` means ``img_size // 16`` (the published window = image/16); the Swin block clamps it to
smaller maps. Parameter counts are in ``model.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from tascmt.models.config import ModelConfigError

BLOCKS = ("serial", "parallel")
TASKS = ("seg", "cls")
SIZE_MULTIPLE = 16  # maxpool + three stride-2 stages
RESFORMER_MODELS = ("resformer_mtl", "resformer_mtl_parallel")


def is_resformer(model_name: str | None) -> bool:
    """True for the registered names of the ResFormer family."""
    return model_name in RESFORMER_MODELS


@dataclass(frozen=True)
class ResFormerConfig:
    """ResFormer + DFE topology.

    ``seg_classes``: 1 = binary mask (sigmoid, ISIC); ``>= 2`` = multi-class mask with background as class 0
    (softmax, RETOUCH-style values 0..seg_classes-1). ``cls_classes``: K multilabel outputs.
    ``block``: ``"serial"`` (Swin(ResNet(x) + tokens(x))) or ``"parallel"`` (ResNet(x) + Swin(tokens(x))).
    """

    name: str = "resformer_mtl"
    size: str = "paper"
    img_size: int = 256
    in_chans: int = 3
    seg_classes: int = 1
    cls_classes: int = 2
    tasks: tuple[str, ...] = TASKS
    block: str = "serial"
    dims: tuple[int, ...] = (64, 128, 256, 512)
    res_depths: tuple[int, ...] = (3, 4, 6, 3)
    swin_depth: int = 2
    heads: tuple[int, ...] = (2, 4, 8, 16)
    window: int = 0
    mlp_ratio: float = 4.0
    dfe_dilations: tuple[int, ...] = (6, 12, 18)
    cls_hidden: int = 32

    def __post_init__(self) -> None:
        if self.block not in BLOCKS:
            raise ModelConfigError(f"model config block={self.block!r} is not one of {BLOCKS}")
        if tuple(self.tasks) != TASKS:
            raise ModelConfigError(f"model config tasks={self.tasks!r}: {self.name} always has tasks {TASKS}")
        lengths = {
            "dims": len(self.dims),
            "res_depths": len(self.res_depths),
            "heads": len(self.heads),
        }
        if set(lengths.values()) != {4}:
            raise ModelConfigError(
                f"model config {self.name}: every stage list needs 4 entries, got {lengths}"
            )
        for d, h in zip(self.dims, self.heads):
            if h < 1 or d % h:
                raise ModelConfigError(f"model config: dim {d} is not divisible by its head count {h}")
        for d in self.dims:
            if d % 4:
                raise ModelConfigError(f"model config dims={self.dims}: every dim must be a multiple of 4")
        positive = {
            "in_chans": self.in_chans,
            "seg_classes": self.seg_classes,
            "cls_classes": self.cls_classes,
            "swin_depth": self.swin_depth,
            "cls_hidden": self.cls_hidden,
        }
        for key, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ModelConfigError(f"model config {key}={value!r} must be an integer >= 1")
        if self.window < 0:
            raise ModelConfigError(f"model config window={self.window} must be >= 0 (0: img_size // 16)")
        if self.img_size <= 0 or self.img_size % SIZE_MULTIPLE:
            raise ModelConfigError(
                f"model config img_size={self.img_size} must be a positive multiple of {SIZE_MULTIPLE}"
            )

    @property
    def window_size(self) -> int:
        """The Swin window: ``window`` or, when 0, ``img_size // 16`` (at least 1)."""
        return self.window or max(self.img_size // 16, 1)

    @property
    def binary(self) -> bool:
        """True when the segmentation output is one sigmoid channel."""
        return self.seg_classes == 1

    # ---------------------------------------------------------------- JSON round trip
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResFormerConfig:
        """Inverse of :meth:`to_dict` (lists become tuples); unknown keys raise naming them."""
        if not isinstance(d, dict):
            raise ModelConfigError(f"model config must be a JSON object, got {type(d).__name__}")
        _check_keys(d)
        return cls(**_tuples(d))

    def replace(self, **overrides: Any) -> ResFormerConfig:
        """A copy with ``overrides`` applied; unknown keys raise naming them."""
        _check_keys(overrides)
        return dataclasses.replace(self, **_tuples(overrides))


def _check_keys(d: dict[str, Any]) -> None:
    known = {f.name for f in fields(ResFormerConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ModelConfigError(f"unknown model config key(s) {unknown}; known keys: {sorted(known)}")


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


SIZES: dict[str, dict[str, Any]] = {
    "paper": {},
    "small": dict(
        img_size=128,
        dims=(32, 64, 128, 256),
        res_depths=(2, 2, 2, 2),
        heads=(1, 2, 4, 8),
        cls_hidden=32,
    ),
    "tiny": dict(
        img_size=64,
        dims=(8, 16, 32, 64),
        res_depths=(1, 1, 1, 1),
        heads=(1, 1, 2, 2),
        cls_hidden=8,
    ),
}


def size_config(name: str, size: str, **flags: Any) -> ResFormerConfig:
    """The config of variant ``name`` at ``size``; an unknown size lists the known ones."""
    if size not in SIZES:
        raise ModelConfigError(f"unknown model size {size!r} for {name!r}; known sizes: {sorted(SIZES)}")
    return ResFormerConfig(name=name, size=size, **SIZES[size], **flags)
