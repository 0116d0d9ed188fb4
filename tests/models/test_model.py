"""The assembled model family: shapes, gradients of every variant, the forward contract, the registry."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from tascmt.models import ModelConfigError, TascConfig, TascSwinMT, create_model, list_models, model_config
from tascmt.models.registry import get_entry

ALL = [n for n in list_models() if get_entry(n).model_cls is TascSwinMT]  # this family (not baselines)
# docs/design.md §3: in the reference behaviour the no-op gate's conv + weight net get (numerically) zero
# gradient, and the seg outputs of CTCI 1-2 are discarded by the next MSTAF (Fs <- Out_seg).
REF_DEAD = {
    *(f"fusions.{j}.{m}.{p}" for j in range(3) for m in ("gate_conv", "gate_fc") for p in ("weight", "bias")),
    *(f"ctcis.{j}.out_s.{p}" for j in range(2) for p in ("weight", "bias")),
}


def full_loss(out: dict[str, torch.Tensor], gen: torch.Generator | None = None) -> torch.Tensor:
    """A loss using every output against random targets (so no gradient vanishes by symmetry)."""
    loss = torch.zeros(())
    if "interp" in out:
        loss = loss + F.mse_loss(out["interp"], torch.rand(out["interp"].shape, generator=gen))
    if "seg_logits" in out:
        target = (torch.rand(out["seg_logits"].shape, generator=gen) > 0.5).float()
        loss = loss + F.binary_cross_entropy_with_logits(out["seg_logits"], target)
    return loss


def test_registry_lists_the_family():
    expected = {
        "tasc_swinmt", "tasc_swinmt_ref", "tasc_interp", "tasc_seg", "tasc_indenc", "tasc_indenc_tala",
        "tasc_indenc_ctci", "tasc_indenc_mstaf", "tasc_indenc_tala_ctci", "tasc_indenc_tala_mstaf",
        "tasc_indenc_ctci_mstaf",
    }  # fmt: skip
    assert expected <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_every_parameter_gets_a_gradient(name):
    model = create_model(name, "tiny")
    x = torch.rand(2, 2, 64, 64)
    out = model(x)
    for key, value in out.items():
        assert torch.isfinite(value).all(), key
    if "interp" in out and model.config.interp_output == "direct":
        assert out["interp"].min() >= 0 and out["interp"].max() <= 1
    full_loss(out, torch.Generator().manual_seed(1)).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is None or torch.isfinite(g).all() for g in grads.values())
    if name != "tasc_swinmt_ref":
        dead = sorted(n for n, g in grads.items() if g is None or not (g != 0).any())
        assert dead == []
    else:
        scale = torch.tensor([g.abs().max() for g in grads.values() if g is not None]).median()
        dead = {n for n, g in grads.items() if g is None or g.abs().max() <= 1e-5 * scale}
        assert dead == REF_DEAD


@pytest.mark.parametrize(("h", "w"), [(64, 64), (96, 96), (128, 128), (64, 160)])
def test_output_shapes(h, w):
    model = create_model("tasc_swinmt", "tiny").eval()
    out = model(torch.rand(1, 2, h, w))
    assert list(out) == ["interp", "seg_logits"]
    assert out["interp"].shape == (1, 1, h, w)
    assert out["seg_logits"].shape == (1, 3, h, w)


@pytest.mark.parametrize("name", ["tasc_interp", "tasc_seg"])
def test_single_task_returns_only_its_key(name):
    model = create_model(name, "tiny").eval()
    out = model(torch.rand(1, 2, 64, 64))
    assert list(out) == (["interp"] if name == "tasc_interp" else ["seg_logits"])
    keys = list(model.predict(torch.rand(1, 2, 64, 64)))
    assert keys == (["interp", "interp_residual"] if name == "tasc_interp" else ["seg"])  # tiny: residual head


@pytest.mark.parametrize("shape", [(1, 2, 100, 96), (1, 2, 64, 48), (1, 3, 64, 64), (2, 64, 64)])
def test_ill_sized_inputs_raise(shape):
    model = create_model("tasc_swinmt", "tiny")
    with pytest.raises(ValueError, match=r"H=100 is not a multiple of 32; nearest valid sizes are 96 and 128|"
                       r"W=48 is not a multiple of 32|must be \(B, 2, H, W\)"):  # fmt: skip
        model(torch.rand(*shape))


def test_predict_ranges_and_no_grad():
    model = create_model("tasc_swinmt", "tiny", interp_output="residual").eval()
    x = torch.rand(2, 2, 64, 64)
    pred = model.predict(x)
    assert set(pred) == {"interp", "interp_residual", "seg"}  # residual head: the raw correction too
    lin = 0.5 * (x[:, :1] + x[:, 1:])
    torch.testing.assert_close((lin + pred["interp_residual"]).clamp(0, 1), pred["interp"])
    assert not pred["interp"].requires_grad
    assert pred["interp"].min() >= 0 and pred["interp"].max() <= 1
    assert pred["seg"].min() >= 0 and pred["seg"].max() <= 1


def test_residual_output_is_average_plus_head():
    model = create_model("tasc_swinmt", "tiny", interp_output="residual").eval()
    x = torch.rand(1, 2, 64, 64)
    out, maps = model.forward_intermediates(x)
    r = model.heads["interp"](maps["dec3.interp"])
    assert torch.allclose(out["interp"], 0.5 * (x[:, :1] + x[:, 1:]) + r, atol=1e-6)


def test_forward_intermediates_names_and_consistency():
    model = create_model("tasc_swinmt", "tiny").eval()
    x = torch.rand(1, 2, 64, 64)
    out, maps = model.forward_intermediates(x)
    ref = model(x)
    assert all(torch.equal(out[k], ref[k]) for k in ref)
    for k in range(1, 5):
        side = 64 // 2 ** (k + 1)
        assert maps[f"enc.s{k}"].shape == (1, model.config.dims[k - 1], side, side)
        assert f"enc.tala{k}.freq" in maps
    for i in range(1, 4):
        for key in ("mstaf.attn", "mstaf.freq", "mstaf.gate", "ctci.align", "ctci.gate", "interp", "seg"):
            assert f"dec{i}.{key}" in maps, f"dec{i}.{key}"
    assert maps["dec1.mstaf.gate"].shape == (1, 2)


def test_indenc_has_two_encoders_and_per_branch_maps():
    model = create_model("tasc_indenc_tala_mstaf", "tiny").eval()
    assert set(model.encoders) == {"interp", "seg"}
    _, maps = model.forward_intermediates(torch.rand(1, 2, 64, 64))
    assert not torch.equal(maps["enc_interp.s1"], maps["enc_seg.s1"])
    assert {"dec1.mstaf_interp.gate", "dec1.mstaf_seg.gate"} <= set(maps)
    plain = create_model("tasc_indenc", "tiny")
    assert plain.ctcis is None and plain.encoders["interp"].talas is None
    assert isinstance(plain.fusions[0], torch.nn.Conv2d)


def test_shared_parameters_receive_both_task_gradients():
    model = create_model("tasc_swinmt", "tiny")
    shared = model.shared_parameters()
    ids = {id(p) for p in model.parameters()}
    assert shared and all(id(p) in ids for p in shared)
    out = model(torch.rand(2, 2, 64, 64))
    for key in ("interp", "seg_logits"):
        g = torch.autograd.grad(out[key].square().mean(), shared[0], retain_graph=True)[0]
        assert (g != 0).any(), key


def test_ref_and_default_differ_only_in_behaviour():
    ref, rec = model_config("tasc_swinmt_ref", "paper"), model_config("tasc_swinmt", "paper")
    diff = {f.name for f in dataclasses.fields(TascConfig) if getattr(ref, f.name) != getattr(rec, f.name)}
    assert diff == {"name", "shift_mask", "tala_mode", "ctci", "seg_carry", "mstaf_gate"}


def test_unknown_name_size_and_keys():
    with pytest.raises(ValueError, match=r"unknown model 'nope'; known models: .*tasc_swinmt"):
        create_model("nope")
    with pytest.raises(ValueError, match=r"unknown model size 'huge'; known sizes: \['paper', 'small', 't"):
        create_model("tasc_swinmt", "huge")
    with pytest.raises(ValueError, match=r"unknown model config key\(s\) \['colour'\]"):
        create_model("tasc_swinmt", "tiny", colour="red")
    with pytest.raises(ModelConfigError, match="mstaf_attn='fast' is not one of"):
        create_model("tasc_swinmt", "tiny", mstaf_attn="fast")


def test_config_json_roundtrip_and_unknown_keys():
    cfg = model_config("tasc_indenc_ctci", "small", mstaf_attn="window")
    d = json.loads(json.dumps(cfg.to_dict()))
    assert TascConfig.from_dict(d) == cfg
    d["bogus"] = 1
    with pytest.raises(ModelConfigError, match=r"\['bogus'\]"):
        TascConfig.from_dict(d)


def test_sizes_parameter_budgets():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(create_model("tasc_swinmt", "tiny")) < 100_000
    assert 1_000_000 <= count(create_model("tasc_swinmt", "small")) <= 3_000_000
