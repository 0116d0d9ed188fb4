"""Moved to :mod:`tascmt.evaluation.metrics.resformer`; this path re-exports its public names."""

from tascmt.evaluation.metrics.resformer import (  # noqa: F401
    MetricMeter,
    cls_metrics,
    cls_metrics_from_counts,
    confusion_counts,
    macro,
    seg_scores,
)
