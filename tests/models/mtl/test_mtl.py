"""The multi-task baselines (paper §4.5): shapes, gradients, the contract, cross-task exchange, MMoE gating,
the shared DFE, configs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import tascmt.models.mtl  # noqa: F401  (registers the variants until tascmt.models imports it)
from tascmt.models import ModelConfigError, create_model, list_models, load_model, model_config, save_model
from tascmt.models import dfe as resformer_dfe
from tascmt.models.mtl import DFE, MTL_MODELS, capped_dilations
from tascmt.models.registry import model_from_config


def task_loss(out: dict[str, torch.Tensor], task: str, gen: torch.Generator) -> torch.Tensor:
    """A loss on one output against a random target (so no gradient vanishes by symmetry)."""
    if task == "interp":
        return F.mse_loss(out["interp"], torch.rand(out["interp"].shape, generator=gen))
    target = (torch.rand(out["seg_logits"].shape, generator=gen) > 0.5).float()
    return F.binary_cross_entropy_with_logits(out["seg_logits"], target)


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
    cfg = model.config
    # the interpolation head follows the main model's preset at this size (harmonised across rows)
    assert cfg.interp_output == model_config("tasc_swinmt", "tiny").interp_output
    if cfg.interp_output == "direct":
        assert 0 <= out["interp"].min() and out["interp"].max() <= 1  # sigmoid head
    pred = model.eval().predict(x)
    assert {"interp", "seg"} <= set(pred)  # (+ "interp_residual" with the residual head)
    assert 0 <= pred["seg"].min() and pred["seg"].max() <= 1 and not pred["seg"].requires_grad
    assert (cfg.name, cfg.size, cfg.tasks) == (name, "tiny", ("interp", "seg"))


@pytest.mark.parametrize("name", MTL_MODELS)
def test_small_size_forward(name):
    model = create_model(name, "small").eval()
    ref = model_config("tasc_swinmt", "small")
    assert (model.config.img_size, model.config.dims) == (ref.img_size, ref.dims)
    out = model(torch.rand(1, 2, 128, 128))
    assert out["interp"].shape == (1, 1, 128, 128) and out["seg_logits"].shape == (1, 3, 128, 128)
    assert all(torch.isfinite(v).all() for v in out.values())


@pytest.mark.parametrize("name", MTL_MODELS)
def test_every_parameter_gets_a_gradient(name):
    model = create_model(name, "tiny")
    out = model(torch.rand(2, 2, 64, 64))
    assert set(out) == {"interp", "seg_logits"}  # no auxiliary outputs that no loss would train
    gen = torch.Generator().manual_seed(1)
    sum(task_loss(out, t, gen) for t in ("interp", "seg")).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is None or torch.isfinite(g).all() for g in grads.values())
    assert sorted(n for n, g in grads.items() if g is None or not (g != 0).any()) == []


def _tower_grad(model, loss: torch.Tensor, tower: str) -> float:
    params = list(model.towers[tower].parameters())
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return sum(float(g.abs().sum()) for g in grads if g is not None)


@pytest.mark.parametrize(("name", "exchanges"), [("mtl_concat", True), ("mtl_cross_concat", True),
                                                 ("mtl_shared_bottom", False), ("mtl_moe", False)])
def test_cross_task_exchange(name, exchanges):
    """Concat rows: each task's loss reaches the other task's tower; Shared-Bottom and MMoE: it does not."""
    model = create_model(name, "tiny")
    out = model(torch.rand(2, 2, 64, 64))
    gen = torch.Generator().manual_seed(5)
    assert (_tower_grad(model, task_loss(out, "seg", gen), "interp") > 0) == exchanges
    assert (_tower_grad(model, task_loss(out, "interp", gen), "seg") > 0) == exchanges


def test_concat_feeds_both_branches_conv1x1_of_the_concatenation():
    model = create_model("mtl_concat", "tiny").eval()
    _, maps = model.forward_intermediates(torch.rand(1, 2, 64, 64))
    for j in (1, 2, 3):
        fi, fs, fused = maps[f"dec{j}.interp"], maps[f"dec{j}.seg"], maps[f"dec{j}.concat"]
        conv = model.concat[j - 1]
        assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (2 * fi.shape[1], fi.shape[1], (1, 1))
        torch.testing.assert_close(fused, conv(torch.cat([fi, fs], dim=1)))
    seen = {}
    hooks = [model.heads[t].register_forward_pre_hook(lambda m, a, t=t: seen.__setitem__(t, a[0]))
             for t in ("interp", "seg")]
    model(torch.rand(1, 2, 64, 64))
    for h in hooks:
        h.remove()
    assert seen["interp"] is seen["seg"]  # both heads read the same fused map


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


def test_mmoe_one_gate_per_task_over_expert_encoders():
    model = create_model("mtl_moe", "tiny", moe_experts=3)
    assert len(model.experts) == 3 and not hasattr(model, "encoder")  # the experts replace the shared bottom
    assert set(model.gates) == {"interp", "seg"}
    x = torch.rand(4, 2, 64, 64)
    out, maps = model.forward_intermediates(x)
    for t in ("interp", "seg"):
        gate = maps[f"moe.gate.{t}"]
        assert gate.shape == (4, 3)
        torch.testing.assert_close(gate.sum(dim=1), torch.ones(4))
        assert (gate > 0).all()
        # every encoder output the tower uses (S1..S3 and the bottleneck S4) is the gated expert mixture
        for k in range(1, 5):
            experts = torch.stack([maps[f"expert{e}.s{k}"] for e in (1, 2, 3)], dim=1)
            mix = (gate[:, :, None, None, None] * experts).sum(dim=1)
            torch.testing.assert_close(maps[f"moe.{t}.s{k}"], mix)
    assert not torch.allclose(maps["moe.gate.interp"], maps["moe.gate.seg"])  # two gates
    # each task's loss trains its own gate only
    gen = torch.Generator().manual_seed(3)
    for task, other in (("interp", "seg"), ("seg", "interp")):
        loss = task_loss(out, task, gen)
        own, oth = torch.autograd.grad(loss, [model.gates[task].weight, model.gates[other].weight],
                                       retain_graph=True, allow_unused=True)
        assert own.abs().sum() > 0 and (oth is None or oth.abs().sum() == 0), task


def test_moe_towers_read_the_mixtures():
    model = create_model("mtl_moe", "tiny")
    seen = {}
    hooks = [model.towers[t].fusions[2].register_forward_pre_hook(lambda m, a, t=t: seen.__setitem__(t, a[0]))
             for t in ("interp", "seg")]
    _, maps = model.forward_intermediates(torch.rand(2, 2, 64, 64))
    for h in hooks:
        h.remove()
    for t in ("interp", "seg"):
        c = maps[f"moe.{t}.s1"].shape[1]
        torch.testing.assert_close(seen[t][:, c:], maps[f"moe.{t}.s1"])  # cat(U, skip): the skip is S1's mix


def test_one_dfe_at_full_width():
    """``tascmt.models.mtl.DFE`` is ResFormer's DFE (width C in every branch), used by mtl_cross_concat."""
    assert DFE is resformer_dfe.DFE and capped_dilations is resformer_dfe.capped_dilations
    dfe = DFE(8, (1, 2, 3))
    assert all(b[0].out_channels == 8 for b in dfe.branches)
    assert sum(p.numel() for p in dfe.parameters()) == 65 * 8 * 8 + 12 * 8 + 98
    model = create_model("mtl_cross_concat", "tiny")
    widths = [d.branches[0][0].out_channels for d in model.dfes]
    assert widths == list(model.config.dec_dims)
    assert all(type(d) is resformer_dfe.DFE for d in model.dfes)


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
    w = model.dfes[0].branches[1][0].weight.grad  # (C, C, 3, 3)
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
    with pytest.raises(ModelConfigError, match="moe_gate_grid"):
        create_model("mtl_moe", "tiny", moe_gate_grid=0)
    with pytest.raises(ModelConfigError, match="aux_classifier"):
        create_model("mtl_cross_concat", "tiny", aux_classifier=True)
    with pytest.raises(ModelConfigError, match="dfe_dilation_mode"):
        create_model("mtl_cross_concat", "tiny", dfe_dilation_mode="scale")
    with pytest.raises(ModelConfigError, match="unknown model size"):
        create_model("mtl_moe", "huge")
    model = create_model("mtl_cross_concat", "tiny", dfe_dilation_mode="fixed")
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
