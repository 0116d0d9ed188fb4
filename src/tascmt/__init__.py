"""tascmt: joint slice interpolation and segmentation of CT and MRI (TASC-SwinMT).

Heavy modules (torch) are imported lazily, so ``import tascmt`` and ``tascmt --help`` stay fast.
"""

from __future__ import annotations

from typing import Any

from tascmt._version import __version__

__all__ = ["__version__", "create_model", "predict_volume"]


def __getattr__(name: str) -> Any:
    if name == "create_model":
        from tascmt.models import create_model

        return create_model
    if name == "predict_volume":
        from tascmt.inference import predict_volume

        return predict_volume
    raise AttributeError(f"module 'tascmt' has no attribute {name!r}")
