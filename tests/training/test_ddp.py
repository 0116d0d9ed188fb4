"""DDP on the CPU (gloo, 2 processes): same first-step gradients as one process on the combined batch."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from tascmt.training.api import train
from tascmt.training.logs import read_csv
from tests.training._standins import StandinTrainer, ddp_worker, standin_config

# BatchNorm in eval mode (docs/design.md §10: gloo keeps per-process batch statistics), no dropout or input noise
OPTS = {"n_train": 8, "n_val": 4, "bn_eval": True, "dropout": 0.0, "noise": False}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_matches_one_process_on_the_combined_batch(tmp_path):
    one_cfg = standin_config(tmp_path / "one", epochs=1, batch_size=4, max_steps_per_epoch=2,
                             model_overrides={**OPTS, "grad_file": str(tmp_path / "one_grads.safetensors")})
    train(one_cfg, trainer_cls=StandinTrainer)  # first: the forked workers inherit its imports

    ddp_cfg = standin_config(tmp_path / "ddp", epochs=1, batch_size=2, max_steps_per_epoch=2,
                             model_overrides={**OPTS, "grad_file": str(tmp_path / "ddp_grads.safetensors")})
    # fork: the workers inherit the imported torch/tascmt (spawn re-imports them: ~30 s on 2 loaded cores)
    mp.start_processes(ddp_worker, args=(2, _free_port(), ddp_cfg.to_dict()), nprocs=2, join=True,
                       start_method="fork")

    g_ddp = load_file(str(tmp_path / "ddp_grads.safetensors"))
    g_one = load_file(str(tmp_path / "one_grads.safetensors"))
    assert g_ddp.keys() == g_one.keys() and len(g_one) > 0
    for k in g_one:
        assert g_one[k].abs().sum() > 0, k
        torch.testing.assert_close(g_ddp[k], g_one[k], rtol=1e-4, atol=1e-6, msg=k)

    # rank 0 alone logged and checkpointed; validation metrics were reduced over both ranks' halves
    steps = read_csv(tmp_path / "ddp" / "steps.csv")
    assert [int(r["step"]) for r in steps] == [1, 2]
    ddp_epoch = read_csv(tmp_path / "ddp" / "epochs.csv")
    one_epoch = read_csv(tmp_path / "one" / "epochs.csv")
    assert len(ddp_epoch) == 1 and (tmp_path / "ddp" / "best" / "model.safetensors").is_file()
    state = load_file(str(tmp_path / "ddp" / "last" / "train_state.safetensors"))
    assert any(k.startswith("rng.1.") for k in state)  # both ranks' RNG states are stored
    # same gradients → (almost) the same two AdamW steps → the same validation loss over the 4 samples
    assert float(ddp_epoch[0]["val_loss"]) == pytest.approx(float(one_epoch[0]["val_loss"]), rel=1e-3)
