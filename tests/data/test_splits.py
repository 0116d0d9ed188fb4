"""Patient splits of small datasets: every subset non-empty from 3 cases, tiny datasets only on request."""

from __future__ import annotations

import json
import math
import random

import pytest

from tascmt.data.splits import load_or_create_splits, load_splits, make_splits, split_of
from tascmt.errors import ConfigError


def _ids(n):
    return [f"case_{i:03d}" for i in range(n)]


def _check_partition(s, ids):
    tr, va, te = set(s["train"]), set(s["val"]), set(s["test"])
    assert tr | va | te == set(ids)
    assert len(tr) + len(va) + len(te) == len(ids)  # disjoint


@pytest.mark.parametrize(("n", "sizes"), [(3, (1, 1, 1)), (4, (1, 1, 2)), (5, (2, 1, 2)), (10, (7, 1, 2))])
def test_small_datasets_fill_every_subset(n, sizes):
    ids = _ids(n)
    for seed in (0, 42, 7):
        s = make_splits(ids, seed=seed)
        assert (len(s["train"]), len(s["val"]), len(s["test"])) == sizes
        assert s["train"] and s["val"] and s["test"]
        _check_partition(s, ids)
        assert "allow_tiny" not in s


@pytest.mark.parametrize("n", range(3, 40))
def test_every_size_from_three_is_a_full_split_with_valid_folds(n):
    ids = _ids(n)
    s = make_splits(ids, seed=42)
    assert s["train"] and s["val"] and s["test"]
    _check_partition(s, ids)
    pool = set(s["train"]) | set(s["val"])
    assert len(s["folds"]) == min(5, len(pool))
    for f in s["folds"]:
        assert f["train"] and f["val"] and not set(f["train"]) & set(f["val"])
        assert set(f["train"]) | set(f["val"]) == pool
    assert sum(len(f["val"]) for f in s["folds"]) == len(pool)  # each patient validated once


@pytest.mark.parametrize(("n", "sizes"), [(20, (14, 2, 4)), (63, (44, 6, 13))])
def test_heart_and_lung_splits_unchanged(n, sizes):
    """Where the floors already fill every subset, the split is the plain seeded 7:1:2 cut."""
    ids = _ids(n)
    s = make_splits(ids, seed=42)
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == sizes
    shuffled = sorted(ids)
    random.Random(42).shuffle(shuffled)
    n_tr, n_va = math.floor(0.7 * n), math.floor(0.1 * n)
    assert s["train"] == sorted(shuffled[:n_tr])
    assert s["val"] == sorted(shuffled[n_tr:n_tr + n_va])
    assert s["test"] == sorted(shuffled[n_tr + n_va:])


def test_small_split_takes_the_missing_cases_from_train():
    """4 cases: the floors give 2/0/2; the last shuffled train case moves to val, test is untouched."""
    ids = _ids(4)
    shuffled = sorted(ids)
    random.Random(42).shuffle(shuffled)
    s = make_splits(ids, seed=42)
    assert s["train"] == shuffled[:1] and s["val"] == shuffled[1:2]
    assert s["test"] == sorted(shuffled[2:])


@pytest.mark.parametrize("n", [1, 2])
def test_fewer_than_three_cases_refused(n):
    with pytest.raises(ConfigError, match=r"at least 3 cases.*allow_tiny=True"):
        make_splits(_ids(n))
    with pytest.raises(ConfigError, match="no case"):
        make_splits([], allow_tiny=True)


def test_allow_tiny_puts_everything_in_train(tmp_path):
    s = make_splits(["b", "a"], seed=3, allow_tiny=True)
    assert s["train"] == ["a", "b"] and s["val"] == [] and s["test"] == []
    assert s["allow_tiny"] is True
    assert len(s["folds"]) == 2 and all(len(f["val"]) == 1 for f in s["folds"])  # leave-one-out
    one = make_splits(["a"], allow_tiny=True)
    assert one["train"] == ["a"] and one["folds"] == []
    assert split_of(s) == {"a": "train", "b": "train"}
    # From 3 cases on the option changes nothing but the record.
    full = make_splits(_ids(5), allow_tiny=True)
    assert {k: v for k, v in full.items() if k != "allow_tiny"} == make_splits(_ids(5))
    # Written to and read back from splits.json.
    path = tmp_path / "splits.json"
    with pytest.raises(ConfigError, match="allow_tiny"):
        load_or_create_splits(path, ["a", "b"])
    assert not path.exists()
    made, created = load_or_create_splits(path, ["a", "b"], allow_tiny=True)
    assert made["train"] == ["a", "b"]
    assert created and json.loads(path.read_text(encoding="utf-8"))["allow_tiny"] is True
    again, created = load_or_create_splits(path, ["a", "b"])
    assert not created and again["train"] == ["a", "b"] and again["val"] == again["test"] == []
    assert load_splits(path, ["a", "b"])["allow_tiny"] is True


@pytest.mark.parametrize("n", [3, 4, 5, 10, 20])
def test_deterministic_for_a_seed(n):
    ids = _ids(n)
    assert make_splits(ids, seed=5) == make_splits(list(reversed(ids)), seed=5)
    draws = {tuple(make_splits(ids, seed=seed)["test"]) for seed in range(10)}
    assert len(draws) > 1  # the seed matters


def test_zero_ratio_subset_may_stay_empty():
    s = make_splits(_ids(4), ratios=(0.75, 0.25, 0.0))
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (3, 1, 0)
    s = make_splits(_ids(2), ratios=(0.5, 0.5, 0.0))  # two subsets to fill: 2 cases suffice
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (1, 1, 0)
    with pytest.raises(ConfigError, match="train ratio"):
        make_splits(_ids(5), ratios=(0.0, 0.5, 0.5))
