"""Exact resume: from a step-k checkpoint in a fresh process, and after SIGKILL of a running training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tascmt.errors import ConfigError
from tascmt.training.api import resume, train
from tascmt.training.logs import read_csv
from tascmt.utils.atomic import write_json_atomic
from tests.training._standins import StandinTrainer, standin_config

REPO = Path(__file__).resolve().parents[2]
OPTS = {"n_train": 10, "noise": True, "dropout": 0.2}  # input noise and dropout draw from the global RNG


def _subprocess(mode: str, cfg, tmp_path: Path, wait: bool = True):
    cfg_path = tmp_path / f"{Path(cfg.out_dir).name}_{mode}.json"
    write_json_atomic(cfg_path, cfg.to_dict())
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'src'}"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "tests.training._standins", mode, str(cfg_path)]
    if not wait:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _assert_same_run(ref: Path, other: Path) -> None:
    a = load_file(str(ref / "last" / "model.safetensors"))
    b = load_file(str(other / "last" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-6, msg=k)
    ra, rb = read_csv(ref / "steps.csv"), read_csv(other / "steps.csv")
    assert [r["step"] for r in rb] == [r["step"] for r in ra]  # every step logged exactly once
    for x, y in zip(ra, rb):
        for key in ("loss", "L_interp", "L_seg", "w_interp", "lr"):
            assert float(y[key]) == pytest.approx(float(x[key]), abs=1e-6), (x["step"], key)
    ea, eb = read_csv(ref / "epochs.csv"), read_csv(other / "epochs.csv")
    assert [r["epoch"] for r in eb] == [r["epoch"] for r in ea]
    for x, y in zip(ea, eb):
        assert float(y["val_loss"]) == pytest.approx(float(x["val_loss"]), abs=1e-6)


def test_resume_from_step_k_in_a_fresh_process_matches_the_uninterrupted_run(tmp_path):
    ref_cfg = standin_config(tmp_path / "ref", epochs=3, checkpoint_every=1, model_overrides=OPTS)
    train(ref_cfg, trainer_cls=StandinTrainer)
    # the same run stopped after 7 steps (inside epoch 2), then continued by a new process
    cfg = ref_cfg.replace(out_dir=str(tmp_path / "cut"), max_steps=7)
    result = train(cfg, trainer_cls=StandinTrainer)
    assert result.stop_reason == "max_steps" and result.global_step == 7
    state = json.loads((tmp_path / "cut" / "last" / "train_state.json").read_text(encoding="utf-8"))["state"]["loop"]
    assert (state["epoch"], state["step_in_epoch"]) == (1, 2)
    _subprocess("resume", cfg, tmp_path)
    _assert_same_run(tmp_path / "ref", tmp_path / "cut")


@pytest.mark.slow
def test_sigkill_then_resume_matches_the_uninterrupted_run(tmp_path):
    """Three processes (~30 s on a loaded 2-core machine): slow; the step-k test above covers resume."""
    opts = {**OPTS, "sleep": 0.12}
    ref_cfg = standin_config(tmp_path / "ref", epochs=3, checkpoint_every=1, model_overrides=opts)
    train(ref_cfg, trainer_cls=StandinTrainer)
    cfg = ref_cfg.replace(out_dir=str(tmp_path / "killed"))
    proc = _subprocess("run", cfg, tmp_path, wait=False)
    state_file = tmp_path / "killed" / "last" / "train_state.json"
    step, deadline = 0, time.monotonic() + 120
    try:
        while step < 4 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            try:
                step = json.loads(state_file.read_text(encoding="utf-8"))["state"]["loop"]["global_step"]
            except (OSError, ValueError, KeyError):
                continue
        assert proc.poll() is None, "training finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert 4 <= step < 15
    _subprocess("resume", cfg, tmp_path)
    _assert_same_run(tmp_path / "ref", tmp_path / "killed")


def test_resume_rejects_changes_to_the_training_maths(tmp_path):
    cfg = standin_config(tmp_path / "run", epochs=1, model_overrides={"n_train": 2})
    train(cfg, trainer_cls=StandinTrainer)
    with pytest.raises(ConfigError, match="lr"):
        resume(tmp_path / "run", trainer_cls=StandinTrainer, lr=1.0)


def test_resume_of_a_finished_run_does_nothing_more(tmp_path):
    cfg = standin_config(tmp_path / "run", epochs=2, model_overrides={"n_train": 4})
    first = train(cfg, trainer_cls=StandinTrainer)
    again = resume(tmp_path / "run", trainer_cls=StandinTrainer)
    assert again.global_step == first.global_step == 4
    assert len(read_csv(tmp_path / "run" / "epochs.csv")) == 2
