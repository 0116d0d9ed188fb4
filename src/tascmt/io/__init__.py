"""tascmt.io: reading and writing volumes (NIfTI, DICOM series), datasets (MSD, plain folders), checks.

Every volume is reoriented to canonical RAS+ on reading and written back in its original orientation.
Bad input raises :class:`tascmt.errors.InputError` naming the file and the problem.
"""

from tascmt.io.checks import check_image_values, geometry_difference, label_to_uint8
from tascmt.io.dicom import read_dicom_series
from tascmt.io.load import load_volume, read_geometry, read_image
from tascmt.io.nifti import MAX_VOXELS, case_id_from_path, load_nifti
from tascmt.io.orientation import check_affine, upsampled_affine, voxel_spacing
from tascmt.io.save import save_like, to_original
from tascmt.io.task import CaseRef, Task, read_task
from tascmt.io.verify import through_plane_axis, verify_case, verify_task
from tascmt.io.volume import Volume

__all__ = [
    "MAX_VOXELS",
    "CaseRef",
    "Task",
    "Volume",
    "case_id_from_path",
    "check_affine",
    "check_image_values",
    "geometry_difference",
    "label_to_uint8",
    "load_nifti",
    "load_volume",
    "read_dicom_series",
    "read_geometry",
    "read_image",
    "read_task",
    "save_like",
    "through_plane_axis",
    "to_original",
    "upsampled_affine",
    "verify_case",
    "verify_task",
    "voxel_spacing",
]
