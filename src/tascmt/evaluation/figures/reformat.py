"""Through-plane reformat: the picture people look at for slice interpolation.

A coronal (or sagittal) cut through an up-sampled volume shows every output slice as one row; alternating
acquired and synthesised slices make any difference between the two visible at once, which in-plane
figures hide. Rows of the figure: truth (the acquired thin slices), linear interpolation, the model, and
the absolute errors of linear and model on one shared scale.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tascmt.evaluation.figures._common import _plt, _save


def plot_reformat(truth: np.ndarray, model: np.ndarray, out_png: str | os.PathLike, *,
                  linear: np.ndarray | None = None, spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
                  axis: str = "coronal", window: tuple[float, float] | None = None, title: str = "") -> Path:
    """Write truth / linear / model / |linear − truth| / |model − truth| for one reformatted plane.

    Args:
        truth: (N, X, Y) acquired slices (slice axis first).
        model: (N, X, Y) the prediction at the same positions (synthesised rows replaced).
        linear: (N, X, Y) linear interpolation at the same positions (default: the truth, i.e. no error).
        spacing: (slice spacing, X spacing, Y spacing) in mm, for the aspect ratio.
        axis: ``"coronal"`` (a cut at fixed Y, shows X × slices) or ``"sagittal"`` (fixed X); the cut is the
            one with the most structure (largest intensity standard deviation of the truth).
        window: display range (default: the truth's 1st–99th percentiles over the plane).
    """
    truth = np.asarray(truth, dtype=np.float32)
    model = np.asarray(model, dtype=np.float32)
    linear = truth if linear is None else np.asarray(linear, dtype=np.float32)
    if truth.shape != model.shape or truth.shape != linear.shape or truth.ndim != 3:
        raise ValueError(f"truth, linear and model must be equal (N, X, Y) volumes, got {truth.shape}, "
                         f"{linear.shape}, {model.shape}")
    if axis == "coronal":
        cut = (slice(None), slice(None), int(np.argmax(truth.std(axis=(0, 1)))))
        aspect = spacing[0] / spacing[1]
    elif axis == "sagittal":
        cut = (slice(None), int(np.argmax(truth.std(axis=(0, 2)))), slice(None))
        aspect = spacing[0] / spacing[2]
    else:
        raise ValueError(f"axis must be 'coronal' or 'sagittal', got {axis!r}")
    planes = {"truth (acquired)": truth[cut], "linear": linear[cut], "model": model[cut]}  # (N, X|Y)
    lo, hi = window or tuple(float(v) for v in np.percentile(truth[cut], [1, 99]))
    err = {"|linear − truth|": np.abs(linear[cut] - truth[cut]),
           "|model − truth|": np.abs(model[cut] - truth[cut])}
    emax = max(float(e.max()) for e in err.values()) or 1.0
    plt = _plt()
    n, w = truth[cut].shape
    fig, axes = plt.subplots(5, 1, figsize=(10, 1.0 + 5 * max(0.6, 10 * n * aspect / w)))
    for ax, (name, img) in zip(axes, list(planes.items()) + list(err.items())):
        is_err = name.startswith("|")
        ax.imshow(img[::-1], cmap="magma" if is_err else "gray", vmin=0 if is_err else lo,
                  vmax=emax if is_err else hi, aspect=aspect, interpolation="nearest")
        ax.set_ylabel(name, fontsize=9, rotation=0, ha="right", va="center")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title or f"{axis} reformat, {n} slices", fontsize=11)
    return _save(fig, out_png)
