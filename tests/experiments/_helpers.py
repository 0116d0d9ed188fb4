"""Tiny real components for the evaluation and experiment tests: a phantom cache and short training runs.

Everything is real (synthetic MSD task → ``prepare_dataset`` → ``train``); sizes are the smallest that work
(32×32 slices, the ``tiny`` model size, one or two optimiser steps).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from tascmt.data.prepare import prepare_dataset
from tascmt.data.synth import make_synthetic_task

SIZE = 32

#: Training options that keep a test run to a few optimiser steps on the CPU.
QUICK_TRAIN = {"num_workers": 0, "progress": False, "tensorboard": False, "device": "cpu", "batch_size": 2,
               "augment": False}


def make_cache(root: Path, n_cases: int = 10, n_slices: int = 6, seed: int = 0) -> Path:
    """A prepared heart-phantom cache at 32×32 with train/val/test patients (7:1:2 → 7/1/2 at 10 cases)."""
    task = make_synthetic_task(root / "task", "heart", n_cases=n_cases, size=SIZE, n_slices=n_slices,
                               seed=seed)
    cache = root / "cache"
    prepare_dataset(task, cache, size=SIZE, progress=False, verbose=False)
    return cache


def train_tiny(cache: Path, out: Path, model: str = "tasc_swinmt", steps: int = 1, seed: int = 0) -> Path:
    """Train ``model`` (size tiny) for ``steps`` optimiser steps; returns the best checkpoint folder."""
    from tascmt.training import TrainConfig, train

    cfg = TrainConfig(cache_dir=str(cache), out_dir=str(out), model=model, size="tiny", epochs=1,
                      max_steps=steps, seed=seed, **QUICK_TRAIN)
    result = train(cfg)
    return Path(result.best_checkpoint)


@contextlib.contextmanager
def single_thread():
    """Run torch on one intra-op thread (restored afterwards).

    On this shared 2-core machine, with other processes busy, a tiny model's forward pass took 1-7 s with
    2 threads and 0.07 s with 1 (measured); the tests' tensors are far too small to gain from threads.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
