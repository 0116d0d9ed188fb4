"""Statistics over repeated runs (docs/design.md §6, §9): mean ± std over seeds, Welch's t-test, table cells.

Conventions:

* std is the **sample** standard deviation (``ddof=1``); with fewer than 2 values it is NaN.
* Non-finite values (NaN, inf, None — e.g. a metric that was unavailable for a run) are dropped before
  anything is computed; ``Summary.n`` counts the values actually used.
* Welch's t-test is ``scipy.stats.ttest_ind(a, b, equal_var=False)`` (two-sided). p is NaN — and no
  marker is printed — when either sample has fewer than 2 values or when both samples have zero
  variance (the test statistic is undefined).
* Markers: ``*`` p < 0.05, ``**`` p < 0.01, ``***`` p < 0.001.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

MARKER_LEVELS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))


@dataclass(frozen=True)
class Summary:
    """Mean, sample std (ddof=1; NaN when n < 2) and the number of finite values used."""

    mean: float
    std: float
    n: int


def _finite(values: Iterable[float | None]) -> np.ndarray:
    arr = np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)
    return arr[np.isfinite(arr)]


def summarize(values: Iterable[float | None]) -> Summary:
    """Mean ± sample std (ddof=1) of the finite values (NaN mean when there are none)."""
    arr = _finite(values)
    if arr.size == 0:
        return Summary(math.nan, math.nan, 0)
    std = float(np.std(arr, ddof=1)) if arr.size >= 2 else math.nan
    return Summary(float(np.mean(arr)), std, int(arr.size))


def welch_p(values: Iterable[float | None], reference: Iterable[float | None]) -> float:
    """Two-sided Welch t-test p-value of ``values`` vs ``reference`` (NaN when undefined, see module doc)."""
    a = _finite(values)
    b = _finite(reference)
    if a.size < 2 or b.size < 2:
        return math.nan
    if np.var(a, ddof=1) == 0 and np.var(b, ddof=1) == 0:
        return math.nan
    with warnings.catch_warnings():  # one zero-variance sample: scipy warns about precision, result is fine
        warnings.filterwarnings("ignore", message="Precision loss", category=RuntimeWarning)
        return float(sps.ttest_ind(a, b, equal_var=False).pvalue)


def significance_marker(p: float) -> str:
    """"***" / "**" / "*" for p < 0.001 / 0.01 / 0.05; "" otherwise (and for NaN)."""
    if p is None or not math.isfinite(p):
        return ""
    for level, marker in MARKER_LEVELS:
        if p < level:
            return marker
    return ""


def format_cell(values: Sequence[float | None], reference: Sequence[float | None] | None = None,
                digits: int = 2) -> str:
    """``"31.42 ± 0.12**"``: mean ± sample std, with Welch's marker against ``reference`` when given.

    With one finite value: ``"31.42 (n=1)"``; with none: ``"n/a"``.
    """
    s = summarize(values)
    if s.n == 0:
        return "n/a"
    marker = "" if reference is None else significance_marker(welch_p(values, reference))
    if s.n < 2:
        return f"{s.mean:.{digits}f} (n=1){marker}"
    return f"{s.mean:.{digits}f} ± {s.std:.{digits}f}{marker}"


def compare_rows(rows: Mapping[str, Sequence[float | None]], reference: str,
                 digits: int = 2) -> dict[str, dict[str, object]]:
    """One metric over several configurations (name → per-seed values) against the ``reference`` row.

    Returns name → ``{"mean", "std", "n", "p", "marker", "cell"}``; the reference row itself gets p = NaN
    and no marker.
    """
    if reference not in rows:
        raise KeyError(f"compare_rows: reference {reference!r} not among {sorted(rows)}")
    out: dict[str, dict[str, object]] = {}
    for name, values in rows.items():
        s = summarize(values)
        p = math.nan if name == reference else welch_p(values, rows[reference])
        ref = None if name == reference else rows[reference]
        out[name] = {"mean": s.mean, "std": s.std, "n": s.n, "p": p, "marker": significance_marker(p),
                     "cell": format_cell(values, ref, digits)}
    return out
