"""ResFormer model: output shapes for both block designs, gradients reach every parameter, config checks."""

from __future__ import annotations

import pytest
import torch

from tascmt.models import create_model, list_models
from tascmt.models.checkpoint import load_model, save_model
from tascmt.models.config import ModelConfigError
from tascmt.models.resformer.config import ResFormerConfig
from tascmt.models.resformer.model import ResFormerMTL, count_parameters


@pytest.mark.parametrize("name", ["resformer_mtl", "resformer_mtl_parallel"])
@pytest.mark.parametrize(("in_chans", "seg_classes", "cls_classes"), [(3, 1, 2), (1, 4, 3)])
def test_forward_shapes(name, in_chans, seg_classes, cls_classes):
    model = create_model(
        name, size="tiny", img_size=32, in_chans=in_chans, seg_classes=seg_classes, cls_classes=cls_classes
    )
    out = model(torch.rand(2, in_chans, 32, 48))
    assert set(out) == {"seg_logits", "cls_logits"}
    assert out["seg_logits"].shape == (2, seg_classes, 32, 48)
    assert out["cls_logits"].shape == (2, cls_classes)
    assert all(torch.isfinite(v).all() for v in out.values())


def test_block_designs_differ_but_have_equal_parameter_counts():
    serial = create_model("resformer_mtl", size="tiny", img_size=32)
    parallel = create_model("resformer_mtl_parallel", size="tiny", img_size=32)
    assert serial.config.block == "serial" and parallel.config.block == "parallel"
    assert count_parameters(serial) == count_parameters(parallel)
    parallel.load_state_dict(serial.state_dict())
    serial.eval(), parallel.eval()
    x = torch.rand(1, 3, 32, 32)
    assert not torch.allclose(serial(x)["seg_logits"], parallel(x)["seg_logits"])


@pytest.mark.parametrize("block", ["serial", "parallel"])
def test_every_parameter_gets_a_gradient(block):
    model = create_model("resformer_mtl", size="tiny", img_size=32, block=block, seg_classes=3)
    out = model(torch.rand(2, 3, 32, 32))
    target = torch.randn_like(out["seg_logits"])
    loss = ((out["seg_logits"] - target) ** 2).mean() + out["cls_logits"].pow(2).mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


def test_intermediates_and_predict():
    model = create_model("resformer_mtl", size="tiny", img_size=32, seg_classes=3).eval()
    x = torch.rand(1, 3, 32, 32)
    out, rec = model.forward_intermediates(x)
    assert rec["enc.e4"].shape == (1, 64, 2, 2) and rec["dfe.e1"].shape == (1, 8, 16, 16)
    assert rec["dec.3"].shape == (1, 8, 16, 16)
    pred = model.predict(x)
    assert torch.allclose(pred["seg"].sum(dim=1), torch.ones(1, 32, 32), atol=1e-5)  # softmax
    assert torch.allclose(pred["cls"], torch.sigmoid(out["cls_logits"]))


def test_bad_inputs_and_configs_raise():
    model = create_model("resformer_mtl", size="tiny", img_size=32)
    with pytest.raises(ValueError, match="multiple of 16"):
        model(torch.rand(1, 3, 40, 32))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(1, 1, 32, 32))
    with pytest.raises(ModelConfigError, match="block"):
        create_model("resformer_mtl", size="tiny", block="zigzag")
    with pytest.raises(ModelConfigError, match="known sizes"):
        create_model("resformer_mtl", size="huge")
    with pytest.raises(ModelConfigError, match="unknown model config key"):
        create_model("resformer_mtl", size="tiny", depth=3)
    assert {"resformer_mtl", "resformer_mtl_parallel"} <= set(list_models())


def test_paper_size_parameter_count():
    """The figure documented in ``tascmt/models/resformer/model.py`` (built on the meta device: no memory)."""
    with torch.device("meta"):
        serial = create_model("resformer_mtl", size="paper")
        parallel = create_model("resformer_mtl_parallel", size="paper")
    assert count_parameters(serial) == count_parameters(parallel) == 57_214_777
    assert serial.cls_head.fc1.in_features == 256 + 512 and serial.cls_head.fc1.out_features == 32
    assert [len(s.res) for s in serial.encoder.stages] == [3, 4, 6, 3]


def test_window_is_image_over_16():
    assert create_model("resformer_mtl", size="tiny", img_size=64).config.window_size == 4
    assert ResFormerConfig().window_size == 16 and ResFormerConfig(window=8).window_size == 8


def test_checkpoint_round_trip(tmp_path):
    model = create_model("resformer_mtl_parallel", size="tiny", img_size=32, in_chans=1).eval()
    save_model(model, tmp_path / "ck", extra={"k": 1})
    loaded, meta = load_model(tmp_path / "ck")
    assert isinstance(loaded, ResFormerMTL) and loaded.config == model.config and meta["extra"]["k"] == 1
    x = torch.rand(1, 1, 32, 32)
    assert torch.equal(loaded(x)["cls_logits"], model(x)["cls_logits"])
