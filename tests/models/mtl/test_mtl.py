"""The multi-task baselines (paper §4.5): shapes, gradients, the contract, MoE gating, DFE, configs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import tascmt.models.mtl  # noqa: F401  (registers the variants until tascmt.models imports it)
from tascmt.models import ModelConfigError, create_model, list_models, load_model, model_config, save_model
from tascmt.models.mtl import DFE, MTL_MODELS, capped_dilations
from tascmt.models.registry import model_from_config


def task_loss(out: dict[str, torch.Tensor], task: str, gen: torch.Generator) -> torch.Tensor:
    """A loss on one output against a random target (so no gradient vanishes by symmetry)."""
    if task == "interp":
        return F.mse_loss(out["interp"], torch.rand(out["interp"].shape, generator=gen))
    if task == "seg":
        target = (torch.rand(out["seg_logits"].shape, generator=gen) > 0.5).float()
        return F.binary_cross_entropy_with_logits(out["seg_logits"], target)
    target = (torch.rand(out["cls_logits"].shape, generator=gen) > 0.5).float()
    return F.binary_cross_entropy_with_logits(out["cls_logits"], target)


def test_registered():
    assert set(MTL_MODELS) <= set(list_models())


@pytest.mark.parametrize("name", MTL_MODELS)
@pytest.mark.parametrize(("h", "w"), [(64, 64), (96, 128)])
def test_forward_shapes_and_contract(name, h, w):
    model = create_model(name, "tiny")
    x = torch.rand(2, 2, h, w)
    out = model(x)
    assert list(out) == ["interp", "seg_logits"]
    assert out["interp"].shape == (2, 1, h, w)
    assert out["seg_logits"].shape == (2, 3, h, w)
    assert all(torch.isfinite(v).all() for v in out.values())
    assert 0 <= out["interp"].min() and out["interp"].max() <= 1  # direct (sigmoid) head
    pred = model.eval().predict(x)
    assert set(pred) == {"interp", "seg"}
    assert 0 <= pred["seg"].min() and pred["seg"].max() <= 1 and not pred["seg"].requires_grad
    cfg = model.config
    assert (cfg.name, cfg.size, cfg.tasks, cfg.interp_output) == (name, "tiny", ("interp", "seg"), "direct")


@pytest.mark.parametrize("name", MTL_MODELS)
def test_small_size_forward(name):
    model = create_model(name, "small").eval()
    ref = model_config("tasc_swinmt", "small")
    assert (model.config.img_size, model.config.dims) == (ref.img_size, ref.dims)
    out = model(torch.rand(1, 2, 128, 128))
    assert out["interp"].shape == (1, 1, 128, 128) and out["seg_logits"].shape == (1, 3, 128, 128)
    assert all(torch.isfinite(v).all() for v in out.values())


@pytest.mark.parametrize(
    ("name", "overrides"),
    [*((n, {}) for n in MTL_MODELS), ("mtl_cross_concat", {"aux_classifier": True, "aux_classes": 2})],
)
def test_every_parameter_gets_a_gradient(name, overrides):
    model = create_model(name, "tiny", **overrides)
    out = model(torch.rand(2, 2, 64, 64))
    assert ("cls_logits" in out) == bool(overrides)
    if overrides:
        assert out["cls_logits"].shape == (2, 2)
    gen = torch.Generator().manual_seed(1)
    sum(task_loss(out, t, gen) for t in ("interp", "seg", "cls") if t != "cls" or overrides).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is None or torch.isfinite(g).all() for g in grads.values())
    assert sorted(n for n, g in grads.items() if g is None or not (g != 0).any()) == []
    assert any(n.startswith("aux.") for n in grads) == bool(overrides)


@pytest.mark.parametrize("name", MTL_MODELS)
def test_shared_parameters_get_gradients_from_both_tasks(name):
    model = create_model(name, "tiny")
    shared = model.shared_parameters()
    own = {id(p) for p in model.parameters()}
    assert shared and all(id(p) in own for p in shared)
    out = model(torch.rand(2, 2, 64, 64))
    gen = torch.Generator().manual_seed(2)
    for task in ("interp", "seg"):
        grads = torch.autograd.grad(task_loss(out, task, gen), shared, retain_graph=True)
        assert sum(float(g.abs().sum()) for g in grads) > 0, task


def test_moe_gate_sums_to_one_and_is_shared_by_both_tasks():
    model = create_model("mtl_moe", "tiny", moe_experts=3)
    seen = {}
    hooks = [
        model.towers[t].expands[0].register_forward_pre_hook(lambda m, a, t=t: seen.__setitem__(t, a[0]))
        for t in ("interp", "seg")
    ]
    out, maps = model.forward_intermediates(torch.rand(4, 2, 64, 64))
    for hook in hooks:
        hook.remove()
    gate = maps["moe.gate"]
    assert gate.shape == (4, 3)
    torch.testing.assert_close(gate.sum(dim=1), torch.ones(4))
    assert (gate > 0).all()
    # one gate: both towers start from the very same gated mixture ...
    assert seen["interp"] is maps["moe.mix"] and seen["seg"] is maps["moe.mix"]
    assert sum(1 for n, _ in model.named_modules() if n.endswith("gate")) == 1
    # ... and each task's loss trains that gate
    gen = torch.Generator().manual_seed(3)
    for task in ("interp", "seg"):
        (g,) = torch.autograd.grad(task_loss(out, task, gen), [model.moe.gate.weight], retain_graph=True)
        assert g.abs().sum() > 0, task


@pytest.mark.parametrize(
    ("c", "h", "w", "dil"), [(8, 16, 16, (6, 12, 18)), (5, 4, 6, (2, 3)), (1, 2, 2, (1,))]
)
def test_dfe_preserves_shape(c, h, w, dil):
    dfe = DFE(c, dil)
    x = torch.randn(2, c, h, w)
    y = dfe(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert dfe.dilations == dil


@pytest.mark.parametrize("side", [1, 2, 4, 8, 16, 32, 64, 128])
def test_capped_dilations_stay_inside_the_map(side):
    dil = capped_dilations((6, 12, 18), side)
    assert len(dil) == 3 and min(dil) >= 1
    assert all(d <= max(1, side // 2) for d in dil)
    assert all(d == o for d, o in zip(dil, (6, 12, 18)) if o <= side // 2)  # small ones are kept


def test_fixed_dilations_leave_dead_taps_on_small_maps():
    """Why the cap: at tiny (64²) S3 is 4x4, so with dilation 6 only the centre tap ever sees the map."""
    model = create_model("mtl_cross_concat", "tiny", dfe_dilation_mode="fixed")
    assert model.dfes[0].dilations == (6, 12, 18)
    out = model(torch.rand(2, 2, 64, 64))
    task_loss(out, "seg", torch.Generator().manual_seed(4)).backward()
    w = model.dfes[0].branches[1][0].weight.grad  # (C/2, C, 3, 3)
    off_centre = w.clone()
    off_centre[..., 1, 1] = 0
    assert off_centre.abs().max() == 0 and w[..., 1, 1].abs().max() > 0


@pytest.mark.parametrize("name", MTL_MODELS)
def test_ill_sized_input_raises(name):
    model = create_model(name, "tiny")
    with pytest.raises(ValueError, match="H=100 is not a multiple of 32"):
        model(torch.rand(1, 2, 100, 64))
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        model(torch.rand(1, 3, 64, 64))


@pytest.mark.parametrize("size", ["paper", "small", "tiny"])
def test_encoder_matches_the_main_model(size):
    ref = model_config("tasc_swinmt", size)
    for name in MTL_MODELS:
        enc = model_config(name, size).encoder_config()
        for key in ("img_size", "dims", "heads", "depths", "dec_heads", "window", "shifts", "shift_mask"):
            assert getattr(enc, key) == getattr(ref, key), (name, key)
        assert not (enc.use_tala or enc.use_mstaf or enc.use_ctci)


def test_config_validation_and_round_trip():
    with pytest.raises(ModelConfigError, match="tasks"):
        create_model("mtl_concat", "tiny", tasks=("interp",))
    with pytest.raises(ModelConfigError, match="moe_experts"):
        create_model("mtl_moe", "tiny", moe_experts=1)
    with pytest.raises(ModelConfigError, match="dfe_dilation_mode"):
        create_model("mtl_cross_concat", "tiny", dfe_dilation_mode="scale")
    with pytest.raises(ModelConfigError, match="unknown model size"):
        create_model("mtl_moe", "huge")
    model = create_model("mtl_cross_concat", "tiny", aux_classifier=True)
    again = model_from_config("mtl_cross_concat", model.config.to_dict())
    assert again.config == model.config
    assert list(again.state_dict()) == list(model.state_dict())


def test_checkpoint_round_trip(tmp_path):
    model = create_model("mtl_moe", "tiny").eval()
    save_model(model, tmp_path, {"note": "test"})
    loaded, meta = load_model(tmp_path)
    assert meta["model"] == "mtl_moe" and meta["extra"] == {"note": "test"}
    assert type(loaded) is type(model) and loaded.config == model.config
    x = torch.rand(1, 2, 64, 64)
    torch.testing.assert_close(loaded.eval()(x)["seg_logits"], model(x)["seg_logits"])


def test_forward_intermediates_names_the_stages():
    model = create_model("mtl_cross_concat", "tiny")
    out, maps = model.forward_intermediates(torch.rand(1, 2, 64, 64))
    assert {"enc.s1", "enc.s4", "dec1.dfe", "dec3.interp", "dec3.seg"} <= set(maps)
    assert maps["dec3.seg"].shape == (1, 4, 16, 16)
    assert maps["dec1.dfe"].shape == maps["enc.s3"].shape
    assert out["interp"].shape == (1, 1, 64, 64)
