"""Layers: window partitioning, the shift mask against Swin's slice construction, padding and clamping."""

from __future__ import annotations

import pytest
import torch

from tascmt.models.layers import (
    PatchExpand,
    PatchMerging,
    SwinTransformerBlock,
    check_input_size,
    shift_attention_mask,
    window_geometry,
    window_partition,
    window_reverse,
)


def reference_swin_mask(hp: int, wp: int, ws: int, shift: int) -> torch.Tensor:
    """Swin's construction: label the three slice regions per axis, partition, compare labels."""
    img_mask = torch.zeros(1, hp, wp, 1)
    cnt = 0
    for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for ws_ in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            img_mask[:, hs, ws_, :] = cnt
            cnt += 1
    windows = img_mask.view(1, hp // ws, ws, wp // ws, ws, 1).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws)
    mask = windows.unsqueeze(1) - windows.unsqueeze(2)
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


@pytest.mark.parametrize(("size", "ws", "shift"), [(16, 8, 4), (32, 8, 4), (24, 8, 4), (12, 4, 2)])
def test_shift_mask_matches_swin_reference(size, ws, shift):
    ours = shift_attention_mask(size, size, ws, ws, shift, shift)
    ref = reference_swin_mask(size, size, ws, shift)
    assert ours.shape == ref.shape
    assert torch.equal(ours, ref)
    assert (ours != 0).any()  # a shifted mask is not trivially empty


def test_window_partition_roundtrip():
    x = torch.randn(2, 16, 24, 5)
    w = window_partition(x, 8, 8)
    assert w.shape == (2 * 2 * 3, 64, 5)
    assert torch.equal(w[1].view(8, 8, 5), x[0, :8, 8:16])
    assert torch.equal(window_reverse(w, 8, 8, 16, 24), x)


def test_window_geometry_clamps_and_drops_shift():
    assert window_geometry(128, 128, 8, 4) == (8, 8, 4, 4)
    assert window_geometry(8, 8, 8, 4) == (8, 8, 0, 0)
    assert window_geometry(5, 20, 8, 4) == (5, 8, 0, 4)


@pytest.mark.parametrize("hw", [(16, 16), (20, 20), (5, 5), (10, 40), (2, 2)])
@pytest.mark.parametrize("mask", [True, False])
def test_swin_block_any_size(hw, mask):
    blk = SwinTransformerBlock(8, 2, window=8, shift=4, shift_mask=mask)
    x = torch.randn(2, 8, *hw)
    y = blk(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_swin_block_mask_changes_shifted_output():
    blk = SwinTransformerBlock(8, 2, window=8, shift=4, shift_mask=True)
    x = torch.randn(1, 8, 16, 16)
    y_mask = blk(x)
    blk.shift_mask = False
    assert not torch.allclose(y_mask, blk(x))


def test_patch_merge_and_expand_shapes():
    x = torch.randn(2, 8, 12, 20)
    assert PatchMerging(8)(x).shape == (2, 16, 6, 10)
    assert PatchExpand(8)(x).shape == (2, 4, 24, 40)


def test_patch_expand_layout():
    """Channel group (i, j) of the expanded vector lands at pixel (2h+i, 2w+j)."""
    pe = PatchExpand(8)
    x = torch.randn(1, 8, 3, 3)
    lin = pe.expand(x.permute(0, 2, 3, 1))  # (1, 3, 3, 16): four groups of 4 channels
    expected = pe.norm(lin[0, 1, 2, 8:12])  # group (1, 0) of pixel (1, 2) -> (3, 4)
    assert torch.allclose(pe(x)[0, :, 3, 4], expected, atol=1e-5)
    assert not torch.allclose(pe(x)[0, :, 2, 5], expected, atol=1e-3)


@pytest.mark.parametrize(("h", "w", "msg"), [
    (100, 96, "H=100 is not a multiple of 32; nearest valid sizes are 96 and 128"),
    (64, 70, "W=70 is not a multiple of 32; nearest valid sizes are 64 and 96"),
    (20, 64, "H=20 is not a multiple of 32; nearest valid size is 32"),
])  # fmt: skip
def test_check_input_size_messages(h, w, msg):
    with pytest.raises(ValueError, match=msg):
        check_input_size(h, w)
    check_input_size(96, 128)
