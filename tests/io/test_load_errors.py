"""Every kind of bad input gives one InputError that names the file and the problem."""

from __future__ import annotations

import gzip
import time

import nibabel as nib
import numpy as np
import pytest

from tascmt.errors import InputError
from tascmt.io import load_nifti, load_volume
from tests.io._helpers import SHAPE, image_data, label_data, ras_affine, write_nii


def _raises(fn, *args, name: str, words: tuple[str, ...] = (), **kw) -> InputError:
    with pytest.raises(InputError) as info:
        fn(*args, **kw)
    msg = str(info.value)
    assert name in msg, msg
    for w in words:
        assert w.lower() in msg.lower(), (w, msg)
    return info.value


def _header_only(path, shape, dtype=np.int16, gz=False):
    """A NIfTI file holding only a header that claims ``shape`` (no voxel data)."""
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(dtype)
    hdr.set_qform(ras_affine(), code=1)
    raw = hdr.binaryblock + b"\x00" * 4  # 348-byte header + extension flag, up to vox_offset 352
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def test_missing_file(tmp_path):
    _raises(load_volume, tmp_path / "nope.nii.gz", name="nope.nii.gz", words=("not found",))


def test_unsupported_suffix(tmp_path):
    p = tmp_path / "scan.mha"
    p.write_bytes(b"x")
    _raises(load_volume, p, name="scan.mha", words=(".nii",))


def test_garbage_file(tmp_path):
    p = tmp_path / "garbage.nii.gz"
    p.write_bytes(b"not a nifti at all" * 20)
    _raises(load_volume, p, name="garbage.nii.gz", words=("cannot read",))


def test_truncated_gzip(tmp_path):
    p = write_nii(tmp_path / "trunc.nii.gz", image_data(), ras_affine())
    blob = p.read_bytes()
    p.write_bytes(blob[: len(blob) // 2])
    _raises(load_volume, p, name="trunc.nii.gz", words=("truncated",))


def test_short_uncompressed_data_block(tmp_path):
    p = write_nii(tmp_path / "short.nii", image_data(), ras_affine())
    blob = p.read_bytes()
    p.write_bytes(blob[:-100])
    _raises(load_volume, p, name="short.nii", words=("truncated", "bytes"))


def test_absurd_header_refused_before_allocating(tmp_path):
    p = _header_only(tmp_path / "huge.nii.gz", (4096, 4096, 4096), gz=True)
    t0 = time.perf_counter()
    _raises(load_volume, p, name="huge.nii.gz", words=("voxels", "limit"))
    assert time.perf_counter() - t0 < 2.0


def test_header_larger_than_uncompressed_file(tmp_path):
    p = _header_only(tmp_path / "claims.nii", (200, 200, 100))
    _raises(load_volume, p, name="claims.nii", words=("header implies",))


def test_gzip_too_small_for_header_refused_before_allocating(tmp_path):
    p = _header_only(tmp_path / "tiny.nii.gz", (600, 600, 500), gz=True)  # 360 MB claimed, < MAX_VOXELS
    _raises(load_volume, p, name="tiny.nii.gz", words=("cannot hold",))


def test_header_without_gzipped_data(tmp_path):
    p = _header_only(tmp_path / "nodata.nii.gz", (20, 20, 10), gz=True)
    _raises(load_volume, p, name="nodata.nii.gz", words=("voxel data",))


def test_2d_image(tmp_path):
    p = write_nii(tmp_path / "flat.nii.gz", image_data((10, 12)), ras_affine())
    _raises(load_volume, p, name="flat.nii.gz", words=("2D",))


def test_single_slice_volume(tmp_path):
    p = write_nii(tmp_path / "one.nii.gz", image_data((10, 12, 1)), ras_affine())
    _raises(load_volume, p, name="one.nii.gz", words=("(10, 12, 1)", "2 voxels"))


def test_4d_singleton_is_squeezed(tmp_path):
    data = image_data()
    p = write_nii(tmp_path / "four.nii.gz", data[..., None], ras_affine())
    vol = load_volume(p)
    assert vol.shape == SHAPE
    np.testing.assert_array_equal(vol.image, data)
    arr, _ = load_nifti(p)
    assert arr.shape == SHAPE


def test_4d_multichannel_refused(tmp_path):
    data = np.stack([image_data(), image_data(seed=1)], axis=-1)  # (10, 12, 8, 2)
    p = write_nii(tmp_path / "multi.nii.gz", data, ras_affine())
    _raises(load_volume, p, name="multi.nii.gz", words=("(10, 12, 8, 2)", "out of scope"))


def test_rgb_refused(tmp_path):
    rgb = np.zeros(SHAPE, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb["R"] = 5
    p = tmp_path / "rgb.nii.gz"
    nib.save(nib.Nifti1Image(rgb, ras_affine()), p)
    _raises(load_volume, p, name="rgb.nii.gz", words=("RGB",))


@pytest.mark.parametrize("bad, word", [(np.nan, "1 NaN"), (np.inf, "1 infinite")])
def test_non_finite_voxels(tmp_path, bad, word):
    data = image_data()
    data[3, 4, 5] = bad
    p = write_nii(tmp_path / "nonfinite.nii.gz", data, ras_affine())
    _raises(load_volume, p, name="nonfinite.nii.gz", words=(word,))


@pytest.mark.parametrize("value, word", [(0.0, "empty"), (7.0, "constant")])
def test_empty_or_constant(tmp_path, value, word):
    p = write_nii(tmp_path / "const.nii.gz", np.full(SHAPE, value, np.float32), ras_affine())
    _raises(load_volume, p, name="const.nii.gz", words=(word,))


def _write_sform_only(path, affine):
    """Write image_data() with ``affine`` stored verbatim in the sform rows (qform unused)."""
    img = nib.Nifti1Image(image_data(), ras_affine())
    hdr = img.header
    hdr.set_qform(None, code=0)
    hdr["sform_code"] = 1
    hdr["srow_x"], hdr["srow_y"], hdr["srow_z"] = affine[0], affine[1], affine[2]
    nib.save(nib.Nifti1Image(image_data(), None, hdr), path)
    return path


def test_zero_spacing_affine(tmp_path):
    aff = ras_affine()
    aff[:3, 2] = 0.0
    p = _write_sform_only(tmp_path / "zero.nii.gz", aff)
    _raises(load_volume, p, name="zero.nii.gz", words=("spacing",))


def test_singular_affine(tmp_path):
    aff = ras_affine()
    aff[:3, 2] = aff[:3, 0] * 3  # third axis parallel to the first
    p = _write_sform_only(tmp_path / "sing.nii.gz", aff)
    _raises(load_volume, p, name="sing.nii.gz", words=("singular",))


def test_non_finite_affine(tmp_path):
    aff = ras_affine()
    aff[0, 0] = np.nan
    p = _write_sform_only(tmp_path / "nanaff.nii.gz", aff)
    _raises(load_volume, p, name="nanaff.nii.gz", words=("non-finite",))


def test_zero_pixdim_without_qform_sform(tmp_path):
    """nibabel would silently read pixdim 0 as 1 mm; written by hand because nibabel fixes it on save."""
    data = image_data()
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(data.shape)
    hdr.set_data_dtype(np.float32)
    hdr["pixdim"][1:4] = (1.0, 1.0, 0.0)
    hdr["vox_offset"] = 352
    p = tmp_path / "pixdim.nii.gz"
    p.write_bytes(gzip.compress(hdr.binaryblock + b"\x00" * 4 + data.tobytes(order="F")))
    _raises(load_volume, p, name="pixdim.nii.gz", words=("pixdim",))


def test_reader_leaves_input_unmodified(tmp_path):
    p = write_nii(tmp_path / "keep.nii.gz", image_data(), ras_affine())
    before = (p.read_bytes(), p.stat().st_mtime_ns)
    listing = sorted(tmp_path.iterdir())
    load_volume(p)
    assert (p.read_bytes(), p.stat().st_mtime_ns) == before
    assert sorted(tmp_path.iterdir()) == listing


# --- labels ---------------------------------------------------------------------------------------


def _pair(tmp_path, label, label_affine=None):
    img = write_nii(tmp_path / "img.nii.gz", image_data(), ras_affine())
    lab = write_nii(tmp_path / "lab.nii.gz", label, ras_affine() if label_affine is None else label_affine)
    return img, lab


def test_label_loaded_as_uint8(tmp_path):
    img, lab = _pair(tmp_path, label_data().astype(np.float32))
    vol = load_volume(img, lab)
    assert vol.label.dtype == np.uint8 and vol.image.dtype == np.float32
    np.testing.assert_array_equal(vol.label, label_data())


def test_label_non_integer(tmp_path):
    lab = label_data().astype(np.float32)
    lab[0, 0, 0] = 0.5
    img, lab_p = _pair(tmp_path, lab)
    _raises(load_volume, img, lab_p, name="lab.nii.gz", words=("non-integer",))


def test_label_out_of_range(tmp_path):
    lab = label_data().astype(np.int16)
    lab[0, 0, 0] = 300
    img, lab_p = _pair(tmp_path, lab)
    _raises(load_volume, img, lab_p, name="lab.nii.gz", words=("0..255",))


def test_label_shape_mismatch(tmp_path):
    img = write_nii(tmp_path / "img.nii.gz", image_data(), ras_affine())
    lab = write_nii(tmp_path / "lab.nii.gz", label_data((10, 12, 9)), ras_affine())
    e = _raises(load_volume, img, lab, name="lab.nii.gz", words=("img.nii.gz", "shape"))
    assert e.path.name == "lab.nii.gz"


@pytest.mark.parametrize(
    "label_affine, field",
    [
        (ras_affine(spacing=(1.0, 1.5, 3.1)), "spacing"),
        (ras_affine(origin=(-5.0, 10.0, 20.5)), "origin"),
    ],
)
def test_label_geometry_mismatch(tmp_path, label_affine, field):
    img, lab = _pair(tmp_path, label_data(), label_affine)
    _raises(load_volume, img, lab, name="lab.nii.gz", words=("img.nii.gz", field))


def test_label_direction_mismatch(tmp_path):
    t = np.deg2rad(5)
    aff = ras_affine()
    aff[:3, :3] = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]]) @ aff[:3, :3]
    img, lab = _pair(tmp_path, label_data(), aff)
    _raises(load_volume, img, lab, name="lab.nii.gz", words=("img.nii.gz", "direction"))


def test_label_in_other_axis_order_matches(tmp_path):
    """A label stored flipped (same voxels in the world) is on the same grid once canonical."""
    img = write_nii(tmp_path / "img.nii.gz", image_data(), ras_affine())
    aff = ras_affine()
    flipped = aff @ np.array([[-1, 0, 0, SHAPE[0] - 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    lab = write_nii(tmp_path / "lab.nii.gz", label_data()[::-1].copy(), flipped)
    vol = load_volume(img, lab)
    np.testing.assert_array_equal(vol.label, label_data())


def test_label_geometry_within_tolerance(tmp_path):
    """Sub-micrometre differences (float32 headers, DICOM conversion) are not a mismatch."""
    aff = ras_affine()
    aff[:3, 3] += 2e-5
    aff[2, 2] *= 1 + 1e-6
    img, lab = _pair(tmp_path, label_data(), aff)
    assert load_volume(img, lab).label is not None
