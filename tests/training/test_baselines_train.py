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


def _moved(model, initial: dict[str, torch.Tensor], keys=None) -> list[str]:
    """Parameters (not buffers: BatchNorm statistics change without an optimiser step) that differ from the
    run's own initial values."""
    trained = model.state_dict()
    return [k for k in (initial if keys is None else keys) if not torch.equal(trained[k], initial[k])]


@pytest.mark.parametrize("name", ["nnunet_seg", "swinunet_interp"])
def test_baseline_trains_and_updates_weights(cache, tmp_path, name, initial_weights):
    result = train(_cfg(cache, tmp_path / name, name))
    model, meta = load_model(result.last_checkpoint)
    assert meta["model"] == name
    (initial,) = initial_weights
    moved = _moved(model, initial)
    assert len(moved) > len(initial) // 2, f"only {len(moved)} of {len(initial)} parameters were trained"


def test_deep_supervision_heads_get_gradients(cache, tmp_path, initial_weights):
    """nnU-Net-style deep supervision: the auxiliary heads are trained (they only get gradient from the
    deep-supervision terms of the loss)."""
    result = train(_cfg(cache, tmp_path / "ds", "nnunet_seg"))
    model, _ = load_model(result.last_checkpoint)
    (initial,) = initial_weights
    ds_keys = [k for k in initial if "deep_supervision" in k or "heads" in k]
    assert ds_keys, "the nnU-Net-style model exposes deep-supervision heads"
    assert _moved(model, initial, ds_keys) == ds_keys  # every head parameter was updated


def test_fixed_reference_is_refused(cache, tmp_path):
    with pytest.raises(ConfigError, match="nothing to train"):
        train(_cfg(cache, tmp_path / "lin", "linear_interp"))
