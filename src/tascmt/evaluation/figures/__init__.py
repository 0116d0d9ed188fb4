"""Paper-style figures as PNG files (matplotlib, Agg backend; nothing opens a window).

Every function takes arrays or paths and writes exactly one PNG, returning its path:

- `plot_loss_curves`: training and validation loss per epoch, one colour per fold/run (from CSV logs).
- `plot_metric_convergence`: a validation metric per epoch, one line per balancing strategy.
- `plot_weight_trajectories`: per-task loss weights per epoch, one panel per balancing strategy.
- `plot_interpolation_rows`: input 1 | ground truth | prediction | input 2 | error map, one row per sample.
- `plot_segmentation_overlay`: correct (TP), missed (FN) and false (FP) pixels in three colours.
- `plot_interpretability`: named intermediate maps, each normalised to [0, 1] with a blue-to-red map.
"""

from __future__ import annotations

from tascmt.evaluation.figures._common import _check_2d
from tascmt.evaluation.figures.curves import (
    METRIC_LABELS,
    TRAIN_LOSS_COLUMNS,
    TRAIN_TASK_LOSSES,
    VAL_LOSS_COLUMNS,
    _x_axis,
    plot_loss_curves,
    plot_metric_convergence,
    plot_weight_trajectories,
    read_log,
    unweighted_train_loss,
)
from tascmt.evaluation.figures.images import (
    FN_COLOUR,
    FP_COLOUR,
    TP_COLOUR,
    overlay_rgb,
    plot_interpolation_rows,
    plot_segmentation_overlay,
)
from tascmt.evaluation.figures.maps import (
    HEATMAP,
    INTERPRETABILITY_KINDS,
    plot_interpretability,
    select_interpretability_maps,
    to_map2d,
)

__all__ = [
    "FN_COLOUR", "FP_COLOUR", "HEATMAP", "INTERPRETABILITY_KINDS", "METRIC_LABELS", "TP_COLOUR",
    "TRAIN_LOSS_COLUMNS", "TRAIN_TASK_LOSSES", "VAL_LOSS_COLUMNS", "_check_2d", "_x_axis", "overlay_rgb",
    "plot_interpolation_rows", "plot_interpretability", "plot_loss_curves", "plot_metric_convergence",
    "plot_segmentation_overlay", "plot_weight_trajectories", "read_log", "select_interpretability_maps",
    "to_map2d", "unweighted_train_loss",
]
