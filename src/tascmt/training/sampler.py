"""A sampler whose order is a pure function of (seed, epoch, rank) and that can start mid-epoch.

It is :class:`torch.utils.data.DistributedSampler` (also used with one replica, so one process and DDP
share one code path: the permutation of epoch ``e`` is ``randperm(n, seed + e)`` and rank ``r`` takes every
``world``-th index from ``r``) plus :meth:`set_start`, which skips the samples of the batches already done
when a run resumes inside an epoch.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler


class ResumableSampler(DistributedSampler):
    """DistributedSampler with a start offset (in samples of this rank) for resuming inside an epoch."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, shuffle: bool, seed: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=False)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` indices of this rank's order for the current epoch."""
        self.start = max(0, int(start))

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.start:])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.start)


class FixedStepSampler(Sampler[int]):
    """Epochs of a fixed number of samples drawn *with replacement*, a pure function of (seed, epoch, rank).

    ``tascmt train --steps-per-epoch N`` makes every epoch ``N`` optimiser steps long whatever the dataset
    size: a small dataset no longer gives epochs of a few steps (early stopping acting within a minute), and
    a large one no longer validates only once an hour. Each rank draws its own ``num_samples`` indices;
    :meth:`set_start` skips those already used when a run resumes inside an epoch.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int, num_samples: int):
        self.n = len(dataset)  # type: ignore[arg-type]
        if self.n < 1:
            raise ValueError("FixedStepSampler needs a non-empty dataset")
        self.num_replicas, self.rank, self.seed = int(num_replicas), int(rank), int(seed)
        self.num_samples = int(num_samples)
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def set_start(self, start: int) -> None:
        self.start = max(0, int(start))

    def __iter__(self) -> Iterator[int]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 7_919 + self.rank)
        idx = torch.randint(self.n, (self.num_samples,), generator=gen).tolist()
        return iter(idx[self.start:])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.start)
