from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from tascmt.evaluation.metrics import edge_mask, edge_ssim, psnr, ssim, ssim_uniform


def _smooth_image(seed: int, shape=(48, 40)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.random(shape), 2.0)
    return (img - img.min()) / (img.max() - img.min())


def _pair(seed=0):
    gt = _smooth_image(seed)
    rng = np.random.default_rng(seed + 100)
    pred = gt + rng.normal(0, 0.05, gt.shape)  # leaves [0, 1] in places
    return pred, gt


def test_psnr_matches_skimage_on_clipped_prediction():
    pred, gt = _pair()
    expected = peak_signal_noise_ratio(gt, np.clip(pred, 0, 1), data_range=1.0)
    assert psnr(pred, gt) == pytest.approx(expected, rel=1e-12)
    assert psnr(pred, gt) != pytest.approx(peak_signal_noise_ratio(gt, pred, data_range=1.0), rel=1e-6)


def test_psnr_identical_and_cap():
    gt = _smooth_image(1)
    assert psnr(gt, gt) == 100.0
    assert psnr(gt + 1e-7, gt) == 100.0  # 10·log10(1/1e-14) = 140 dB → capped
    assert psnr(np.zeros((4, 4)), np.ones((4, 4))) == pytest.approx(0.0)


def test_ssim_matches_skimage_gaussian():
    pred, gt = _pair(2)
    expected = structural_similarity(gt, np.clip(pred, 0, 1), data_range=1.0, gaussian_weights=True,
                                     sigma=1.5, use_sample_covariance=False)
    assert ssim(pred, gt) == pytest.approx(expected, rel=1e-12)
    assert ssim(gt, gt) == pytest.approx(1.0)
    assert ssim(pred, gt) < 0.99


def test_ssim_uniform_is_the_11x11_box_window():
    pred, gt = _pair(3)
    expected = structural_similarity(gt, np.clip(pred, 0, 1), data_range=1.0, win_size=11)
    assert ssim_uniform(pred, gt) == pytest.approx(expected, rel=1e-12)
    assert ssim_uniform(pred, gt) != pytest.approx(ssim(pred, gt), rel=1e-6)
    assert ssim_uniform(gt, gt) == pytest.approx(1.0)


def test_edge_ssim_is_mean_of_ssim_map_on_gt_edges():
    gt = np.zeros((40, 40))
    gt[10:30, 12:28] = 0.8  # a bright square: edges on its border only
    pred = np.clip(gt + np.random.default_rng(0).normal(0, 0.1, gt.shape), 0, 1)
    mask = edge_mask(gt)
    assert mask.any() and not mask[:5].any() and not mask[:, -5:].any()
    assert not mask[18:22, 18:22].any()  # flat interior is not an edge
    _, smap = structural_similarity(gt, pred, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, full=True)
    assert edge_ssim(pred, gt) == pytest.approx(float(smap[mask].mean()))
    assert edge_ssim(gt, gt) == pytest.approx(1.0)


def test_edge_ssim_flat_gt_is_nan():
    flat = np.full((32, 32), 0.3)
    assert math.isnan(edge_ssim(np.random.default_rng(0).random((32, 32)), flat))


def test_edges_only_inside_border_are_excluded():
    gt = np.zeros((32, 32))
    gt[:, :3] = 1.0  # the only edge is within the 5-pixel border
    assert not edge_mask(gt).any()
    assert math.isnan(edge_ssim(gt, gt))


@pytest.mark.parametrize("fn", [psnr, ssim, ssim_uniform, edge_ssim])
def test_bad_inputs_raise(fn):
    with pytest.raises(ValueError, match="shape"):
        fn(np.zeros((16, 16)), np.zeros((16, 17)))
    with pytest.raises(ValueError, match="2-D"):
        fn(np.zeros((1, 16, 16)), np.zeros((1, 16, 16)))
    bad = np.zeros((16, 16))
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fn(bad, np.zeros((16, 16)))


def test_ssim_needs_11_pixels():
    with pytest.raises(ValueError, match="11"):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)))


def test_gt_outside_unit_range_is_clipped():
    pred, gt = _pair(4)
    wild = gt * 1.4 - 0.2
    assert psnr(pred, wild) == pytest.approx(psnr(pred, np.clip(wild, 0, 1)))
    assert ssim(pred, wild) == pytest.approx(ssim(pred, np.clip(wild, 0, 1)))


def test_numpy_metrics_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, tascmt.evaluation.metrics, tascmt.evaluation.stats; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
