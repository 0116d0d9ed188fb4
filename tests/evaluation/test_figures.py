"""Figure functions: each writes one readable PNG; overlay colours and map normalisation are checked."""

from __future__ import annotations

import csv

import matplotlib.image as mpimg
import numpy as np
import pytest

from tascmt.errors import InputError
from tascmt.evaluation import figures as F


def _png_shape(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return mpimg.imread(path).shape


def _write_log(path, n=6, weights=True, val=True):
    cols = ["epoch", "train_loss", "train_L_interp", "train_L_seg", "val_loss", "val_psnr", "w_interp",
            "w_seg"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for e in range(1, n + 1):
            w.writerow([e, -1.0 / e, 0.1 / e, 0.5 / e, 0.7 / e if val else "", 20 + e if val else "",
                        (1 + 0.1 * e) if weights else "", (1 - 0.05 * e) if weights else ""])
    return path


def test_overlay_colours():
    img = np.linspace(0, 1, 16).reshape(4, 4)
    gt = np.zeros((4, 4))
    pred = np.zeros((4, 4))
    gt[0, 0] = pred[0, 0] = 1  # TP
    gt[1, 1] = 1  # FN
    pred[2, 2] = 1  # FP
    rgb = F.overlay_rgb(img, pred, gt, alpha=1.0)
    assert rgb.shape == (4, 4, 3)
    np.testing.assert_allclose(rgb[0, 0], F.TP_COLOUR)
    np.testing.assert_allclose(rgb[1, 1], F.FN_COLOUR)
    np.testing.assert_allclose(rgb[2, 2], F.FP_COLOUR)
    assert np.allclose(rgb[3, 3], rgb[3, 3, 0])  # untouched pixel stays grey
    assert len({F.TP_COLOUR, F.FN_COLOUR, F.FP_COLOUR}) == 3


def test_to_map2d_normalises():
    m = F.to_map2d(np.random.default_rng(0).normal(size=(1, 4, 8, 6)) * 50 + 3)
    assert m.shape == (8, 6)
    assert m.min() == pytest.approx(0.0) and m.max() == pytest.approx(1.0)
    assert np.all(F.to_map2d(np.ones((5, 5))) == 0)
    with pytest.raises(ValueError, match="shape"):
        F.to_map2d(np.ones(7))


def test_select_interpretability_maps_prefers_high_resolution():
    maps = {"dec1.mstaf.attn": np.ones((1, 4, 4, 4)), "dec3.mstaf.attn": np.ones((1, 4, 16, 16)),
            "enc.tala1.freq": np.ones((1, 2, 8, 8)), "dec1.mstaf.gate": np.ones((1, 2)),
            "dec3.ctci.gate": np.ones((1, 4, 16, 16))}
    sel = F.select_interpretability_maps(maps)
    names = " ".join(sel)
    assert "dec3.mstaf.attn" in names and "dec1.mstaf.attn" not in names
    assert "tala" in names and "ctci.gate" in names and "mstaf.gate" not in names
    assert list(F.select_interpretability_maps({"a": np.ones((1, 3, 8, 8))})) == ["a"]  # fallback


def test_image_figures(tmp_path):
    yy, xx = np.mgrid[:48, :48]
    img = np.exp(-((xx - 24) ** 2 + (yy - 24) ** 2) / 200.0)
    gt = img > 0.5
    pred = np.roll(gt, 3, axis=1)
    p = F.plot_interpolation_rows([{"x1": img * 0.9, "gt": img, "pred": img * 1.05, "x3": img}] * 2,
                                  tmp_path / "interp.png", titles=["a", "b"])
    h, w, _ = _png_shape(p)
    assert w > 2 * h  # five panels side by side
    _png_shape(F.plot_segmentation_overlay([img, img], [pred, gt], [gt, gt], tmp_path / "seg.png"))
    _png_shape(F.plot_interpretability({"attn": np.random.default_rng(0).random((4, 12, 12)), "edge": img},
                                       tmp_path / "maps.png", image=img))
    with pytest.raises(ValueError, match="shape"):
        F.plot_interpolation_rows([{"x1": img, "gt": img, "pred": img[:10], "x3": img}], tmp_path / "bad.png")


def test_log_figures(tmp_path):
    a = _write_log(tmp_path / "a.csv")
    b = _write_log(tmp_path / "b.csv", val=False)
    _png_shape(F.plot_loss_curves({"fold 0": a, "fold 1": b}, tmp_path / "loss.png"))
    _png_shape(F.plot_metric_convergence({"kendall": a}, tmp_path / "conv.png", metric="val_psnr"))
    _png_shape(F.plot_weight_trajectories({"kendall": a, "dwa": a}, tmp_path / "w.png"))
    log = F.read_log(a)
    assert np.allclose(F.unweighted_train_loss(log), 0.6 / log["epoch"])  # raw sum, not the weighted total
    with pytest.raises(InputError, match="w_"):
        F.plot_weight_trajectories({"x": _write_log(tmp_path / "c.csv", weights=False)}, tmp_path / "w2.png")
    with pytest.raises(InputError, match="not found"):
        F.plot_loss_curves([tmp_path / "missing.csv"], tmp_path / "l2.png")


def test_steps_log_uses_step_axis(tmp_path):
    path = tmp_path / "steps.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["step", "epoch", "loss", "L_interp", "L_seg", "w_interp", "w_seg"])
        for s in range(1, 7):
            w.writerow([s, (s - 1) // 3, -0.5, 0.1, 0.2 * s, 1.0, 1.0])
    log = F.read_log(path)
    x, name = F._x_axis(log)
    assert name == "step" and list(x) == [1, 2, 3, 4, 5, 6]  # epoch repeats, so it is not the axis
    assert np.allclose(F.unweighted_train_loss(log), 0.1 + 0.2 * x)
    _png_shape(F.plot_loss_curves([path], tmp_path / "loss.png"))
