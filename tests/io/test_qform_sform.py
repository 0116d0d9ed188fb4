"""qform and sform are moved onto an up-sampled grid each on its own: neither replaces the other."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from tascmt.io import load_volume, save_like, upsampled_affine
from tests.io._helpers import image_data, lps_affine, oblique_affine, ras_affine


def _rotation(deg_z: float, deg_x: float) -> np.ndarray:
    a, b = np.deg2rad(deg_z), np.deg2rad(deg_x)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rz @ rx


def _shifted_rotated(affine: np.ndarray) -> np.ndarray:
    """The same voxel sizes and axis directions, turned by a few degrees and moved by a few mm: a valid
    second form that places the volume elsewhere (as after a registration stored in the sform)."""
    out = np.array(affine, dtype=np.float64)
    out[:3, :3] = _rotation(4.0, -3.0) @ out[:3, :3]
    out[:3, 3] += (7.5, -4.0, 12.0)
    return out


def _write_two_forms(path, qform, sform, qcode=1, scode=2):
    img = nib.Nifti1Image(image_data(), sform)
    img.header.set_qform(qform, code=qcode)
    img.header.set_sform(sform, code=scode)
    nib.save(img, path)
    hdr = nib.load(path).header
    return hdr.get_qform(), hdr.get_sform()  # the forms as stored (qform through its quaternion)


def _upsample(vol, factor):
    axis = int(np.argmax(vol.spacing))  # canonical slice axis
    shape = list(vol.shape)
    shape[axis] = (shape[axis] - 1) * factor + 1
    up = np.zeros(shape, np.float32)
    up[(slice(None),) * axis + (slice(None, None, factor),)] = vol.image
    return up, upsampled_affine(vol.affine, axis, factor), axis


def _scaled(form: np.ndarray, file_axis: int, factor: float) -> np.ndarray:
    out = np.array(form, dtype=np.float64)
    out[:3, file_axis] /= factor
    return out


@pytest.mark.parametrize("base", [ras_affine(), lps_affine(), oblique_affine()], ids=["ras", "lps", "oblique"])
def test_different_qform_and_sform_each_scaled_and_kept(tmp_path, base):
    qform_in, sform_in = _write_two_forms(tmp_path / "in.nii.gz", base, _shifted_rotated(base))
    assert not np.allclose(qform_in, sform_in, atol=1.0)  # they really differ
    vol = load_volume(tmp_path / "in.nii.gz")
    np.testing.assert_allclose(vol.original_affine, sform_in)  # nibabel reads the sform
    up, up_affine, axis = _upsample(vol, 2)
    out = save_like(up, vol, tmp_path / "up.nii.gz", affine=up_affine)

    hdr = nib.load(out).header
    file_axis = int(np.flatnonzero(vol.ornt[:, 0] == axis)[0])
    assert int(hdr["qform_code"]) == 1 and int(hdr["sform_code"]) == 2
    np.testing.assert_allclose(hdr.get_qform(), _scaled(qform_in, file_axis, 2), atol=1e-4)
    np.testing.assert_allclose(hdr.get_sform(), _scaled(sform_in, file_axis, 2), atol=1e-4)
    # every acquired slice is where each form put it in the input: slice k now at index 2k
    k = np.array([1.0, 2.0, 3.0, 1.0])
    k2 = k.copy()
    k2[file_axis] *= 2
    np.testing.assert_allclose(hdr.get_qform() @ k2, qform_in @ k, atol=1e-4)
    np.testing.assert_allclose(hdr.get_sform() @ k2, sform_in @ k, atol=1e-4)


def test_qform_only_input_keeps_its_code(tmp_path):
    """sform code 0: the qform is the geometry; it is scaled, and the sform stays uncoded."""
    _write_two_forms(tmp_path / "in.nii.gz", ras_affine(), ras_affine(), qcode=1, scode=0)
    vol = load_volume(tmp_path / "in.nii.gz")
    up, up_affine, axis = _upsample(vol, 2)
    hdr = nib.load(save_like(up, vol, tmp_path / "up.nii.gz", affine=up_affine)).header
    assert int(hdr["qform_code"]) == 1 and int(hdr["sform_code"]) == 0
    np.testing.assert_allclose(hdr.get_qform(), _scaled(ras_affine(), axis, 2), atol=1e-6)


@pytest.mark.parametrize("base", [ras_affine(), lps_affine(), oblique_affine()], ids=["ras", "lps", "oblique"])
def test_equal_forms_round_trip_as_before(tmp_path, base):
    """Forms that agree: same grid → header geometry untouched; up-sampled → both forms the new affine."""
    _write_two_forms(tmp_path / "in.nii.gz", base, base, qcode=1, scode=1)
    vol = load_volume(tmp_path / "in.nii.gz")
    same = nib.load(save_like(vol.image, vol, tmp_path / "same.nii.gz"))
    src = nib.load(tmp_path / "in.nii.gz")
    np.testing.assert_array_equal(same.affine, src.affine)
    np.testing.assert_array_equal(same.header.get_qform(), src.header.get_qform())
    np.testing.assert_array_equal(same.header.get_sform(), src.header.get_sform())

    up, up_affine, axis = _upsample(vol, 2)
    back = nib.load(save_like(up, vol, tmp_path / "up.nii.gz", affine=up_affine))
    file_axis = int(np.flatnonzero(vol.ornt[:, 0] == axis)[0])
    expected = _scaled(src.affine, file_axis, 2)
    np.testing.assert_allclose(back.affine, expected, atol=1e-6)
    np.testing.assert_allclose(back.header.get_qform(), expected, atol=1e-5)
    np.testing.assert_allclose(back.header.get_sform(), expected, atol=1e-6)
    assert int(back.header["qform_code"]) == 1 and int(back.header["sform_code"]) == 1
