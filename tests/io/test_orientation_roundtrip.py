"""Canonical reorientation, writing back in the original orientation, and up-sampled writes."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from tascmt.errors import InputError
from tascmt.io import load_volume, save_like, to_original, upsampled_affine
from tests.io._helpers import image_data, label_data, lps_affine, oblique_affine, ras_affine, write_nii

AFFINES = {"ras": ras_affine(), "lps": lps_affine(), "oblique": oblique_affine()}


@pytest.fixture(params=sorted(AFFINES))
def case(request, tmp_path):
    aff = AFFINES[request.param]
    img = write_nii(tmp_path / "in" / "img.nii.gz", image_data(), aff, qcode=1, scode=2)
    lab = write_nii(tmp_path / "in" / "lab.nii.gz", label_data(), aff, qcode=1, scode=2)
    return img, lab


def test_canonical_matches_nibabel(case):
    img, lab = case
    vol = load_volume(img, lab)
    ref = nib.as_closest_canonical(nib.load(img))
    np.testing.assert_array_equal(vol.image, ref.get_fdata(dtype=np.float32))
    np.testing.assert_allclose(vol.affine, ref.affine, atol=1e-9)
    assert nib.aff2axcodes(vol.affine) == ("R", "A", "S")
    assert vol.original_shape == (10, 12, 8)
    np.testing.assert_array_equal(vol.original_affine, nib.load(img).affine)
    np.testing.assert_allclose(vol.spacing, ref.header.get_zooms()[:3], rtol=1e-6)
    ref_lab = nib.as_closest_canonical(nib.load(lab))
    np.testing.assert_array_equal(vol.label, np.asarray(ref_lab.dataobj))


def test_to_original_inverts(case):
    img, _ = case
    vol = load_volume(img)
    np.testing.assert_array_equal(to_original(vol.image, vol), image_data())


def test_write_back_keeps_affine_exactly(case, tmp_path):
    img, lab = case
    vol = load_volume(img, lab)
    out_img = save_like(vol.image, vol, tmp_path / "out" / "img.nii.gz")
    out_lab = save_like(vol.label, vol, tmp_path / "out" / "lab.nii.gz")
    src, back = nib.load(img), nib.load(out_img)
    np.testing.assert_array_equal(back.affine, src.affine)
    assert int(back.header["qform_code"]) == 1 and int(back.header["sform_code"]) == 2
    np.testing.assert_array_equal(back.get_fdata(dtype=np.float32), image_data())
    lab_back = nib.load(out_lab)
    assert lab_back.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(lab_back.dataobj), label_data())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img.nii.gz", "lab.nii.gz"]  # no temps


def _sitk_geometry(path):
    im = sitk.ReadImage(str(path))
    return np.array(im.GetOrigin()), np.array(im.GetSpacing()), np.array(im.GetDirection())


@pytest.mark.parametrize("name", ["lps", "oblique"])
def test_upsampled_write_keeps_direction_and_origin(tmp_path, name):
    aff = AFFINES[name]
    img = write_nii(tmp_path / "img.nii.gz", image_data(), aff, qcode=1, scode=1)
    vol = load_volume(img)
    axis = int(np.argmax(vol.spacing))  # canonical through-plane axis
    factor = 2
    n = vol.shape[axis]
    new_shape = list(vol.shape)
    new_shape[axis] = (n - 1) * factor + 1
    up = np.zeros(new_shape, np.float32)
    up[(slice(None),) * axis + (slice(None, None, factor),)] = vol.image  # acquired slices at k * factor
    out = save_like(up, vol, tmp_path / "up.nii.gz", affine=upsampled_affine(vol.affine, axis, factor))

    src, back = nib.load(img), nib.load(out)
    orig_axis = int(np.flatnonzero(vol.ornt[:, 0] == axis)[0])  # the same axis in the file's order
    expected_zooms = np.array(src.header.get_zooms())
    expected_zooms[orig_axis] /= factor
    assert nib.aff2axcodes(back.affine) == nib.aff2axcodes(src.affine)
    np.testing.assert_allclose(back.affine[:3, 3], src.affine[:3, 3], atol=1e-4)
    np.testing.assert_allclose(back.header.get_zooms(), expected_zooms, rtol=1e-6)
    src_dirs = src.affine[:3, :3] / np.linalg.norm(src.affine[:3, :3], axis=0)
    back_dirs = back.affine[:3, :3] / np.linalg.norm(back.affine[:3, :3], axis=0)
    np.testing.assert_allclose(back_dirs, src_dirs, atol=1e-6)
    # the acquired slices are where they were in the world
    np.testing.assert_array_equal(
        back.get_fdata(dtype=np.float32)[(slice(None),) * orig_axis + (slice(None, None, factor),)],
        image_data(),
    )

    o_src, s_src, d_src = _sitk_geometry(img)
    o_back, s_back, d_back = _sitk_geometry(out)
    s_expected = s_src.copy()
    s_expected[orig_axis] /= factor
    np.testing.assert_allclose(o_back, o_src, atol=1e-4)
    np.testing.assert_allclose(s_back, s_expected, rtol=1e-5)
    np.testing.assert_allclose(d_back, d_src, atol=1e-5)


def test_spacing_override_equals_affine(tmp_path):
    img = write_nii(tmp_path / "img.nii.gz", image_data(), lps_affine())
    vol = load_volume(img)
    up = np.ones((10, 12, 15), np.float32)
    a = save_like(up, vol, tmp_path / "a.nii.gz", affine=upsampled_affine(vol.affine, 2, 2))
    sp = (vol.spacing[0], vol.spacing[1], vol.spacing[2] / 2)
    b = save_like(up, vol, tmp_path / "b.nii.gz", spacing_override=sp)
    np.testing.assert_allclose(nib.load(a).affine, nib.load(b).affine, atol=1e-9)


def test_never_overwrites_inputs(case):
    img, lab = case
    vol = load_volume(img, lab)
    before = img.read_bytes()
    for target in (img, lab, img.parent / ".." / "in" / "img.nii.gz"):
        with pytest.raises(InputError, match="refusing to overwrite"):
            save_like(vol.image, vol, target)
    assert img.read_bytes() == before


def test_shape_change_needs_affine(tmp_path):
    vol = load_volume(write_nii(tmp_path / "img.nii.gz", image_data(), ras_affine()))
    with pytest.raises(ValueError, match="upsampled_affine"):
        save_like(np.zeros((10, 12, 15), np.float32), vol, tmp_path / "o.nii.gz")


def test_failed_write_leaves_destination_untouched(tmp_path):
    vol = load_volume(write_nii(tmp_path / "img.nii.gz", image_data(), ras_affine()))
    dest = tmp_path / "o.nii.gz"
    dest.write_bytes(b"previous")
    with pytest.raises(ValueError, match="do not fit"):
        save_like(vol.image * 1000, vol, dest, dtype=np.uint8)
    assert dest.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.nii.gz", "o.nii.gz"]


def test_upsampled_affine_positions():
    aff = lps_affine()
    up = upsampled_affine(aff, 2, 4)
    np.testing.assert_allclose(up @ [0, 0, 8, 1], aff @ [0, 0, 2, 1])
    np.testing.assert_array_equal(up[:3, 3], aff[:3, 3])
    with pytest.raises(ValueError, match="axis"):
        upsampled_affine(aff, 3, 2)
    with pytest.raises(ValueError, match="factor"):
        upsampled_affine(aff, 0, 0)


def test_scaled_integer_input_round_trip(tmp_path):
    """An int16 file with scl_slope/inter: values are scaled on read; outputs carry no stale scaling."""
    raw = (np.arange(10 * 12 * 8).reshape(10, 12, 8) % 500).astype(np.int16)
    img = nib.Nifti1Image(raw, lps_affine())
    img.header.set_slope_inter(2.0, -1000.0)
    p = tmp_path / "scaled.nii.gz"
    nib.save(img, p)
    vol = load_volume(p)
    np.testing.assert_array_equal(to_original(vol.image, vol), raw * 2.0 - 1000.0)
    out = save_like(vol.image, vol, tmp_path / "o.nii.gz")
    np.testing.assert_array_equal(nib.load(out).get_fdata(dtype=np.float32), raw * 2.0 - 1000.0)
    mask = (vol.image > 0).astype(np.uint8)
    out_m = save_like(mask, vol, tmp_path / "m.nii.gz")
    back = nib.load(out_m)
    assert back.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(back.get_fdata(), to_original(mask, vol))
