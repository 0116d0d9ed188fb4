"""tascmt.evaluation.metrics: per-image metrics (docs/design.md §7).

``image`` and ``seg`` are pure NumPy/scikit-image on arrays. LPIPS (``lpips``) needs torch; its names
(``Lpips``, ``load_lpips``, ``lpips_available``, ``lpips_value``) are imported lazily from here, so
importing the NumPy metrics never imports torch.
"""

from __future__ import annotations

from tascmt.evaluation.metrics.image import edge_mask, edge_ssim, psnr, ssim, ssim_uniform
from tascmt.evaluation.metrics.seg import (
    aggregate_counts,
    confusion,
    metrics_from_counts,
    seg_metrics,
    seg_metrics_frames,
    tcs,
    tcs_fg,
)

_LPIPS_NAMES = ("Lpips", "load_lpips", "lpips_available", "lpips_value", "find_vgg_weights")


def __getattr__(name: str):
    if name in _LPIPS_NAMES:
        from tascmt.evaluation.metrics import lpips

        return getattr(lpips, name)
    raise AttributeError(f"module 'tascmt.evaluation.metrics' has no attribute {name!r}")


__all__ = [
    "Lpips", "aggregate_counts", "confusion", "edge_mask", "edge_ssim", "find_vgg_weights", "load_lpips",
    "lpips_available", "lpips_value", "metrics_from_counts", "psnr", "seg_metrics", "seg_metrics_frames",
    "ssim", "ssim_uniform", "tcs", "tcs_fg",
]
