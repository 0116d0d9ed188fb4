from __future__ import annotations

import numpy as np
import pytest
import torch

from tascmt.data.augment import AugmentConfig, AugmentParams, apply_params, sample_params


def _sample(h=16, w=16):
    g = torch.Generator().manual_seed(0)
    img = torch.rand(3, h, w, generator=g)
    seg = (img > 0.5).float()
    return img[[0, 2]], img[1:2], seg


def test_pure_flips_are_exact():
    x, y, s = _sample()
    p = AugmentParams(hflip=True, vflip=False, angle_deg=0.0, scale=1.0, noise_seed=0)
    x2, y2, s2 = apply_params(x, y, s, p, noise_std=0.0)
    assert torch.allclose(x2, x.flip(-1), atol=1e-5) and torch.equal(s2, s.flip(-1))
    p = AugmentParams(hflip=False, vflip=True, angle_deg=0.0, scale=1.0, noise_seed=0)
    x2, y2, s2 = apply_params(x, y, s, p, noise_std=0.0)
    assert torch.allclose(y2, y.flip(-2), atol=1e-5) and torch.equal(s2, s.flip(-2))


def test_noise_only_on_inputs_and_clamped():
    x, y, s = _sample()
    p = AugmentParams(False, False, 0.0, 1.0, noise_seed=5)
    x2, y2, s2 = apply_params(x, y, s, p, noise_std=0.01)
    assert torch.allclose(y2, y, atol=1e-6) and torch.equal(s2, s)
    d = (x2 - x)[(x > 0.05) & (x < 0.95)]
    assert 0.005 < float(d.std()) < 0.015
    assert float(x2.min()) >= 0 and float(x2.max()) <= 1


def test_same_geometry_for_all_planes_masks_stay_binary():
    base = torch.zeros(32, 32)
    base[8:20, 5:14] = 1.0
    base[22:26, 20:30] = 1.0
    x, y, s = base.repeat(2, 1, 1), base[None].clone(), base.repeat(3, 1, 1)
    rng = np.random.default_rng(3)
    changed = 0
    for _ in range(10):
        p = sample_params(rng)
        x2, y2, s2 = apply_params(x, y, s, p, noise_std=0.0)
        assert torch.equal(x2[0], x2[1]) and torch.equal(x2[0], y2[0])  # three frames, one geometry
        assert torch.equal(s2[0], s2[1]) and torch.equal(s2[0], s2[2])  # three masks, one geometry
        assert set(torch.unique(s2).tolist()) <= {0.0, 1.0}
        agree = ((y2[0] > 0.5) == (s2[0] > 0.5)).float().mean()
        assert agree > 0.97  # the image and its mask moved together
        changed += int(not torch.equal(s2[0], s[0]))
    assert changed >= 8


def test_sampled_ranges_and_determinism():
    cfg = AugmentConfig()
    ps = [sample_params(np.random.default_rng(i), cfg) for i in range(200)]
    assert all(-15 <= p.angle_deg <= 15 and 0.9 <= p.scale <= 1.1 for p in ps)
    assert 0.35 < np.mean([p.hflip for p in ps]) < 0.65 and 0.35 < np.mean([p.vflip for p in ps]) < 0.65
    assert sample_params(np.random.default_rng([1, 2, 3])) == sample_params(np.random.default_rng([1, 2, 3]))


@pytest.mark.parametrize("angle", [90.0])
def test_rotation_direction_consistent_for_masks_and_images(angle):
    x, y, s = _sample()
    p = AugmentParams(False, False, angle, 1.0, noise_seed=0)
    _, y2, s2 = apply_params(x, y, s, p, noise_std=0.0)
    assert ((y2[0] > 0.5) == (s2[1] > 0.5)).float().mean() > 0.9
