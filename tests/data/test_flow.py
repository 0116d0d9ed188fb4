"""Tests of the TV-L1 flow-midpoint reference (tascmt.data.flow): conventions, edge cases, masks, quality."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage as ndi

from tascmt.data import flow as flow_mod
from tascmt.data.flow import (
    FlowMidpoint,
    FlowParams,
    estimate_flow,
    flow_midpoint,
    flow_midpoints,
    half_displacement,
    warp_masks_halfway,
)
from tascmt.errors import ConfigError


# -- helpers -----------------------------------------------------------------------------------------------
def blob(shape, cy, cx, sigma=5.0, amp=1000.0, offset=-200.0) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    return offset + amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))


def disk(shape, cy, cx, r) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def texture(n: int, seed: int = 0) -> np.ndarray:
    """Smooth random texture in HU-like units (large, not in [0, 1], to exercise the scaling)."""
    rng = np.random.default_rng(seed)
    img = ndi.gaussian_filter(rng.standard_normal((n, n)), 3.0) + 0.5 * ndi.gaussian_filter(
        rng.standard_normal((n, n)), 1.5)
    return 300.0 * img / img.std() + 40.0


def centroid_x(img: np.ndarray) -> float:
    w = np.clip(img - np.median(img), 0, None)
    return float((w * np.arange(img.shape[1])[None, :]).sum() / w.sum())


def psnr(x: np.ndarray, ref: np.ndarray, margin: int = 6) -> float:
    s = (slice(margin, -margin),) * 2
    rng = ref[s].max() - ref[s].min()
    return float(10 * np.log10(rng**2 / np.mean((x[s] - ref[s]) ** 2)))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


# -- conventions -------------------------------------------------------------------------------------------
def test_blob_translation_midpoint_centred_halfway():
    shape = (64, 96)
    lo, hi = blob(shape, 32, 40), blob(shape, 32, 50)
    res = flow_midpoint(lo, hi)
    assert isinstance(res, FlowMidpoint)
    assert res.image.shape == shape and res.image.dtype == np.float32
    assert res.flow.shape == (2, *shape) and res.flow.dtype == np.float32
    # convention: what is at p in lo is at p + v(p) in hi → v_x ≈ +10 at the blob
    assert res.flow[1, 32, 40] == pytest.approx(10.0, abs=1.0)
    assert abs(res.flow[0, 32, 40]) < 1.0
    assert centroid_x(res.image) == pytest.approx(45.0, abs=1.0)
    assert np.unravel_index(np.argmax(res.image), shape) == pytest.approx((32, 45), abs=1)
    # the midpoint is a blob, not the double-peaked linear average
    assert res.image.max() > 0.9 * lo.max()
    assert (0.5 * (lo + hi)).max() < 0.8 * lo.max()


def test_estimate_flow_convention_hi_at_p_plus_v_matches_lo():
    n = 80
    f = texture(n, seed=1)
    lo, hi = f, ndi.shift(f, (3.0, -2.0), order=3, mode="nearest")  # hi(p + (3, -2)) = lo(p)
    v = estimate_flow(lo, hi)
    inner = (slice(10, -10),) * 2
    assert v[0][inner].mean() == pytest.approx(3.0, abs=0.3)
    assert v[1][inner].mean() == pytest.approx(-2.0, abs=0.3)
    grid = np.mgrid[:n, :n].astype(np.float64)
    hi_back = ndi.map_coordinates(hi, grid + v, order=1, mode="nearest")
    assert np.sqrt(np.mean((hi_back[inner] - lo[inner]) ** 2)) < 0.05 * np.ptp(lo)


def test_textured_translation_midpoint_is_half_translation():
    n = 96
    f = texture(n, seed=2)
    lo = f
    hi = ndi.shift(f, (4.0, -6.0), order=3, mode="nearest")
    truth = ndi.shift(f, (2.0, -3.0), order=3, mode="nearest")
    res = flow_midpoint(lo, hi)
    inner = (slice(12, -12),) * 2
    assert res.flow[0][inner].mean() == pytest.approx(4.0, abs=0.3)
    assert res.flow[1][inner].mean() == pytest.approx(-6.0, abs=0.3)
    err = res.image[inner] - truth[inner]
    rng = np.ptp(truth[inner])
    assert np.sqrt(np.mean(err**2)) < 0.02 * rng
    assert np.percentile(np.abs(err), 99) < 0.08 * rng
    # linear interpolation is far worse on the same case
    lin_err = 0.5 * (lo + hi)[inner] - truth[inner]
    assert np.sqrt(np.mean(lin_err**2)) > 4 * np.sqrt(np.mean(err**2))


def test_identical_slices_give_the_slice():
    f = texture(64, seed=3)
    res = flow_midpoint(f, f.copy())
    np.testing.assert_allclose(res.image, f.astype(np.float32), atol=1e-3 * np.ptp(f))
    assert np.abs(res.flow).max() < 1e-3


def test_units_do_not_matter():
    """The flow is estimated on the robustly rescaled pair: an affine change of units changes nothing else."""
    f = texture(64, seed=4)
    lo, hi = f, ndi.shift(f, (2.0, 3.0), order=3, mode="nearest")
    a = flow_midpoint(lo, hi)
    b = flow_midpoint(0.01 * lo - 7.0, 0.01 * hi - 7.0)
    np.testing.assert_allclose(a.flow, b.flow, atol=1e-3)
    np.testing.assert_allclose(0.01 * a.image - 7.0, b.image, atol=1e-3 * 0.01 * np.ptp(f))


def test_half_displacement_refinement_agrees_on_translation():
    v = np.zeros((2, 20, 24))
    v[0], v[1] = 3.0, -5.0
    np.testing.assert_allclose(half_displacement(v), 0.5 * v)
    np.testing.assert_allclose(half_displacement(v, iters=3), 0.5 * v)
    n = 64
    f = texture(n, seed=5)
    lo, hi = f, ndi.shift(f, (0.0, 6.0), order=3, mode="nearest")
    plain = flow_midpoint(lo, hi)
    refined = flow_midpoint(lo, hi, FlowParams(midpoint_iters=3))
    inner = (slice(10, -10),) * 2
    assert np.abs(plain.image[inner] - refined.image[inner]).max() < 0.05 * np.ptp(f)


# -- edge cases --------------------------------------------------------------------------------------------
def test_constant_pair_skips_tvl1(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("TV-L1 must not run on a constant pair")

    monkeypatch.setattr(flow_mod, "_tvl1", boom)
    monkeypatch.setattr(flow_mod, "_tvl1_downscaled", boom)
    lo = np.full((32, 40), -1000.0)
    hi = lo + 1e-8
    res = flow_midpoint(lo, hi)
    assert res.image.dtype == np.float32 and res.flow.dtype == np.float32
    np.testing.assert_allclose(res.image, -1000.0)
    assert res.flow.shape == (2, 32, 40) and not res.flow.any()
    assert not estimate_flow(lo, hi).any()
    ints = flow_midpoint(np.full((8, 8), 5, dtype=np.int16), np.full((8, 8), 5, dtype=np.int16))
    np.testing.assert_array_equal(ints.image, np.full((8, 8), 5, dtype=np.float32))


def test_small_object_on_flat_background_is_not_constant():
    """Percentiles of a tiny object on a flat background coincide; the min/max fallback still tracks it."""
    lo, hi = np.zeros((48, 48)), np.zeros((48, 48))
    lo[20:23, 20:23] = 100.0
    hi[20:23, 22:25] = 100.0
    res = flow_midpoint(lo, hi)
    assert np.isfinite(res.image).all() and np.isfinite(res.flow).all()
    assert res.image.max() > 0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_raises(bad):
    lo = texture(32)
    hi = lo.copy()
    hi[5, 7] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        flow_midpoint(lo, hi)
    with pytest.raises(ValueError, match="NaN or inf"):
        estimate_flow(hi, lo)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="same shape"):
        flow_midpoint(np.zeros((32, 32)), np.zeros((32, 30)))
    with pytest.raises(ValueError, match="2-D"):
        flow_midpoint(np.zeros((2, 32, 32)), np.zeros((2, 32, 32)))
    with pytest.raises(ValueError, match="2×2"):
        estimate_flow(np.zeros((1, 32)), np.zeros((1, 32)))
    with pytest.raises(ValueError, match="numeric"):
        flow_midpoint(np.zeros((4, 4), dtype=complex), np.zeros((4, 4), dtype=complex))
    with pytest.raises(ValueError, match="same shape"):
        flow_midpoints(np.zeros((2, 8, 8)), np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        flow_midpoints(np.zeros((8, 8)), np.zeros((8, 8)))


def test_inputs_not_modified_and_read_only_inputs_work():
    f = texture(48, seed=6)
    lo, hi = f.copy(), ndi.shift(f, (1.0, 2.0), order=1, mode="nearest")
    lo0, hi0 = lo.copy(), hi.copy()
    lo.flags.writeable = False
    hi.flags.writeable = False
    res = flow_midpoint(lo, hi)
    v = estimate_flow(lo, hi)
    np.testing.assert_array_equal(lo, lo0)
    np.testing.assert_array_equal(hi, hi0)
    m_lo, m_hi = disk(lo.shape, 24, 22, 8), disk(lo.shape, 24, 26, 8)
    m_lo0, m_hi0 = m_lo.copy(), m_hi.copy()
    flow0 = res.flow.copy()
    warp_masks_halfway(m_lo, m_hi, res.flow)
    np.testing.assert_array_equal(m_lo, m_lo0)
    np.testing.assert_array_equal(m_hi, m_hi0)
    np.testing.assert_array_equal(res.flow, flow0)
    stack_lo, stack_hi = np.stack([lo0, lo0]), np.stack([hi0, hi0])
    s0 = stack_lo.copy()
    flow_midpoints(stack_lo, stack_hi)
    np.testing.assert_array_equal(stack_lo, s0)
    assert v.dtype == np.float32


# -- masks -------------------------------------------------------------------------------------------------
def test_mask_of_translated_disk_lands_halfway():
    shape = (64, 96)
    m_lo, m_hi = disk(shape, 32, 40, 12), disk(shape, 32, 50, 12)
    lo = np.where(m_lo, 800.0, -100.0) + texture(96, seed=7)[:64] * 0.05
    hi = np.where(m_hi, 800.0, -100.0) + texture(96, seed=8)[:64] * 0.05
    res = flow_midpoint(ndi.gaussian_filter(lo, 1.0), ndi.gaussian_filter(hi, 1.0))
    prob = warp_masks_halfway(m_lo, m_hi, res.flow)
    assert prob.shape == shape and prob.dtype == np.float32
    assert prob.min() >= 0.0 and prob.max() <= 1.0
    truth = disk(shape, 32, 45, 12)
    assert dice(prob >= 0.5, truth) > 0.9
    # the linear average of the masks is worse (its 0.5 level set is the union of two offset disks)
    assert dice(0.5 * (m_lo.astype(float) + m_hi) >= 0.5, truth) < dice(prob >= 0.5, truth)
    # channels: (C, H, W) one-hot masks are carried channel by channel
    both = warp_masks_halfway(np.stack([m_lo, ~m_lo]), np.stack([m_hi, ~m_hi]), res.flow)
    assert both.shape == (2, *shape)
    np.testing.assert_allclose(both[0], prob, atol=1e-6)
    np.testing.assert_allclose(both.sum(0), 1.0, atol=1e-5)


def test_mask_checks():
    flow = np.zeros((2, 16, 16), dtype=np.float32)
    m = np.zeros((16, 16))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        warp_masks_halfway(m + 2, m, flow)
    with pytest.raises(ValueError, match="same shape"):
        warp_masks_halfway(m, m[:8], flow)
    with pytest.raises(ValueError, match="flow must have shape"):
        warp_masks_halfway(m, m, flow[:, :8])
    np.testing.assert_array_equal(warp_masks_halfway(m + 1, m, flow), np.full((16, 16), 0.5, np.float32))


# -- quality -----------------------------------------------------------------------------------------------
def test_flow_midpoint_beats_linear_on_a_smooth_deformation():
    """A smooth textured slice under a smooth non-rigid deformation, sampled at −1, 0, +1 'slices'."""
    n = 96
    f = texture(n, seed=9)
    rng = np.random.default_rng(10)
    d = np.stack([ndi.gaussian_filter(rng.standard_normal((n, n)), 12.0) for _ in range(2)])
    d *= 4.0 / np.abs(d).max()
    grid = np.mgrid[:n, :n].astype(np.float64)
    lo, mid, hi = (ndi.map_coordinates(f, grid - t * d, order=3, mode="nearest") for t in (-1, 0, 1))
    res = flow_midpoint(lo, hi)
    p_flow, p_lin = psnr(res.image, mid), psnr(0.5 * (lo + hi), mid)
    assert p_flow > p_lin + 3.0, (p_flow, p_lin)
    fast = flow_midpoint(lo, hi, FlowParams(downscale=True))
    assert psnr(fast.image, mid) > p_lin + 3.0


# -- batch and params --------------------------------------------------------------------------------------
def test_flow_midpoints_matches_single_pairs():
    shape = (48, 56)
    lo = np.stack([blob(shape, 24, 20), np.full(shape, 3.0)])
    hi = np.stack([blob(shape, 24, 28), np.full(shape, 3.0)])
    res = flow_midpoints(lo, hi, progress=True)
    assert res.image.shape == (2, *shape) and res.image.dtype == np.float32
    assert res.flow.shape == (2, 2, *shape) and res.flow.dtype == np.float32
    single = flow_midpoint(lo[0], hi[0])
    np.testing.assert_array_equal(res.image[0], single.image)
    np.testing.assert_array_equal(res.flow[0], single.flow)
    np.testing.assert_array_equal(res.image[1], np.full(shape, 3.0, np.float32))
    assert not res.flow[1].any()
    empty = flow_midpoints(np.zeros((0, 8, 8)), np.zeros((0, 8, 8)))
    assert empty.image.shape == (0, 8, 8) and empty.flow.shape == (0, 2, 8, 8)


def test_flow_params_round_trip_and_validation():
    p = FlowParams()
    assert p.to_dict() == {"attachment": 15.0, "tightness": 0.3, "num_warp": 5, "num_iter": 10, "tol": 1e-4,
                           "prefilter": False, "downscale": False, "low_pct": 0.5, "high_pct": 99.5,
                           "midpoint_iters": 0}
    q = FlowParams(attachment=10, num_warp=3, downscale=True)
    assert FlowParams.from_dict(q.to_dict()) == q
    assert FlowParams.from_dict({"num_iter": 20.0}).num_iter == 20
    assert isinstance(FlowParams.from_dict({"num_iter": 20.0}).num_iter, int)
    assert FlowParams.from_dict({}) == p
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.attachment = 1.0  # type: ignore[misc]
    with pytest.raises(ConfigError, match="unknown"):
        FlowParams.from_dict({"attachement": 5})
    with pytest.raises(ConfigError):
        FlowParams.from_dict("nope")  # type: ignore[arg-type]
    for bad in ({"attachment": 0}, {"tightness": -1}, {"num_warp": 0}, {"num_iter": 2.5}, {"tol": -1},
                {"low_pct": 60, "high_pct": 40}, {"high_pct": 101}, {"midpoint_iters": -1},
                {"prefilter": "yes"}, {"attachment": "x"}, {"num_warp": float("inf")},
                {"attachment": float("nan")}):
        with pytest.raises(ConfigError):
            FlowParams(**bad)
