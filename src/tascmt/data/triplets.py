"""Which slices form a training triplet (X1, X2, X3): slice axis, step, gap tolerance, contiguity, resampling.

A triplet is three slice indices ``(k, k+s, k+2s)`` along the slice axis: the two outer slices are the model's
inputs and the middle one its target. ``gap_mm`` is the distance from each input frame to the target.

Protocols (docs/design.md §2):

- ``"acquired"`` (default): the target is an acquired slice. ``s = max(1, round(gap_mm / dz))``; a volume is
  kept only when ``|s·dz − gap_mm| ≤ tol_mm`` and every triplet records the actual gap ``s·dz``.
- ``"resampled"``: the volume is resampled along z to a spacing of exactly ``gap_mm`` (see
  :func:`resample_source_index` and :func:`resample_slices`); triplets are consecutive slices of that grid.
- ``"index"``: the public code's consecutive slices ``(k, k+1, k+2)``, slice spacing ignored.

No protocol bridges missing slices: when per-slice positions are given (e.g. a DICOM series with a slice
missing), triplets are built only inside contiguous runs of equally spaced slices.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tascmt.errors import ConfigError
from tascmt.io.verify import through_plane_axis

PROTOCOLS = ("acquired", "resampled", "index")

# Two neighbouring slices are contiguous when their distance is within this fraction of the nominal spacing.
CONTIGUITY_RTOL = 0.1


class TripletPlan(NamedTuple):
    """Result of :func:`plan_triplets` (unpacks as ``step, triplets, gap_mm``).

    ``triplets`` index the stored slices: the acquired slices, or for ``"resampled"`` the resampled grid.
    ``gap_mm`` is the actual distance from an input frame to the target (``s·dz``; ``gap_mm`` when
    resampled). An excluded volume has an empty ``triplets`` list.
    """

    step: int
    triplets: list[tuple[int, int, int]]
    gap_mm: float


def slice_axis(spacing, override: int | None = None, rule: str = "odd_one_out") -> int:
    """The through-plane (slice) axis of a volume with voxel sizes ``spacing`` (canonical array axes).

    The rules (``"odd_one_out"`` by default, or ``"largest"``, docs/design.md §2) are those of
    :func:`tascmt.io.verify.through_plane_axis`, which the dataset check uses too.

    Args:
        spacing: three voxel sizes in mm.
        override: an explicit axis (0, 1 or 2) that wins over the rule.
    """
    sp = np.asarray(spacing, dtype=float)
    if sp.shape != (3,) or not np.all(sp > 0):
        raise ConfigError(f"spacing must be three positive values, got {list(np.ravel(sp))}")
    if override is not None:
        if override not in (0, 1, 2):
            raise ConfigError(f"slice_axis must be 0, 1 or 2, got {override!r}")
        return int(override)
    if rule not in ("largest", "odd_one_out"):
        raise ConfigError(f"slice-axis rule must be 'largest' or 'odd_one_out', got {rule!r}")
    return through_plane_axis(sp, rule)


def contiguous_runs(positions, dz: float | None = None) -> list[np.ndarray]:
    """Split slice indices into runs whose neighbours are ``dz`` apart (within ``CONTIGUITY_RTOL``).

    Args:
        positions: (Z,) slice positions in mm along the slice axis, in index order.
        dz: nominal spacing; defaults to the median absolute neighbour distance.
    Returns:
        a list of index arrays, one per contiguous run, in order.
    """
    pos = np.asarray(positions, dtype=float)
    if pos.ndim != 1:
        raise ConfigError(f"slice positions must be 1-D, got shape {pos.shape}")
    if pos.size < 2:
        return [np.arange(pos.size)]
    diffs = np.abs(np.diff(pos))
    if dz is None:
        dz = float(np.median(diffs))
    ok = np.abs(diffs - dz) <= CONTIGUITY_RTOL * dz
    breaks = np.flatnonzero(~ok) + 1  # a new run starts after every break
    return [run for run in np.split(np.arange(pos.size), breaks) if run.size]


def _check_args(n_slices: int, dz: float, gap_mm: float, tol_mm: float, protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if n_slices < 0:
        raise ConfigError(f"n_slices must be >= 0, got {n_slices}")
    if not dz > 0:
        raise ConfigError(f"slice spacing dz must be > 0 mm, got {dz}")
    if not gap_mm > 0:
        raise ConfigError(f"gap_mm must be > 0, got {gap_mm}")
    if tol_mm < 0:
        raise ConfigError(f"tol_mm must be >= 0, got {tol_mm}")


def _runs(n_slices: int, dz: float, positions) -> list[np.ndarray]:
    if positions is None:
        return [np.arange(n_slices)]
    positions = np.asarray(positions, dtype=float)
    if positions.shape != (n_slices,):
        raise ConfigError(f"positions must have one value per slice ({n_slices}), "
                          f"got shape {positions.shape}")
    return contiguous_runs(positions, dz)


def step_for(dz: float, gap_mm: float) -> int:
    """``s = max(1, round(gap_mm / dz))`` (halves round up)."""
    return max(1, int(np.floor(gap_mm / dz + 0.5)))


def plan_triplets(
    n_slices: int,
    dz: float,
    gap_mm: float = 1.25,
    tol_mm: float = 0.25,
    protocol: str = "acquired",
    positions=None,
) -> TripletPlan:
    """Plan the triplets of one volume.

    Args:
        n_slices: number of acquired slices Z.
        dz: slice spacing in mm.
        gap_mm: wanted distance from each input frame to the target.
        tol_mm: ``"acquired"`` keeps the volume only when ``|s·dz − gap_mm| ≤ tol_mm``.
        protocol: ``"acquired"``, ``"resampled"`` or ``"index"``.
        positions: optional (Z,) slice positions in mm; triplets never cross a break in them.
    Returns:
        :class:`TripletPlan`; for ``"resampled"`` the indices refer to the grid of
        :func:`resample_source_index` with the same arguments.
    """
    _check_args(n_slices, dz, gap_mm, tol_mm, protocol)
    runs = _runs(n_slices, dz, positions)
    if protocol == "resampled":
        grid_runs = _resampled_runs(runs, dz, gap_mm)
        triplets, offset = [], 0
        for run in grid_runs:
            triplets += [(offset + j, offset + j + 1, offset + j + 2) for j in range(len(run) - 2)]
            offset += len(run)
        return TripletPlan(1, triplets, float(gap_mm))
    if protocol == "index":
        step, actual = 1, float(dz)
    else:
        step = step_for(dz, gap_mm)
        actual = step * float(dz)
        if abs(actual - gap_mm) > tol_mm + 1e-9:
            return TripletPlan(step, [], actual)
    triplets = []
    for run in runs:
        for j in range(len(run) - 2 * step):
            k = int(run[j])
            triplets.append((k, k + step, k + 2 * step))
    return TripletPlan(step, triplets, actual)


def _resampled_runs(runs: list[np.ndarray], dz: float, gap_mm: float) -> list[np.ndarray]:
    """Fractional source indices of a ``gap_mm`` grid laid over each contiguous run (starting at its first
    slice); never extrapolates past a run's last slice."""
    out = []
    for run in runs:
        extent = (len(run) - 1) * dz  # mm covered by the run
        n_new = int(np.floor(extent / gap_mm + 1e-6)) + 1 if len(run) else 0
        frac = np.arange(n_new) * (gap_mm / dz)  # (n_new,) position inside the run, in slices
        out.append(run[0] + np.minimum(frac, len(run) - 1) if len(run) else frac)
    return out


def resample_source_index(n_slices: int, dz: float, gap_mm: float, positions=None) -> np.ndarray:
    """(Z',) fractional acquired-slice index of every slice of the resampled grid (spacing ``gap_mm``).

    Consecutive grid slices are exactly ``gap_mm`` apart inside a run; runs are concatenated in order.
    """
    _check_args(n_slices, dz, gap_mm, 0.0, "resampled")
    runs = _resampled_runs(_runs(n_slices, dz, positions), dz, gap_mm)
    return np.concatenate(runs) if runs else np.zeros(0)


def resample_slices(stack: np.ndarray, src_index: np.ndarray, is_mask: bool, positions=None,
                    dz: float | None = None) -> np.ndarray:
    """Resample a slice stack along its first axis at fractional indices.

    Images use a cubic spline through the run's slices (linear when a run has fewer than 4 slices). Masks are
    resampled per label value by linear interpolation of the indicator and a threshold at 0.5, so they stay
    hard labels and are not shifted.

    Args:
        stack: (Z, H, W) slices (float for images, integer labels for masks).
        src_index: (Z',) fractional indices from :func:`resample_source_index`.
        positions, dz: the same slice positions used to plan, so no interpolation crosses a break.
    Returns:
        (Z', H, W) float32 image or uint8 mask.
    """
    from scipy.interpolate import CubicSpline

    z = stack.shape[0]
    runs = contiguous_runs(positions, dz) if positions is not None else [np.arange(z)]
    out = np.empty((len(src_index), *stack.shape[1:]), dtype=np.uint8 if is_mask else np.float32)
    for run in runs:
        sel = np.flatnonzero((src_index >= run[0] - 1e-9) & (src_index <= run[-1] + 1e-9))
        if sel.size == 0:
            continue
        f = src_index[sel]
        if is_mask:
            out[sel] = _resample_mask(stack, f)
        elif len(run) >= 4:
            spline = CubicSpline(run.astype(float), stack[run].astype(np.float32), axis=0)
            out[sel] = spline(f).astype(np.float32)
        else:
            out[sel] = _linear(stack.astype(np.float32), f)
    return out


def _linear(stack: np.ndarray, f: np.ndarray) -> np.ndarray:
    lo = np.clip(np.floor(f).astype(int), 0, stack.shape[0] - 1)
    hi = np.minimum(lo + 1, stack.shape[0] - 1)
    w = (f - lo).astype(np.float32)[:, None, None]  # (Z', 1, 1)
    return stack[lo] * (1 - w) + stack[hi] * w


def _resample_mask(stack: np.ndarray, f: np.ndarray) -> np.ndarray:
    out = np.zeros((len(f), *stack.shape[1:]), dtype=np.uint8)
    for value in np.unique(stack):
        if value == 0:
            continue
        ind = _linear((stack == value).astype(np.float32), f)
        out[ind >= 0.5] = value
    return out
