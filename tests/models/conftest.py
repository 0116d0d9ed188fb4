"""Shared fixtures for the model tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_threads():
    """Seed, and one intra-op thread: these tiny models are dominated by per-op threading overhead, which
    explodes when other test processes share the two cores (measured: 1.9 s -> 0.06 s per forward)."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
