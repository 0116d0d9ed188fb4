"""evaluate refuses a checkpoint/cache pair prepared differently (normalisation, protocol, in-plane policy),
labels a different gap, and evaluates anything with ``--allow-mismatch``, labelled; checkpoints without
records are evaluated with a warning."""

from __future__ import annotations

import json

import pytest

from tascmt.cli import main as cli_main
from tascmt.data.prepare import prepare_dataset
from tascmt.errors import ConfigError
from tascmt.evaluation.data_match import DataMismatchWarning, check_checkpoint_data
from tascmt.evaluation.evaluate import evaluate_checkpoint
from tests.experiments._helpers import SIZE, make_cache, single_thread, train_tiny

QUICK = {"split": "test", "batch_size": 4, "figures": False, "volumes": False, "max_triplets": 2}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("data_match")
    with single_thread():
        cache = make_cache(root)
        ckpt = train_tiny(cache, root / "run", steps=1)
    return root, cache, ckpt


def _cache(root, name, **kw):
    out = root / name
    if not out.exists():
        prepare_dataset(root / "task", out, size=SIZE, progress=False, verbose=False, **kw)
    return out


def test_another_normalisation_is_refused_in_one_line_and_allowed_with_a_label(trained, capsys):
    root, _, ckpt = trained
    other = _cache(root, "cache_pct", norm="percentile_pair")
    args = ["evaluate", "-m", str(ckpt), "--cache", str(other), "-o", str(root / "eval_pct"), "--no-volumes",
            "--no-figures", "--max-triplets", "2"]
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "normalisation" in err and "minmax_pair" in err and "percentile_pair" in err
    assert "--allow-mismatch" in err
    assert not (root / "eval_pct" / "summary.json").exists()
    with pytest.warns(DataMismatchWarning, match="normalisation"):
        assert cli_main([*args, "--allow-mismatch"]) == 0
    summary = json.loads((root / "eval_pct" / "summary.json").read_text(encoding="utf-8"))
    assert any("normalisation" in n and "mismatch allowed" in n for n in summary["data_mismatch"])
    assert summary["checkpoint_data_fingerprint"] != summary["data_fingerprint"]
    md = (root / "eval_pct" / "summary.md").read_text(encoding="utf-8")
    assert "data mismatch" in md and "normalisation" in md


def test_another_gap_is_evaluated_with_a_warning_and_labelled(trained, tmp_path):
    root, cache, ckpt = trained
    other = _cache(root, "cache_gap", gap_mm=2.74, tol_mm=0.3)
    with pytest.warns(DataMismatchWarning, match="gap"):
        summary = evaluate_checkpoint(ckpt, other, out_dir=tmp_path / "eval", **QUICK)
    assert summary["data_mismatch"] == ["gap: checkpoint 1.25 mm, cache 2.74 mm"]
    assert "data mismatch" in (tmp_path / "eval" / "summary.md").read_text(encoding="utf-8")
    same = evaluate_checkpoint(ckpt, cache, **QUICK)  # its own cache: nothing to label
    assert "data_mismatch" not in same and "data_unrecorded" not in same
    assert same["checkpoint_data_fingerprint"] == same["data_fingerprint"]


def test_a_checkpoint_without_records_is_evaluated_with_a_warning(trained, tmp_path):
    from tascmt.models import create_model
    from tascmt.models.checkpoint import save_model

    _, cache, _ = trained
    folder = save_model(create_model("tasc_swinmt", size="tiny", img_size=SIZE), tmp_path / "by_hand")
    with pytest.warns(DataMismatchWarning, match="records no normalisation"):
        summary = evaluate_checkpoint(folder, cache, **QUICK)
    assert "normalisation" in summary["data_unrecorded"] and "data_mismatch" not in summary


def test_protocol_and_inplane_policy_are_refused_and_named():
    extra = {"norm": {"name": "ct_window"}, "protocol": "acquired", "inplane": {"kind": "native", "size": 32},
             "gap_mm": 1.25}
    params = {**extra, "protocol": "resampled", "inplane": {"kind": "pad_resize", "size": 32}}
    with pytest.raises(ConfigError) as info:
        check_checkpoint_data(extra, params, checkpoint="ck", cache_dir="cache")
    text = str(info.value)
    assert "target protocol: checkpoint 'acquired', cache 'resampled'" in text
    assert "in-plane policy: checkpoint 'native', cache 'pad_resize'" in text and "\n" not in text
    with pytest.warns(DataMismatchWarning):
        labels = check_checkpoint_data(extra, params, checkpoint="ck", cache_dir="cache", allow_mismatch=True)
    assert len(labels["data_mismatch"]) == 2
    assert check_checkpoint_data(extra, extra, checkpoint="ck", cache_dir="cache") == {}
