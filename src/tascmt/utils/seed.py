"""Seeding helpers."""

from __future__ import annotations

import random

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (if imported/installed) torch."""
    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 - seeds code that uses the legacy global RNG
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.manual_seed(seed)
