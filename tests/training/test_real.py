"""The real pieces end to end: phantom MSD task → cache → `tascmt train` (tiny model, 64²) → load_model."""

from __future__ import annotations

import pytest
import torch

from tascmt.cli import main
from tascmt.data.prepare import prepare_dataset
from tascmt.data.synth import make_synthetic_task
from tascmt.models import load_model
from tascmt.training.logs import read_csv


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    task = make_synthetic_task(root / "task", task="heart", n_cases=10, size=64, n_slices=6, seed=0)
    prepare_dataset(task, root / "cache", size=64, progress=False, verbose=False)
    return root / "cache"


def test_cli_train_writes_checkpoints_that_load_model_reads(cache, tmp_path, initial_weights):
    run = tmp_path / "run"
    rc = main(["train", "--cache", str(cache), "--out", str(run), "--size", "tiny",
               "--override", "img_size=64", "--epochs", "2", "--max-steps-per-epoch", "2",
               "--num-workers", "0", "--device", "cpu", "--no-progress", "--no-tensorboard", "--seed", "3"])
    assert rc == 0
    epochs = read_csv(run / "epochs.csv")
    assert len(epochs) == 2 and all(r["val_loss"] and r["val_psnr"] and r["val_dice"] for r in epochs)
    for name in ("best", "last"):
        model, meta = load_model(run / name)
        assert meta["model"] == "tasc_swinmt" and meta["config"]["size"] == "tiny"
        extra = meta["extra"]
        assert extra["modality"] == "MRI" and extra["gap_mm"] == 1.25 and extra["size"] == 64
        assert extra["norm"]["name"] and extra["inplane"]["kind"] == "native"
        assert extra["training"]["seed"] == 3
        out = model.predict(torch.rand(1, 2, 64, 64))
        assert out["interp"].shape == (1, 1, 64, 64) and out["seg"].shape == (1, 3, 64, 64)
    # the last checkpoint holds trained weights: most parameters moved away from this run's own initial
    # values (parameters only: BatchNorm statistics change without any optimiser step)
    model, _ = load_model(run / "last")
    (initial,) = initial_weights
    trained = model.state_dict()
    moved = [k for k in initial if not torch.equal(trained[k], initial[k])]
    assert len(moved) > len(initial) // 2, f"only {len(moved)} of {len(initial)} parameters were trained"


def test_cli_errors_are_clear(cache, tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "r")]) == 2
    assert "--cache" in capsys.readouterr().err
    assert main(["train", "--cache", str(cache), "--out", str(tmp_path / "r"), "--epochs", "0"]) == 2
    assert "'epochs'" in capsys.readouterr().err
    assert main(["train", "--cache", str(cache), "--out", str(tmp_path / "r"), "--model", "nope"]) == 2
    assert "tasc_swinmt" in capsys.readouterr().err  # the known names are listed
    assert main(["train", "--resume", str(tmp_path / "missing")]) == 2
    assert "config.json" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_processes_runs_the_cli(cache, tmp_path):
    """The same command under torchrun (2 CPU processes, gloo)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo / "src")}
    run = tmp_path / "ddp_run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "tascmt", "train", "--cache", str(cache), "--out", str(run), "--size", "tiny",
           "--override", "img_size=64", "--epochs", "1", "--max-steps-per-epoch", "2", "--num-workers", "0",
           "--device", "cpu", "--no-progress", "--no-tensorboard"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("best checkpoint:") == 1  # rank 0 alone reports
    assert len(read_csv(run / "steps.csv")) == 2
    _, meta = load_model(run / "best")
    assert meta["extra"]["modality"] == "MRI"
