"""Every registered baseline: configs, forward shapes, gradients to every parameter, predict, errors."""

from __future__ import annotations

import pytest
import torch

from tascmt.models import create_model, list_models, model_config
from tascmt.models.config import ModelConfigError
from tests.models.baselines.helpers import INTERP, SEG, TRAINABLE, every_output_loss, tiny_input

BASELINES = (*TRAINABLE, "linear_interp")


@pytest.mark.parametrize("name", BASELINES)
def test_config_contract_and_round_trip(name):
    for size in ("paper", "small", "tiny"):
        cfg = model_config(name, size)
        assert (cfg.name, cfg.size) == (name, size)
        assert cfg.img_size % 32 == 0
        assert type(cfg).from_dict(cfg.to_dict()) == cfg
    cfg = model_config(name, "tiny")
    assert cfg.input_frames == ("triplet" if name in SEG else "pair")
    assert cfg.tasks == (("seg",) if name in SEG else ("interp",))


@pytest.mark.parametrize("name", BASELINES)
def test_forward_shapes(name):
    model = create_model(name, "tiny").eval()
    x = tiny_input(name)
    out = model(x)
    if name in SEG:
        assert set(out) == {"seg_logits"}
        assert out["seg_logits"].shape == (2, 3, 64, 64)
    else:
        assert set(out) == {"interp"}
        assert out["interp"].shape == (2, 1, 64, 64)
    assert all(torch.isfinite(v).all() for v in out.values())
    pred = model.predict(x)
    for k, v in pred.items():
        if k != "interp_residual":  # the raw correction of a residual head is signed
            assert float(v.min()) >= 0 and float(v.max()) <= 1


@pytest.mark.parametrize("name", TRAINABLE)
def test_every_parameter_gets_a_gradient(name):
    model = create_model(name, "tiny").train()
    assert model.trainable
    every_output_loss(model(tiny_input(name, b=1))).backward()
    unused = set(getattr(model, "unused_parameters", ()))
    no_grad = {n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0}
    assert no_grad == unused  # the declared unused list is exact, and nothing else is missing


@pytest.mark.parametrize("name", TRAINABLE)
def test_tiny_sizes_are_small(name):
    n = sum(p.numel() for p in create_model(name, "tiny").parameters())
    # MONAI's SwinUNETR needs feature_size % 12 == 0, which puts its tiny variant at 1.43 M (documented)
    assert n < (1_500_000 if name == "swinunetr_seg" else 200_000)


@pytest.mark.parametrize("name", INTERP)
def test_residual_output_is_linear_average_plus_head(name):
    model = create_model(name, "tiny", interp_output="residual").eval()
    for p in model.head.parameters():
        torch.nn.init.zeros_(p)
    x = tiny_input(name, b=1)
    torch.testing.assert_close(model(x)["interp"], 0.5 * (x[:, :1] + x[:, 1:]))


def test_transunet_runs_at_another_size_by_resizing_the_position_grid():
    model = create_model("transunet_interp", "tiny").eval()
    assert model.pos_embed.shape[1] == (64 // 16) ** 2
    assert model(torch.rand(1, 2, 96, 128))["interp"].shape == (1, 1, 96, 128)


def test_linear_interp_is_the_average_and_not_trainable():
    model = create_model("linear_interp", "paper")
    assert not model.trainable and sum(1 for _ in model.parameters()) == 0
    x = torch.rand(3, 2, 30, 50)  # any size
    torch.testing.assert_close(model(x)["interp"], x.mean(dim=1, keepdim=True))


@pytest.mark.parametrize("name", ["swinunet_interp", "unetpp_seg"])
def test_bad_input_shapes_raise_naming_the_shape(name):
    model = create_model(name, "tiny")
    frames = 3 if name in SEG else 2
    with pytest.raises(ValueError, match="48"):
        model(torch.rand(1, frames, 48, 64))
    with pytest.raises(ValueError, match=rf"\(B, {frames}, H, W\)"):
        model(torch.rand(1, 5 - frames, 64, 64))


def test_unknown_name_size_and_option_list_the_valid_ones():
    with pytest.raises(ValueError) as err:
        create_model("no_such_model", "tiny")
    for name in (*BASELINES, "cascade_vtn_unetpp", "tasc_swinmt"):
        assert name in str(err.value)
    with pytest.raises(ModelConfigError, match="tiny"):
        create_model("vtn_interp", "huge")
    with pytest.raises(ModelConfigError, match="interp_output"):
        create_model("swinunet_interp", "tiny", interp_output="bogus")
    with pytest.raises(ModelConfigError, match="no_such_key"):
        create_model("unetpp_seg", "tiny", no_such_key=1)


def test_baselines_are_registered():
    assert set(BASELINES) <= set(list_models())


@pytest.mark.parametrize("name", ["swinunet_interp", "nnunet_seg", "linear_interp"])
def test_save_and_load_round_trip(tmp_path, name):
    from tascmt.models.checkpoint import load_model, save_model

    model = create_model(name, "tiny").eval()
    save_model(model, tmp_path / "ckpt", extra={"gap_mm": 1.25})
    loaded, meta = load_model(tmp_path / "ckpt")
    assert meta["extra"]["gap_mm"] == 1.25 and loaded.config == model.config
    x = tiny_input(name, b=1)
    torch.testing.assert_close(loaded(x), model(x))


def test_forward_intermediates_return_named_maps():
    model = create_model("swinunet_interp", "tiny").eval()
    x = tiny_input("swinunet_interp", b=1)
    out, maps = model.forward_intermediates(x)
    torch.testing.assert_close(out["interp"], model(x)["interp"])
    assert {"enc.s1", "enc.s4", "dec1", "dec3"} <= set(maps)
    assert maps["enc.s4"].shape == (1, 64, 2, 2) and maps["dec3"].shape == (1, 8, 16, 16)
    _, fused = create_model("vtn_interp", "tiny").eval().forward_intermediates(x)
    assert fused["fused.s1"].shape == (1, 8, 16, 16)
