"""Gantry-tilted CT series: slices shifted in-plane from one to the next are refused, or resampled on request."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from tascmt.errors import InputError
from tascmt.io import load_volume, read_dicom_series
from tascmt.io.dicom import TILT_TOL_MM

ROWS, COLS, N_SLICES = 16, 12, 8
DZ = 2.5  # mm between slices along the slice normal
SX = 0.7  # column spacing (mm along the row direction)
TILT_DEG = 20.0
SY = DZ * math.tan(math.radians(TILT_DEG))  # row spacing: a 20° tilt shifts each slice by one row exactly
ORIGIN = np.array([-20.0, 15.0, 40.0])  # LPS mm, first slice
UID = "1.2.826.0.1.3680043.2.1125.9.1"


def write_positions(folder, slices_kji: np.ndarray, positions, orientation=(1, 0, 0, 0, 1, 0), uid=UID):
    """One .dcm file per slice with the given ImagePositionPatient (LPS mm) and ImageOrientationPatient."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k, (pixels, pos) in enumerate(zip(slices_kji, positions, strict=True)):
        sl = sitk.GetImageFromArray(pixels.astype(np.int16))  # (rows, cols) → 2D image
        sl.SetSpacing((SX, SY))
        tags = {
            "0008|0060": "CT",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.9",
            "0020|000e": uid,
            "0020|0037": "\\".join(f"{v:.10f}" for v in orientation),
            "0020|0032": "\\".join(f"{v:.10f}" for v in pos),
            "0020|0013": str(k + 1),
            "0008|0018": f"{uid}.{k + 1}",
        }
        for key, value in tags.items():
            sl.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"slice_{k:03d}.dcm"))
        writer.Execute(sl)
    return folder


def tilted_positions(angle_deg=TILT_DEG, n=N_SLICES):
    """Slice k: k * DZ along the normal (+z) and k * DZ * tan(angle) along the column direction (+y)."""
    step = DZ * math.tan(math.radians(angle_deg))
    return [ORIGIN + np.array([0.0, k * step, k * DZ]) for k in range(n)]


def dot_series(positions, dot_lps, background=-1000, value=1000):
    """Slices that are dark except for one bright pixel at the same physical point ``dot_lps`` in every
    slice (rounded to the nearest pixel of that slice's own grid)."""
    arr = np.full((len(positions), ROWS, COLS), background, dtype=np.int16)
    for k, pos in enumerate(positions):
        i = round((dot_lps[0] - pos[0]) / SX)  # column
        j = round((dot_lps[1] - pos[1]) / SY)  # row
        arr[k, j, i] = value
    return arr


def _dot():
    # in-plane: column 5, row 12 of the first slice; every later slice sees it one row higher
    return ORIGIN + np.array([5 * SX, 12 * SY, 0.0])


def test_tilted_series_is_refused_with_the_angle(tmp_path):
    pos = tilted_positions()
    folder = write_positions(tmp_path / "tilted_ct", dot_series(pos, _dot()), pos)
    with pytest.raises(InputError) as info:
        load_volume(folder)
    msg = str(info.value)
    assert "tilted_ct" in msg and "20.00 degrees" in msg and "resample_tilt" in msg, msg


def test_tilted_series_resampled_keeps_recorded_positions(tmp_path):
    pos = tilted_positions()
    dot = _dot()
    folder = write_positions(tmp_path / "tilted_ct", dot_series(pos, dot), pos)
    series = read_dicom_series(folder, resample_tilt=True)
    assert series.meta["gantry_tilt_deg"] == pytest.approx(TILT_DEG, abs=1e-3)
    arr = series.array  # (I, J, K) = (column, row, slice)
    assert arr.shape == (COLS, ROWS, N_SLICES)
    # the dot is on one voxel column (same i, j) in every slice whose field of view holds it
    seen = []
    for k in range(N_SLICES):
        i, j = np.unravel_index(np.argmax(arr[:, :, k]), arr.shape[:2])
        if arr[i, j, k] > 0:
            seen.append((k, int(i), int(j)))
            assert arr[i, j, k] == pytest.approx(1000, abs=1e-2)
    assert len(seen) == N_SLICES
    assert {(i, j) for _, i, j in seen} == {(5, 12)}
    # ... and that voxel is at the dot's recorded physical position (RAS = LPS with x, y negated)
    dot_ras = dot * (-1, -1, 1)
    for k, i, j in seen:
        world = series.affine @ (i, j, k, 1.0)
        np.testing.assert_allclose(world[:2], dot_ras[:2], atol=1e-3)
        np.testing.assert_allclose(world[2], ORIGIN[2] + k * DZ, atol=1e-3)
    # the grid is regular along the slice normal with the true slice spacing (not DZ / cos(tilt))
    np.testing.assert_allclose(np.linalg.norm(series.affine[:3, :3], axis=0), (SX, SY, DZ), rtol=1e-5)
    np.testing.assert_allclose(series.affine[:3, 2] / DZ, (0, 0, 1), atol=1e-9)

    vol = load_volume(folder, resample_tilt=True)
    assert vol.spacing[2] == pytest.approx(DZ, rel=1e-5)


def test_stacked_as_is_the_dot_would_wander(tmp_path):
    """What the refusal prevents: without the in-plane shift the dot moves one row per slice, ~7 mm by
    slice 8 (the reviewer's reproduction)."""
    pos = tilted_positions()
    folder = write_positions(tmp_path / "s", dot_series(pos, _dot()), pos)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    raw = sitk.GetArrayFromImage(reader.Execute())  # (K, J, I)
    rows = [int(np.unravel_index(np.argmax(raw[k]), raw.shape[1:])[0]) for k in range(N_SLICES)]
    assert rows == [12 - k for k in range(N_SLICES)]


def test_tilted_label_series_resampled_nearest(tmp_path):
    pos = tilted_positions()
    dot = _dot()
    img = write_positions(tmp_path / "img", dot_series(pos, dot), pos)
    lab = write_positions(tmp_path / "lab", dot_series(pos, dot, background=0, value=1), pos,
                          uid=UID + ".2")
    with pytest.raises(InputError, match="degrees"):
        load_volume(img, lab)
    vol = load_volume(img, lab, resample_tilt=True)
    assert vol.label.dtype == np.uint8 and set(np.unique(vol.label)) <= {0, 1}
    np.testing.assert_array_equal(vol.label == 1, vol.image == 1000)


def test_regular_series_is_not_tilted(tmp_path):
    pos = tilted_positions(angle_deg=0.0)
    folder = write_positions(tmp_path / "axial", dot_series(pos, _dot()), pos)
    series = read_dicom_series(folder)
    assert "gantry_tilt_deg" not in series.meta
    np.testing.assert_allclose(np.linalg.norm(series.affine[:3, :3], axis=0), (SX, SY, DZ), rtol=1e-5)


def _jitter(kind: str, n=N_SLICES) -> np.ndarray:
    """(n, 3) position errors, each shorter than TILT_TOL_MM (0.01 mm)."""
    if kind == "random":
        rng = np.random.default_rng(3)
        vec = rng.normal(size=(n, 3))
        return vec / np.linalg.norm(vec, axis=1, keepdims=True) * rng.uniform(0, 0.0099, size=(n, 1))
    err = np.zeros((n, 3))
    if kind == "alternating":  # in-plane zig-zag
        err[:, 1] = 0.0099 * (-1.0) ** np.arange(n)
    elif kind == "first_off":  # the first slice off one way, all others the other way
        err[:, 0] = 0.0099
        err[0, 0] = -0.0099
    elif kind == "diagonal":
        err[:, :2] = 0.0099 / math.sqrt(2) * np.where(np.arange(n) < n // 2, -1.0, 1.0)[:, None]
    return err


@pytest.mark.parametrize("kind", ["random", "alternating", "first_off", "diagonal"])
def test_position_jitter_is_not_tilt(tmp_path, kind):
    """Rounding-size errors (< 0.01 mm) on the positions are no tilt: read as is, same as without them."""
    pos = tilted_positions(angle_deg=0.0)
    jittered = list(np.asarray(pos) + _jitter(kind))
    data = dot_series(pos, _dot())
    clean = read_dicom_series(write_positions(tmp_path / "clean", data, pos))
    noisy = read_dicom_series(write_positions(tmp_path / "noisy", data, jittered))
    assert "gantry_tilt_deg" not in noisy.meta
    np.testing.assert_array_equal(noisy.array, clean.array)
    np.testing.assert_allclose(noisy.affine, clean.affine, atol=0.01)


def test_small_real_tilt_is_caught(tmp_path):
    """A drift well above the tolerance, even at a small angle, is reported with its angle."""
    angle = math.degrees(math.atan(10 * TILT_TOL_MM / ((N_SLICES - 1) * DZ)))  # 0.1 mm over the series
    pos = tilted_positions(angle_deg=angle)
    with pytest.raises(InputError, match=rf"{angle:.2f} degrees"):
        read_dicom_series(write_positions(tmp_path / "s", dot_series(pos, _dot()), pos))


def test_oblique_tilted_series(tmp_path):
    """A tilt on an oblique slice orientation: the decomposition uses the series' own axes."""
    t = math.radians(15)
    row = np.array([math.cos(t), 0.0, -math.sin(t)])
    col = np.array([0.0, 1.0, 0.0])
    normal = np.cross(row, col)
    step = DZ * math.tan(math.radians(TILT_DEG))
    pos = [ORIGIN + k * DZ * normal + k * step * col for k in range(N_SLICES)]
    dot = ORIGIN + 5 * SX * row + 12 * SY * col
    arr = np.full((N_SLICES, ROWS, COLS), -1000, dtype=np.int16)
    for k in range(N_SLICES):
        j = 12 - k
        if j >= 0:
            arr[k, j, 5] = 1000
    folder = write_positions(tmp_path / "obl", arr, pos, orientation=(*row, *col))
    with pytest.raises(InputError, match=r"20\.00 degrees"):
        read_dicom_series(folder)
    series = read_dicom_series(folder, resample_tilt=True)
    for k in range(N_SLICES):
        assert np.unravel_index(np.argmax(series.array[:, :, k]), (COLS, ROWS)) == (5, 12)
        world = series.affine @ (5, 12, k, 1.0)
        np.testing.assert_allclose(world[:3], (dot + k * DZ * normal) * (-1, -1, 1), atol=1e-3)
