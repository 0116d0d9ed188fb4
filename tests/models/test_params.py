"""Parameter counts: the paper-size model and every module against the formulas and totals of docs/design.md §3."""

from __future__ import annotations

import pytest
import torch

from tascmt.models import create_model
from tascmt.models.ctci import CTCI
from tascmt.models.layers import PatchExpand, PatchMerging, PixelShuffleHead, SwinTransformerBlock
from tascmt.models.mstaf import MSTAF
from tascmt.models.tala import TALA

PAPER_PARAMS = 33_358_870
DIMS, HEADS = (96, 192, 384, 768), (2, 4, 8, 16)
DEC = ((384, 8), (192, 4), (96, 2))


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def paper_models():
    with torch.device("meta"):
        return {n: create_model(n, "paper") for n in ("tasc_swinmt", "tasc_swinmt_ref")}


@pytest.mark.parametrize("name", ["tasc_swinmt", "tasc_swinmt_ref"])
def test_paper_size_parameter_count(paper_models, name):
    assert count(paper_models[name]) == PAPER_PARAMS


@pytest.mark.parametrize("c", [8, 32, 96, 192])
def test_module_formulas(c):
    h = max(1, c // 32)
    assert count(PatchMerging(c)) == 8 * c * c + 8 * c
    assert count(PatchExpand(c)) == 2 * c * c + c
    assert count(SwinTransformerBlock(c, h, window=8)) == 12 * c * c + 13 * c + 225 * h
    assert count(TALA(c)) == 1.375 * c * c + c
    assert count(MSTAF(c)) == 50 * c * c + 17 * c + 2
    assert count(CTCI(c)) == 33 * c * c + 10 * c


def test_head_counts():
    assert count(PixelShuffleHead(96, 1)) == 665_185
    assert count(PixelShuffleHead(96, 3)) == 666_915


def test_per_component_totals(paper_models):
    m = paper_models["tasc_swinmt"]
    enc = m.encoders["shared"]
    got = {
        "embed": count(enc.embed),
        "encoder blocks": count(enc.stages),
        "TALA": count(enc.talas),
        "merging": count(enc.merges),
        "expand": count(m.expands),
        "decoder blocks": count(m.blocks),
        "MSTAF": count(m.fusions),
        "CTCI": count(m.ctcis),
        "heads": count(m.heads),
    }
    formula = {
        "embed": 2 * 96 * 16 + 96,
        "encoder blocks": sum(12 * c * c + 13 * c + 225 * h for c, h in zip(DIMS, HEADS)),
        "TALA": sum(int(1.375 * c * c) + c for c in DIMS),
        "merging": sum(8 * c * c + 8 * c for c in DIMS[:3]),
        "expand": sum(2 * c * c + c for c in DIMS[1:]),
        "decoder blocks": sum(12 * c * c + 13 * c + 225 * h for c, h in DEC),
        "MSTAF": sum(50 * c * c + 17 * c + 2 for c, _ in DEC),
        "CTCI": sum(33 * c * c + 10 * c for c, _ in DEC),
        "heads": 665_185 + 666_915,
    }
    spec_millions = {  # per-component parameters of the paper-size model
        "embed": 0.003, "encoder blocks": 9.426, "TALA": 1.079, "merging": 1.554, "expand": 1.550,
        "decoder blocks": 2.334, "MSTAF": 9.688, "CTCI": 6.393, "heads": 1.332,
    }  # fmt: skip
    assert got == formula
    for key, millions in spec_millions.items():
        assert round(got[key] / 1e6, 3) == millions, key
    assert sum(got.values()) == PAPER_PARAMS


def test_ablation_sizes_match_spec():
    """docs/design.md §4: no TALA 32.280 M, no MSTAF (1x1 concat fusion) 24.058 M, no CTCI 26.965 M."""
    with torch.device("meta"):
        sizes = {
            k: count(create_model("tasc_swinmt", "paper", **{k: False}))
            for k in ("use_tala", "use_mstaf", "use_ctci")
        }
    assert round(sizes["use_tala"] / 1e6, 3) == 32.280
    assert round(sizes["use_mstaf"] / 1e6, 3) == 24.058
    assert round(sizes["use_ctci"] / 1e6, 3) == 26.965


def test_ref_and_default_share_state_dict_layout(paper_models):
    """The two named configurations are one topology: their weights are interchangeable."""
    a, b = (paper_models[n].state_dict() for n in ("tasc_swinmt", "tasc_swinmt_ref"))
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tasc_swinmt", "tasc_swinmt_ref"])
def test_paper_size_thop_macs(name):
    """docs/design.md §4, §3: thop.profile at 1x2x512x512 gives 114.404 G (thop MACs). ~30-60 s on 2 cores."""
    thop = pytest.importorskip("thop")
    model = create_model(name, "paper").eval()
    with torch.no_grad():
        macs, _ = thop.profile(model, inputs=(torch.rand(1, 2, 512, 512),), verbose=False)
    assert round(macs / 1e9, 3) == 114.404
