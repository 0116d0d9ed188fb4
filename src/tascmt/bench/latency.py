"""Forward latency and throughput, and the on-disk sizes of the weights and of a training checkpoint."""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_latency(model: nn.Module, example_input: torch.Tensor, repeats: int = 10,
                    warmup: int = 2) -> dict[str, Any]:
    """Time ``repeats`` inference forwards (eval, ``torch.no_grad``) after ``warmup`` untimed ones.

    ``example_input`` (B, C, H, W) must be on the model's device. On CUDA, ``cudnn.benchmark`` is switched
    on for the measurement and every forward is synchronised. Returns ``{"median_ms", "mean_ms", "min_ms",
    "max_ms", "times_ms", "repeats", "warmup", "batch", "samples_per_s"}`` (samples/s = B / median).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    device = example_input.device
    was_training = model.training
    old_cudnn = torch.backends.cudnn.benchmark
    model.eval()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    times: list[float] = []
    try:
        with torch.no_grad():
            for _ in range(warmup):
                model(example_input)
            _sync(device)
            for _ in range(repeats):
                t0 = time.perf_counter()
                model(example_input)
                _sync(device)
                times.append((time.perf_counter() - t0) * 1e3)
    finally:
        model.train(was_training)
        torch.backends.cudnn.benchmark = old_cudnn
    median = statistics.median(times)
    batch = int(example_input.shape[0])
    return {
        "median_ms": median,
        "mean_ms": statistics.fmean(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "times_ms": times,
        "repeats": repeats,
        "warmup": warmup,
        "batch": batch,
        "samples_per_s": batch / (median / 1e3),
    }


def weights_bytes(model: nn.Module) -> int:
    """Size in bytes of ``model``'s state_dict written as a safetensors file (what ``save_model`` stores)."""
    from safetensors.torch import save_model

    with tempfile.TemporaryDirectory(prefix="tascmt-bench-") as tmp:
        path = Path(tmp) / "model.safetensors"
        save_model(model, str(path))
        return path.stat().st_size


def checkpoint_bytes(model: nn.Module, lr: float = 1e-4, weight_decay: float = 1e-5,
                     epochs: int = 100) -> dict[str, Any]:
    """Size of a real training checkpoint: weights + AdamW state + cosine scheduler state (docs/design.md §4,
    §6).

    A copy of the model gets zero gradients and one AdamW step (which allocates both moment buffers), the
    scheduler steps once, and ``{"model", "optimizer", "scheduler"}`` is written with ``torch.save``.
    The model itself is not changed. Returns ``{"bytes": int, "method": str}``.
    """
    work = copy.deepcopy(model)
    params = [p for p in work.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.zeros_like(p)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=1e-6)
    opt.step()
    sched.step()
    state = {"model": work.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
    with tempfile.TemporaryDirectory(prefix="tascmt-bench-") as tmp:
        path = Path(tmp) / "checkpoint.pt"
        torch.save(state, path)
        size = path.stat().st_size
    del state, opt, sched, work
    return {
        "bytes": size,
        "method": "torch.save(model state_dict + AdamW state after one zero-gradient step + "
        "CosineAnnealingLR state), measured",
    }
