"""run_benchmark end to end on stand-in models, its JSON/Markdown, and the CLI."""

from __future__ import annotations

import json

import pytest

from tascmt.bench import runner, spec
from tascmt.cli import main
from tascmt.errors import ConfigError

TINY = "tests.bench.tiny_models:create_model"


def test_run_benchmark_two_models_and_outputs(tmp_path):
    results = runner.run_benchmark(
        ["tiny_convnet", "tiny_attn"], input_hw=(16, 16), batch=2, repeats=2, warmup=1,
        threads=1, measure_memory=False, gemm_n=128, builder=TINY,
    )
    assert [r["entry"] for r in results] == ["tiny_convnet", "tiny_attn"]
    for r in results:
        assert r["input_shape"] == [2, 2, 16, 16]
        assert r["efficiency"] > 0
        assert r["latency"]["median_ms"] > 0
        assert r["config"]["img_size"] == 32
    fl = results[1]["flops"]
    assert fl["total"] == fl["counted"] + fl["sdpa_analytic"] >= 4 * 256 * 256 * 4  # ≥ the attention term
    doc = runner.write_results(results, tmp_path / "r.json", tmp_path / "r.md")
    loaded = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert loaded["provenance"]["versions"]["torch"] == doc["provenance"]["versions"]["torch"]
    assert len(loaded["results"]) == 2
    md = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert md.count("| tiny_") == 2 and "thop MACs" in md


def test_native_size_used_when_no_input():
    (r,) = runner.run_benchmark(["tiny_convnet"], repeats=1, warmup=0, measure_memory=False,
                                gemm_n=64, builder=TINY)
    assert r["input_shape"] == [1, 2, 32, 32]


def test_cascade_entry_with_unknown_part_names_the_part():
    with pytest.raises(ConfigError, match="part 'nope'"):
        spec.parse_entry("nope+tiny_convnet", "small", builder=TINY)


def test_cli_runs_on_tiny_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(spec, "DEFAULT_BUILDER", TINY)
    out = tmp_path / "b.json"
    rc = main(["benchmark", "--model", "tiny_convnet", "--input", "16", "16", "--repeats", "2",
               "--warmup", "0", "--threads", "1", "--no-memory", "--gemm-size", "128",
               "--json", str(out), "--markdown", str(tmp_path / "b.md")])
    assert rc == 0
    r = json.loads(out.read_text(encoding="utf-8"))["results"][0]
    assert r["memory"] is None and r["gemm_reference"]["n"] == 128
    assert (tmp_path / "b.md").read_text(encoding="utf-8").count("| tiny_convnet |") == 1
    assert "tiny_convnet" in capsys.readouterr().out


def test_cli_unknown_model_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setattr(spec, "DEFAULT_BUILDER", TINY)
    rc = main(["benchmark", "--model", "not_a_model", "--no-memory"])
    err = capsys.readouterr().err
    assert rc != 0
    assert "not_a_model" in err and "tiny_convnet" in err
