"""Checkpoint round trip (safetensors + JSON) and rejection of anything else, without unpickling."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from tascmt.errors import CheckpointError
from tascmt.models import create_model, load_model, save_model
from tascmt.models.checkpoint import FORMAT


@pytest.fixture
def saved(tmp_path):
    model = create_model("tasc_swinmt_ref", "tiny", interp_output="residual")
    x = torch.rand(2, 2, 64, 64)
    model(x)  # one training-mode pass moves the BatchNorm running statistics off their defaults
    model.eval()
    extra = {"normalisation": {"name": "ct_window", "lo": -1024, "hi": 2048}, "gap_mm": 1.25}
    out_dir = save_model(model, tmp_path / "ckpt", extra=extra)
    return model, x, extra, out_dir


@pytest.mark.parametrize("which", ["dir", "json", "weights"])
def test_roundtrip_reproduces_outputs(saved, which):
    model, x, extra, out_dir = saved
    path = {"dir": out_dir, "json": out_dir / "model.json", "weights": out_dir / "model.safetensors"}[which]
    loaded, meta = load_model(path)
    assert not loaded.training
    assert loaded.config == model.config
    assert meta["extra"] == extra and meta["model"] == "tasc_swinmt_ref" and meta["format"] == FORMAT
    a, b = model(x), loaded(x)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert sorted(p.name for p in out_dir.iterdir()) == ["model.json", "model.safetensors"]  # no temp files


def test_pickle_and_garbage_are_rejected(saved, tmp_path):
    model, _, _, out_dir = saved
    pkl = tmp_path / "model.pt"
    torch.save(model.state_dict(), pkl)
    with pytest.raises(CheckpointError, match="not a tascmt model checkpoint"):
        load_model(pkl)
    # a pickle (or garbage) in place of the weights, beside a valid model.json
    (out_dir / "model.safetensors").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_model(out_dir)
    (out_dir / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_model(out_dir)


def test_bad_metadata_is_rejected(saved):
    _, _, _, out_dir = saved
    meta_path = out_dir / "model.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    for change, message in [
        ({"format": "something-else"}, "format marker"),
        ({"format_version": 99}, "format version 99 is not supported"),
        ({"model": "no_such_model"}, "unknown model 'no_such_model'"),
        ({"config": {**meta["config"], "bogus": 1}}, r"unknown model config key\(s\) \['bogus'\]"),
    ]:
        meta_path.write_text(json.dumps({**meta, **change}), encoding="utf-8")
        with pytest.raises(CheckpointError, match=message):
            load_model(out_dir)
    meta_path.write_text("{not json", encoding="utf-8")
    with pytest.raises(CheckpointError, match="invalid JSON"):
        load_model(out_dir)


def test_mismatched_tensors_are_rejected(saved, tmp_path):
    _, _, _, out_dir = saved
    other = save_model(create_model("tasc_swinmt", "tiny", dims=(8, 16, 32, 64)), tmp_path / "other")
    (out_dir / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="shape-mismatched"):
        load_model(out_dir)
    (out_dir / "model.safetensors").write_bytes(
        (save_model(create_model("tasc_indenc", "tiny"), tmp_path / "x") / "model.safetensors").read_bytes()
    )
    with pytest.raises(CheckpointError, match=r"missing .*unexpected"):
        load_model(out_dir)
