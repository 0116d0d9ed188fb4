"""Distributed data-parallel plumbing, detected from the environment ``torchrun`` sets.

``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` select DDP; the backend is gloo on the CPU and nccl on CUDA.
Without them (or with ``WORLD_SIZE=1``) everything here is a no-op and training runs in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from tascmt.errors import ConfigError
from tascmt.utils.device import resolve_device as resolve_device_name


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job: ``rank`` of ``world_size`` processes, GPU ``local_rank``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> DistInfo:
        def get(name: str, default: int) -> int:
            raw = os.environ.get(name)
            if raw is None or raw == "":
                return default
            try:
                return int(raw)
            except ValueError as err:
                raise ConfigError(f"environment variable {name} must be an integer, got {raw!r}") from err

        world = get("WORLD_SIZE", 1)
        rank = get("RANK", 0)
        if world < 1 or not 0 <= rank < world:
            raise ConfigError(f"inconsistent distributed environment: RANK={rank}, WORLD_SIZE={world}")
        return cls(rank=rank, world_size=world, local_rank=get("LOCAL_RANK", rank))


def resolve_device(name: str, info: DistInfo) -> torch.device:
    """The torch device of this process for the device option ``name``.

    ``"auto"`` picks CUDA when it is available, else the CPU; a CUDA request without CUDA is an error.
    In one process ``"cuda"`` is the current CUDA device and ``"cuda:N"`` is GPU N. Under torchrun
    (``info.enabled``) every CUDA request, ``"cuda:N"`` included, is ``cuda:LOCAL_RANK``: the same option
    reaches every rank, so honouring N would put all of them on one GPU; choose the GPUs a job may use
    with ``CUDA_VISIBLE_DEVICES``.
    """
    name = resolve_device_name(name, option="train option 'device'")
    if not name.startswith("cuda"):
        return torch.device(name)
    if info.enabled:  # one GPU per process under torchrun
        return torch.device("cuda", info.local_rank)
    if name == "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device(name)


def init_distributed(info: DistInfo, device: torch.device) -> None:
    """Join the process group (env:// rendezvous from torchrun) when the job has more than one process."""
    if not info.enabled or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, init_method="env://", rank=info.rank, world_size=info.world_size)


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: nn.Module, info: DistInfo, device: torch.device,
               find_unused: bool = False) -> nn.Module:
    """DDP-wrap ``model`` (already on ``device``); BatchNorm → SyncBatchNorm on CUDA only
    (docs/design.md §10)."""
    if not info.enabled:
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return nn.parallel.DistributedDataParallel(model, device_ids=[device.index],
                                                   find_unused_parameters=find_unused)
    return nn.parallel.DistributedDataParallel(model, find_unused_parameters=find_unused)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def all_reduce_(t: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """In-place all-reduce (``"sum"``, ``"max"`` or ``"min"``) across ranks; identity in one process."""
    if dist.is_available() and dist.is_initialized():
        ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
        dist.all_reduce(t, op=ops[op])
    return t


def average_gradients_(params: list[nn.Parameter]) -> None:
    """Average the gradients of parameters DDP does not manage (e.g. the balancer's θ) across ranks."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    world = dist.get_world_size()
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(world)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
