"""Latency, GEMM reference, peak memory and on-disk sizes."""

from __future__ import annotations

import pytest
import torch

from tascmt.bench.latency import checkpoint_bytes, measure_latency, weights_bytes
from tascmt.bench.memory import peak_memory
from tascmt.bench.reference import gemm_rate
from tascmt.bench.spec import ModelSpec
from tests.bench.tiny_models import create_model

TINY = "tests.bench.tiny_models:create_model"


def test_latency_positive_median_and_throughput():
    m = create_model("tiny_convnet").train()
    r = measure_latency(m, torch.rand(3, 2, 32, 32), repeats=5, warmup=1)
    assert len(r["times_ms"]) == 5
    assert 0 < r["min_ms"] <= r["median_ms"] <= r["max_ms"]
    assert r["samples_per_s"] == pytest.approx(3 / (r["median_ms"] / 1e3))
    assert m.training


def test_latency_rejects_zero_repeats():
    with pytest.raises(ValueError, match="repeats"):
        measure_latency(create_model("tiny_convnet"), torch.rand(1, 2, 8, 8), repeats=0)


def test_gemm_rate_positive():
    r = gemm_rate(n=128, repeats=3)
    assert r["gflops_per_s"] > 0
    assert r["gflops_per_s"] == pytest.approx(2 * 128**3 / (r["median_ms"] / 1e3) / 1e9)


def test_weights_and_checkpoint_sizes():
    m = create_model("tiny_convnet", width=64)
    n_float = sum(p.numel() for p in m.parameters()) + sum(b.numel() for b in m.buffers())
    before = {k: v.clone() for k, v in m.state_dict().items()}
    w = weights_bytes(m)
    assert w >= 4 * sum(p.numel() for p in m.parameters())
    ck = checkpoint_bytes(m)
    n_params = sum(p.numel() for p in m.parameters())
    assert ck["bytes"] >= 4 * (n_float + 2 * n_params)  # weights + two AdamW moments
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())  # model untouched


def test_cpu_peak_memory_sees_activations():
    # conv 2→64 at 256² makes a 16 MiB activation (fp32), BN another 16 MiB
    spec = ModelSpec("tiny_convnet", "small", {"width": 64}, TINY)
    r = peak_memory(spec, (1, 2, 256, 256), "cpu", threads=1)
    assert "error" not in r, r
    assert r["forward_peak_bytes"] >= 16 * 2**20
    assert r["peak_bytes"] >= r["forward_peak_bytes"]

