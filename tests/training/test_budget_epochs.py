"""Fixed-step epochs, the budget-following learning-rate schedule and the scale-free selection criterion."""

from __future__ import annotations

import itertools
import math

import torch

from tascmt.training.api import train
from tascmt.training.logs import read_csv
from tascmt.training.sampler import FixedStepSampler
from tests.training._standins import StandinTrainer, standin_config


def test_fixed_step_sampler_is_seeded_with_replacement_and_resumable():
    data = list(range(5))
    s = FixedStepSampler(data, 1, 0, seed=3, num_samples=12)
    s.set_epoch(1)
    a = list(s)
    assert len(a) == 12 and set(a) <= set(data) and len(set(a)) < 12  # with replacement
    s.set_start(5)
    assert list(s) == a[5:]  # a resumed epoch continues the same draw
    s.set_start(0)
    s.set_epoch(2)
    assert list(s) != a


def test_epochs_have_the_asked_number_of_steps(tmp_path):
    cfg = standin_config(tmp_path / "run", epochs=2, steps_per_epoch=7)
    result = train(cfg, trainer_cls=StandinTrainer)
    steps = read_csv(tmp_path / "run" / "steps.csv")
    assert len(steps) == 14 and result.global_step == 14
    assert [int(r["epoch"]) for r in read_csv(tmp_path / "run" / "epochs.csv")] == [1, 2]


def test_lr_anneals_over_the_step_budget(tmp_path):
    cfg = standin_config(tmp_path / "run", epochs=50, steps_per_epoch=4, max_steps=12, lr_schedule="auto",
                         min_lr=1e-5)
    train(cfg, trainer_cls=StandinTrainer)
    lrs = [float(r["lr"]) for r in read_csv(tmp_path / "run" / "steps.csv")]
    assert len(lrs) == 12
    assert all(b <= a for a, b in itertools.pairwise(lrs)) and lrs[0] > 0.9 * cfg.lr
    # the last step runs at the end of the cosine (budget used up), not at an epoch-based early value
    expected_last = 1e-5 + (cfg.lr - 1e-5) * 0.5 * (1 + math.cos(math.pi * 11 / 12))
    assert math.isclose(lrs[-1], expected_last, rel_tol=1e-4)


def test_selection_criterion_is_relative_to_the_first_validation(tmp_path):
    cfg = standin_config(tmp_path / "run", epochs=3)
    result = train(cfg, trainer_cls=StandinTrainer)
    epochs = read_csv(tmp_path / "run" / "epochs.csv")
    first = epochs[0]
    # the first round's criterion is exactly the number of tasks (each loss relative to itself)
    assert math.isclose(float(first["val_criterion"]), 2.0, rel_tol=1e-9)
    ref_i, ref_s = float(first["val_L_interp"]), float(first["val_L_seg"])
    for r in epochs:
        crit = float(r["val_L_interp"]) / ref_i + float(r["val_L_seg"]) / ref_s
        assert math.isclose(float(r["val_criterion"]), crit, rel_tol=1e-6)
    assert torch.is_tensor(torch.tensor(result.global_step))
