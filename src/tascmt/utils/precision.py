"""Inference precision: ``fp32`` (default), ``bf16`` or ``auto`` (detect the hardware, say what it chose).

On the CPU nothing autocasts by default: bf16 matrix work is hundreds of times slower than fp32 on CPUs
without bf16 units, and only about 1.3× faster for this network even on CPUs with AMX (its FFTs and
element-wise work stay fp32). ``auto`` therefore picks bf16 on the CPU only where AMX tiles exist, and on
CUDA where the GPU supports bf16 (fp16 otherwise). The FFT blocks always compute in fp32 whatever is chosen.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tascmt.errors import ConfigError

PRECISIONS = ("fp32", "bf16", "auto")


def cpu_flags() -> set[str]:
    """CPU feature flags from /proc/cpuinfo (empty where it does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def resolve_precision(name: str, device: str | torch.device = "cpu") -> tuple[torch.dtype | None, str]:
    """(autocast dtype or None for fp32, a one-line explanation of the choice)."""
    if name not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {name!r}")
    dev = torch.device(device)
    if name == "fp32":
        return None, "fp32"
    if name == "bf16":
        return torch.bfloat16, "bf16 autocast (FFT blocks in fp32)"
    if dev.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16, "auto: bf16 autocast (the GPU supports bf16)"
        return torch.float16, "auto: fp16 autocast (the GPU has no bf16)"
    flags = cpu_flags()
    if "amx_bf16" in flags:
        return torch.bfloat16, "auto: bf16 autocast (the CPU has AMX bf16 tiles)"
    why = "avx512_bf16 only, no AMX" if "avx512_bf16" in flags else "no bf16 matrix units"
    return None, f"auto: fp32 (the CPU has {why}; bf16 would not be faster)"
