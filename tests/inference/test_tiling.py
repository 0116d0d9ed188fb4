"""Native-resolution prediction by blended tiles: exact linear for a zero correction, seamless blending,
tiles of the training size, and the same normalised inputs in training and prediction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from tascmt.data.inplane import InplanePolicy
from tascmt.data.normalize import make_normalizer
from tascmt.data.tiles import pad_amounts, pad_planes, tile_origin
from tascmt.inference import Predictor, predict_volume
from tascmt.inference.tiling import n_tiles, tiled_outputs


@dataclass
class _Cfg:
    tasks: tuple = ("interp", "seg")
    img_size: int = 32
    interp_output: str = "residual"


class ConstantCorrection(nn.Module):
    """A residual model whose correction is a constant ``c`` (0 = learnt nothing); records tile shapes."""

    def __init__(self, c: float = 0.0, tile: int = 32):
        super().__init__()
        self.config = _Cfg(img_size=tile)
        self.c = c
        self.shapes: list[tuple[int, ...]] = []
        self.inputs: list[torch.Tensor] = []

    def interp_is_residual(self) -> bool:
        return True

    def predict(self, x):
        self.shapes.append(tuple(x.shape))
        self.inputs.append(x.clone())
        lin = 0.5 * (x[:, :1] + x[:, 1:])
        r = torch.full_like(lin, self.c)
        seg = torch.full((x.shape[0], 3, *x.shape[-2:]), 0.25)
        return {"interp": (lin + r).clamp(0, 1), "interp_residual": r, "seg": seg}


def _predictor(model, tile=32, overlap=0.5):
    return Predictor(model=model, normalizer=make_normalizer("ct_window", lo=-1024.0, hi=2048.0),
                     inplane=InplanePolicy("native", tile), tile_overlap=overlap)


def _ct(shape=(70, 45, 7), seed=0):
    rng = np.random.default_rng(seed)
    vol = rng.normal(40, 300, size=shape).astype(np.float32)
    vol[:5] = -3024.0  # scanner padding, far below the window
    vol[-3:, :, ::2] = 3000.0  # metal, above the window
    return np.rint(vol)


def test_zero_correction_is_exact_linear_in_hu_outside_the_window():
    vol = _ct()
    model = ConstantCorrection(0.0, tile=32)
    res = predict_volume(vol, (0.8, 0.8, 5.0), model=_predictor(model), progress=False)
    img = res.image
    assert img.shape == (70, 45, 13)
    np.testing.assert_array_equal(img[..., ::2], vol)  # acquired slices untouched
    expected = 0.5 * (vol[..., :-1] + vol[..., 1:])
    np.testing.assert_allclose(img[..., 1::2], expected, rtol=0, atol=1e-3)
    assert img.min() == -3024.0 and img.max() == 3000.0  # values outside the window survive


def test_tiles_have_the_training_size_whatever_the_input():
    for shape in ((70, 45, 3), (20, 90, 3), (32, 32, 3)):
        model = ConstantCorrection(0.0, tile=32)
        predict_volume(np.zeros(shape, np.float32) + np.arange(shape[2]), (1, 1, 2), model=_predictor(model),
                       progress=False)
        assert model.shapes and all(s[-2:] == (32, 32) for s in model.shapes), (shape, model.shapes)


def test_constant_correction_is_constant_across_seams():
    rng = np.random.default_rng(1)
    pairs = rng.uniform(0, 1, size=(2, 2, 77, 101)).astype(np.float32)
    out = tiled_outputs(ConstantCorrection(0.0123, tile=32), pairs, tile=32, overlap=0.5, mask=True)
    assert out.residual and out.interp.shape == (2, 77, 101)
    np.testing.assert_allclose(out.interp, 0.0123, atol=1e-6)
    np.testing.assert_allclose(out.seg, 0.25, atol=1e-6)
    assert out.n_tiles == 2 * n_tiles((77, 101), 32, 0.5) > 2


def test_constant_correction_in_hu_scales_with_the_window():
    vol = _ct(shape=(40, 50, 3))
    model = ConstantCorrection(0.01, tile=32)
    res = predict_volume(vol, (1, 1, 2), model=_predictor(model), progress=False, outputs=("image",))
    expected = 0.5 * (vol[..., :-1] + vol[..., 1:]) + 0.01 * (2048 + 1024)
    np.testing.assert_allclose(res.image[..., 1::2], expected, atol=1e-2)


def test_training_and_prediction_see_identical_normalised_inputs(tmp_path):
    """The dataset's fixed tile and the predictor's tile over the same pair are bit-identical."""
    from tascmt.data.dataset import TripletDataset
    from tascmt.data.prepare import prepare_dataset
    from tascmt.data.synth import make_synthetic_task

    task = make_synthetic_task(tmp_path / "task", "lung", n_cases=4, size=48, n_slices=12, dz=1.25)
    cache = tmp_path / "cache"
    prepare_dataset(task, cache, size=32, gap_mm=1.25, progress=False, verbose=False)
    ds = TripletDataset(cache, "test", tiles="whole")
    item = ds[0]
    rec = ds.records[0]
    img = np.load(cache / "cases" / f"{rec['case_id']}_img.npy")
    lo, hi = img[rec["k0"]][None].astype(np.float32), img[rec["k2"]][None].astype(np.float32)
    model = ConstantCorrection(0.0, tile=32)
    pred = Predictor(model=model, normalizer=ds.normalizer, inplane=InplanePolicy("native", 32))
    pred.run_pairs(lo, hi)
    seen = torch.cat(model.inputs)  # (n_tiles, 2, 32, 32)
    whole = pad_planes(item["x"].numpy(), 32)  # (2, H', W')
    found = any(
        torch.equal(seen[i], torch.from_numpy(whole[:, r:r + 32, c:c + 32].copy()))
        for i in range(seen.shape[0]) for r in range(whole.shape[1] - 31) for c in range(whole.shape[2] - 31))
    assert found


def test_pad_rule_and_tile_origin():
    assert pad_amounts((20, 40), 32) == ((6, 6), (0, 0))
    assert pad_planes(np.ones((2, 20, 40)), 32).shape == (2, 32, 40)
    rng = np.random.default_rng(0)
    assert tile_origin((100, 40), 32, rng, centre=(99, 0)) == (68, 0)
    with pytest.raises(ValueError):
        tile_origin((20, 40), 32, rng)


class FlowBaseZero(ConstantCorrection):
    """A flow-base residual model (input [X1, X3, F]) whose correction is zero."""

    def __init__(self, tile: int = 32):
        super().__init__(0.0, tile)
        self.config.interp_base = "flow"

    def interp_base(self, x):
        return x[:, 2:3]

    def predict(self, x):
        assert x.shape[1] == 3, x.shape
        return super().predict(x)


def test_zero_correction_on_the_flow_base_returns_the_flow_midpoint():
    from tascmt.data.flow import flow_midpoint

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:40, 0:50]
    vol = np.stack([100.0 * np.exp(-((xx - 20 - 3 * k) ** 2 + (yy - 20) ** 2) / 40.0) for k in range(3)], axis=-1)
    vol = (vol + rng.normal(0, 0.5, vol.shape)).astype(np.float32)
    pred = Predictor(model=FlowBaseZero(32), normalizer=make_normalizer("minmax_pair"),
                     inplane=InplanePolicy("native", 32))
    res = predict_volume(vol, (1, 1, 2), model=pred, progress=False, outputs=("image",))
    for j in range(2):
        expected = flow_midpoint(vol[..., j], vol[..., j + 1]).image
        np.testing.assert_allclose(res.image[..., 2 * j + 1], expected, atol=1e-3)


def test_model_by_keyword_geometry_and_no_mutation(tmp_path):
    import nibabel as nib

    from tascmt.io import load_volume

    vol = _ct(shape=(40, 36, 5))
    affine = np.diag([0.8, 0.8, 5.0, 1.0])
    affine[:3, 3] = (10.0, -20.0, 30.0)
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(vol, affine), path)
    pred = _predictor(ConstantCorrection(0.0))
    with pytest.raises(TypeError, match="model="):
        predict_volume(vol, (0.8, 0.8, 5.0), pred)  # the old positional form says what to write
    res = predict_volume(load_volume(path), model=pred, progress=False, tile_overlap=0.25)
    assert pred.tile_overlap == 0.5  # options apply to a copy
    assert np.allclose(res.spacing, (0.8, 0.8, 2.5)) and res.affine is not None
    written = res.save(image=tmp_path / "out_img.nii.gz", mask=tmp_path / "out_mask.nii.gz")
    img = nib.load(written[0])
    np.testing.assert_allclose(img.affine[:3, :3], np.diag([0.8, 0.8, 2.5]), atol=1e-6)
    np.testing.assert_allclose(img.affine[:3, 3], (10.0, -20.0, 30.0), atol=1e-5)  # voxel 0 in place
    assert img.shape == (40, 36, 9) and nib.load(written[1]).get_data_dtype() == np.uint8
