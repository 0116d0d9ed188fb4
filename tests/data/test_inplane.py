from __future__ import annotations

import numpy as np
import pytest

from tascmt.data.inplane import InplanePolicy
from tascmt.errors import ConfigError


def _mask(h, w):
    m = np.zeros((h, w), dtype=np.uint8)
    m[h // 4: h // 2, w // 3: w // 3 + 5] = 1
    m[-3:, :4] = 2  # near a corner: positions must survive the padding
    return m


@pytest.mark.parametrize(("hw", "size"), [((40, 30), 64), ((30, 50), 64), ((32, 32), 64), ((20, 27), 27)])
def test_mask_round_trip_exact_when_upsampling(hw, size):
    pol = InplanePolicy("pad_resize", size)
    m = _mask(*hw)
    fwd = pol.forward(m, is_mask=True)
    assert fwd.shape == (size, size) and fwd.dtype == np.uint8
    assert set(np.unique(fwd)) == {0, 1, 2}  # still hard labels
    back = pol.inverse(fwd, hw, is_mask=True)
    np.testing.assert_array_equal(back, m)


def test_mask_downsampling_stays_binary_and_in_place():
    pol = InplanePolicy("pad_resize", 32)
    m = np.zeros((100, 80), dtype=np.uint8)
    m[20:60, 10:40] = 1
    fwd = pol.forward(m, is_mask=True)
    assert set(np.unique(fwd)) == {0, 1}
    back = pol.inverse(fwd, m.shape, is_mask=True)
    assert back.shape == m.shape and set(np.unique(back)) == {0, 1}
    assert (back != m).mean() < 0.05
    ys, xs = np.nonzero(back)
    assert abs(ys.mean() - 39.5) < 2 and abs(xs.mean() - 24.5) < 2


def test_image_padding_uses_slice_minimum_and_inverse_restores():
    pol = InplanePolicy("pad_resize", 48)
    rng = np.random.default_rng(0)
    img = (rng.uniform(0, 1, (24, 12)) * 100 - 1000).astype(np.float32)  # min ≈ −1000 (air)
    fwd = pol.forward(img)
    assert fwd.dtype == np.float32 and fwd.shape == (48, 48)
    assert fwd[:, :8].max() == pytest.approx(img.min(), abs=1e-3)  # padded columns = background value
    smooth = np.add.outer(np.linspace(0, 1, 24), np.linspace(0, 2, 12)).astype(np.float32)
    back = pol.inverse(pol.forward(smooth), (24, 12))
    assert back.shape == smooth.shape
    np.testing.assert_allclose(back[1:-1, 1:-1], smooth[1:-1, 1:-1], atol=0.02)  # edges blend with padding


def test_stacks_match_single_slices():
    pol = InplanePolicy("pad_resize", 20)
    stack = np.random.default_rng(1).normal(size=(3, 15, 10)).astype(np.float32)
    out = pol.forward(stack)
    assert out.shape == (3, 20, 20)
    np.testing.assert_allclose(out[1], pol.forward(stack[1]), atol=1e-6)
    assert pol.inverse(out, (15, 10)).shape == (3, 15, 10)


def test_none_policy_and_serialisation():
    pol = InplanePolicy("none", 16)
    a = np.ones((16, 16), dtype=np.float32)
    assert pol.forward(a) is not None and pol.inverse(a, (16, 16)).shape == (16, 16)
    with pytest.raises(ConfigError, match="none"):
        pol.forward(np.ones((20, 16)))
    again = InplanePolicy.from_dict(InplanePolicy("pad_resize", 128).to_dict())
    assert (again.kind, again.size) == ("pad_resize", 128)
    with pytest.raises(ConfigError, match="in-plane policy"):
        InplanePolicy("crop", 64)
