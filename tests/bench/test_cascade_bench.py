"""Cascades and triplet-input models in ``run_benchmark`` / ``tascmt benchmark`` (tiny sizes, 64²), and the
paper-layout efficiency tables."""

from __future__ import annotations

import json

import pytest
import torch

from tascmt.bench import runner, spec
from tascmt.bench.efficiency import QUOTED_NOTE, efficiency_tables
from tascmt.cli import main
from tascmt.errors import ConfigError

FAST = dict(size="tiny", input_hw=(64, 64), repeats=1, warmup=0, threads=1, gemm_n=64)


@pytest.fixture(scope="module")
def results():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    return runner.run_benchmark(["swinunet_interp+unetpp_seg", "cascade_vtn_unetpp", "swinunet_interp",
                                 "unetpp_seg", "tasc_swinmt"], measure_memory=False, **FAST)


def test_cascade_counts_are_the_sum_of_its_parts(results):
    by = {r["entry"]: r for r in results}
    casc, interp, seg = by["swinunet_interp+unetpp_seg"], by["swinunet_interp"], by["unetpp_seg"]
    assert casc["input_shape"] == [1, 2, 64, 64] and interp["input_shape"] == [1, 2, 64, 64]
    assert seg["input_shape"] == [1, 3, 64, 64]  # the triplet segmenter gets [X1, X2, X3]
    assert casc["params"]["total"] == interp["params"]["total"] + seg["params"]["total"]
    assert casc["cascade"]["params"] == {"interp": interp["params"]["total"], "seg": seg["params"]["total"]}
    macs = {k: r["macs_per_sample"]["macs"] for k, r in (("c", casc), ("i", interp), ("s", seg))}
    assert macs["c"] == macs["i"] + macs["s"]
    assert casc["flops"]["total"] == pytest.approx(interp["flops"]["total"] + seg["flops"]["total"], rel=1e-6)
    assert by["cascade_vtn_unetpp"]["cascade"]["interp_model"] == "vtn_interp"
    for r in results:
        assert r["latency"]["median_ms"] > 0 and r["weights_bytes"] > 0
        assert r["checkpoint"]["bytes"] > r["weights_bytes"]  # AdamW moments on top of the weights


def test_efficiency_tables_layout(results):
    md = efficiency_tables(results)
    assert "| SwinUNet-Interp + UNet++ (cascade) |" in md and "| VTN-Interp + UNet++ (cascade) |" in md
    assert "| TASC-SwinMT (full) |" in md and "latency ÷ TASC-SwinMT's" in md
    assert md.count(QUOTED_NOTE) == 2  # one placeholder row per table, nothing quoted
    full_row = next(line for line in md.splitlines() if line.startswith("| TASC-SwinMT (full) |"))
    assert full_row.rstrip(" |").endswith("1.00×")
    assert "nnU-Net-style" in md


@pytest.mark.slow
def test_cascade_entry_memory_in_a_fresh_process():
    """The memory probe rebuilds the "a+b" entry in a subprocess (~10 s, mostly imports)."""
    (r,) = runner.run_benchmark(["swinunet_interp+unetpp_seg"], measure_memory=True, **FAST)
    assert r["memory"]["peak_bytes"] > 0, r["memory"]


def test_bad_cascade_entries():
    with pytest.raises(ConfigError, match="two names"):
        spec.parse_entry("swinunet_interp+unetpp_seg+x", "tiny")
    with pytest.raises(ConfigError, match="part 'nope'"):
        spec.parse_entry("swinunet_interp+nope", "tiny")
    with pytest.raises(ConfigError, match="cascade"):  # parts in the wrong order
        spec.parse_entry("unetpp_seg+swinunet_interp", "tiny").build()


def test_cli_cascade_side_by_side(tmp_path, capsys):
    rc = main(["benchmark", "--model", "swinunet_interp+unetpp_seg", "--model", "unetpp_seg",
               "--size", "tiny", "--input", "64", "64", "--repeats", "1", "--warmup", "0", "--threads", "1",
               "--no-memory", "--gemm-size", "64", "--json", str(tmp_path / "b.json"),
               "--markdown", str(tmp_path / "b.md"), "--paper-tables", str(tmp_path / "p.md")])
    assert rc == 0
    doc = json.loads((tmp_path / "b.json").read_text(encoding="utf-8"))
    assert [r["entry"] for r in doc["results"]] == ["swinunet_interp+unetpp_seg", "unetpp_seg"]
    assert (tmp_path / "b.md").read_text(encoding="utf-8").count("| swinunet_interp+unetpp_seg |") == 1
    md = (tmp_path / "p.md").read_text(encoding="utf-8")
    assert "Efficiency (paper layout" in md and "SwinUNet-Interp + UNet++ (cascade)" in md
    assert "(cascade)" in capsys.readouterr().out
