"""``tascmt predict`` end to end: output geometry (nibabel and SimpleITK), factors, file layout, errors."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from tascmt.cli import main

from ._helpers import (
    lps_affine,
    phantom,
    ras_affine,
    save_checkpoint,
    tiny_model,
    write_dicom_series,
    write_nii,
)

SIZE = 32


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """Untrained tiny model whose residual head is zero: image output = linear interpolation."""
    return save_checkpoint(tiny_model(SIZE, zero_residual=True), tmp_path_factory.mktemp("ckpt") / "model")


@pytest.fixture(scope="module")
def thick():
    return phantom((32, 28, 13), spacing=(1.0, 1.0, 1.25))[0][..., ::2]  # (32, 28, 7)


def predict(*args) -> int:
    return main(["predict", "--no-progress", *map(str, args)])


def z_flipped_affine():
    """RAS in-plane, slices stored from Superior to Inferior (the first slice is the canonical last)."""
    a = ras_affine()
    a[2, 2] = -2.5
    return a


@pytest.mark.parametrize("affine_fn", [ras_affine, lps_affine, z_flipped_affine], ids=["RAS", "LPS", "RAI"])
def test_nifti_output_geometry(tmp_path, checkpoint, thick, affine_fn, capsys):
    affine = affine_fn()
    src = write_nii(tmp_path / "in" / "case1.nii.gz", thick, affine)
    assert predict("-i", src, "-o", tmp_path / "out", "-m", checkpoint) == 0
    out = capsys.readouterr().out
    assert "case1" in out and "ms per output slice" in out
    img = nib.load(tmp_path / "out" / "case1_image.nii.gz")
    msk = nib.load(tmp_path / "out" / "case1_mask.nii.gz")
    assert not (tmp_path / "out" / "case1_prob.nii.gz").exists()
    n = thick.shape[2]
    for im in (img, msk):
        assert im.shape == (32, 28, 2 * n - 1)
        expected = affine.copy()
        expected[:3, 2] /= 2  # slice axis column halved, origin (voxel 0) unchanged
        np.testing.assert_allclose(im.affine, expected, atol=1e-5)
        np.testing.assert_allclose(im.header.get_zooms(), (*np.abs(np.diag(affine)[:2]), 1.25), atol=1e-5)
    assert msk.get_data_dtype() == np.uint8 and img.get_data_dtype() == np.float32
    data = np.asarray(img.dataobj)
    np.testing.assert_array_equal(data[..., ::2], thick)  # acquired slices, in the file's own order
    np.testing.assert_allclose(data[..., 1::2], 0.5 * (thick[..., :-1] + thick[..., 1:]), atol=1e-3)

    ref = sitk.ReadImage(str(src))
    for path in ("case1_image.nii.gz", "case1_mask.nii.gz"):
        got = sitk.ReadImage(str(tmp_path / "out" / path))
        np.testing.assert_allclose(got.GetDirection(), ref.GetDirection(), atol=1e-6)
        np.testing.assert_allclose(got.GetOrigin(), ref.GetOrigin(), atol=1e-4)
        sx, sy, sz = ref.GetSpacing()
        np.testing.assert_allclose(got.GetSpacing(), (sx, sy, sz / 2), atol=1e-5)
        # the last acquired slice keeps its world position too
        last_ref = ref.TransformIndexToPhysicalPoint((0, 0, n - 1))
        np.testing.assert_allclose(got.TransformIndexToPhysicalPoint((0, 0, 2 * n - 2)), last_ref, atol=1e-4)


def test_dicom_series_input(tmp_path, checkpoint, thick):
    series = write_dicom_series(tmp_path / "series" / "ct1", np.round(thick * 10).astype(np.int16))
    assert predict("-i", series, "-o", tmp_path / "out", "-m", checkpoint, "--save-probabilities") == 0
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(series)))
    ref = reader.Execute()
    n = ref.GetSize()[2]
    for name in ("ct1_image.nii.gz", "ct1_mask.nii.gz", "ct1_prob.nii.gz"):
        got = sitk.ReadImage(str(tmp_path / "out" / name))
        assert got.GetSize() == (*ref.GetSize()[:2], 2 * n - 1)
        np.testing.assert_allclose(got.GetDirection(), ref.GetDirection(), atol=1e-6)
        np.testing.assert_allclose(got.GetOrigin(), ref.GetOrigin(), atol=1e-4)
        sx, sy, sz = ref.GetSpacing()
        np.testing.assert_allclose(got.GetSpacing(), (sx, sy, sz / 2), atol=1e-5)
    got = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / "ct1_image.nii.gz")))  # (Z, Y, X)
    np.testing.assert_allclose(got[::2], sitk.GetArrayFromImage(ref), atol=1e-3)
    prob = sitk.ReadImage(str(tmp_path / "out" / "ct1_prob.nii.gz"))
    assert prob.GetPixelID() == sitk.sitkFloat32


def test_factor_4_file_output_and_folder_input(tmp_path, checkpoint, thick, capsys):
    src = write_nii(tmp_path / "in" / "a.nii.gz", thick, ras_affine())
    write_nii(tmp_path / "in" / "b.nii", thick[::-1].copy(), lps_affine())
    (tmp_path / "in" / "._a.nii.gz").write_bytes(b"AppleDouble junk")  # skipped
    out_file = tmp_path / "single" / "result.nii.gz"
    assert predict("-i", src, "-o", out_file, "-m", checkpoint, "--factor", "4") == 0
    n = thick.shape[2]
    img, msk = nib.load(out_file), nib.load(tmp_path / "single" / "result_mask.nii.gz")
    assert img.shape[2] == msk.shape[2] == 4 * (n - 1) + 1
    assert img.header.get_zooms()[2] == pytest.approx(2.5 / 4)
    assert predict("-i", tmp_path / "in", "-o", tmp_path / "many", "-m", checkpoint,
                   "--target-spacing", "1.25") == 0
    names = sorted(p.name for p in (tmp_path / "many").iterdir())
    assert names == ["a_image.nii.gz", "a_mask.nii.gz", "b_image.nii.gz", "b_mask.nii.gz"]
    assert "2 volumes" in capsys.readouterr().out


def test_spacing_warning_is_one_line(tmp_path, checkpoint, thick, capsys):
    a = ras_affine(spacing=(1.0, 1.0, 5.0))
    src = write_nii(tmp_path / "c.nii.gz", thick, a)
    assert predict("-i", src, "-o", tmp_path / "out", "-m", checkpoint) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(err) == 1 and "5 mm" in err[0] and "2.5 mm" in err[0] and str(src) in err[0]


# ---------------------------------------------------------------------- errors
def _write(kind: str, folder) -> tuple[str, object]:
    """Bad input of ``kind``; returns (path, the string stderr must contain)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    good = rng.normal(size=(36, 30, 5)).astype(np.float32)
    if kind == "missing":
        return folder / "nope.nii.gz"
    if kind == "not_nifti":
        p = folder / "notes.txt"
        p.write_text("hello", encoding="utf-8")
        return p
    if kind == "corrupt":
        p = folder / "corrupt.nii.gz"
        p.write_bytes(b"\x1f\x8b" + bytes(rng.integers(0, 255, 500, dtype=np.uint8)))
        return p
    if kind == "nan":
        good[3, 3, 2] = np.nan
        return write_nii(folder / "nan.nii.gz", good, ras_affine())
    if kind == "2d":
        return write_nii(folder / "flat.nii.gz", good[..., 0], ras_affine())
    if kind == "4d":
        return write_nii(folder / "multi.nii.gz", np.stack([good] * 3, axis=-1), ras_affine())
    if kind == "one_slice":
        return write_nii(folder / "one.nii.gz", good[..., :1], ras_affine())
    if kind == "tiny_inplane":
        return write_nii(folder / "tiny.nii.gz", good[:6, :6], ras_affine())
    if kind == "constant":
        return write_nii(folder / "const.nii.gz", np.ones_like(good), ras_affine())
    if kind == "empty_dicom_folder":
        p = folder / "emptyseries"
        p.mkdir()
        (p / "readme.txt").write_text("no dicom here", encoding="utf-8")
        return p
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    ["missing", "not_nifti", "corrupt", "nan", "2d", "4d", "one_slice", "tiny_inplane", "constant",
     "empty_dicom_folder"],
)
def test_bad_inputs_exit_cleanly(tmp_path, checkpoint, kind, capsys):
    bad = _write(kind, tmp_path / "in")
    out = tmp_path / "out"
    rc = predict("-i", bad, "-o", out, "-m", checkpoint)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert str(bad) in err and "Traceback" not in err and err.count("\n") == 1, err
    assert not out.exists() or not any(out.iterdir())  # nothing (not even a temporary file) written


def test_bad_checkpoints_and_options(tmp_path, checkpoint, thick, capsys):
    from tascmt.models import create_model

    src = write_nii(tmp_path / "in" / "case.nii.gz", thick, ras_affine())
    out = tmp_path / "out"
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    interp_model = create_model("tasc_interp", size="tiny", img_size=SIZE)
    interp_only = save_checkpoint(interp_model, tmp_path / "interp")
    cases = [
        (("-m", tmp_path / "missing_ckpt"), "missing_ckpt"),
        (("-m", junk), "junk"),
        (("-m", interp_only), "--outputs image"),
        (("-m", checkpoint, "--factor", "3"), "factor"),
        (("-m", checkpoint, "--batch-size", "0"), "batch size"),
        (("-m", checkpoint, "--device", "tpu"), "device"),
    ]
    import torch

    if not torch.cuda.is_available():
        cases.append((("-m", checkpoint, "--device", "cuda"), "CUDA is not available"))
    for extra, needle in cases:
        rc = predict("-i", src, "-o", out, *extra)
        err = capsys.readouterr().err
        assert rc == 2 and needle in err and "Traceback" not in err, (extra, err)
        assert not out.exists() or not any(out.iterdir())
    assert predict("-i", src, "-o", out, "-m", interp_only, "--outputs", "image") == 0
    assert sorted(p.name for p in out.iterdir()) == ["case_image.nii.gz"]


def test_never_overwrites_inputs_or_existing_outputs(tmp_path, checkpoint, thick, capsys):
    src = write_nii(tmp_path / "case.nii.gz", thick, ras_affine())
    before = src.read_bytes()
    assert predict("-i", src, "-o", src, "-m", checkpoint) == 2
    assert "refusing" in capsys.readouterr().err and src.read_bytes() == before
    assert predict("-i", tmp_path, "-o", tmp_path, "-m", checkpoint) == 2
    assert "is the input folder" in capsys.readouterr().err
    out = tmp_path / "out"
    out.mkdir()
    (out / "case_mask.nii.gz").write_bytes(b"keep me")
    assert predict("-i", src, "-o", out, "-m", checkpoint) == 2
    err = capsys.readouterr().err
    assert "case_mask.nii.gz" in err and "--overwrite" in err
    assert (out / "case_mask.nii.gz").read_bytes() == b"keep me" and not (out / "case_image.nii.gz").exists()
    assert predict("-i", src, "-o", out, "-m", checkpoint, "--overwrite") == 0
    assert nib.load(out / "case_mask.nii.gz").shape[2] == 2 * thick.shape[2] - 1


def test_sagittal_slices_upsample_the_first_axis(tmp_path, checkpoint, thick):
    """Thick axis = array axis 0 (sagittal stack): that axis is up-sampled, its affine column halved."""
    data = np.ascontiguousarray(np.transpose(thick, (2, 0, 1)))  # (7, 32, 28)
    affine = ras_affine(spacing=(2.5, 1.0, 1.0))
    src = write_nii(tmp_path / "sag.nii.gz", data, affine)
    assert predict("-i", src, "-o", tmp_path / "out", "-m", checkpoint) == 0
    img = nib.load(tmp_path / "out" / "sag_image.nii.gz")
    assert img.shape == (13, 32, 28)
    expected = affine.copy()
    expected[:3, 0] /= 2
    np.testing.assert_allclose(img.affine, expected, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(img.dataobj)[::2], data)
