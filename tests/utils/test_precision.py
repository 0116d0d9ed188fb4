"""Inference precision: fp32 by default, bf16 on request, auto chooses by hardware and says why."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tascmt.errors import ConfigError
from tascmt.utils import precision as P


def test_resolve_precision(monkeypatch):
    assert P.resolve_precision("fp32")[0] is None
    assert P.resolve_precision("bf16")[0] is torch.bfloat16
    monkeypatch.setattr(P, "cpu_flags", lambda: {"avx2"})
    dtype, why = P.resolve_precision("auto", "cpu")
    assert dtype is None and "fp32" in why
    monkeypatch.setattr(P, "cpu_flags", lambda: {"amx_bf16", "amx_tile"})
    dtype, why = P.resolve_precision("auto", "cpu")
    assert dtype is torch.bfloat16 and "AMX" in why
    with pytest.raises(ConfigError):
        P.resolve_precision("fp8")


def test_bf16_prediction_stays_close_to_fp32():
    from tascmt.data.inplane import InplanePolicy
    from tascmt.data.normalize import make_normalizer
    from tascmt.inference import Predictor, predict_volume
    from tascmt.models import create_model

    torch.manual_seed(0)
    model = create_model("tasc_swinmt", "tiny").eval()
    pred = Predictor(model=model, normalizer=make_normalizer("minmax_pair"), inplane=InplanePolicy("native", 64))
    rng = np.random.default_rng(0)
    vol = rng.uniform(0, 100, size=(70, 64, 4)).astype(np.float32)
    a = predict_volume(vol, (1, 1, 2), model=pred, progress=False, return_probabilities=True)
    b = predict_volume(vol, (1, 1, 2), model=pred, progress=False, precision="bf16", return_probabilities=True)
    assert pred.autocast_dtype is None  # the given Predictor is not modified
    assert np.isfinite(b.image).all()
    assert np.abs(a.image - b.image).max() < 2.0  # intensity units of a 0..100 volume
    assert np.abs(a.probabilities - b.probabilities).max() < 0.05
