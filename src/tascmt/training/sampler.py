"""A sampler whose order is a pure function of (seed, epoch, rank) and that can start mid-epoch.

It is :class:`torch.utils.data.DistributedSampler` (also used with one replica, so one process and DDP
share one code path: the permutation of epoch ``e`` is ``randperm(n, seed + e)`` and rank ``r`` takes every
``world``-th index from ``r``) plus :meth:`set_start`, which skips the samples of the batches already done
when a run resumes inside an epoch.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import Dataset, DistributedSampler


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
