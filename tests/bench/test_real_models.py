"""The benchmark on the registered TASC-SwinMT models (tiny size: fast)."""

from __future__ import annotations

import pytest
import torch

from tascmt.bench.flops import count_flops
from tascmt.bench.macs import count_macs
from tascmt.bench.params import count_parameters
from tascmt.cli import main

models = pytest.importorskip("tascmt.models")


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return models.create_model("tasc_swinmt", size="tiny")


def test_params_children_cover_total(tiny):
    r = count_parameters(tiny)
    assert r["total"] == sum(p.numel() for p in tiny.parameters())
    assert sum(r["by_child"].values()) >= r["total"]  # shared parameters may appear under two children


def test_thop_and_builtin_rules_agree_on_real_model(tiny):
    x = torch.rand(1, 2, 64, 64)
    a, b = count_macs(tiny, x, tool="thop"), count_macs(tiny, x, tool="builtin")
    assert a["macs"] == b["macs"] > 0
    assert a["by_child"] == b["by_child"]


def test_flops_by_child_sum_to_counted(tiny):
    r = count_flops(tiny, torch.rand(1, 2, 64, 64))
    assert set(r["by_child"]) <= {n for n, _ in tiny.named_children()}
    assert sum(r["by_child"].values()) == r["counted"]
    assert r["fft_calls"] > 0  # TALA/MSTAF/CTCI FFTs are seen (and not counted)


def test_cli_unknown_model_lists_registered_names(capsys):
    rc = main(["benchmark", "--model", "tasc_nonexistent", "--no-memory"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "tasc_nonexistent" in err and "tasc_swinmt" in err


def test_cli_bad_input_size_is_a_clear_error(capsys):
    rc = main(["benchmark", "--model", "tasc_swinmt", "--size", "tiny", "--input", "100", "100",
               "--no-memory", "--gemm-size", "32"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "100" in err and "tasc_swinmt" in err
