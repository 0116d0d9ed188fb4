"""Config dataclasses of the multi-task baselines (paper §4.5, Tables 13/14).

Every variant uses the Swin encoder of ``tasc_swinmt`` at the same size (dims, heads, depths, window,
shifts, shift mask: the values are read from ``tascmt.models.config``), without TALA, MSTAF or CTCI.
``MTLConfig`` holds those shared fields; ``CrossConcatConfig`` and ``MoEConfig`` add their own.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, TypeVar

from tascmt.models.baselines.config import BaselineConfig
from tascmt.models.config import SIZES, TASKS, ModelConfigError, TascConfig

_T = TascConfig()  # the defaults (paper size) of the main model, so that the two stay in sync
C = TypeVar("C", bound="MTLConfig")


@dataclass(frozen=True)
class MTLConfig(BaselineConfig):
    """Fields common to the multi-task baselines: both tasks, the pair as input, the main model's encoder.

    ``dec_heads`` lists decoder stages 1..3 (widths 4C, 2C, C; one Swin block each, shift 0, as in the
    main model). ``interp_output``: "direct" (sigmoid) or "residual" ((X1+X3)/2 + r), as
    in the main model.
    """

    name: str = ""
    size: str = "paper"
    img_size: int = _T.img_size
    tasks: tuple[str, ...] = TASKS
    input_frames: str = "pair"
    in_chans: int = _T.in_chans
    seg_classes: int = _T.seg_classes
    dims: tuple[int, ...] = _T.dims
    heads: tuple[int, ...] = _T.heads
    depths: tuple[int, ...] = _T.depths
    dec_heads: tuple[int, ...] = _T.dec_heads
    window: int = _T.window
    shifts: tuple[int, ...] = _T.shifts
    mlp_ratio: float = _T.mlp_ratio
    shift_mask: bool = _T.shift_mask
    interp_output: str = _T.interp_output

    def __post_init__(self) -> None:
        super().__post_init__()
        if tuple(self.tasks) != TASKS:
            raise ModelConfigError(f"model config {self.name}: tasks={self.tasks!r} must be {TASKS} "
                                   "(a multi-task baseline has both tasks)")
        if self.input_frames != "pair":
            raise ModelConfigError(f"model config {self.name}: input_frames={self.input_frames!r} must be "
                                   "'pair' (the multi-task models take [X1, X3])")
        self.encoder_config()  # validates dims, heads, depths, shifts, window, img_size

    def encoder_config(self) -> TascConfig:
        """The ``TascConfig`` of the shared encoder: the main model's with TALA/MSTAF/CTCI off."""
        return TascConfig(
            name=self.name, size=self.size, img_size=self.img_size, in_chans=self.in_chans,
            seg_classes=self.seg_classes, dims=self.dims, heads=self.heads, depths=self.depths,
            dec_heads=self.dec_heads, window=self.window, shifts=self.shifts, mlp_ratio=self.mlp_ratio,
            shift_mask=self.shift_mask, use_tala=False, use_mstaf=False, use_ctci=False,
            interp_output=self.interp_output,
        )  # fmt: skip

    @property
    def dec_dims(self) -> tuple[int, ...]:
        """Decoder stage widths (4C, 2C, C)."""
        return tuple(self.dims[-2::-1])


DFE_DILATION_MODES = ("cap", "fixed")


@dataclass(frozen=True)
class CrossConcatConfig(MTLConfig):
    """Cross-task concatenation with DFE-refined skips (ResFormer-style).

    ``dfe_dilation_mode``: "cap" limits each dilation to half the skip map's side at the nominal
    ``img_size`` (so that no dilated tap only ever sees padding), "fixed" uses ``dfe_dilations`` as given.
    (The auxiliary "tumour present" classifier of earlier versions is gone: the project's trainer has no loss
    for it, so it never received a gradient.)
    """

    dfe_dilations: tuple[int, ...] = (6, 12, 18)
    dfe_dilation_mode: str = "cap"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dfe_dilation_mode not in DFE_DILATION_MODES:
            raise ModelConfigError(f"model config dfe_dilation_mode={self.dfe_dilation_mode!r} is not one of "
                                   f"{DFE_DILATION_MODES}")
        if not self.dfe_dilations or any(int(d) != d or d < 1 for d in self.dfe_dilations):
            raise ModelConfigError(f"model config dfe_dilations={self.dfe_dilations!r} must be positive ints")


@dataclass(frozen=True)
class MoEConfig(MTLConfig):
    """Multi-gate mixture of experts: ``moe_experts`` expert encoders (each the shared-bottom encoder) and
    one softmax gate per task, linear in the input average-pooled to ``moe_gate_grid`` x ``moe_gate_grid``."""

    moe_experts: int = 4
    moe_gate_grid: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.moe_experts < 2:
            raise ModelConfigError(f"model config moe_experts={self.moe_experts} must be >= 2")
        if not 1 <= self.moe_gate_grid <= 32:
            raise ModelConfigError(f"model config moe_gate_grid={self.moe_gate_grid} must be in [1, 32] "
                                   "(inputs are at least 32 px a side)")


def mtl_size_config(cls: type[C], name: str, size: str, **flags: Any) -> C:
    """``cls`` for variant ``name`` at ``size``: the main model's size preset (the fields this config has)."""
    if size not in SIZES:
        raise ModelConfigError(f"unknown model size {size!r} for {name!r}; known sizes: {sorted(SIZES)}")
    known = {f.name for f in fields(cls)}
    preset = {k: v for k, v in SIZES[size].items() if k in known}
    return cls(name=name, size=size, **preset, **flags)
