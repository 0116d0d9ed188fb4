"""Moved to :mod:`tascmt.models.resformer.blocks`; this path re-exports its public names."""

from tascmt.models.resformer.blocks import (  # noqa: F401
    ECA,
    BasicBlock,
    MultiScalePatchTokens,
    ResFormerStage,
    SwinStage,
    conv_bn_relu,
    res_stage,
)
