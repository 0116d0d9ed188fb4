"""DICOM series folders: read with SimpleITK, same voxels and RAS affine as the equivalent NIfTI."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from tascmt.errors import InputError
from tascmt.io import load_volume, save_like

SHAPE_ZYX = (6, 12, 10)  # slices, rows, columns


def _itk_volume(direction=None, origin=(-20.0, 15.0, 40.0), spacing=(0.7, 0.8, 2.5), seed=0) -> sitk.Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(-1000, 1500, size=SHAPE_ZYX, dtype=np.int16)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(direction)
    return img


def _oblique_direction() -> tuple[float, ...]:
    t = np.deg2rad(15)
    rot = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])
    return tuple(rot.ravel())


def write_series(img: sitk.Image, folder, uid="1.2.826.0.1.3680043.2.1125.1.1", modality="CT", first=0,
                 reverse_names=False):
    """One .dcm file per slice, with position/orientation tags (the SimpleITK DICOM-series recipe)."""
    folder.mkdir(parents=True, exist_ok=True)
    d = img.GetDirection()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(img.GetDepth()):
        sl = img[:, :, k]
        tags = {
            "0008|0060": modality,
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0020|000e": uid,
            "0020|0037": "\\".join(f"{v:.10f}" for v in (d[0], d[3], d[6], d[1], d[4], d[7])),
            "0020|0032": "\\".join(f"{v:.10f}" for v in img.TransformIndexToPhysicalPoint((0, 0, k))),
            "0020|0013": str(k + 1),
            "0008|0018": f"{uid}.{k + 1}",
        }
        for key, value in tags.items():
            sl.SetMetaData(key, value)
        index = img.GetDepth() - 1 - k if reverse_names else k
        writer.SetFileName(str(folder / f"slice_{first + index:03d}.dcm"))
        writer.Execute(sl)
    return folder


@pytest.mark.parametrize("direction", [None, _oblique_direction()], ids=["axial", "oblique"])
def test_dicom_equals_nifti(tmp_path, direction):
    img = _itk_volume(direction)
    folder = write_series(img, tmp_path / "series")
    nii = tmp_path / "same.nii.gz"
    sitk.WriteImage(img, str(nii))  # ITK's own LPS → RAS conversion is the reference
    vd, vn = load_volume(folder), load_volume(nii)
    assert vd.case_id == "series" and vd.modality == "CT"
    np.testing.assert_array_equal(vd.image, vn.image)
    np.testing.assert_allclose(vd.affine, vn.affine, atol=1e-4)
    np.testing.assert_allclose(vd.spacing, vn.spacing, rtol=1e-5)
    np.testing.assert_allclose(vd.original_affine, nib.load(nii).affine, atol=1e-4)


def test_slices_sorted_by_position_not_name(tmp_path):
    img = _itk_volume()
    vd = load_volume(write_series(img, tmp_path / "rev", reverse_names=True))
    vn = load_volume(write_series(img, tmp_path / "fwd"))
    np.testing.assert_array_equal(vd.image, vn.image)
    np.testing.assert_allclose(vd.affine, vn.affine, atol=1e-4)


def test_dicom_write_back(tmp_path):
    folder = write_series(_itk_volume(), tmp_path / "series")
    vol = load_volume(folder)
    out = save_like(vol.image, vol, tmp_path / "out.nii.gz")
    back = nib.load(out)
    np.testing.assert_allclose(back.affine, vol.original_affine, atol=1e-5)
    assert int(back.header["sform_code"]) == 1
    with pytest.raises(InputError, match="refusing to overwrite"):
        save_like(vol.image, vol, folder / "inside.nii.gz")


def test_several_series(tmp_path):
    folder = write_series(_itk_volume(), tmp_path / "mixed", uid="1.2.3.4.100")
    write_series(_itk_volume(seed=1), folder, uid="1.2.3.4.200", first=100)
    with pytest.raises(InputError) as info:
        load_volume(folder)
    msg = str(info.value)
    assert "mixed" in msg and "1.2.3.4.100" in msg and "1.2.3.4.200" in msg


def test_non_dicom_file_among_slices(tmp_path):
    folder = write_series(_itk_volume(), tmp_path / "series")
    (folder / "notes.txt").write_text("not a slice", encoding="utf-8")
    with pytest.raises(InputError, match=r"notes\.txt") as info:
        load_volume(folder)
    assert "series" in str(info.value)


def test_empty_and_missing_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        load_volume(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(InputError, match="no DICOM series"):
        load_volume(tmp_path / "junk")


def test_missing_slice(tmp_path):
    folder = write_series(_itk_volume(), tmp_path / "gap")
    (folder / "slice_003.dcm").unlink()
    with pytest.raises(InputError, match="evenly spaced") as info:
        load_volume(folder)
    assert "gap" in str(info.value)


def test_reading_a_series_keeps_the_process_locale(tmp_path):
    """GDCM switches the C locale to "C"; after a read Python must still default to the caller's encoding."""
    import locale

    folder = write_series(_itk_volume(None), tmp_path / "series")
    locale.setlocale(locale.LC_ALL, "C.UTF-8")
    before = locale.getpreferredencoding(False)
    load_volume(folder)
    assert locale.getpreferredencoding(False) == before
