"""Training-state files (no pickle), whole-folder checkpoint swaps, the config and the sampler."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch

from tascmt.errors import CheckpointError, ConfigError
from tascmt.training import TrainConfig
from tascmt.training.rng import capture_rng, restore_rng
from tascmt.training.sampler import ResumableSampler
from tascmt.training.state_io import find_checkpoint_dir, load_state, save_state, write_checkpoint_dir


def test_state_roundtrip_keeps_tensors_tuples_int_keys_and_numpy(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = {"optimizer": opt.state_dict(), "rng": capture_rng(), "best": math.inf, "none": None,
             "arr": np.arange(5, dtype=np.uint32), "nested": {"t": (1, 2.5, "x")}}
    save_state(tmp_path, state)
    assert not any(p.suffix in (".pt", ".pkl") for p in tmp_path.iterdir())
    back = load_state(tmp_path)
    assert back["best"] == math.inf and back["none"] is None and back["nested"]["t"] == (1, 2.5, "x")
    assert back["arr"].dtype == np.uint32 and back["arr"].tolist() == [0, 1, 2, 3, 4]
    assert set(back["optimizer"]["state"]) == {0, 1}  # integer keys survive JSON
    exp_avg = opt.state_dict()["state"][0]["exp_avg"]
    torch.testing.assert_close(back["optimizer"]["state"][0]["exp_avg"], exp_avg)
    opt2 = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=1e-3)
    opt2.load_state_dict(back["optimizer"])  # loads into a fresh optimiser


def test_rng_states_restore_every_generator(tmp_path):
    save_state(tmp_path, {"rng": capture_rng()})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())  # noqa: NPY002
    restore_rng(load_state(tmp_path)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected  # noqa: NPY002


def test_mismatched_state_pair_is_detected(tmp_path):
    save_state(tmp_path / "a", {"x": torch.ones(2)})
    save_state(tmp_path / "b", {"x": torch.zeros(2)})
    (tmp_path / "a" / "train_state.json").write_text((tmp_path / "b" / "train_state.json").read_text(encoding="utf-8"))
    (tmp_path / "b" / "train_state.json").write_text(json.dumps({"format": "other"}), encoding="utf-8")
    with pytest.raises(CheckpointError, match="save_id"):
        load_state(tmp_path / "a")
    with pytest.raises(CheckpointError, match="not a tascmt training state"):
        load_state(tmp_path / "b")


def test_checkpoint_folder_is_swapped_whole(tmp_path):
    dest = tmp_path / "last"
    (tmp_path / ".last.tmp-99999").mkdir()  # debris of a process killed while writing
    write_checkpoint_dir(dest, lambda d: (d / "f.txt").write_text("one", encoding="utf-8"))
    with pytest.raises(RuntimeError):
        write_checkpoint_dir(dest, lambda d: ((d / "f.txt").write_text("half", encoding="utf-8"), _fail()))
    assert (dest / "f.txt").read_text(encoding="utf-8") == "one" and sorted(p.name for p in tmp_path.iterdir()) == ["last"]
    write_checkpoint_dir(dest, lambda d: (d / "f.txt").write_text("two", encoding="utf-8"))
    assert (dest / "f.txt").read_text(encoding="utf-8") == "two"
    # a kill between the two renames leaves only the previous folder: it is still found
    dest.rename(tmp_path / ".last.old")
    assert find_checkpoint_dir(dest) == tmp_path / ".last.old"


def _fail():
    raise RuntimeError("simulated crash while writing")


def test_config_validates_and_roundtrips(tmp_path):
    cfg = TrainConfig(cache_dir="c", out_dir="o", fold=2, balancer_kwargs={"weights": [0.4, 0.6]})
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay, cfg.min_lr, cfg.patience, cfg.grad_clip,
            cfg.balancer, cfg.balancer_lr, cfg.interp_alpha) == (100, 2, 1e-3, 1e-5, 1e-6, 10, 1.0, "kendall",
                                                                 None, 0.4)
    assert cfg.steps_per_epoch == 250 and TrainConfig(cache_dir="c", out_dir="o", size="paper").lr == 1e-4
    (tmp_path / "config.json").write_text(json.dumps(cfg.to_dict()))
    assert TrainConfig.load(tmp_path / "config.json") == cfg
    with pytest.raises(ConfigError, match=r"'batch_size'.*0"):
        TrainConfig(cache_dir="c", out_dir="o", batch_size=0)
    with pytest.raises(ConfigError, match="device"):
        TrainConfig(cache_dir="c", out_dir="o", device="tpu")
    with pytest.raises(ConfigError, match="unknown train option"):
        TrainConfig.from_dict({"cache_dir": "c", "out_dir": "o", "learning_rate": 1})


def test_a_fresh_dict_gets_todays_defaults_and_an_old_config_file_its_own(tmp_path):
    """``from_dict`` (the experiment runner, ``train(dict)``) uses the current defaults: fixed-step epochs and
    an lr annealed over the step budget; only a config.json written before those existed is read back with
    one-pass epochs annealed over the epochs (the experiments once ran with a constant lr this way)."""
    fresh = TrainConfig.from_dict({"cache_dir": "c", "out_dir": "o", "max_steps": 800})
    assert (fresh.steps_per_epoch, fresh.lr_schedule) == (250, "auto")
    old = {k: v for k, v in fresh.to_dict().items() if k not in ("steps_per_epoch", "lr_schedule")}
    (tmp_path / "config.json").write_text(json.dumps(old))
    loaded = TrainConfig.load(tmp_path / "config.json")
    assert (loaded.steps_per_epoch, loaded.lr_schedule) == (None, "epochs")


def test_sampler_resumes_inside_an_epoch_and_splits_ranks():
    data = list(range(10))
    full = ResumableSampler(data, 1, 0, shuffle=True, seed=5)
    full.set_epoch(3)
    order = list(full)
    assert sorted(order) == data
    full.set_start(4)
    assert list(full) == order[4:] and len(full) == 6
    ranks = [ResumableSampler(data, 2, r, shuffle=True, seed=5) for r in range(2)]
    for s in ranks:
        s.set_epoch(3)
    assert list(ranks[0]) == order[0::2] and list(ranks[1]) == order[1::2]
