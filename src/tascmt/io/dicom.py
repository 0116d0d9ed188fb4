"""Reading a DICOM series folder with SimpleITK (GDCM): one series per folder, converted to a RAS affine.

``ImageSeriesReader`` sorts the slices by their position along the slice normal and takes the spacing
from the headers (PixelSpacing, slice positions); the rescale slope/intercept is applied (CT → HU).
ITK's geometry is in LPS; :func:`tascmt.io.orientation.itk_to_ras_affine` converts it to the RAS affine
every other part of tascmt uses.
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


def _check_slice_positions(reader: sitk.ImageSeriesReader, normal: np.ndarray, folder: Path) -> None:
    """Refuse non-uniform gaps between slice positions (missing or duplicated slices)."""
    n = len(reader.GetFileNames())
    if n < 3:
        return
    pos = []
    for i in range(n):
        if not reader.HasMetaDataKey(i, "0020|0032"):
            return  # no ImagePositionPatient: nothing to check
        pos.append([float(v) for v in reader.GetMetaData(i, "0020|0032").split("\\")])
    z = np.asarray(pos) @ normal  # (n,) slice positions along the normal
    gaps = np.diff(z)
    med = float(np.median(gaps))
    if abs(med) < 1e-6 or np.max(np.abs(gaps - med)) > SLICE_GAP_RTOL * abs(med) + 1e-4:
        raise InputError(
            f"slice positions are not evenly spaced (gaps from {gaps.min():.4g} to {gaps.max():.4g} mm, "
            "missing or duplicate slices?)",
            path=folder,
        )


@_keeps_locale
def read_dicom_series(folder: str | Path, max_voxels: int = MAX_VOXELS) -> DicomSeries:
    """Read the one DICOM series in ``folder``.

    Returns:
        :class:`DicomSeries` with ``array`` (I, J, K) float32 (rescale slope/intercept applied), index order
        (column, row, slice) like ITK, and its RAS ``affine``; ``meta`` holds ``Modality`` (0008|0060) when
        present.
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
    affine = check_affine(itk_to_ras_affine(image.GetOrigin(), image.GetSpacing(), image.GetDirection()),
                          folder)
    _check_slice_positions(reader, np.asarray(image.GetDirection()).reshape(3, 3)[:, 2], folder)
    array = sitk.GetArrayViewFromImage(image).astype(np.float32).transpose(2, 1, 0)  # (K,J,I) → (I,J,K)
    meta = {"series_uid": uid}
    if reader.HasMetaDataKey(0, "0008|0060"):
        meta["Modality"] = reader.GetMetaData(0, "0008|0060").strip()
    return DicomSeries(array=np.ascontiguousarray(array), affine=affine, series_uid=uid, meta=meta)
