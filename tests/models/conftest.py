"""Shared fixtures for the model tests (torch runs single-threaded suite-wide: see tests/conftest.py)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
