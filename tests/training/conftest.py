"""Training tests run torch single-threaded: the stand-in models are tiny, and on a shared 2-core machine
OpenMP thread contention makes them many times slower."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
