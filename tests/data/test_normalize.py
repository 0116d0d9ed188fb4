from __future__ import annotations

import numpy as np
import pytest
import torch

from tascmt.data.normalize import make_normalizer, normalizer_from_dict
from tascmt.errors import ConfigError


def _frames(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-500, 1500, (16, 16)).astype(np.float32) for _ in range(3))


@pytest.mark.parametrize("name", ["ct_window", "minmax_pair", "percentile_pair"])
def test_target_range_does_not_change_inputs(name):
    x1, x2, x3 = _frames()
    norm = make_normalizer(name)
    a1, _, a3, p_a, _ = norm.normalize_triplet(x1, x2, x3)
    b1, b2, b3, p_b, clipped = norm.normalize_triplet(x1, x2 * 10 + 5000, x3)
    assert p_a == p_b
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a3, b3)
    assert b2.min() >= 0 and b2.max() <= 1 and clipped > 0.5  # target clipped, fraction reported


def test_triplet_norm_leaks_target_range():
    x1, x2, x3 = _frames()
    norm = make_normalizer("triplet")
    assert norm.leaks_target
    a1 = norm.normalize_triplet(x1, x2, x3)[0]
    b1 = norm.normalize_triplet(x1, x2 * 10 + 5000, x3)[0]
    assert not np.allclose(a1, b1)
    with pytest.raises(ConfigError, match="target"):
        norm.fit(x1, x3)


def test_minmax_pair_maps_inputs_to_unit_range_and_inverts():
    x1, x2, x3 = _frames()
    norm = make_normalizer("MRI")
    assert norm.name == "minmax_pair"
    n1, _, n3, params, _ = norm.normalize_triplet(x1, x2, x3)
    assert min(n1.min(), n3.min()) == 0 and max(n1.max(), n3.max()) == pytest.approx(1)
    np.testing.assert_allclose(norm.invert(n1, params), x1, rtol=1e-5, atol=1e-3)


def test_ct_window():
    norm = make_normalizer("CT")
    assert norm.name == "ct_window" and (norm.lo, norm.hi) == (-1024, 2048)
    x = np.array([-2000.0, -1024.0, 512.0, 2048.0, 4000.0], dtype=np.float32)
    params = norm.fit(x, x)
    np.testing.assert_allclose(norm.apply(x, params), [0, 0, 0.5, 1, 1])
    custom = make_normalizer("ct_window", lo=-200, hi=300)
    assert custom.apply(np.float32(50), custom.fit(x, x)) == pytest.approx(0.5)


def test_percentile_pair_ignores_outliers():
    x1 = np.linspace(0, 100, 1000).astype(np.float32)
    x1[0], x1[-1] = -1e6, 1e6
    params = make_normalizer("percentile_pair").fit(x1, x1)
    assert -10 < params.lo < 5 and 95 < params.hi < 110


def test_constant_pair_gives_zeros_without_division():
    z = np.zeros((8, 8), dtype=np.float32)
    for name in ("minmax_pair", "percentile_pair"):
        norm = make_normalizer(name)
        with np.errstate(all="raise"):
            n1, n2, n3, params, _ = norm.normalize_triplet(z, z + 3, z)
        assert params.constant and not n1.any() and not n2.any() and not n3.any()
        assert (norm.invert(n1, params) == 0).all()


def test_serialisation_round_trip_and_torch():
    norm = make_normalizer("ct_window", lo=-100, hi=400)
    back = normalizer_from_dict(norm.to_dict())
    assert back.to_dict() == norm.to_dict() and type(back) is type(norm)
    p = back.fit(None, None)
    t = back.apply(torch.tensor([-100.0, 150.0, 900.0]), p)
    assert torch.allclose(t, torch.tensor([0.0, 0.5, 1.0]))
    pp = make_normalizer("percentile_pair", lower=1, upper=99)
    assert normalizer_from_dict(pp.to_dict()).lower == 1


@pytest.mark.parametrize("bad", ["PET", "US", ""])
def test_unknown_modality_is_config_error(bad):
    with pytest.raises(ConfigError, match="modality"):
        make_normalizer(bad)


def test_bad_dict():
    with pytest.raises(ConfigError, match="unknown normalisation"):
        normalizer_from_dict({"name": "zscore"})
