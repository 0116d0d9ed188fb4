"""tascmt.experiments: named sets of configurations × seeds (the paper's tables) and their runner.

>>> from tascmt.experiments import run_experiment, PRESETS          # doctest: +SKIP
>>> run_experiment("balancing", "cache", "exp/balancing", seeds=(0, 1, 2, 3, 4))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from tascmt.experiments.presets import PRESETS, ExperimentSpec, RunSpec, list_presets, resolve_spec

__all__ = ["PRESETS", "ExperimentResult", "ExperimentSpec", "RunSpec", "list_presets", "resolve_spec",
           "run_experiment"]


def __getattr__(name: str) -> Any:
    if name in ("run_experiment", "ExperimentResult"):
        from tascmt.experiments import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'tascmt.experiments' has no attribute {name!r}")
