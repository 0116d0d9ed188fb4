from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from tascmt.evaluation.stats import compare_rows, format_cell, significance_marker, summarize, welch_p

A = [31.40, 31.55, 31.30, 31.47, 31.38]
B = [30.10, 30.40, 29.95, 30.22, 30.31]


def test_summary_uses_sample_std():
    s = summarize(A)
    assert s.mean == pytest.approx(np.mean(A))
    assert s.std == pytest.approx(np.std(A, ddof=1))
    assert s.std != pytest.approx(np.std(A, ddof=0))
    assert s.n == 5


def test_summary_drops_non_finite_and_handles_small_n():
    s = summarize([1.0, None, math.nan, 3.0])
    assert (s.mean, s.n) == (2.0, 2) and s.std == pytest.approx(math.sqrt(2))
    one = summarize([5.0])
    assert one.mean == 5.0 and math.isnan(one.std) and one.n == 1
    assert summarize([]).n == 0 and math.isnan(summarize([]).mean)


def test_welch_matches_scipy():
    expected = sps.ttest_ind(A, B, equal_var=False).pvalue
    assert welch_p(A, B) == pytest.approx(expected, rel=1e-12)
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, 5), rng.normal(0.5, 2, 7)
    assert welch_p(x, y) == pytest.approx(sps.ttest_ind(x, y, equal_var=False).pvalue, rel=1e-12)
    assert welch_p(x, y) != pytest.approx(sps.ttest_ind(x, y, equal_var=True).pvalue, rel=1e-6)


def test_welch_undefined_cases_give_nan():
    assert math.isnan(welch_p([1.0], B))
    assert math.isnan(welch_p(A, [2.0, math.nan]))
    assert math.isnan(welch_p([1.0, 1.0, 1.0], [2.0, 2.0]))  # both zero variance
    assert math.isfinite(welch_p([1.0, 1.0, 1.0], [2.0, 2.1]))  # one zero variance: still defined


def test_markers():
    assert [significance_marker(p) for p in (0.0005, 0.001, 0.005, 0.04, 0.05, 0.5, math.nan)] == \
        ["***", "**", "**", "*", "", "", ""]


def test_format_cell():
    p = welch_p(A, B)
    assert p < 0.001
    assert format_cell(A, B) == f"{np.mean(A):.2f} ± {np.std(A, ddof=1):.2f}***"
    assert format_cell(A) == f"{np.mean(A):.2f} ± {np.std(A, ddof=1):.2f}"
    assert format_cell([0.91234, 0.91345], digits=3) == "0.913 ± 0.001"
    assert format_cell([31.0], B) == "31.00 (n=1)"
    assert format_cell([None, math.nan]) == "n/a"
    near = [31.41, 31.52, 31.33, 31.46, 31.40]
    assert not format_cell(near, A).endswith("*")


def test_compare_rows_against_reference():
    rows = {"full": A, "ablation": B}
    out = compare_rows(rows, "full")
    assert math.isnan(out["full"]["p"]) and out["full"]["marker"] == ""
    assert out["ablation"]["p"] == pytest.approx(welch_p(B, A))
    assert out["ablation"]["cell"].endswith("***")
    with pytest.raises(KeyError, match="missing"):
        compare_rows(rows, "missing")
