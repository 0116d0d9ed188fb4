"""The machine's own fp32 GEMM rate, measured in the same run, to express model speed as an efficiency."""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch


def gemm_rate(n: int = 2048, repeats: int = 5, warmup: int = 1, device: str = "cpu") -> dict[str, Any]:
    """Median fp32 GFLOP/s of an (n×n)·(n×n) matmul (2·n³ FLOPs) over ``repeats`` timed runs.

    Returns ``{"gflops_per_s", "n", "repeats", "median_ms", "dtype", "device", "threads"}``.
    """
    if n < 1 or repeats < 1:
        raise ValueError(f"n and repeats must be >= 1, got n={n}, repeats={repeats}")
    dev = torch.device(device)
    gen = torch.Generator(device=dev).manual_seed(0)
    a = torch.rand(n, n, device=dev, generator=gen)
    b = torch.rand(n, n, device=dev, generator=gen)
    cuda = dev.type == "cuda"
    times: list[float] = []
    for i in range(warmup + repeats):
        if cuda:
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        torch.mm(a, b)
        if cuda:
            torch.cuda.synchronize(dev)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {
        "gflops_per_s": 2 * n**3 / median / 1e9,
        "n": n,
        "repeats": repeats,
        "median_ms": median * 1e3,
        "dtype": "float32",
        "device": str(dev),
        "threads": torch.get_num_threads(),
    }
