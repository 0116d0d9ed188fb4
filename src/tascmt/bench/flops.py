"""FLOPs from ``torch.utils.flop_counter.FlopCounterMode`` plus the attention it cannot see.

``FlopCounterMode`` counts matmuls and convolutions (2 FLOPs per MAC) at the aten level. Whether it sees
``F.scaled_dot_product_attention`` depends on the kernel the backend picks: on the CPU in torch 2.13 a
4-D call dispatches to ``aten._scaled_dot_product_flash_attention_for_cpu``, which has no FLOP formula
and counts 0, while a 3-D call decomposes into two ``bmm`` and is counted. ``count_flops`` therefore
records every attention kernel that reaches the dispatcher without a formula and adds the analytic term
``2·B·h·Nq·Nk·(E + Ev)`` for it (= 4·B·Nq·Nk·C for C = h·E = h·Ev; docs/design.md §3), so nothing is counted
twice. FFTs, softmax and element-wise ops are not counted (the number of FFT calls is reported).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, flop_registry

FLOPS_NOTE = (
    "FlopCounterMode (2 FLOPs per MAC: mm/bmm/addmm/conv) + analytic 4·B·Nq·Nk·C for attention kernels "
    "the counter has no formula for; FFTs, softmax and element-wise ops are not counted"
)

_FFT_OPS = ("_fft_r2c", "_fft_c2c", "_fft_c2r")


class _UncountedOps(TorchDispatchMode):
    """Records attention kernels without a FLOP formula, and FFT calls, as they pass the dispatcher."""

    def __init__(self) -> None:
        super().__init__()
        self.sdpa_calls: list[dict[str, Any]] = []
        self.fft_calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if "attention" in name and "backward" not in name and func.overloadpacket not in flop_registry:
            q, k, v = args[0], args[1], args[2]
            self.sdpa_calls.append(_sdpa_call(str(func), q.shape, k.shape, v.shape))
        elif name in _FFT_OPS:
            self.fft_calls += 1
        return func(*args, **(kwargs or {}))


def _sdpa_call(op: str, q: torch.Size, k: torch.Size, v: torch.Size) -> dict[str, Any]:
    """Analytic FLOPs of softmax(Q·Kᵀ)·V for q (..., Nq, E), k (..., Nk, E), v (..., Nk, Ev)."""
    batch = 1
    for d in q[:-2]:  # leading dims: (B, h) or (B,)
        batch *= int(d)
    nq, e, nk, ev = int(q[-2]), int(q[-1]), int(k[-2]), int(v[-1])
    flops = 2 * batch * nq * nk * e + 2 * batch * nq * nk * ev  # Q·Kᵀ + P·V
    return {"op": op, "q": list(q), "k": list(k), "v": list(v), "flops": flops}


def _by_top_level_child(counts: dict[str, dict[Any, int]], root: str) -> dict[str, int]:
    """Sum the counter's per-module FLOPs by top-level child of ``root``.

    The counter names modules by call path (``Root.child.sub``); containers that are never called
    (``ModuleList``/``ModuleDict``) have no entry, so the outermost called modules under each child are
    summed.
    """
    keys = [k for k in counts if k.startswith(root + ".")]
    outermost = [k for k in keys if not any(k.startswith(o + ".") for o in keys)]
    by_child: dict[str, int] = {}
    for key in outermost:
        child = key.split(".")[1]
        by_child[child] = by_child.get(child, 0) + int(sum(counts[key].values()))
    return by_child


def count_flops(model: nn.Module, example_input: torch.Tensor) -> dict[str, Any]:
    """FLOPs of one inference forward (eval mode, ``torch.no_grad``) of ``model`` on ``example_input``.

    Returns ``{"counted": int, "sdpa_analytic": int, "total": int, "by_op": {aten op: FLOPs},
    "by_child": {top-level child: counted FLOPs}, "sdpa_uncounted_calls": [{op, q, k, v, flops}],
    "fft_calls": int, "tool": str, "note": str}``.
    """
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    recorder = _UncountedOps()
    try:
        with torch.no_grad(), counter, recorder:
            model(example_input)
    finally:
        model.train(was_training)
    counts = counter.get_flop_counts()
    by_op = {str(op): int(n) for op, n in counts.get("Global", {}).items()}
    by_child = _by_top_level_child(counts, type(model).__name__)
    counted = int(counter.get_total_flops())
    sdpa = sum(c["flops"] for c in recorder.sdpa_calls)
    return {
        "counted": counted,
        "sdpa_analytic": sdpa,
        "total": counted + sdpa,
        "by_op": by_op,
        "by_child": by_child,
        "sdpa_uncounted_calls": recorder.sdpa_calls,
        "fft_calls": recorder.fft_calls,
        "tool": f"torch.utils.flop_counter.FlopCounterMode (torch {torch.__version__})",
        "note": FLOPS_NOTE,
    }
