"""A resume refuses a cache whose data fingerprint differs from the one the run was trained on."""

from __future__ import annotations

import json

import pytest

from tascmt.cli import main as cli_main
from tascmt.data.cache import Manifest
from tascmt.data.prepare import prepare_dataset
from tascmt.data.synth import make_synthetic_task
from tascmt.errors import ConfigError
from tascmt.training.api import resume
from tests.experiments._helpers import SIZE, make_cache, single_thread, train_tiny


def test_resume_on_a_cache_prepared_again_from_other_data_is_refused(tmp_path, capsys):
    with single_thread():
        cache = make_cache(tmp_path)
        train_tiny(cache, tmp_path / "run", steps=1)
    trained_on = Manifest.load(cache).fingerprint()
    extra = json.loads((tmp_path / "run" / "last" / "model.json").read_text(encoding="utf-8"))["extra"]
    assert extra["data_fingerprint"] == trained_on
    other = make_synthetic_task(tmp_path / "other_task", "heart", n_cases=10, size=SIZE, n_slices=6, seed=5)
    prepare_dataset(other, cache, size=SIZE, progress=False, verbose=False)  # the same folder, other data
    now = Manifest.load(cache).fingerprint()
    assert now != trained_on
    assert cli_main(["train", "--resume", str(tmp_path / "run"), "--max-steps", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert trained_on in err and now in err and "fingerprint" in err
    with pytest.raises(ConfigError, match=trained_on):
        resume(tmp_path / "run", max_steps=2, progress=False, tensorboard=False, num_workers=0)
