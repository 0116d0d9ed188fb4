"""The training loop on stand-ins: learning, logs, schedule, single-task models, guards and budgets."""

from __future__ import annotations

import json
import math
import time
import warnings

import pytest
import torch
from safetensors.torch import load_file

from tascmt.errors import ConfigError, TascmtError
from tascmt.training.api import train
from tascmt.training.logs import read_csv
from tascmt.training.state_io import load_state
from tests.training._standins import StandinTrainer, standin_config


def _floats(rows, key):
    return [float(r[key]) for r in rows]


def test_loss_decreases_and_run_folder_is_complete(tmp_path):
    cfg = standin_config(tmp_path / "run", epochs=6, lr=1e-2, tensorboard=True,
                         model_overrides={"noise": False, "dropout": 0.0})
    result = train(cfg, trainer_cls=StandinTrainer)
    steps = read_csv(tmp_path / "run" / "steps.csv")
    assert len(steps) == 6 * 6 == result.global_step  # 12 samples / batch 2 = 6 steps per epoch
    l_i, l_s = _floats(steps, "L_interp"), _floats(steps, "L_seg")
    assert sum(l_i[-6:]) < 0.5 * sum(l_i[:6])
    assert sum(l_s[-6:]) < sum(l_s[:6])
    epochs = read_csv(tmp_path / "run" / "epochs.csv")
    assert [int(r["epoch"]) for r in epochs] == [1, 2, 3, 4, 5, 6]
    assert all(r["val_loss"] and r["val_psnr"] and r["val_dice"] for r in epochs)
    # the unweighted validation loss is the plain sum of the two terms
    for r in epochs:
        assert float(r["val_loss"]) == pytest.approx(float(r["val_L_interp"]) + float(r["val_L_seg"]))
    # Kendall weights are logged per step and move away from 1
    assert float(steps[-1]["w_interp"]) != 1.0 and float(steps[-1]["w_seg"]) != 1.0
    run = tmp_path / "run"
    for name in ("config.json", "provenance.json", "best/model.safetensors", "best/metrics.json",
                 "last/model.safetensors", "last/train_state.json", "last/train_state.safetensors"):
        assert (run / name).is_file(), name
    assert any((run / "tensorboard").iterdir())
    assert json.loads((run / "config.json").read_text(encoding="utf-8"))["lr"] == 1e-2
    assert result.stop_reason == "epochs" and result.best_checkpoint == run / "best"
    best_epoch = json.loads((run / "best" / "metrics.json").read_text(encoding="utf-8"))["best_epoch"]
    val = [float(r["val_loss"]) for r in epochs]
    assert best_epoch == 1 + val.index(min(val))


def test_cosine_schedule_per_epoch_and_balancer_group(tmp_path):
    cfg = standin_config(tmp_path / "run", epochs=4, lr=1e-3, min_lr=1e-5, balancer_lr=1e-2,
                         model_overrides={"n_train": 4})
    result = train(cfg, trainer_cls=StandinTrainer)
    lrs = [h["lr"] for h in result.history]
    expected = [1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    assert lrs == pytest.approx(expected, rel=1e-9)
    state = load_state(tmp_path / "run" / "last")
    groups = state["optimizer"]["param_groups"]
    assert len(groups) == 2 and groups[1]["weight_decay"] == 0.0
    assert groups[1]["lr"] == pytest.approx(1e-2 * 1e-5 / 1e-3)  # annealed by the same factor, to the end
    assert groups[0]["lr"] == pytest.approx(1e-5)


@pytest.mark.parametrize("task", ["interp", "seg"])
def test_single_task_model_trains_with_its_loss_only(tmp_path, task):
    cfg = standin_config(tmp_path / "run", epochs=1, model_overrides={"tasks": [task], "n_train": 4})
    result = train(cfg, trainer_cls=StandinTrainer)
    steps = read_csv(tmp_path / "run" / "steps.csv")
    other = "L_seg" if task == "interp" else "L_interp"
    assert all(r[other] == "" for r in steps)
    mine = "L_" + task
    assert all(float(r["loss"]) == pytest.approx(float(r[mine])) for r in steps)
    assert f"val_L_{task}" in result.history[0] and result.history[0]["val_loss"] == pytest.approx(
        result.history[0][f"val_L_{task}"])


def test_nonfinite_steps_are_skipped_then_the_run_stops_naming_the_terms(tmp_path):
    # steps 2 and 3 are NaN: skipped (parameters unchanged), then training recovers
    cfg = standin_config(tmp_path / "a", epochs=1, model_overrides={"nan_from": 2, "nan_to": 3})
    train(cfg, trainer_cls=StandinTrainer)
    steps = read_csv(tmp_path / "a" / "steps.csv")
    assert [int(r["skipped"]) for r in steps] == [0, 1, 1, 0, 0, 0]
    assert json.loads((tmp_path / "a" / "last" / "train_state.json").read_text(encoding="utf-8"))["state"]["loop"][
        "skipped_total"] == 2

    cfg = standin_config(tmp_path / "b", epochs=2, max_nonfinite=3, model_overrides={"nan_from": 2})
    with pytest.raises(TascmtError) as info:
        train(cfg, trainer_cls=StandinTrainer)
    msg = str(info.value)
    assert "step 4" in msg and "3 consecutive" in msg and "L_interp=nan" in msg and "L_seg=" in msg


def test_skipped_step_leaves_parameters_unchanged(tmp_path):
    cfg = standin_config(tmp_path / "run", epochs=1, max_steps=1, model_overrides={"nan_from": 1},
                         max_nonfinite=5)
    trainer = StandinTrainer(cfg)
    trainer.fit()
    after = load_file(str(tmp_path / "run" / "last" / "model.safetensors"))
    torch.manual_seed(cfg.seed)
    fresh = StandinTrainer(cfg.replace(out_dir=str(tmp_path / "other"))).build_model()
    # same seed → same initial weights; a skipped step must not have moved them (BatchNorm running
    # statistics do change: the forward pass ran)
    params = dict(fresh.named_parameters())
    assert params and all(torch.equal(after[k], v.detach()) for k, v in params.items())
    assert not torch.equal(after["body.1.running_mean"], fresh.body[1].running_mean)


def test_max_minutes_stops_cleanly_at_a_step_boundary(tmp_path):
    cfg = standin_config(tmp_path / "run", epochs=50, max_minutes=0.6 / 60, model_overrides={"sleep": 0.05})
    t0 = time.monotonic()
    result = train(cfg, trainer_cls=StandinTrainer)
    assert time.monotonic() - t0 < 20
    assert result.stop_reason == "time_budget"
    assert 0 < result.global_step < 50 * 6
    state = load_state(tmp_path / "run" / "last")
    assert state["loop"]["global_step"] == result.global_step
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()
    rows = read_csv(tmp_path / "run" / "steps.csv")
    assert int(rows[-1]["step"]) == result.global_step


def test_fresh_run_refuses_a_folder_with_checkpoints(tmp_path):
    cfg = standin_config(tmp_path / "run", epochs=1, model_overrides={"n_train": 2})
    train(cfg, trainer_cls=StandinTrainer)
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg, trainer_cls=StandinTrainer)


@pytest.mark.parametrize(("name", "kwargs"), [("fixed", {"weights": [0.4, 0.6]}), ("gradnorm", {}),
                                              ("dwa", {}), ("paper", {})])
def test_every_balancer_plugs_into_the_loop(tmp_path, name, kwargs):
    cfg = standin_config(tmp_path / "run", epochs=3, balancer=name, balancer_kwargs=kwargs,
                         model_overrides={"n_train": 4})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the paper form warns that it diverges
        result = train(cfg, trainer_cls=StandinTrainer)
    weights = [(h["w_interp"], h["w_seg"]) for h in result.history]
    if name == "fixed":
        assert weights == [pytest.approx((0.4, 0.6))] * 3
    else:
        assert len(set(weights)) > 1  # the strategy moved its weights
    if name in ("gradnorm", "paper"):  # learnable weights: their own optimiser group, restored on resume
        state = load_state(tmp_path / "run" / "last")
        assert len(state["optimizer"]["param_groups"]) == 2 and state["balancer"]


def test_early_stopping_stops_and_resuming_a_stopped_run_trains_no_more(tmp_path):
    """With patience 1 the run stops after the first validation round without improvement; resuming it
    must not train another epoch (it used to, overwriting last/)."""
    cfg = standin_config(tmp_path / "es", epochs=30, patience=1, lr=1e-12, min_lr=1e-12)
    result = train(cfg, trainer_cls=StandinTrainer)
    assert result.stop_reason == "early_stopping" and len(result.history) < 30
    again = train(cfg, resume=True, trainer_cls=StandinTrainer)
    assert again.stop_reason == "early_stopping" and again.global_step == result.global_step


def test_resume_refuses_changed_training_settings(tmp_path):
    cfg = standin_config(tmp_path / "r", epochs=2, max_steps=2)
    train(cfg, trainer_cls=StandinTrainer)
    with pytest.raises(ConfigError, match="lr"):
        train(cfg.replace(lr=1e-2, max_steps=None), resume=True, trainer_cls=StandinTrainer)
    resumed = train(cfg.replace(max_steps=None), resume=True, trainer_cls=StandinTrainer)  # runtime only
    assert resumed.stop_reason == "epochs"
