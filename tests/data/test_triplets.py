from __future__ import annotations

import numpy as np
import pytest

from tascmt.data.triplets import (
    contiguous_runs,
    plan_triplets,
    resample_slices,
    resample_source_index,
    slice_axis,
)
from tascmt.errors import ConfigError


@pytest.mark.parametrize(
    ("spacing", "axis"),
    [((0.7, 0.7, 2.5), 2), ((3.0, 0.5, 0.5), 0), ((1.0, 1.0, 1.0), 2), ((1.25, 1.25, 1.37), 2),
     ((0.78, 0.78, 0.625), 2), ((0.5, 2.0, 2.0), 0), ((0.4, 0.9, 0.6), 1)],
)
def test_slice_axis(spacing, axis):
    assert slice_axis(spacing) == axis


def test_slice_axis_largest_rule_and_override():
    assert slice_axis((0.78, 0.78, 0.625), rule="largest") == 1  # ties among the largest → last of them
    assert slice_axis((0.7, 0.7, 2.5), override=0) == 0
    with pytest.raises(ConfigError, match="slice_axis"):
        slice_axis((1, 1, 1), override=3)


@pytest.mark.parametrize(
    ("dz", "step", "kept", "gap"),
    [(0.625, 2, True, 1.25), (1.25, 1, True, 1.25), (1.37, 1, True, 1.37), (2.5, 1, False, 2.5)],
)
def test_acquired_protocol(dz, step, kept, gap):
    plan = plan_triplets(20, dz, gap_mm=1.25, tol_mm=0.25)
    assert plan.step == step
    assert plan.gap_mm == pytest.approx(gap)
    assert bool(plan.triplets) == kept
    if kept:
        assert plan.triplets[0] == (0, step, 2 * step)
        assert plan.triplets[-1][2] == 19  # runs to the last slice, never past it
        assert len(plan.triplets) == 20 - 2 * step
        assert all(k1 - k0 == step and k2 - k1 == step for k0, k1, k2 in plan.triplets)


def test_tolerance_boundary():
    assert plan_triplets(10, 1.5, gap_mm=1.25, tol_mm=0.25).triplets  # |1.5 − 1.25| = 0.25 → kept
    assert not plan_triplets(10, 1.55, gap_mm=1.25, tol_mm=0.25).triplets


def test_index_protocol_ignores_spacing():
    plan = plan_triplets(6, 2.5, protocol="index")
    assert plan.step == 1 and plan.triplets == [(0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5)]


def test_never_bridges_missing_slice():
    positions = np.array([0, 1.25, 2.5, 3.75, 6.25, 7.5, 8.75, 10.0])  # slice at 5.0 mm missing
    assert [r.tolist() for r in contiguous_runs(positions)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    plan = plan_triplets(8, 1.25, positions=positions)
    assert plan.triplets == [(0, 1, 2), (1, 2, 3), (4, 5, 6), (5, 6, 7)]
    plan_index = plan_triplets(8, 1.25, protocol="index", positions=positions)
    assert (2, 3, 4) not in plan_index.triplets and (3, 4, 5) not in plan_index.triplets


def test_bad_arguments():
    with pytest.raises(ConfigError, match="protocol"):
        plan_triplets(10, 1.0, protocol="nope")
    with pytest.raises(ConfigError, match="dz"):
        plan_triplets(10, 0.0)


@pytest.mark.parametrize("dz", [0.625, 1.37, 2.5])
def test_resampled_grid_is_exact(dz):
    n, gap = 17, 1.25
    src = resample_source_index(n, dz, gap)
    z_mm = src * dz
    np.testing.assert_allclose(np.diff(z_mm), gap, atol=1e-9)
    assert src.max() <= n - 1 + 1e-9  # never extrapolates
    plan = plan_triplets(n, dz, gap_mm=gap, protocol="resampled")
    assert plan.gap_mm == gap and plan.triplets
    for k0, k1, k2 in plan.triplets:
        assert z_mm[k2] - z_mm[k0] == pytest.approx(2 * gap)  # outer frames exactly 2·gap apart
        assert z_mm[k1] == pytest.approx((z_mm[k0] + z_mm[k2]) / 2)  # target exactly in the middle
        assert k2 < len(src)


def test_resample_images_smooth_and_masks_hard():
    dz, gap, n = 2.0, 1.25, 9
    z = np.arange(n) * dz
    stack = np.broadcast_to((3.0 * z + 1.0)[:, None, None], (n, 4, 4)).astype(np.float32)  # linear in z
    src = resample_source_index(n, dz, gap)
    out = resample_slices(stack, src, is_mask=False)
    np.testing.assert_allclose(out[:, 0, 0], 3.0 * src * dz + 1.0, rtol=1e-5)  # cubic is exact on a line
    mask = np.zeros((n, 4, 4), dtype=np.uint8)
    mask[3:6] = 1
    mask[3:6, 0, 0] = 2
    m_out = resample_slices(mask, src, is_mask=True)
    assert m_out.dtype == np.uint8 and set(np.unique(m_out)) <= {0, 1, 2}
    inside = (src >= 2.5) & (src <= 5.5)  # nearest-like: within half a slice of the labelled slices
    assert (m_out[inside, 1, 1] == 1).all() and (m_out[~inside, 1, 1] == 0).all()
    assert (m_out[inside, 0, 0] == 2).all()
