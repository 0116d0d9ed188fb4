"""Model configuration: one dataclass holds everything needed to rebuild a model (stored in checkpoints).

Sizes are presets of the same topology (docs/design.md §3):

| size  | dims           | heads    | dec heads | nominal img | attention | interp head, init       |
|-------|----------------|----------|-----------|-------------|-----------|-------------------------|
| paper | 96/192/384/768 | 2/4/8/16 | 8/4/2     | 512         | global    | direct (sigmoid), paper |
| small | 24/48/96/192   | 1/2/4/8  | 4/2/1     | 128         | global    | residual, stable        |
| tiny  | 4/8/16/32      | 1/1/2/2  | 2/1/1     | 64          | global    | residual, stable        |

The CPU sizes default to the residual head (X̂2 = (X1+X3)/2 + r) and the stable initialisation: measured on
the real-data demo, the paper's direct head with He initialisation ends far below linear interpolation in a
CPU budget (18.0 dB against linear's 30.9) while the residual head starts at linear and improves on it. The
``paper`` size keeps the paper's head and initialisation exactly; any of them can be overridden.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from tascmt.errors import ConfigError


class ModelConfigError(ConfigError, ValueError):
    """An invalid model name, size or config value (a ``ConfigError`` that is also a ``ValueError``)."""


TASKS = ("interp", "seg")
CHOICES: dict[str, tuple[str, ...]] = {
    "tala_mode": ("residual", "replace"),
    "mstaf_attn": ("global", "window", "pool", "materialised"),
    "mstaf_gate": ("task", "noop"),
    "ctci": ("fixed", "literal"),
    "interp_output": ("direct", "residual"),
    "init": ("paper", "stable"),
    "interp_base": ("linear", "flow"),
}


@dataclass(frozen=True)
class TascConfig:
    """Configuration of the TASC-SwinMT family (defaults = the paper size with the project fixes,
    docs/design.md §3).

    Topology switches: ``shared_encoder`` (False = IndEnc, one complete encoder per task), ``use_tala``,
    ``use_mstaf`` (False = Conv1x1 over cat(decoder, skip)), ``use_ctci`` (False = identity), ``tasks``.
    Behaviour switches (parameter-free): ``shift_mask``, ``tala_mode``, ``ctci``, ``seg_carry``,
    ``mstaf_gate``, ``mstaf_attn``, ``interp_output``.
    Initialisation: ``init="paper"`` is the paper's (docs/design.md §3: He-normal convolutions, trunc-normal
    linears);
    ``"stable"`` additionally scales the last convolution of each output head and of each fixed-CTCI
    residual branch by ``stable_init_gain`` so that the untrained model starts near its identity paths
    (direct head ≈ 0.5 and seg probabilities ≈ 0.5, residual head ≈ the linear average). Under "paper" the
    decoder's features grow through the fixed CTCI's cross-spectrum filter and the untrained ``small``
    model starts with logits of standard deviation ≈ 14.
    """

    name: str = "tasc_swinmt"
    size: str = "paper"
    img_size: int = 512
    in_chans: int = 2
    seg_classes: int = 3
    tasks: tuple[str, ...] = TASKS
    dims: tuple[int, ...] = (96, 192, 384, 768)
    heads: tuple[int, ...] = (2, 4, 8, 16)
    depths: tuple[int, ...] = (1, 1, 1, 1)
    dec_heads: tuple[int, ...] = (8, 4, 2)
    window: int = 8
    shifts: tuple[int, ...] = (0, 4, 0, 4)
    mlp_ratio: float = 4.0
    shift_mask: bool = True
    shared_encoder: bool = True
    use_tala: bool = True
    tala_mode: str = "residual"
    tala_reduction: int = 4
    use_mstaf: bool = True
    mstaf_attn: str = "global"
    mstaf_gate: str = "task"
    mstaf_scale_div: int = 8
    mstaf_pool: int = 32
    use_ctci: bool = True
    ctci: str = "fixed"
    seg_carry: bool = True
    interp_output: str = "direct"
    init: str = "paper"
    stable_init_gain: float = 0.01
    #: What the residual head corrects: the linear average of the pair, or the flow midpoint (TV-L1 optical
    #: flow, each input warped halfway; docs/design.md §7), which the model then also sees as a third input
    #: channel, x = [X1, X3, F] (B, 3, H, W). The flow is computed at native resolution on whole slices.
    interp_base: str = "linear"

    def __post_init__(self) -> None:
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ModelConfigError(f"model config {key}={getattr(self, key)!r} is not one of {allowed}")
        if self.interp_base == "flow":
            if self.interp_output != "residual" or "interp" not in self.tasks:
                raise ModelConfigError("model config interp_base='flow' needs interp_output='residual' and "
                                       "the interp task")
            object.__setattr__(self, "in_chans", 3)  # [X1, X3, flow midpoint]
        if not self.tasks or set(self.tasks) - set(TASKS) or len(set(self.tasks)) != len(self.tasks):
            raise ModelConfigError(f"model config tasks={self.tasks!r} must be a non-empty subset of {TASKS}")
        n = len(self.dims)
        if n != 4 or len(self.heads) != n or len(self.depths) != n or len(self.shifts) != n:
            raise ModelConfigError(
                f"model config needs 4 stages: dims={self.dims}, heads={self.heads}, depths={self.depths}, "
                f"shifts={self.shifts}"
            )
        if self.use_ctci and len(self.tasks) < 2:
            raise ModelConfigError(f"model config use_ctci=True needs both tasks, got tasks={self.tasks}")
        if len(self.dec_heads) != n - 1:
            raise ModelConfigError(f"model config dec_heads={self.dec_heads} must have {n - 1} entries")
        for i in range(1, n):
            if self.dims[i] != 2 * self.dims[i - 1]:
                raise ModelConfigError(f"model config dims={self.dims} must double at every stage")
        for d, h in [*zip(self.dims, self.heads), *zip(self.dims[-2::-1], self.dec_heads)]:
            if d % h:
                raise ModelConfigError(f"model config: dim {d} is not divisible by its head count {h}")
        if any(s < 0 or s >= self.window for s in self.shifts):
            raise ModelConfigError(f"model config shifts={self.shifts} must lie in [0, window={self.window})")
        if self.img_size <= 0 or self.img_size % 32:
            raise ModelConfigError(f"model config img_size={self.img_size} must be a positive multiple of 32")

    # ---------------------------------------------------------------- JSON round trip
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TascConfig:
        """Inverse of :meth:`to_dict` (lists become tuples); unknown keys raise naming them."""
        if not isinstance(d, dict):
            raise ModelConfigError(f"model config must be a JSON object, got {type(d).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ModelConfigError(f"unknown model config key(s) {unknown}; known keys: {sorted(known)}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kwargs)

    def replace(self, **overrides: Any) -> TascConfig:
        """A copy with ``overrides`` applied; unknown keys raise naming them."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ModelConfigError(f"unknown model config key(s) {unknown}; known keys: {sorted(known)}")
        overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
        return dataclasses.replace(self, **overrides)


SIZES: dict[str, dict[str, Any]] = {
    "paper": {},
    "small": dict(
        img_size=128, dims=(24, 48, 96, 192), heads=(1, 2, 4, 8), dec_heads=(4, 2, 1), mstaf_attn="global",
        interp_output="residual", init="stable",
    ),
    "tiny": dict(img_size=64, dims=(4, 8, 16, 32), heads=(1, 1, 2, 2), dec_heads=(2, 1, 1),
                 interp_output="residual", init="stable"),
}


def size_config(name: str, size: str, **flags: Any) -> TascConfig:
    """The config of variant ``name`` at ``size`` with topology/behaviour ``flags``."""
    if size not in SIZES:
        raise ModelConfigError(f"unknown model size {size!r}; known sizes: {sorted(SIZES)}")
    return TascConfig(name=name, size=size, **{**SIZES[size], **flags})
