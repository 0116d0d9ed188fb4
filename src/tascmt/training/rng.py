"""Capturing and restoring every random number generator the training loop touches.

Python's ``random``, NumPy's global generator, torch's CPU generator and (when present) every CUDA
generator. Under DDP each rank has its own states; :func:`gather_rng_states` collects them on every rank
so rank 0 can store all of them and each rank restores its own on resume.
"""

from __future__ import annotations

import random
import warnings
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


def capture_rng() -> dict[str, Any]:
    """The current states: ``{"python": tuple, "numpy": tuple, "torch": ByteTensor, "cuda": [...]}``."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002 (the legacy global generator is what we save)
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng` (tuples may come back as lists from JSON; both are accepted)."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np.random.set_state(tuple(state["numpy"]))  # noqa: NPY002 (restores the global generator)
    torch.set_rng_state(state["torch"].to(torch.uint8).cpu())
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.to(torch.uint8).cpu() for s in cuda])
        else:
            warnings.warn(f"the checkpoint holds {len(cuda)} CUDA RNG states but {torch.cuda.device_count()} "
                          "GPUs are visible; CUDA RNG states not restored", RuntimeWarning, stacklevel=2)


def gather_rng_states() -> list[dict[str, Any]]:
    """Every rank's :func:`capture_rng` (a one-element list without a process group)."""
    mine = capture_rng()
    if not (dist.is_available() and dist.is_initialized()):
        return [mine]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, mine)
    return out


def restore_rank_rng(states: list[dict[str, Any]], rank: int) -> None:
    """Restore this rank's entry of :func:`gather_rng_states` (warns if the world size changed)."""
    if rank < len(states):
        restore_rng(states[rank])
    else:
        warnings.warn(f"the checkpoint holds RNG states for {len(states)} process(es); rank {rank} keeps "
                      "its freshly seeded generators, so the resumed run is not bit-identical",
                      RuntimeWarning, stacklevel=2)
