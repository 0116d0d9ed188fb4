"""Reading a DICOM series folder with SimpleITK (GDCM): one series per folder, converted to a RAS affine.

``ImageSeriesReader`` sorts the slices by their position along the slice normal and takes the spacing
from the headers (PixelSpacing, slice positions); the rescale slope/intercept is applied (CT → HU).
ITK's geometry is in LPS; :func:`tascmt.io.orientation.itk_to_ras_affine` converts it to the RAS affine
every other part of tascmt uses.

Slice positions are checked against the slice normal: uneven gaps (missing slices) are refused, and so is
a gantry-tilted CT series (slices shifted in-plane from one to the next) unless the caller asks for it to be
resampled onto a regular grid (``resample_tilt=True``).
"""

from __future__ import annotations

import contextlib
import functools
import locale
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import SimpleITK as sitk

from tascmt.errors import InputError
from tascmt.io.nifti import MAX_VOXELS, check_size, spatial_shape
from tascmt.io.orientation import check_affine, itk_to_ras_affine

# Files in a series folder that are not slices and are ignored.
IGNORED_NAMES = {"DICOMDIR", "Thumbs.db", "desktop.ini"}
# Relative tolerance on the spacing between consecutive slice positions.
SLICE_GAP_RTOL = 0.01
# Error (mm) of a recorded slice position (ImagePositionPatient rounding) that is not taken for gantry
# tilt: a series counts as tilted when some slice lies more than twice this in-plane away from the series'
# mean line along the slice normal (an error on that slice plus one on the mean).
TILT_TOL_MM = 0.01


@dataclass
class DicomSeries:
    array: np.ndarray  # (I, J, K) float32 in ITK index order (columns, rows, slices)
    affine: np.ndarray  # (4, 4) RAS voxel → world
    series_uid: str
    meta: dict = field(default_factory=dict)


_F = TypeVar("_F", bound=Callable[..., Any])


@contextlib.contextmanager
def _locale_kept() -> Iterator[None]:
    """GDCM (inside SimpleITK) switches the process locale to "C", after which Python's default text
    encoding becomes ASCII for the rest of the process; put the caller's locale back."""
    saved = locale.setlocale(locale.LC_ALL)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def _keeps_locale(fn: _F) -> _F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _locale_kept():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _candidate_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name not in IGNORED_NAMES
    )


@_keeps_locale
def series_files(folder: str | Path) -> tuple[str, list[str]]:
    """Check ``folder`` holds exactly one DICOM series and nothing else; return (series UID, sorted files)."""
    folder = Path(folder)
    if not folder.exists():
        raise InputError("DICOM folder not found", path=folder)
    if not folder.is_dir():
        raise InputError("is not a folder", path=folder)
    files = _candidate_files(folder)
    if not files:
        raise InputError("folder is empty (expected the slices of one DICOM series)", path=folder)
    uids = list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))
    if not uids:
        raise InputError(f"no DICOM series found among its {len(files)} files (e.g. {files[0].name})",
                         path=folder)
    if len(uids) > 1:
        raise InputError(
            f"holds {len(uids)} DICOM series ({', '.join(uids)}); put each series in its own folder",
            path=folder,
        )
    names = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uids[0]))
    in_series = {Path(n).resolve() for n in names}
    strays = [p for p in files if p.resolve() not in in_series]
    if strays:
        raise InputError(
            f"{len(strays)} file(s) are not slices of DICOM series {uids[0]}, e.g. {strays[0].name!r} "
            "(not DICOM, or unreadable); remove them from the series folder",
            path=folder,
        )
    return uids[0], names


def _slice_positions(reader: sitk.ImageSeriesReader) -> np.ndarray | None:
    """ImagePositionPatient (LPS mm) of every slice in the reader's (sorted) order, (n, 3); None when a
    slice lacks the tag or it cannot be parsed."""
    pos = []
    for i in range(len(reader.GetFileNames())):
        if not reader.HasMetaDataKey(i, "0020|0032"):
            return None
        try:
            xyz = [float(v) for v in reader.GetMetaData(i, "0020|0032").split("\\")]
        except ValueError:
            return None
        if len(xyz) != 3 or not np.isfinite(xyz).all():
            return None
        pos.append(xyz)
    return np.asarray(pos, dtype=np.float64)


def _check_slice_positions(pos: np.ndarray | None, normal: np.ndarray, folder: Path) -> None:
    """Refuse non-uniform gaps between slice positions (missing or duplicated slices)."""
    if pos is None or len(pos) < 3:
        return  # no ImagePositionPatient (or too few slices): nothing to check
    z = pos @ normal  # (n,) slice positions along the normal
    gaps = np.diff(z)
    med = float(np.median(gaps))
    if abs(med) < 1e-6 or np.max(np.abs(gaps - med)) > SLICE_GAP_RTOL * abs(med) + 1e-4:
        raise InputError(
            f"slice positions are not evenly spaced (gaps from {gaps.min():.4g} to {gaps.max():.4g} mm, "
            "missing or duplicate slices?)",
            path=folder,
        )


@dataclass
class _Tilt:
    """Where each slice lies relative to the first one, in the slice's own axes (row, column, normal)."""

    offsets: np.ndarray  # (n, 2) mm along the row and column directions (0 for an untilted series)
    along: np.ndarray  # (n,) mm along the slice normal
    drift_mm: float  # largest in-plane offset from the first slice
    spread_mm: float  # largest in-plane distance of a slice from the mean in-plane position
    angle_deg: float  # angle between the slice normal and the line from the first to the last slice

    @property
    def tilted(self) -> bool:
        return self.spread_mm > 2 * TILT_TOL_MM


def _tilt(pos: np.ndarray | None, direction: np.ndarray) -> _Tilt | None:
    """How far the slice positions stray from the line through the first slice along the slice normal
    (a CT gantry tilt shifts every slice in-plane by the same step); None without positions."""
    if pos is None or len(pos) < 2:
        return None
    coords = np.linalg.solve(direction, (pos - pos[0]).T).T  # (n, 3): row, column, normal components
    offsets, along = coords[:, :2], coords[:, 2]
    drift = float(np.max(np.hypot(offsets[:, 0], offsets[:, 1])))
    centred = offsets - offsets.mean(axis=0)
    spread = float(np.max(np.hypot(centred[:, 0], centred[:, 1])))
    side = float(np.hypot(*offsets[-1]))
    angle = float(np.degrees(np.arctan2(side, abs(along[-1]))))
    return _Tilt(offsets=offsets, along=along, drift_mm=drift, spread_mm=spread, angle_deg=angle)


def _resample_tilted(
    array_kji: np.ndarray, tilt: _Tilt, spacing: tuple[float, ...], nearest: bool
) -> np.ndarray:
    """Shift every slice in-plane by its recorded offset so that all slices share one regular grid.

    The grid is the first slice's, stacked along the slice normal: voxel (i, j) of slice k lies at the
    first slice's position + i * column spacing along the row direction + j * row spacing along the
    column direction + k * slice spacing along the normal. Linear interpolation (nearest for label maps);
    voxels outside the acquired field are filled with the volume's minimum (air for CT).
    """
    from scipy import ndimage

    out = np.empty(array_kji.shape, dtype=np.float32)
    fill = float(array_kji.min())
    for k in range(array_kji.shape[0]):
        # data pixel (j, i) of slice k lies where the regular grid has (j + v_k / sy, i + u_k / sx)
        shift = (tilt.offsets[k, 1] / spacing[1], tilt.offsets[k, 0] / spacing[0])
        out[k] = ndimage.shift(array_kji[k].astype(np.float32), shift, order=0 if nearest else 1,
                               mode="constant", cval=fill, prefilter=False)
    return out


@_keeps_locale
def read_dicom_series(
    folder: str | Path,
    max_voxels: int = MAX_VOXELS,
    *,
    resample_tilt: bool = False,
    nearest: bool = False,
) -> DicomSeries:
    """Read the one DICOM series in ``folder``.

    A series whose slice positions do not follow the slice normal (a CT acquired with a tilted gantry:
    each slice shifted in-plane by the same step) does not fit a regular voxel grid; read as stacked, every
    slice would be placed away from its recorded position. Such a series is refused unless
    ``resample_tilt`` is set, in which case every slice is shifted in-plane onto the first slice's grid
    (see :func:`_resample_tilted`; ``nearest`` picks nearest-neighbour instead of linear interpolation,
    for label maps). Position errors up to ``TILT_TOL_MM`` per slice (rounding of the tags) are no tilt.

    Returns:
        :class:`DicomSeries` with ``array`` (I, J, K) float32 (rescale slope/intercept applied), index order
        (column, row, slice) like ITK, and its RAS ``affine``; ``meta`` holds ``Modality`` (0008|0060) when
        present, and ``gantry_tilt_deg`` when a tilted series was resampled.

    Raises:
        InputError: naming the folder: not one readable series, uneven slice gaps, a tilted series
            (with the tilt angle in degrees) without ``resample_tilt``.
    """
    folder = Path(folder)
    uid, names = series_files(folder)
    info = sitk.ImageFileReader()
    info.SetFileName(names[0])
    try:
        info.ReadImageInformation()
    except RuntimeError as err:
        raise InputError(f"cannot read DICOM header of {Path(names[0]).name}: {err}", path=folder) from err
    if info.GetNumberOfComponents() != 1:
        raise InputError(
            f"series {uid} has {info.GetNumberOfComponents()} components per pixel (RGB?); "
            "tascmt needs grey values",
            path=folder,
        )
    rows_cols = info.GetSize()[:2]
    check_size(int(rows_cols[0]) * int(rows_cols[1]) * len(names), folder, max_voxels)

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(names)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError as err:
        raise InputError(f"cannot read DICOM series {uid}: {err}", path=folder) from err
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"series {uid} is not a 3D grey-value volume (size {image.GetSize()})", path=folder)
    spatial_shape(image.GetSize(), folder)
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)  # columns: row, col, normal
    pos = _slice_positions(reader)
    _check_slice_positions(pos, direction[:, 2], folder)
    tilt = _tilt(pos, direction)
    meta: dict[str, Any] = {"series_uid": uid}
    if tilt is not None and tilt.tilted:
        if not resample_tilt:
            raise InputError(
                f"series {uid} is gantry-tilted by {tilt.angle_deg:.2f} degrees: its slice positions drift "
                f"up to {tilt.drift_mm:.3g} mm in-plane away from the slice normal, so the slices do not "
                "stack onto a regular grid; pass resample_tilt=True (--resample-tilt) to resample it",
                path=folder,
            )
        array_kji = _resample_tilted(sitk.GetArrayViewFromImage(image), tilt, image.GetSpacing(), nearest)
        dz = float((tilt.along[-1] - tilt.along[0]) / (len(tilt.along) - 1))
        grid_direction = direction.copy()
        if dz < 0:  # slices run against the normal: let the third axis run with them
            grid_direction[:, 2] *= -1
        spacing = (*image.GetSpacing()[:2], abs(dz))
        affine = check_affine(itk_to_ras_affine(pos[0], spacing, grid_direction.ravel()), folder)
        meta["gantry_tilt_deg"] = round(tilt.angle_deg, 4)
    else:
        affine = check_affine(itk_to_ras_affine(image.GetOrigin(), image.GetSpacing(), image.GetDirection()),
                              folder)
        array_kji = sitk.GetArrayViewFromImage(image).astype(np.float32)
    array = array_kji.transpose(2, 1, 0)  # (K, J, I) → (I, J, K)
    if reader.HasMetaDataKey(0, "0008|0060"):
        meta["Modality"] = reader.GetMetaData(0, "0008|0060").strip()
    return DicomSeries(array=np.ascontiguousarray(array), affine=affine, series_uid=uid, meta=meta)
