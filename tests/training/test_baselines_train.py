"""Comparison baselines train through the same loop: triplet-input segmenters, deep supervision, refusals."""

from __future__ import annotations

import pytest
import torch

from tascmt.data.prepare import prepare_dataset
from tascmt.data.synth import make_synthetic_task
from tascmt.errors import ConfigError
from tascmt.models import load_model
from tascmt.training import TrainConfig, train


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("baselines")
    task = make_synthetic_task(root / "task", task="heart", n_cases=10, size=64, n_slices=6, seed=1)
    prepare_dataset(task, root / "cache", size=64, progress=False, verbose=False)
    return root / "cache"


def _cfg(cache, out, model, **kw):
    return TrainConfig(cache_dir=str(cache), out_dir=str(out), model=model, size="tiny",
                       model_overrides={"img_size": 64}, epochs=1, max_steps_per_epoch=2, num_workers=0,
                       device="cpu", progress=False, tensorboard=False, **kw)


@pytest.mark.parametrize("name", ["nnunet_seg", "swinunet_interp"])
def test_baseline_trains_and_updates_weights(cache, tmp_path, name):
    result = train(_cfg(cache, tmp_path / name, name))
    model, meta = load_model(result.last_checkpoint)
    assert meta["model"] == name
    fresh = type(model)(model.config)
    trained, initial = model.state_dict(), fresh.state_dict()
    assert any(not torch.equal(trained[k], initial[k]) for k in trained)


def test_deep_supervision_heads_get_gradients(cache, tmp_path):
    """nnU-Net-style deep supervision: the auxiliary heads are trained (they only get gradient from the
    deep-supervision terms of the loss)."""
    result = train(_cfg(cache, tmp_path / "ds", "nnunet_seg"))
    model, _ = load_model(result.last_checkpoint)
    fresh = type(model)(model.config)
    init = fresh.state_dict()
    ds_keys = [k for k in model.state_dict() if "deep_supervision" in k or "heads" in k]
    assert ds_keys, "the nnU-Net-style model exposes deep-supervision heads"
    assert any(not torch.equal(model.state_dict()[k], init[k]) for k in ds_keys)


def test_fixed_reference_is_refused(cache, tmp_path):
    with pytest.raises(ConfigError, match="nothing to train"):
        train(_cfg(cache, tmp_path / "lin", "linear_interp"))
