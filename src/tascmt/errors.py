"""Exceptions that the CLI turns into one clear message and a non-zero exit (no traceback)."""

from __future__ import annotations

from pathlib import Path


class TascmtError(Exception):
    """Base class for errors a user can act on. The CLI prints ``str(err)`` and exits with status 2."""


class InputError(TascmtError):
    """Bad input data: names the offending file (when there is one) and the problem.

    >>> str(InputError("contains NaN voxels", path="case_001.nii.gz"))
    'case_001.nii.gz: contains NaN voxels'
    """

    def __init__(self, problem: str, path: str | Path | None = None):
        self.problem = problem
        self.path = None if path is None else Path(path)
        super().__init__(f"{path}: {problem}" if path is not None else problem)


class ConfigError(TascmtError):
    """An invalid option or configuration value (names the option and the value)."""


class CheckpointError(TascmtError):
    """A file that is not a loadable tascmt checkpoint (wrong format, version or variant)."""
