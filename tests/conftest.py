"""Suite-wide test settings.

The suite runs with two pytest-xdist workers on a 2-core machine, so torch runs single-threaded in each
worker and OpenMP threads wait passively (spinning waits make torch many times slower when cores are
shared). Both are set before torch is first imported.
"""

from __future__ import annotations

import locale
import os

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _restore_locale():
    """Tests that write DICOM with SimpleITK/GDCM switch the process locale to "C" (ASCII text I/O); undo
    it after each test so that no test depends on another's side effect."""
    saved = locale.setlocale(locale.LC_ALL)
    yield
    locale.setlocale(locale.LC_ALL, saved)
