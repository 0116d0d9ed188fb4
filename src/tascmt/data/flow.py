"""Classical motion-compensated slice interpolation: the "flow midpoint" reference.

The product synthesises the missing middle slice between two neighbouring slices of a thick-slice scan
(``lo`` = X1 below, ``hi`` = X3 above). The plain reference is the linear average ``(lo + hi) / 2``; this
module provides the stronger classical one: TV-L1 optical flow between the two inputs
(:func:`skimage.registration.optical_flow_tvl1`), each slice carried halfway towards the other along the
flow, and the two averaged. Pure NumPy / SciPy / scikit-image, no torch.

Conventions (all coordinates are (row, col) = (y, x) in pixels; vector component 0 is y, 1 is x):

- **Flow.** :func:`estimate_flow` returns ``v`` of shape (2, H, W) with ``hi(p + v(p)) ≈ lo(p)``: the
  structure seen at ``p`` in ``lo`` is found at ``p + v(p)`` in ``hi``. A blob at x = 40 in ``lo`` and
  x = 50 in ``hi`` gives ``v_x ≈ +10``. (This is skimage's ``optical_flow_tvl1(reference=lo, moving=hi)``.)
- **Midpoint.** Constant velocity between the slices: a point at ``p`` in ``lo`` is at ``p + v(p)/2`` in
  the middle slice and at ``p + v(p)`` in ``hi``. For every output pixel ``q`` we look for the trajectory
  through it, i.e. the half displacement ``u(q)`` with ``q = p + v(p)/2`` and ``p = q − u(q)``, so
  ``u(q) = v(q − u(q)) / 2``; then::

      mid(q) = ( lo(q − u(q)) + hi(q + u(q)) ) / 2

  By default ``u(q) = v(q) / 2``: the flow is smooth, so the flow at ``q`` stands in for the flow at the
  trajectory's origin. ``FlowParams.midpoint_iters > 0`` instead solves ``u = v(q − u) / 2`` by that many
  fixed-point steps from ``v(q) / 2``; on a pure translation both are identical, and on the MNI152 T1
  template (±1 mm and ±2 mm neighbours) and on synthetic deformations the refinement changed PSNR by less
  than ±0.1 dB on MRI (and lost up to 0.4 dB on strong synthetic deformations), so it is off.
- **Units.** The flow is estimated on the pair scaled to [0, 1] by a robust joint min/max of both inputs
  (their 0.5 / 99.5 percentiles by default, clipped), so HU or arbitrary MRI units do not matter; the
  warp is applied to the original-unit slices and the midpoint is returned in the input's units.
- **Sampling.** Bilinear (``scipy.ndimage.map_coordinates``, order 1, mode ``"nearest"``: samples that
  fall outside the slice take the nearest edge value).

A constant pair (``max − min < eps`` over both slices) returns the linear average and a zero flow without
running TV-L1. NaN / inf, shape mismatches or non-2-D slices raise :class:`ValueError`. Inputs are never
modified.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields

import numpy as np
from scipy import ndimage as ndi

from tascmt.errors import ConfigError

__all__ = [
    "CONSTANT_EPS",
    "FlowMidpoint",
    "FlowParams",
    "estimate_flow",
    "flow_midpoint",
    "flow_midpoints",
    "half_displacement",
    "warp_masks_halfway",
]

CONSTANT_EPS = 1e-6
"""A pair whose joint ``max − min`` is below this is constant: no flow is estimated."""


@dataclass(frozen=True)
class FlowParams:
    """TV-L1 parameters and the intensity scaling used before flow estimation.

    Defaults (chosen by measurement: mid-slice PSNR on the MNI152 T1 template with the neighbours at ±1 and
    ±2 mm, and on deformed synthetic / natural 512² images):

    - ``attachment=15.0``, ``tightness=0.3``, ``num_warp=5``, ``num_iter=10``, ``tol=1e-4``,
      ``prefilter=False`` – scikit-image's TV-L1 defaults. On the template they gave +2.3 dB over linear;
      attachment 5 or 30, tightness 0.1 or more warps/iterations were equal or worse (down to +1.0 dB),
      the median prefilter was within 0.05 dB.
    - ``downscale=False`` – when True the flow is estimated on the pair reduced 2× (one Gaussian pyramid
      step) and upsampled bilinearly (values doubled): 3–4× faster, equal on smooth images but 0.1–0.35 dB
      worse on fine-textured 512² images, so it is off by default (an option for large slices).
    - ``low_pct=0.5``, ``high_pct=99.5`` – the robust joint min/max that scales the pair to [0, 1].
    - ``midpoint_iters=0`` – the plain half flow ``v(q) / 2``; the trajectory refinement brought no
      measurable gain.

    Attributes:
        attachment: TV-L1 data-term weight (smaller = smoother flow).
        tightness: TV-L1 coupling between the data and regularisation terms.
        num_warp: times the moving slice is re-warped per pyramid level.
        num_iter: fixed-point iterations per warp.
        tol: stopping tolerance of the solver.
        prefilter: median-filter the flow before each warp.
        downscale: estimate the flow at half resolution (faster on large slices; ignored below 32 px).
        low_pct, high_pct: percentiles of the two inputs that map to 0 and 1 before estimation.
        midpoint_iters: fixed-point refinements of the half displacement (0 = plain ``v(q)/2``).
    """

    attachment: float = 15.0
    tightness: float = 0.3
    num_warp: int = 5
    num_iter: int = 10
    tol: float = 1e-4
    prefilter: bool = False
    downscale: bool = False
    low_pct: float = 0.5
    high_pct: float = 99.5
    midpoint_iters: int = 0

    def __post_init__(self) -> None:
        try:  # normalise types (values may come from JSON / YAML)
            for name, kind in (("attachment", float), ("tightness", float), ("num_warp", int),
                               ("num_iter", int), ("tol", float), ("prefilter", bool), ("downscale", bool),
                               ("low_pct", float), ("high_pct", float), ("midpoint_iters", int)):
                value = getattr(self, name)
                if kind is int and float(value) != int(value):
                    raise ValueError(f"{name} must be an integer, got {value!r}")
                if kind is bool and not isinstance(value, bool | np.bool_) and value not in (0, 1):
                    raise ValueError(f"{name} must be a boolean, got {value!r}")
                object.__setattr__(self, name, kind(value))
        except (TypeError, ValueError, OverflowError) as err:
            raise ConfigError(f"invalid FlowParams value: {err}") from err
        for name in ("attachment", "tightness"):
            if not float(getattr(self, name)) > 0:
                raise ConfigError(f"FlowParams.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("num_warp", "num_iter"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"FlowParams.{name} must be >= 1, got {getattr(self, name)!r}")
        if not float(self.tol) >= 0:
            raise ConfigError(f"FlowParams.tol must be >= 0, got {self.tol!r}")
        if int(self.midpoint_iters) < 0:
            raise ConfigError(f"FlowParams.midpoint_iters must be >= 0, got {self.midpoint_iters!r}")
        if not 0.0 <= float(self.low_pct) < float(self.high_pct) <= 100.0:
            raise ConfigError(
                f"FlowParams needs 0 <= low_pct < high_pct <= 100, got {self.low_pct!r}, {self.high_pct!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FlowParams:
        """Rebuild from :meth:`to_dict`; missing keys take the defaults, unknown keys are an error."""
        if not isinstance(d, dict):
            raise ConfigError(f"not a FlowParams dict: {d!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown FlowParams keys {unknown}; known: {sorted(known)}")
        return cls(**d)


@dataclass(frozen=True)
class FlowMidpoint:
    """Result of :func:`flow_midpoint` (or, stacked along a leading batch axis, :func:`flow_midpoints`).

    Attributes:
        image: (H, W) float32 synthesised middle slice, in the inputs' units.
        flow: (2, H, W) float32 ``v`` with ``hi(p + v(p)) ≈ lo(p)`` (components y, x).
    """

    image: np.ndarray
    flow: np.ndarray


# -- input checks ------------------------------------------------------------------------------------------
def _as_slice(x, name: str) -> np.ndarray:
    """A float64 copy of a 2-D finite real slice (the caller's array is never touched)."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D slice (H, W), got shape {arr.shape}")
    if min(arr.shape) < 2:
        raise ValueError(f"{name} must be at least 2×2, got shape {arr.shape}")
    arr = np.array(arr, dtype=np.float64, copy=True)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return arr


def _check_pair(lo, hi) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_slice(lo, "lo"), _as_slice(hi, "hi")
    if a.shape != b.shape:
        raise ValueError(f"lo and hi must have the same shape, got {a.shape} and {b.shape}")
    return a, b


def _is_constant(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(max(a.max(), b.max()) - min(a.min(), b.min()) < CONSTANT_EPS)


def _scale_pair(a: np.ndarray, b: np.ndarray, params: FlowParams) -> tuple[np.ndarray, np.ndarray]:
    """Both slices mapped to [0, 1] by the joint ``low_pct`` / ``high_pct`` percentiles (clipped).

    When the percentiles coincide (e.g. a small object on a flat background) the plain joint min/max is used.
    """
    both = np.concatenate([a.ravel(), b.ravel()])
    x0, x1 = np.percentile(both, [params.low_pct, params.high_pct])
    if x1 - x0 < CONSTANT_EPS:
        x0, x1 = both.min(), both.max()
    scale = 1.0 / (x1 - x0)
    return (np.clip((a - x0) * scale, 0.0, 1.0).astype(np.float32),
            np.clip((b - x0) * scale, 0.0, 1.0).astype(np.float32))


# -- flow --------------------------------------------------------------------------------------------------
def _tvl1(ref: np.ndarray, mov: np.ndarray, params: FlowParams) -> np.ndarray:
    from skimage.registration import optical_flow_tvl1

    return optical_flow_tvl1(ref, mov, attachment=float(params.attachment), tightness=float(params.tightness),
                             num_warp=int(params.num_warp), num_iter=int(params.num_iter),
                             tol=float(params.tol), prefilter=bool(params.prefilter), dtype=np.float32)


def _tvl1_downscaled(ref: np.ndarray, mov: np.ndarray, params: FlowParams) -> np.ndarray:
    """TV-L1 on the pair reduced 2×, the flow resized back to full resolution (values scaled to match)."""
    from skimage.transform import pyramid_reduce, resize

    small = [pyramid_reduce(x, 2, channel_axis=None).astype(np.float32) for x in (ref, mov)]
    v = _tvl1(small[0], small[1], params)
    shape = ref.shape
    out = np.empty((2, *shape), dtype=np.float32)
    for k in range(2):
        factor = shape[k] / v.shape[1 + k]
        out[k] = resize(v[k], shape, order=1, mode="edge", anti_aliasing=False) * factor
    return out


def estimate_flow(lo, hi, params: FlowParams | None = None) -> np.ndarray:
    """TV-L1 optical flow between two slices.

    Args:
        lo: (H, W) lower slice (any real units).
        hi: (H, W) upper slice, same shape.
        params: solver parameters and intensity scaling (default :class:`FlowParams`).
    Returns:
        (2, H, W) float32 displacement ``v`` (components y, x, in pixels) such that
        ``hi(p + v(p)) ≈ lo(p)``: what sits at ``p`` in ``lo`` is found at ``p + v(p)`` in ``hi``.
        Zero for a constant pair.
    Raises:
        ValueError: non-2-D, mismatched shapes, non-numeric or non-finite input.
    """
    params = FlowParams() if params is None else params
    a, b = _check_pair(lo, hi)
    return _flow_checked(a, b, params)


def _flow_checked(a: np.ndarray, b: np.ndarray, params: FlowParams) -> np.ndarray:
    if _is_constant(a, b):
        return np.zeros((2, *a.shape), dtype=np.float32)
    a01, b01 = _scale_pair(a, b, params)
    solver = _tvl1_downscaled if params.downscale and min(a.shape) >= 32 else _tvl1
    # skimage: optical_flow_tvl1(reference, moving) → v with moving(p + v) ≈ reference(p)
    return np.ascontiguousarray(solver(a01, b01, params), dtype=np.float32)


# -- warping -----------------------------------------------------------------------------------------------
def _grid(shape: tuple[int, int]) -> np.ndarray:
    yy, xx = np.meshgrid(np.arange(shape[0], dtype=np.float64), np.arange(shape[1], dtype=np.float64),
                         indexing="ij")
    return np.stack([yy, xx])


def _sample(img: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Bilinear sample of ``img`` at (2, H, W) coordinates; outside points take the nearest edge value."""
    return ndi.map_coordinates(img, coords, order=1, mode="nearest")


def half_displacement(flow, iters: int = FlowParams.midpoint_iters) -> np.ndarray:
    """The half displacement ``u`` of the midpoint construction, (2, H, W) float64.

    ``u(q) = v(q − u(q)) / 2`` solved by ``iters`` fixed-point steps from ``u = v(q) / 2``; the middle slice
    at ``q`` then sees ``lo`` at ``q − u(q)`` and ``hi`` at ``q + u(q)``.

    Args:
        flow: (2, H, W) ``v`` as returned by :func:`estimate_flow`.
        iters: fixed-point refinements (0 = plain ``v(q) / 2``).
    """
    v = np.asarray(flow, dtype=np.float64)
    if v.ndim != 3 or v.shape[0] != 2:
        raise ValueError(f"flow must have shape (2, H, W), got {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("flow contains NaN or inf values")
    u = 0.5 * v
    if iters > 0 and np.any(v):
        grid = _grid(v.shape[1:])
        for _ in range(int(iters)):
            src = grid - u
            u = 0.5 * np.stack([_sample(v[0], src), _sample(v[1], src)])
    return u


def _warp_pair_halfway(a: np.ndarray, b: np.ndarray, u: np.ndarray) -> np.ndarray:
    grid = _grid(a.shape)
    return 0.5 * (_sample(a, grid - u) + _sample(b, grid + u))


def flow_midpoint(lo, hi, params: FlowParams | None = None) -> FlowMidpoint:
    """Synthesise the middle slice between ``lo`` and ``hi`` by motion-compensated interpolation.

    Estimates ``v`` (:func:`estimate_flow`), then ``mid(q) = (lo(q − u(q)) + hi(q + u(q))) / 2`` with the
    half displacement ``u ≈ v / 2`` along the trajectory through ``q`` (:func:`half_displacement`). A blob
    at x = 40 in ``lo`` and x = 50 in ``hi`` comes out centred at x = 45.

    Args:
        lo: (H, W) lower slice (X1).
        hi: (H, W) upper slice (X3), same shape.
        params: default :class:`FlowParams`.
    Returns:
        :class:`FlowMidpoint` with ``image`` (H, W) float32 in the inputs' units and ``flow`` (2, H, W).
        A constant pair gives the linear average and a zero flow.
    Raises:
        ValueError: non-2-D, mismatched shapes, non-numeric or non-finite input.
    """
    params = FlowParams() if params is None else params
    a, b = _check_pair(lo, hi)
    if _is_constant(a, b):
        return FlowMidpoint(image=(0.5 * (a + b)).astype(np.float32),
                            flow=np.zeros((2, *a.shape), dtype=np.float32))
    v = _flow_checked(a, b, params)
    u = half_displacement(v, params.midpoint_iters)
    return FlowMidpoint(image=_warp_pair_halfway(a, b, u).astype(np.float32), flow=v)


def flow_midpoints(lo_stack, hi_stack, params: FlowParams | None = None,
                   progress: bool = False) -> FlowMidpoint:
    """:func:`flow_midpoint` over (B, H, W) stacks of slice pairs.

    Returns:
        :class:`FlowMidpoint` with ``image`` (B, H, W) float32 and ``flow`` (B, 2, H, W) float32.
    Raises:
        ValueError: stacks that are not 3-D or differ in shape, or any invalid pair.
    """
    params = FlowParams() if params is None else params
    los, his = np.asarray(lo_stack), np.asarray(hi_stack)
    if los.ndim != 3 or his.ndim != 3:
        raise ValueError(f"stacks must be (B, H, W), got shapes {los.shape} and {his.shape}")
    if los.shape != his.shape:
        raise ValueError(f"lo and hi stacks must have the same shape, got {los.shape} and {his.shape}")
    n, h, w = los.shape
    images = np.empty((n, h, w), dtype=np.float32)
    flows = np.empty((n, 2, h, w), dtype=np.float32)
    indices: Iterable[int] = range(n)
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, total=n, desc="flow midpoint", unit="pair")
    for i in indices:
        res = flow_midpoint(los[i], his[i], params)
        images[i], flows[i] = res.image, res.flow
    return FlowMidpoint(image=images, flow=flows)


def warp_masks_halfway(m_lo, m_hi, flow, iters: int = FlowParams.midpoint_iters) -> np.ndarray:
    """Carry two masks (or probability maps) halfway along ``flow`` and average them.

    The same construction as the image midpoint: ``p(q) = (m_lo(q − u(q)) + m_hi(q + u(q))) / 2``, bilinear
    sampling, so the result is a probability map in [0, 1] (threshold at 0.5 for a hard mask). Use the
    ``flow`` returned by :func:`flow_midpoint` for the same slice pair and the same ``iters`` as its
    ``params.midpoint_iters``. For multi-label segmentations pass one-hot channels.

    Args:
        m_lo: (H, W) or (C, H, W) mask of ``lo``: booleans, 0/1 or probabilities in [0, 1].
        m_hi: same shape, mask of ``hi``.
        flow: (2, H, W) from :func:`estimate_flow` / :func:`flow_midpoint`.
        iters: fixed-point refinements of the half displacement.
    Returns:
        float32 probabilities with the masks' shape.
    Raises:
        ValueError: shape mismatch, non-finite values or values outside [0, 1].
    """
    a, b = np.asarray(m_lo), np.asarray(m_hi)
    if a.shape != b.shape:
        raise ValueError(f"m_lo and m_hi must have the same shape, got {a.shape} and {b.shape}")
    if a.ndim not in (2, 3):
        raise ValueError(f"masks must be (H, W) or (C, H, W), got shape {a.shape}")
    v = np.asarray(flow)
    if v.shape != (2, *a.shape[-2:]):
        raise ValueError(
            f"flow must have shape {(2, *a.shape[-2:])} for masks of shape {a.shape}, got {v.shape}")
    for name, m in (("m_lo", a), ("m_hi", b)):
        if m.dtype.kind not in "biuf":
            raise ValueError(f"{name} must be a real numeric array, got dtype {m.dtype}")
        if m.size and not (np.isfinite(m).all() and m.min() >= 0 and m.max() <= 1):
            raise ValueError(f"{name} must hold values in [0, 1] (binary mask or probabilities)")
    u = half_displacement(v, iters)
    a3 = a.reshape(-1, *a.shape[-2:]).astype(np.float64)
    b3 = b.reshape(-1, *b.shape[-2:]).astype(np.float64)
    out = np.stack([_warp_pair_halfway(x, y, u) for x, y in zip(a3, b3)])
    return np.clip(out, 0.0, 1.0).astype(np.float32).reshape(a.shape)
