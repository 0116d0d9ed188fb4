"""model_input for pair/triplet models, CascadeModel and build_cascade, and the Catmull-Rom reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tascmt.models import create_model, load_model, save_model
from tascmt.models.baselines import (
    CascadeModel,
    build_cascade,
    cubic_middle,
    cubic_midpoints,
    has_cubic_support,
    model_input,
)
from tascmt.models.config import ModelConfigError
from tests.models.baselines.helpers import CASCADES


def batch(b=2, size=64):
    return {"x": torch.rand(b, 2, size, size), "y_interp": torch.rand(b, 1, size, size)}


def test_model_input_pair_and_triplet():
    bt = batch()
    assert model_input(create_model("swinunet_interp", "tiny"), bt) is bt["x"]
    assert model_input(create_model("tasc_swinmt", "tiny"), bt) is bt["x"]  # no input_frames: the pair
    seg = create_model("unetpp_seg", "tiny")
    x = model_input(seg, bt)
    assert x.shape == (2, 3, 64, 64)
    assert torch.equal(x[:, 0], bt["x"][:, 0]) and torch.equal(x[:, 1], bt["y_interp"][:, 0])
    assert torch.equal(x[:, 2], bt["x"][:, 1])

    class Wrapped(nn.Module):  # DDP-style wrapper exposes the model as .module
        def __init__(self, module):
            super().__init__()
            self.module = module

    assert model_input(Wrapped(seg), bt).shape == (2, 3, 64, 64)
    with pytest.raises(ValueError, match="y_interp"):
        model_input(seg, {"x": bt["x"]})
    with pytest.raises(ValueError, match="y_interp"):
        model_input(seg, {"x": bt["x"], "y_interp": bt["y_interp"][:, :, :32]})


def test_cascade_segments_the_synthesised_middle_frame():
    interp, seg = create_model("linear_interp", "tiny"), create_model("unetpp_seg", "tiny").eval()
    cascade = CascadeModel(interp, seg).eval()
    assert not cascade.trainable and cascade.input_frames == "pair"
    x = batch()["x"]
    out = cascade(x)
    assert out["interp"].shape == (2, 1, 64, 64) and out["seg_logits"].shape == (2, 3, 64, 64)
    mid = 0.5 * (x[:, :1] + x[:, 1:])
    torch.testing.assert_close(out["seg_logits"], seg(torch.cat([x[:, :1], mid, x[:, 1:]], 1))["seg_logits"])
    pred = cascade.predict(x)
    assert set(pred) - {"interp_residual"} == {"interp", "seg"} and float(pred["seg"].max()) <= 1
    with pytest.raises(ModelConfigError, match="interp_model"):
        CascadeModel(seg, interp)


@pytest.mark.parametrize("name", CASCADES)
def test_registered_cascades(name):
    model = create_model(name, "tiny").eval()
    out = model(torch.rand(1, 2, 64, 64))
    assert out["interp"].shape == (1, 1, 64, 64) and out["seg_logits"].shape == (1, 3, 64, 64)
    assert model.config.tasks == ("interp", "seg")


def test_build_cascade_from_checkpoints_and_names(tmp_path):
    interp = create_model("swinunet_interp", "tiny").eval()
    seg = create_model("nnunet_seg", "tiny").eval()
    save_model(interp, tmp_path / "i", extra={"gap_mm": 1.25})
    save_model(seg, tmp_path / "s", extra={"gap_mm": 1.25})
    cascade, metas = build_cascade(tmp_path / "i", tmp_path / "s")
    assert set(metas) == {"interp", "seg"} and metas["seg"]["extra"]["gap_mm"] == 1.25
    x = torch.rand(1, 2, 64, 64)
    torch.testing.assert_close(cascade.eval()(x), CascadeModel(interp, seg).eval()(x))
    # the cascade itself saves and reloads (its config carries both parts' configs)
    save_model(cascade, tmp_path / "c")
    reloaded, _ = load_model(tmp_path / "c")
    torch.testing.assert_close(reloaded(x), cascade(x))
    by_name, metas = build_cascade("vtn_interp", "swinunetr_seg", size="tiny")
    assert metas == {} and by_name.config.interp_model == "vtn_interp"


def cubic_volume(n=14, h=5, w=4, seed=0):
    rng = np.random.default_rng(seed)
    a, b, c, d = (rng.normal(size=(h, w)) for _ in range(4))
    z = np.arange(n, dtype=np.float64)[:, None, None]
    return a + b * z + c * z**2 + d * z**3  # (Z, H, W), cubic along z


@pytest.mark.parametrize("k,step", [(5, 1), (6, 2), (3, 1)])
def test_catmull_rom_is_exact_on_cubics_along_z(k, step):
    vol = cubic_volume()
    assert has_cubic_support(len(vol), k, step)
    np.testing.assert_allclose(cubic_middle(vol, k, step), vol[k], rtol=1e-9, atol=1e-9)
    # the same along another axis
    np.testing.assert_allclose(cubic_middle(np.moveaxis(vol, 0, 2), k, step, axis=2), vol[k], atol=1e-9)


def test_catmull_rom_falls_back_to_linear_at_the_edges_and_checks_k():
    vol = cubic_volume()
    assert not has_cubic_support(len(vol), 1)
    np.testing.assert_allclose(cubic_middle(vol, 1), 0.5 * (vol[0] + vol[2]))
    assert not np.allclose(cubic_middle(vol, 1), vol[1])  # linear is not exact on a cubic
    with pytest.raises(ValueError, match="k=0"):
        cubic_middle(vol, 0)
    with pytest.raises(ValueError, match="step"):
        cubic_middle(vol, 4, step=0)


def test_generic_cascade_picks_its_parts_from_the_config():
    model = create_model("cascade", "tiny", interp_model="linear_interp", seg_model="unetpp_seg")
    assert type(model.seg_model).__name__ == "UNetPPSeg" and not model.trainable
    with pytest.raises(ModelConfigError, match="seg_model"):
        create_model("cascade", "tiny", interp_model="linear_interp", seg_model="vtn_interp")


@pytest.mark.parametrize("n_acquired", [2, 3, 7])
def test_cubic_midpoints_match_cubic_middle_on_the_interleaved_volume(n_acquired):
    full = cubic_volume(n=2 * n_acquired - 1)
    acquired = full[::2]  # (n, H, W): every other slice dropped
    mids = cubic_midpoints(np.moveaxis(acquired, 0, 1), axis=1)  # along another axis
    assert mids.shape == (5, n_acquired - 1, 4)
    for i in range(n_acquired - 1):
        np.testing.assert_allclose(mids[:, i], cubic_middle(full, 2 * i + 1), atol=1e-9)
    with pytest.raises(ValueError, match="at least 2"):
        cubic_midpoints(full[:1])
