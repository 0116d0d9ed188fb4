"""Patient-level splits: train/val/test 7:1:2 and cross-validation folds, stored in ``splits.json``.

The split is made over the sorted case list shuffled with a fixed split seed (42 by default), before any
triplet is extracted, so no patient contributes slices to two subsets. Train and val sizes use floor (Heart:
20 cases → 14/2/4; Lung: 63 → 44/6/13); test takes the rest. The shuffle is ``random.Random(seed).shuffle``.

Cross-validation folds (5 by default) partition the train+val patients (the test patients stay held out);
fold ``i`` validates on its own patients and trains on the others.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from tascmt.errors import ConfigError, InputError
from tascmt.utils.atomic import write_json_atomic

SPLITS = ("train", "val", "test")
SPLITS_FILE = "splits.json"
FORMAT_VERSION = 1


def make_splits(case_ids, seed: int = 42, ratios=(0.7, 0.1, 0.2), n_folds: int = 5) -> dict:
    """Split patients into train/val/test and cross-validation folds.

    Args:
        case_ids: patient/case identifiers (order does not matter; they are sorted first).
        seed: split seed.
        ratios: (train, val, test) fractions; train and val are floored, test gets the rest.
        n_folds: folds over the train+val patients (fewer when there are fewer patients; none below 2).
    Returns:
        ``{"version", "seed", "ratios", "train", "val", "test", "folds": [{"train": [...], "val": [...]}]}``
        with every list sorted.
    """
    case_ids = [str(c) for c in case_ids]
    ids = sorted(set(case_ids))
    if len(ids) != len(case_ids):
        raise ConfigError("case ids must be unique")
    if len(ratios) != 3 or any(r < 0 for r in ratios) or not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
        raise ConfigError(f"split ratios must be three non-negative fractions summing to 1, got {ratios}")
    shuffled = list(ids)
    random.Random(seed).shuffle(shuffled)
    n = len(ids)
    n_train = math.floor(ratios[0] * n + 1e-9)
    n_val = math.floor(ratios[1] * n + 1e-9)
    train, val, test = shuffled[:n_train], shuffled[n_train:n_train + n_val], shuffled[n_train + n_val:]
    pool = train + val  # keeps the seeded order
    k = min(n_folds, len(pool))
    folds = []
    if k >= 2:
        for i in range(k):
            fold_val = pool[i::k]
            folds.append({"train": sorted(set(pool) - set(fold_val)), "val": sorted(fold_val)})
    return {
        "version": FORMAT_VERSION,
        "seed": seed,
        "ratios": list(ratios),
        "train": sorted(train),
        "val": sorted(val),
        "test": sorted(test),
        "folds": folds,
    }


def split_of(splits: dict, fold: int | None = None) -> dict[str, str]:
    """Map case id → subset name (``train``/``val``/``test``), using fold ``fold``'s train/val if given."""
    out = {c: "test" for c in splits["test"]}
    if fold is None:
        out.update({c: "train" for c in splits["train"]})
        out.update({c: "val" for c in splits["val"]})
        return out
    folds = splits.get("folds", [])
    if not 0 <= fold < len(folds):
        raise ConfigError(f"fold must be in 0..{len(folds) - 1}, got {fold}")
    out.update({c: "train" for c in folds[fold]["train"]})
    out.update({c: "val" for c in folds[fold]["val"]})
    return out


def load_splits(path: str | Path, case_ids=None) -> dict:
    """Read ``splits.json``; with ``case_ids``, refuse a file naming cases that no longer exist."""
    path = Path(path)
    try:
        splits = json.loads(path.read_text(encoding="utf-8"))
        names = [c for s in SPLITS for c in splits[s]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"not a readable splits file ({err})", path=path) from err
    if len(names) != len(set(names)):
        raise InputError("a case appears in more than one subset", path=path)
    if case_ids is not None:
        missing = sorted(set(names) - set(map(str, case_ids)))
        if missing:
            raise InputError(
                f"names {len(missing)} case(s) that are not in the task: {missing[:5]}; "
                "delete it to make a new split", path=path)
    return splits


def load_or_create_splits(path: str | Path, case_ids, seed: int = 42, n_folds: int = 5) -> tuple[dict, bool]:
    """Reuse ``path`` when it exists (checking its cases and seed), else create and write it.

    Returns:
        (splits, created). Cases of the task that an existing file does not name are left out of every
        subset (listed under ``"unassigned"`` in the returned dict, not written).
    """
    path = Path(path)
    if path.exists():
        splits = load_splits(path, case_ids)
        if splits.get("seed") != seed:
            raise ConfigError(
                f"{path} was made with split seed {splits.get('seed')}, not {seed}; "
                "pass that seed or delete the file")
        named = {c for s in SPLITS for c in splits[s]}
        splits["unassigned"] = sorted(set(map(str, case_ids)) - named)
        return splits, False
    splits = make_splits(case_ids, seed=seed, n_folds=n_folds)
    write_json_atomic(path, splits)
    return splits, True
