"""Experiment tests run torch single-threaded (see ``_helpers.single_thread``)."""

from __future__ import annotations

import pytest

from tests.experiments._helpers import single_thread


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_thread():
        yield
