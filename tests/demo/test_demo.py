"""The demo end to end on the real-data default (MNI152 template from nilearn) with a one-minute budget."""

from __future__ import annotations

import json

from tascmt.cli import main


def test_demo_end_to_end_short_budget(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "-o", str(out), "--minutes", "0.4", "--size", "64", "--no-progress",
               "--steps-per-epoch", "5"])
    assert rc == 0
    report = (out / "report.md").read_text(encoding="utf-8")
    assert str(out / "report.md") in capsys.readouterr().out  # the report's path is printed
    # The report holds the model's numbers next to both baselines, from this run's files.
    summary = json.loads((out / "demo_summary.json").read_text(encoding="utf-8"))
    model_psnr = summary["evaluation"]["interp"]["model"]["psnr"]
    linear_psnr = summary["evaluation"]["interp"]["linear"]["psnr"]
    assert f"{model_psnr:.2f}" in report and f"{linear_psnr:.2f}" in report
    assert "intensity band" in report and "average of 152 subjects" in report
    band = summary["band_baseline"]
    assert 0.0 <= band["band"]["low"] < band["band"]["high"] <= 1.0
    assert 0.0 < band["y2_oracle"]["dice"] <= 1.0
    for rel in ("eval/summary.json", "eval/per_triplet.csv", "run/best/model.safetensors",
                "figures/loss_curves.png", "config.json", "provenance.json"):
        assert (out / rel).is_file(), rel
    # A second run reuses the data, the cache and the finished training run (progress bars do not matter).
    rc = main(["demo", "-o", str(out), "--minutes", "0.4", "--size", "64", "--steps-per-epoch", "5"])
    assert rc == 0
    assert "reusing the finished training run" in capsys.readouterr().out
