from __future__ import annotations

import json

import numpy as np
import pytest

from tascmt.data.foreground import FG_POLICIES, select_triplets
from tascmt.data.splits import load_or_create_splits, load_splits, make_splits, split_of
from tascmt.errors import ConfigError, InputError


@pytest.mark.parametrize(("n", "sizes"), [(20, (14, 2, 4)), (63, (44, 6, 13)), (10, (7, 1, 2))])
def test_split_sizes_and_disjoint(n, sizes):
    ids = [f"case_{i:03d}" for i in range(n)]
    s = make_splits(ids, seed=42)
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == sizes
    assert set(s["train"]) | set(s["val"]) | set(s["test"]) == set(ids)
    assert not (set(s["train"]) & set(s["val"]) or set(s["train"]) & set(s["test"])
                or set(s["val"]) & set(s["test"]))


def test_split_depends_on_seed_not_on_input_order():
    ids = [f"c{i}" for i in range(20)]
    assert make_splits(ids, 42) == make_splits(list(reversed(ids)), 42)
    assert make_splits(ids, 42)["test"] != make_splits(ids, 7)["test"]


def test_folds_partition_patients():
    s = make_splits([f"c{i:02d}" for i in range(20)], seed=42)
    pool = set(s["train"]) | set(s["val"])
    assert len(s["folds"]) == 5
    vals = [set(f["val"]) for f in s["folds"]]
    assert set().union(*vals) == pool and sum(map(len, vals)) == len(pool)  # each patient validated once
    for f in s["folds"]:
        assert not set(f["train"]) & set(f["val"]) and not (set(f["train"]) | set(f["val"])) & set(s["test"])
    m = split_of(s, fold=2)
    assert {c for c, v in m.items() if v == "val"} == vals[2]
    with pytest.raises(ConfigError, match="fold"):
        split_of(s, fold=5)


def test_splits_file_reused_and_checked(tmp_path):
    path = tmp_path / "splits.json"
    ids = [f"c{i}" for i in range(10)]
    _, created = load_or_create_splits(path, ids, seed=42)
    assert created and path.exists()
    data = json.loads(path.read_text(encoding="utf-8"))
    data["test"], data["train"] = data["train"][:1], data["train"][1:] + data["test"]  # a hand-edited split
    path.write_text(json.dumps(data), encoding="utf-8")
    again, created = load_or_create_splits(path, ids, seed=42)
    assert not created and again["test"] == data["test"]
    with pytest.raises(InputError, match="not in the task"):
        load_splits(path, [*ids[:-3], "other"])
    with pytest.raises(ConfigError, match="seed"):
        load_or_create_splits(path, ids, seed=1)


def test_foreground_policies():
    fg = np.array([[1, 1, 1], [0, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]], dtype=bool)
    assert select_triplets(fg, "every").tolist() == list(range(7))
    assert select_triplets(fg, "fg_all").tolist() == [0]
    assert select_triplets(fg, "fg_middle").tolist() == [0, 1]
    assert select_triplets(fg, "fg_any").tolist() == [0, 1, 2]
    plus = select_triplets(fg, "fg_plus_bg", bg_fraction=0.5, seed=0)
    assert set(plus[:3]) == {0, 1, 2} and len(plus) == 5  # 2 of the 4 background-only triplets
    assert select_triplets(fg, "fg_plus_bg", 0.5, seed=0).tolist() == plus.tolist()  # seeded
    draws = {tuple(select_triplets(fg, "fg_plus_bg", 0.5, seed=s)) for s in range(20)}
    assert len(draws) > 1
    assert len(FG_POLICIES) == 5
    with pytest.raises(ConfigError, match="policy"):
        select_triplets(fg, "middle")
