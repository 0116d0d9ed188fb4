"""One rule for device strings, shared by training, evaluation, inference and benchmarks."""

from __future__ import annotations

from tascmt.errors import ConfigError


def resolve_device(device: str, option: str = "device") -> str:
    """``"auto"`` → ``"cuda"`` when CUDA is available, else ``"cpu"``; ``"cpu"`` and ``"cuda[:N]"`` are
    checked (CUDA must be available) and returned unchanged. Anything else is a :class:`ConfigError`
    naming ``option`` and the value."""
    import torch

    device = str(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"{option} {device!r} requested but CUDA is not available on this machine; "
                              "use cpu")
        return device
    if device != "cpu":
        raise ConfigError(f"{option} must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    return device
