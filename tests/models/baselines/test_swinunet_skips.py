"""SwinUNet-Interp takes its skips where the Swin-Unet code does: each stage's input (before its Swin blocks)."""

from __future__ import annotations

import pytest
import torch

from tascmt.models import create_model
from tascmt.models.baselines.swin_common import SwinEncoder
from tascmt.models.layers.helpers import to_nchw, to_nhwc


def test_swinunet_skips_are_the_stage_inputs():
    model = create_model("swinunet_interp", "tiny").eval()
    enc = model.encoder
    x = torch.rand(1, 2, 64, 64)
    _, maps = model.forward_intermediates(x)
    with torch.no_grad():
        e = to_nchw(enc.embed_norm(to_nhwc(enc.embed(x)))).contiguous()  # patch embedding + LN (H/4)
        torch.testing.assert_close(maps["enc.s1"], e)  # no Swin block applied yet
        m2 = enc.merges[0](enc.stages[0](e))  # stage 1's blocks, then the merging that opens stage 2
        torch.testing.assert_close(maps["enc.s2"], m2)
        m3 = enc.merges[1](enc.stages[1](m2))
        torch.testing.assert_close(maps["enc.s3"], m3)
        bottleneck = enc.stages[3](enc.merges[2](enc.stages[2](m3)))
        torch.testing.assert_close(maps["enc.s4"], to_nchw(enc.norm(to_nhwc(bottleneck))).contiguous())


def test_vtn_keeps_stage_output_skips():
    model = create_model("vtn_interp", "tiny")
    assert model.encoder.skip_point == "stage_out"
    assert model.encoder.embed_norm is None and model.encoder.norm is None


def test_encoder_skip_option_is_checked():
    with pytest.raises(ValueError, match="skips"):
        SwinEncoder(2, (8, 16, 32, 64), (1, 1, 2, 2), (1, 1, 1, 1), 4, skips="after")
