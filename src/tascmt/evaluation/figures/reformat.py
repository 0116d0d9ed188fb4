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


def linear_thin(truth: np.ndarray) -> np.ndarray:
    """(N, X, Y) thin volume whose even slices are the inputs → odd slices replaced by the linear average."""
    out = np.array(truth, dtype=np.float32, copy=True)
    out[1:-1:2] = 0.5 * (out[0:-2:2] + out[2::2])
    return out


def plot_reformat(truth: np.ndarray, model: np.ndarray, out_png: str | os.PathLike, *,
                  spacing: tuple[float, float, float] = (1.0, 1.0, 1.0), axis: str = "coronal",
                  window: tuple[float, float] | None = None, title: str = "") -> Path:
    """Write truth / linear / model / |linear − truth| / |model − truth| for one reformatted plane.

    Args:
        truth: (N, X, Y) acquired slices (slice axis first); even slices are the inputs of the ×2 result.
        model: (N, X, Y) the ×2 prediction at the same positions.
        spacing: (slice spacing, X spacing, Y spacing) in mm, for the aspect ratio.
        axis: ``"coronal"`` (cut at the middle Y, shows X × slices) or ``"sagittal"`` (middle X).
        window: display range (default: the truth's 1st–99th percentiles).
    """
    truth = np.asarray(truth, dtype=np.float32)
    model = np.asarray(model, dtype=np.float32)
    if truth.shape != model.shape or truth.ndim != 3:
        raise ValueError(f"truth and model must be equal (N, X, Y) volumes, got {truth.shape}, {model.shape}")
    linear = linear_thin(truth)
    if axis == "coronal":
        cut = (slice(None), slice(None), truth.shape[2] // 2)
        aspect = spacing[0] / spacing[1]
    elif axis == "sagittal":
        cut = (slice(None), truth.shape[1] // 2, slice(None))
        aspect = spacing[0] / spacing[2]
    else:
        raise ValueError(f"axis must be 'coronal' or 'sagittal', got {axis!r}")
    planes = {"truth (acquired)": truth[cut], "linear": linear[cut], "model": model[cut]}  # (N, X|Y)
    lo, hi = window or tuple(np.percentile(truth[cut], [1, 99]))
    err = {"|linear − truth|": np.abs(linear[cut] - truth[cut]),
           "|model − truth|": np.abs(model[cut] - truth[cut])}
    emax = max(float(e.max()) for e in err.values()) or 1.0
    plt = _plt()
    fig, axes = plt.subplots(1, 5, figsize=(16, 4.2))
    for ax, (name, img) in zip(axes, list(planes.items()) + list(err.items())):
        is_err = name.startswith("|")
        ax.imshow(img[::-1], cmap="magma" if is_err else "gray", vmin=0 if is_err else lo,
                  vmax=emax if is_err else hi, aspect=aspect, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    default = f"{axis} reformat, {truth.shape[0]} slices (even: acquired inputs, odd: synthesised)"
    fig.suptitle(title or default, fontsize=11)
    return _save(fig, out_png)
