"""Patient-level splits: train/val/test 7:1:2 and cross-validation folds, stored in ``splits.json``.

The split is made over the sorted case list shuffled with a fixed split seed (42 by default), before any
triplet is extracted, so no patient contributes slices to two subsets. Train and val sizes use floor (Heart:
20 cases → 14/2/4; Lung: 63 → 44/6/13); test takes the rest. The shuffle is ``random.Random(seed).shuffle``.

Small datasets: with at least 3 cases every subset gets at least one case. Where the floors leave val or
test empty, the missing case is taken from the end of the shuffled train part (4 cases → 1/1/2, 5 → 2/1/2,
3 → 1/1/1); splits whose floors are already non-empty are exactly those of the plain 7:1:2 rule. Fewer than
3 cases is refused with a ``ConfigError`` unless ``allow_tiny=True``: then every case goes to train, val
and test stay empty (training has no validation set, hence no early stopping on it) and the file records
``"allow_tiny": true``. A subset whose ratio is 0 is not forced to get a case.

Cross-validation folds (5 by default) partition the train+val patients (the test patients stay held out);
fold ``i`` validates on its own patients and trains on the others. With fewer train+val patients than
folds, there is one fold per patient (leave-one-out), so every fold has a non-empty train and val; with
fewer than 2 such patients there are no folds.
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


def make_splits(case_ids, seed: int = 42, ratios=(0.7, 0.1, 0.2), n_folds: int = 5, *,
                allow_tiny: bool = False) -> dict:
    """Split patients into train/val/test and cross-validation folds.

    Args:
        case_ids: patient/case identifiers (order does not matter; they are sorted first).
        seed: split seed.
        ratios: (train, val, test) fractions; train and val are floored, test gets the rest. Then every
            subset with a positive ratio that came out empty gets one case from train (or, when train has
            a single case left, from the largest subset).
        n_folds: folds over the train+val patients (one per patient when there are fewer patients than
            folds; none below 2 patients).
        allow_tiny: with fewer cases than subsets to fill (3 by default), put every case in train and
            leave val and test empty instead of refusing; recorded as ``"allow_tiny": true`` in the result.
    Returns:
        ``{"version", "seed", "ratios", "train", "val", "test", "folds": [{"train": [...], "val": [...]}]}``
        (plus ``"allow_tiny": true`` when that option was given) with every list sorted.
    Raises:
        ConfigError: duplicate ids, invalid ratios, no case at all, or too few cases without ``allow_tiny``.
    """
    case_ids = [str(c) for c in case_ids]
    ids = sorted(set(case_ids))
    if len(ids) != len(case_ids):
        raise ConfigError("case ids must be unique")
    if len(ratios) != 3 or any(r < 0 for r in ratios) or not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
        raise ConfigError(f"split ratios must be three non-negative fractions summing to 1, got {ratios}")
    if not ratios[0] > 0:
        raise ConfigError(f"the train ratio must be > 0, got {ratios}")
    n = len(ids)
    needed = [i for i, r in enumerate(ratios) if r > 0]  # subsets that must get at least one case
    if n == 0:
        raise ConfigError("cannot split an empty case list: the task has no case")
    shuffled = list(ids)
    random.Random(seed).shuffle(shuffled)
    if n < len(needed):
        if not allow_tiny:
            wanted = "/".join(SPLITS[i] for i in needed)
            raise ConfigError(
                f"a patient-level {wanted} split needs at least {len(needed)} cases (one per subset), got "
                f"{n}; add cases, or pass allow_tiny=True to put all {n} in train with empty val and test "
                "(training then has no validation set and no early stopping)")
        sizes = [n, 0, 0]
    else:
        sizes = _subset_sizes(n, ratios, needed)
    n_train, n_val = sizes[0], sizes[1]
    train, val, test = shuffled[:n_train], shuffled[n_train:n_train + n_val], shuffled[n_train + n_val:]
    pool = train + val  # keeps the seeded order
    k = min(n_folds, len(pool))
    folds = []
    if k >= 2:
        for i in range(k):
            fold_val = pool[i::k]
            folds.append({"train": sorted(set(pool) - set(fold_val)), "val": sorted(fold_val)})
    out = {
        "version": FORMAT_VERSION,
        "seed": seed,
        "ratios": list(ratios),
        "train": sorted(train),
        "val": sorted(val),
        "test": sorted(test),
        "folds": folds,
    }
    if allow_tiny:
        out["allow_tiny"] = True
    return out


def _subset_sizes(n: int, ratios, needed: list[int]) -> list[int]:
    """(train, val, test) sizes: floors for train and val, the rest for test, then one case moved into every
    needed subset left empty (from train while it keeps at least one, else from the largest subset)."""
    n_train = math.floor(ratios[0] * n + 1e-9)
    n_val = math.floor(ratios[1] * n + 1e-9)
    sizes = [n_train, n_val, n - n_train - n_val]
    for i in (1, 2, 0):  # val, then test, then train itself
        if i in needed and sizes[i] == 0:
            donor = 0 if sizes[0] > 1 else max(range(3), key=lambda j: sizes[j])
            if sizes[donor] < 2:  # cannot happen with n >= len(needed); kept as a guard
                raise ConfigError(f"cannot give every subset a case: {n} cases, ratios {list(ratios)}")
            sizes[donor] -= 1
            sizes[i] += 1
    return sizes


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


def load_or_create_splits(path: str | Path, case_ids, seed: int = 42, n_folds: int = 5, *,
                          allow_tiny: bool = False) -> tuple[dict, bool]:
    """Reuse ``path`` when it exists (checking its cases and seed), else create and write it.

    ``allow_tiny`` is passed to :func:`make_splits` when a new split is made (see there).

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
    splits = make_splits(case_ids, seed=seed, n_folds=n_folds, allow_tiny=allow_tiny)
    write_json_atomic(path, splits)
    return splits, True
