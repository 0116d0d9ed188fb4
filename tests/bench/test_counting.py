"""Parameter, MAC and FLOP counts against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from tascmt.bench.flops import count_flops
from tascmt.bench.macs import count_macs
from tascmt.bench.params import count_parameters
from tests.bench.tiny_models import create_model


def test_params_total_trainable_and_children():
    m = create_model("tiny_convnet", width=4)
    m.head.weight.requires_grad_(False)
    r = count_parameters(m)
    conv, bn, head = 2 * 4 * 9 + 4, 2 * 4, 4 * 3 + 3
    assert r["total"] == conv + bn + head
    assert r["trainable"] == conv + bn + head - 12
    assert r["by_child"] == {"conv": conv, "bn": bn, "head": head}


@pytest.mark.parametrize("tool", ["thop", "builtin"])
def test_macs_conv_bn_linear_match_hand_count(tool):
    b, h, w, width = 2, 8, 6, 4
    m = create_model("tiny_convnet", width=width).train()
    keys = set(m.state_dict())
    r = count_macs(m, torch.rand(b, 2, h, w), tool=tool)
    conv = (b * width * h * w) * 2 * 9  # output elements × Cin × k²
    bn = 2 * 2 * (b * width * h * w)  # thop: 2·numel, ×2 with affine
    lin = width * (b * h * w * 3)  # in_features × output elements
    assert r["macs"] == conv + bn + lin
    assert r["by_child"] == {"conv": conv, "bn": bn, "head": lin}
    assert "thop" in r["note"]
    assert set(m.state_dict()) == keys  # no counting buffers left behind
    assert m.training  # mode restored


@pytest.mark.parametrize("four_d", [True, False])
def test_flops_add_sdpa_exactly_once(four_d):
    b, h, w, c = 2, 8, 8, 8
    n = h * w
    m = create_model("tiny_attn", width=c, heads=2, four_d=four_d)
    r = count_flops(m, torch.rand(b, 2, h, w))
    conv = 2 * (b * n * c) * 2  # 2 FLOPs per MAC, Cin = 2, 1×1
    sdpa = 4 * b * n * n * c  # Q·Kᵀ + P·V
    assert r["total"] == conv + sdpa
    assert r["total"] == r["counted"] + r["sdpa_analytic"]
    counted_attention = r["by_op"].get("aten.bmm", 0)
    assert counted_attention + r["sdpa_analytic"] == sdpa  # seen by the counter or added, never both
    assert len(r["sdpa_uncounted_calls"]) == (1 if r["sdpa_analytic"] else 0)


def test_sdpa_is_invisible_to_thop():
    m = create_model("tiny_attn", width=8, heads=2)
    r = count_macs(m, torch.rand(1, 2, 8, 8))
    assert r["macs"] == 64 * 8 * 2  # only the 1×1 conv
