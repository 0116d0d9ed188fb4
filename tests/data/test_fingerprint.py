"""The cache's data fingerprint: content (arrays, preprocessing, split), not paths or modification times."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from tascmt.data.cache import FINGERPRINT_PARAMS, Manifest, case_files, data_fingerprint
from tascmt.data.prepare import prepare_dataset
from tascmt.training.checkpointing import data_extra


def _prepare(task, out, **kw):
    return prepare_dataset(task, out, size=32, progress=False, verbose=False, **kw)


def test_the_same_data_prepared_elsewhere_has_the_same_fingerprint(heart_task, heart_cache, tmp_path):
    copy = shutil.copytree(heart_task, tmp_path / "somewhere" / "else" / "task")
    for f in copy.rglob("*"):
        os.utime(f, (1_000_000_000, 1_000_000_000))  # other modification times too
    other = _prepare(copy, tmp_path / "another_cache")
    first = Manifest.load(heart_cache)
    assert first.stored_fingerprint and len(first.stored_fingerprint) == 16
    assert other.fingerprint() == first.fingerprint()
    assert other.param_hash != first.param_hash  # paths and mtimes: prepare's own reuse check sees them
    recorded = json.loads((tmp_path / "another_cache" / "manifest.json").read_text(encoding="utf-8"))
    assert recorded["fingerprint"] == first.fingerprint()
    assert data_extra(tmp_path / "another_cache")["data_fingerprint"] == first.fingerprint()


def test_other_preprocessing_or_split_changes_the_fingerprint(heart_task, heart_cache, tmp_path):
    base = Manifest.load(heart_cache).fingerprint()
    assert _prepare(heart_task, tmp_path / "gap", gap_mm=2.74, tol_mm=0.3).fingerprint() != base
    assert _prepare(heart_task, tmp_path / "norm", norm="percentile_pair").fingerprint() != base
    assert _prepare(heart_task, tmp_path / "seed", split_seed=7).fingerprint() != base
    assert {"norm", "inplane", "gap_mm", "protocol", "label_values", "flow"} <= set(FINGERPRINT_PARAMS)


def test_a_changed_array_changes_the_fingerprint(heart_cache, tmp_path):
    cache = shutil.copytree(heart_cache, tmp_path / "cache")
    m = Manifest.load(cache)
    assert data_fingerprint(cache, m.params, m.cases, m.triplets, m.splits) == m.fingerprint()
    cid = next(c for c, info in sorted(m.cases.items()) if info.get("n_triplets"))
    img = cache / case_files(cid)[0]
    arr = np.load(img)
    arr.flat[0] += 1
    np.save(img, arr)
    assert data_fingerprint(cache, m.params, m.cases, m.triplets, m.splits) != m.fingerprint()


def test_a_cache_without_a_fingerprint_gets_it_lazily_and_is_not_rewritten(heart_cache, tmp_path):
    cache = shutil.copytree(heart_cache, tmp_path / "old_cache")
    path = cache / "manifest.json"
    recorded = json.loads(path.read_text(encoding="utf-8"))
    expected = recorded.pop("fingerprint")
    path.write_text(json.dumps(recorded), encoding="utf-8")  # as prepared before fingerprints existed
    before = path.read_bytes()
    m = Manifest.load(cache)
    assert m.stored_fingerprint is None
    assert m.fingerprint() == expected
    assert data_extra(cache)["data_fingerprint"] == expected
    assert "data_fingerprint" not in data_extra(cache, with_fingerprint=False)
    assert path.read_bytes() == before


@pytest.mark.parametrize("key", ["image", "label"])
def test_case_paths_are_not_part_of_the_fingerprint(heart_cache, key):
    m = Manifest.load(heart_cache)
    cases = {c: {**info, key: f"/elsewhere/{c}.nii.gz"} for c, info in m.cases.items()}
    assert data_fingerprint(heart_cache, m.params, cases, m.triplets, m.splits) == m.fingerprint()
    params = {**m.params, "task": "/another/task/folder", "task_name": "renamed"}
    assert data_fingerprint(heart_cache, params, m.cases, m.triplets, m.splits) == m.fingerprint()


def test_flow_midpoints_are_part_of_the_fingerprint(tmp_path):
    from tascmt.data.cache import flow_file
    from tascmt.data.synth import make_synthetic_task

    task = make_synthetic_task(tmp_path / "task", "heart", n_cases=3, size=24, n_slices=5, seed=2)
    m = prepare_dataset(task, tmp_path / "cache", size=24, flow_base=True, progress=False, verbose=False)
    cid = sorted(m.cases)[0]
    path = tmp_path / "cache" / flow_file(cid)
    arr = np.load(path)
    arr.flat[0] += 1
    np.save(path, arr)
    assert data_fingerprint(m.root, m.params, m.cases, m.triplets, m.splits) != m.fingerprint()
