import numpy as np
import pytest

from tascmt.demo.band import fit_intensity_band


def test_band_recovers_planted_interval():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 1, size=(64, 64))
    mask = (img >= 0.40) & (img < 0.65)
    band = fit_intensity_band([(img, mask)], bins=100)
    assert band.low == pytest.approx(0.40, abs=0.011)
    assert band.high == pytest.approx(0.65, abs=0.011)
    assert band.train_dice > 0.97
    pred = band.predict(img)
    assert pred.dtype == np.uint8
    dice = 2 * (pred & mask).sum() / (pred.sum() + mask.sum())
    assert dice > 0.97


def test_band_dice_matches_hand_count_on_noisy_data():
    rng = np.random.default_rng(1)
    img = rng.uniform(0, 1, size=(2, 50, 50))
    mask = ((img > 0.3) & (img < 0.6)) ^ (rng.uniform(size=img.shape) < 0.1)
    band = fit_intensity_band(zip(img, mask, strict=True), bins=64)
    pred = band.predict(img).astype(bool)
    dice = 2 * (pred & mask).sum() / (pred.sum() + mask.sum())
    assert dice == pytest.approx(band.train_dice, abs=1e-9)


def test_band_rejects_mismatched_shapes_and_empty_input():
    with pytest.raises(ValueError, match="shape"):
        fit_intensity_band([(np.zeros((4, 4)), np.zeros((4, 5)))])
    with pytest.raises(ValueError, match="at least one"):
        fit_intensity_band([])
