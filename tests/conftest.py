"""Suite-wide test settings.

The suite runs with two pytest-xdist workers on a 2-core machine, so torch runs single-threaded in each
worker and OpenMP threads wait passively (spinning waits make torch many times slower when cores are
shared). Both are set before torch is first imported.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch

torch.set_num_threads(1)
