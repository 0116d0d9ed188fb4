"""Config dataclasses of the baseline models: one frozen dataclass per family, all sharing this base.

Every config is JSON-serialisable (``dataclasses.asdict``), rebuildable with ``from_dict`` and holds the
fields of the model contract (docs/interfaces.md): ``name``, ``size``, ``img_size``, ``tasks`` and, for
baselines, ``input_frames``: ``"pair"`` (x = (B, 2, H, W) = [X1, X3]) or ``"triplet"``
(x = (B, 3, H, W) = [X1, X2, X3]; the segmentation baselines segment three given frames).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from tascmt.models.config import TASKS, ModelConfigError

INPUT_FRAMES = ("pair", "triplet")
INTERP_OUTPUTS = ("direct", "residual")
C = TypeVar("C", bound="BaselineConfig")


@dataclass(frozen=True)
class BaselineConfig:
    """Fields common to every baseline; subclasses add their topology fields (all with defaults)."""

    name: str = ""
    size: str = "paper"
    img_size: int = 512
    tasks: tuple[str, ...] = ("interp",)
    input_frames: str = "pair"
    #: "paper" (the model's own initialisation) or "stable" (the layers writing the outputs scaled down, as
    #: in TASC-SwinMT, so a residual head starts at linear interpolation); CPU sizes default to "stable".
    init: str = "paper"

    def __post_init__(self) -> None:
        if self.init not in ("paper", "stable"):
            raise ModelConfigError(f"model config init={self.init!r} is not one of ('paper', 'stable')")
        if self.input_frames not in INPUT_FRAMES:
            raise ModelConfigError(
                f"model config input_frames={self.input_frames!r} is not one of {INPUT_FRAMES}"
            )
        if not self.tasks or set(self.tasks) - set(TASKS) or len(set(self.tasks)) != len(self.tasks):
            raise ModelConfigError(f"model config tasks={self.tasks!r} must be a non-empty subset of {TASKS}")
        if self.img_size <= 0 or self.img_size % 32:
            raise ModelConfigError(f"model config img_size={self.img_size} must be a positive multiple of 32")
        if getattr(self, "interp_output", "direct") not in INTERP_OUTPUTS:
            raise ModelConfigError(
                f"model config interp_output={self.interp_output!r} is not one of {INTERP_OUTPUTS}"
            )

    def check_lengths(self, **seqs: tuple) -> None:
        """Raise unless every named sequence has the same length (the number of stages)."""
        lengths = {k: len(v) for k, v in seqs.items()}
        if len(set(lengths.values())) != 1:
            raise ModelConfigError(f"model config {self.name}: stage lists differ in length: {lengths}")

    # ---------------------------------------------------------------- JSON round trip
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        """Inverse of :meth:`to_dict` (lists become tuples); unknown keys raise naming them."""
        if not isinstance(d, dict):
            raise ModelConfigError(f"model config must be a JSON object, got {type(d).__name__}")
        _check_keys(cls, d)
        return cls(**_tuples(d))

    def replace(self: C, **overrides: Any) -> C:
        """A copy with ``overrides`` applied; unknown keys raise naming them."""
        _check_keys(type(self), overrides)
        return dataclasses.replace(self, **_tuples(overrides))


def _check_keys(cls: type, d: dict[str, Any]) -> None:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ModelConfigError(f"unknown model config key(s) {unknown}; known keys: {sorted(known)}")


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
            for k, v in d.items()}


#: What the CPU sizes harmonise across every row of a comparison: the residual interpolation head and the
#: stable initialisation (the paper size keeps each model's own).
CPU_SIZE_DEFAULTS = {"interp_output": "residual", "init": "stable"}


def sized(cls: type[C], name: str, size: str, presets: dict[str, dict[str, Any]], **flags: Any) -> C:
    """``cls(name=name, size=size, **presets[size], **flags)``; an unknown size lists the known ones. For
    sizes other than ``paper``, :data:`CPU_SIZE_DEFAULTS` apply to the fields the config has."""
    if size not in presets:
        raise ModelConfigError(f"unknown model size {size!r} for {name!r}; known sizes: {sorted(presets)}")
    names = {f.name for f in fields(cls)}
    base = {k: v for k, v in CPU_SIZE_DEFAULTS.items() if size != "paper" and k in names}
    return cls(name=name, size=size, **{**base, **presets[size], **flags})
