"""Whole-volume evaluation at native resolution: every thinning offset, every interior slice synthesised."""

from __future__ import annotations

import math

import numpy as np

from tascmt.data.inplane import InplanePolicy
from tascmt.data.prepare import prepare_dataset
from tascmt.data.synth import make_synthetic_task
from tascmt.evaluation.volume_eval import evaluate_volumes
from tascmt.inference import Predictor
from tests.inference.test_tiling import ConstantCorrection


def test_every_offset_synthesises_every_interior_slice(tmp_path):
    task = make_synthetic_task(tmp_path / "task", "lung", n_cases=4, size=40, n_slices=11, dz=1.25)
    cache = tmp_path / "cache"
    manifest = prepare_dataset(task, cache, size=32, gap_mm=1.25, progress=False, verbose=False)
    norm = manifest.params["norm"]
    from tascmt.data.normalize import normalizer_from_dict

    pred = Predictor(model=ConstantCorrection(0.0, tile=32), normalizer=normalizer_from_dict(norm),
                     inplane=InplanePolicy("native", 32))
    res = evaluate_volumes(pred, cache, split="test", reformat_case=None)
    assert res["cases"], res["skipped"]
    for cid, m in res["cases"].items():
        n = manifest.cases[cid]["n_slices"]
        step = manifest.cases[cid]["step"]
        assert m["n_offsets"] == 2 * step
        assert m["n_synth"] == n - 2 * step  # each interior slice once (k-s and k+s must exist)
        # a zero correction is linear interpolation: identical scores
        assert math.isclose(m["psnr_synth"], m["linear_psnr_synth"], abs_tol=1e-6)
        assert np.isfinite(m["cubic_psnr_synth"])
    first = evaluate_volumes(pred, cache, split="test", offsets="first")
    assert first["n_synth"] < res["n_synth"]
