"""predict_volume: slice counts, copy-through, interleaving, mask averaging, batching, warnings, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tascmt.errors import CheckpointError, ConfigError, InputError
from tascmt.inference import SpacingWarning, n_output_slices, predict_volume, resolve_factor

from ._helpers import LinearStandIn, dice, phantom, psnr, stand_in_predictor


@pytest.fixture(scope="module")
def thin_and_thick():
    image, mask = phantom()  # 21 slices at 1.25 mm
    return image, mask, image[..., ::2], (1.0, 1.0, 2.5)


def test_public_entry_points():
    import tascmt
    import tascmt.inference

    assert tascmt.predict_volume is tascmt.inference.predict_volume is predict_volume


def test_factor_rules():
    assert resolve_factor(None, None, 2.5) == 2
    assert resolve_factor(8, None, None) == 8
    assert resolve_factor(None, 1.0, 5.0) == 8  # 5/4 = 1.25 > 1, 5/8 ≤ 1
    assert resolve_factor(None, 1.25, 5.0) == 4
    assert resolve_factor(None, 10.0, 5.0) == 2  # always at least ×2
    for bad in (3, 1, 0, 6, 2.5, 128):
        with pytest.raises(ConfigError, match=str(bad)):
            resolve_factor(bad, None, 2.0)
    with pytest.raises(ConfigError, match="not both"):
        resolve_factor(2, 1.0, 2.0)
    with pytest.raises(ConfigError, match="target_spacing"):
        resolve_factor(None, -1.0, 2.0)
    assert [n_output_slices(11, f) for f in (2, 4, 8)] == [21, 41, 81]


def test_x2_copies_acquired_slices_and_matches_linear(thin_and_thick):
    """With a model that outputs the linear average, predict must reproduce linear interpolation."""
    thin, mask, thick, spacing = thin_and_thick
    res = predict_volume(thick, spacing, model=stand_in_predictor(size=40), progress=False)  # 40×36 → pad only
    n = thick.shape[2]
    assert res.image.shape == (*thick.shape[:2], 2 * n - 1) == thin.shape
    assert res.mask.shape == res.image.shape and res.mask.dtype == np.uint8
    assert res.spacing == (1.0, 1.0, 1.25) and res.factor == 2
    np.testing.assert_array_equal(res.image[..., ::2], thick)  # acquired slices untouched
    linear = 0.5 * (thick[..., :-1] + thick[..., 1:])
    np.testing.assert_allclose(res.image[..., 1::2], linear, rtol=1e-5, atol=1e-3)
    rng = float(thin.max() - thin.min())
    p_model, p_lin = psnr(res.image[..., 1::2], thin[..., 1::2], rng), psnr(linear, thin[..., 1::2], rng)
    assert np.isfinite(p_model) and abs(p_model - p_lin) < 0.01
    assert set(np.unique(res.mask)) <= {0, 1}
    assert dice(res.mask[..., ::2], mask[..., ::2]) > 0.85  # acquired slices
    assert dice(res.mask[..., 1::2], mask[..., 1::2]) > 0.75  # synthesised slices
    assert res.probabilities is None


def test_resize_and_restore_stays_close_to_linear(thin_and_thick):
    """A model size below the slice size: resize in, resize back; still near linear, masks aligned."""
    thin, mask, thick, spacing = thin_and_thick
    res = predict_volume(thick, spacing, model=stand_in_predictor(size=32), progress=False)
    np.testing.assert_array_equal(res.image[..., ::2], thick)
    rng = float(thin.max() - thin.min())
    linear = 0.5 * (thick[..., :-1] + thick[..., 1:])
    p_model, p_lin = psnr(res.image[..., 1::2], thin[..., 1::2], rng), psnr(linear, thin[..., 1::2], rng)
    assert p_model > p_lin - 3.0
    assert dice(res.mask[..., 1::2], mask[..., 1::2]) > 0.7


def test_mask_probabilities_of_acquired_slices_are_averaged():
    """Acquired interior slice: mean of Ŷ3 (pair below) and Ŷ1 (pair above); ends keep their single one."""
    vol = np.random.default_rng(0).normal(size=(20, 20, 6)).astype(np.float32)
    model = LinearStandIn(img_size=16, fixed_probs=(0.2, 0.9, 0.7))
    res = predict_volume(vol, (1, 1, 3), model=stand_in_predictor(model, size=16, label_id=3),
                         return_probabilities=True, batch_size=4, progress=False)
    p = res.probabilities
    assert p.dtype == np.float32 and p.shape == (20, 20, 11)
    np.testing.assert_allclose(p[..., 1::2], 0.9, atol=1e-6)  # synthesised: Ŷ2
    np.testing.assert_allclose(p[..., 2:-1:2], 0.45, atol=1e-6)  # interior acquired: (0.7 + 0.2) / 2
    np.testing.assert_allclose(p[..., 0], 0.2, atol=1e-6)  # first slice: Ŷ1 of pair (0, 1)
    np.testing.assert_allclose(p[..., -1], 0.7, atol=1e-6)  # last slice: Ŷ3 of the last pair
    np.testing.assert_array_equal(res.mask, np.where(p > 0.5, 3, 0))  # checkpoint label id
    res4 = predict_volume(vol, (1, 1, 3), model=stand_in_predictor(model, size=16), factor=4,
                          return_probabilities=True, progress=False)
    p4 = res4.probabilities  # a slice keeps the probability of the level that created it
    np.testing.assert_allclose(p4[..., 4:-1:4], 0.45, atol=1e-6)  # acquired: level-1 average
    np.testing.assert_allclose(p4[..., 2::4], 0.9, atol=1e-6)  # level 1: Ŷ2
    np.testing.assert_allclose(p4[..., 1::2], 0.9, atol=1e-6)  # level 2: Ŷ2
    assert p4[..., 0].mean() == pytest.approx(0.2) and p4[..., -1].mean() == pytest.approx(0.7)


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_batching_does_not_change_results_and_bounds_batches(thin_and_thick, batch_size):
    _, _, thick, spacing = thin_and_thick
    ref = predict_volume(thick, spacing, model=stand_in_predictor(), return_probabilities=True, progress=False)
    model = LinearStandIn()
    res = predict_volume(thick, spacing, model=stand_in_predictor(model), batch_size=batch_size,
                         return_probabilities=True, progress=False)
    assert max(model.batch_sizes) <= batch_size
    assert sum(model.batch_sizes) == thick.shape[2] - 1  # every pair exactly once
    np.testing.assert_array_equal(res.mask, ref.mask)
    np.testing.assert_allclose(res.probabilities, ref.probabilities, atol=1e-6)
    np.testing.assert_allclose(res.image, ref.image, atol=1e-4)


def test_factor_4_recurses_and_keeps_every_level(thin_and_thick):
    _, _, thick, spacing = thin_and_thick
    n = thick.shape[2]
    model = LinearStandIn(img_size=40)
    res = predict_volume(thick, spacing, model=stand_in_predictor(model, size=40), factor=4, progress=False)
    assert res.image.shape[2] == res.mask.shape[2] == 4 * (n - 1) + 1
    assert res.spacing[2] == pytest.approx(2.5 / 4)
    assert sum(model.batch_sizes) == (n - 1) + 2 * (n - 1)  # level 1: n−1 pairs, level 2: 2(n−1)
    np.testing.assert_array_equal(res.image[..., ::4], thick)
    # linear stand-in: every level is the linear average, so slice k of 4 is at (4−k)/4·lo + k/4·hi
    lo, hi = thick[..., :-1], thick[..., 1:]
    np.testing.assert_allclose(res.image[..., 1::4], 0.75 * lo + 0.25 * hi, rtol=1e-4, atol=1e-2)
    by_target = predict_volume(thick, spacing, model=stand_in_predictor(), target_spacing=0.7, progress=False)
    assert by_target.factor == 4 and by_target.image.shape == res.image.shape


def test_slice_axis_follows_spacing_and_override():
    vol = np.random.default_rng(1).normal(size=(18, 24, 20)).astype(np.float32)
    res = predict_volume(vol, (3.0, 0.8, 0.8), model=stand_in_predictor(), progress=False)
    assert res.slice_axis == 0 and res.image.shape == (35, 24, 20) and res.spacing == (1.5, 0.8, 0.8)
    np.testing.assert_array_equal(res.image[::2], vol)
    res = predict_volume(vol, (3.0, 0.8, 0.8), model=stand_in_predictor(), slice_axis=2, progress=False)
    assert res.image.shape == (18, 24, 39) and res.spacing == (3.0, 0.8, 0.4)
    # A checkpoint whose data was prepared with an explicit slice axis brings it along.
    predictor = stand_in_predictor()
    predictor.slice_axis = 2
    res = predict_volume(vol, (3.0, 0.8, 0.8), model=predictor, progress=False)
    assert res.slice_axis == 2 and res.image.shape == (18, 24, 39)


def test_gap_mismatch_warns_once_naming_both_spacings(thin_and_thick):
    _, _, thick, _ = thin_and_thick
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predict_volume(thick, (1, 1, 5.0), model=stand_in_predictor(gap_mm=1.25), progress=False)
    msgs = [str(w.message) for w in caught if issubclass(w.category, SpacingWarning)]
    assert len(msgs) == 1 and "5 mm" in msgs[0] and "2.5 mm" in msgs[0] and "\n" not in msgs[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpacingWarning)
        predict_volume(thick, (1, 1, 2.6), model=stand_in_predictor(gap_mm=1.25), progress=False)  # within 0.25


def test_single_task_variants(thin_and_thick):
    _, _, thick, spacing = thin_and_thick
    interp_only = stand_in_predictor(LinearStandIn(tasks=("interp",)))
    with pytest.raises(CheckpointError, match="cannot produce mask"):
        predict_volume(thick, spacing, model=interp_only, progress=False)
    res = predict_volume(thick, spacing, model=interp_only, outputs=("image",), factor=4, progress=False)
    assert res.mask is None and res.image.shape[2] == 4 * (thick.shape[2] - 1) + 1
    seg_only = stand_in_predictor(LinearStandIn(tasks=("seg",)))
    with pytest.raises(CheckpointError, match="cannot produce image"):
        predict_volume(thick, spacing, model=seg_only, progress=False)
    with pytest.raises(CheckpointError, match="factor 4"):
        predict_volume(thick, spacing, model=seg_only, outputs=("mask",), factor=4, progress=False)
    res = predict_volume(thick, spacing, model=seg_only, outputs=("mask",), progress=False)
    assert res.image is None and res.mask.shape[2] == 2 * thick.shape[2] - 1


@pytest.mark.parametrize(
    ("shape", "match"),
    [((30, 30, 1), "at least 2"), ((8, 30, 6), "too small"), ((30, 30), "3D")],
)
def test_bad_volumes(shape, match):
    vol = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    with pytest.raises(InputError, match=match):
        predict_volume(vol, None, model=stand_in_predictor(), progress=False)
