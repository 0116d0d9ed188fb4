"""Foreground policies: which triplets a split uses, given whether each of its three masks has foreground.

Names are fixed (docs/design.md §2):

- ``every``: all triplets.
- ``fg_all``: all three masks non-empty (the public code's choice).
- ``fg_middle``: the target's mask Y2 non-empty.
- ``fg_any``: at least one of the three masks non-empty.
- ``fg_plus_bg``: every ``fg_any`` triplet plus a seeded fraction (default 0.25) of the background-only ones,
  so that a model also sees empty slices (``predict`` segments every slice).

Training default ``fg_plus_bg``; evaluation default ``every``.
"""

from __future__ import annotations

import numpy as np

from tascmt.errors import ConfigError

FG_POLICIES = ("every", "fg_all", "fg_middle", "fg_any", "fg_plus_bg")
DEFAULT_TRAIN_POLICY = "fg_plus_bg"
DEFAULT_EVAL_POLICY = "every"
DEFAULT_BG_FRACTION = 0.25


def check_policy(name: str) -> str:
    if name not in FG_POLICIES:
        raise ConfigError(f"foreground policy must be one of {FG_POLICIES}, got {name!r}")
    return name


def select_triplets(fg, policy: str, bg_fraction: float = DEFAULT_BG_FRACTION, seed: int = 0) -> np.ndarray:
    """Indices (sorted) of the triplets a policy keeps.

    Args:
        fg: (N, 3) bool, whether masks Y1, Y2, Y3 of each triplet contain foreground.
        policy: one of :data:`FG_POLICIES`.
        bg_fraction: ``fg_plus_bg`` only: fraction of background-only triplets kept (rounded).
        seed: ``fg_plus_bg`` only: which background triplets are kept.
    Returns:
        (M,) int64 indices into ``fg``.
    """
    check_policy(policy)
    fg = np.asarray(fg, dtype=bool).reshape(-1, 3)  # (N, 3)
    if policy == "every":
        keep = np.ones(len(fg), dtype=bool)
    elif policy == "fg_all":
        keep = fg.all(axis=1)
    elif policy == "fg_middle":
        keep = fg[:, 1]
    else:
        keep = fg.any(axis=1)
        if policy == "fg_plus_bg":
            if not 0.0 <= bg_fraction <= 1.0:
                raise ConfigError(f"bg_fraction must be in [0, 1], got {bg_fraction}")
            bg = np.flatnonzero(~keep)
            n_bg = int(np.floor(bg_fraction * len(bg) + 0.5))
            chosen = np.random.default_rng(seed).choice(bg, size=n_bg, replace=False)
            keep[chosen] = True
    return np.flatnonzero(keep)
