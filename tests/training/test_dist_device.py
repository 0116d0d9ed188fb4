"""The training device under torchrun: every CUDA request means this rank's GPU (LOCAL_RANK), because the
same ``--device`` reaches every rank; in one process ``cuda:N`` stays GPU N. CUDA is faked."""

from __future__ import annotations

import pytest
import torch

from tascmt.errors import ConfigError
from tascmt.training.distributed import DistInfo, resolve_device

TORCHRUN = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


def _env(monkeypatch, **values: int) -> DistInfo:
    for key in TORCHRUN:
        monkeypatch.delenv(key, raising=False)
    for key, value in values.items():
        monkeypatch.setenv(key, str(value))
    return DistInfo.from_env()


def test_one_process_keeps_the_requested_gpu(monkeypatch, fake_cuda):
    info = _env(monkeypatch)
    assert not info.enabled
    assert resolve_device("cuda:1", info) == torch.device("cuda", 1)
    assert resolve_device("cuda", info) == torch.device("cuda", 0)
    assert resolve_device("auto", info) == torch.device("cuda", 0)
    assert resolve_device("cpu", info) == torch.device("cpu")


@pytest.mark.parametrize("name", ["cuda:0", "cuda:3", "cuda", "auto"])
def test_torchrun_ranks_use_their_local_gpu(monkeypatch, fake_cuda, name):
    for rank in range(4):  # one node, four ranks
        info = _env(monkeypatch, RANK=rank, WORLD_SIZE=4, LOCAL_RANK=rank)
        assert resolve_device(name, info) == torch.device("cuda", rank), (name, rank)


def test_multi_node_uses_the_local_rank_not_the_global_one(monkeypatch, fake_cuda):
    info = _env(monkeypatch, RANK=5, WORLD_SIZE=8, LOCAL_RANK=1)
    assert resolve_device("cuda:0", info) == torch.device("cuda", 1)
    assert resolve_device("cpu", info) == torch.device("cpu")  # gloo ranks stay on the CPU


def test_single_rank_torchrun_is_one_process(monkeypatch, fake_cuda):
    info = _env(monkeypatch, RANK=0, WORLD_SIZE=1, LOCAL_RANK=0)
    assert resolve_device("cuda:2", info) == torch.device("cuda", 2)


def test_cuda_without_cuda_is_a_config_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    info = _env(monkeypatch, RANK=1, WORLD_SIZE=2, LOCAL_RANK=1)
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda:1", info)
    assert resolve_device("auto", info) == torch.device("cpu")
