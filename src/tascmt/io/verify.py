"""Dataset integrity check before prepare/train (like nnU-Net's ``verify_dataset_integrity``)."""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from tascmt.errors import InputError
from tascmt.io.checks import check_label_geometry
from tascmt.io.orientation import voxel_spacing
from tascmt.io.task import CaseRef, Task

MIN_SLICES = 3


def through_plane_axis(spacing, rule: str = "odd_one_out") -> int:
    """The through-plane (slice) axis of voxel sizes ``spacing`` (three positive values, canonical axes).

    ``rule="largest"``: the axis with the largest spacing (ties → the last such axis).
    ``rule="odd_one_out"`` (default): scanners acquire square in-plane pixels, so when exactly two spacings
    agree the third axis is the slice axis even when its spacing is the smaller one (MSD Lung has cases
    with 0.78×0.78 mm pixels and 0.625 mm slices, where "largest" would pick an in-plane axis); otherwise
    the largest rule applies. Both agree whenever the slice spacing is the largest.
    """
    sp = np.asarray(spacing, dtype=np.float64)
    if rule not in ("largest", "odd_one_out"):
        raise ValueError(f"slice-axis rule must be 'largest' or 'odd_one_out', got {rule!r}")
    same = np.isclose(sp[:, None], sp[None, :], rtol=1e-3, atol=1e-4)  # (3, 3)
    if rule == "odd_one_out" and same.sum() == 5:  # exactly one pair agrees (3 diagonal + 2)
        return int(np.flatnonzero(same.sum(axis=1) == 1)[0])
    largest = np.isclose(sp, sp.max(), rtol=1e-3, atol=1e-4)
    return int(np.flatnonzero(largest)[-1])


def verify_case(case: CaseRef, task: Task, check_values: bool = True) -> list[str]:
    """Problems with one case (empty when fine); each names the file.

    With ``check_values`` the voxels are read (NaN/Inf, constant images, label values ⊆ ``task.labels``);
    without, only headers (readable, 3D, sane size/affine, image/label geometry).
    """
    # Lazy: the readers need nibabel and SimpleITK, while through_plane_axis (used by the data stage and
    # by inference on arrays) must import without them.
    from tascmt.io.load import load_volume, read_geometry

    try:
        if check_values:
            vol = load_volume(case.image, case.label, modality=task.primary_modality, case_id=case.case_id)
            shape, spacing = vol.shape, vol.spacing
        else:
            shape, affine = read_geometry(case.image)
            if case.label is not None:
                lshape, laffine = read_geometry(case.label)
                check_label_geometry(shape, affine, case.image, lshape, laffine, case.label)
            spacing = voxel_spacing(affine)
    except InputError as err:
        return [str(err)]
    problems = []
    if check_values and vol.label is not None and task.labels:
        found = set(np.unique(vol.label).tolist())
        undeclared = sorted(found - set(task.labels))
        if undeclared:
            problems.append(f"{case.label}: label values {undeclared} are not declared in the task's labels "
                            f"{sorted(task.labels)}")
    axis = through_plane_axis(spacing)
    if shape[axis] < MIN_SLICES:
        problems.append(
            f"{case.image}: only {shape[axis]} slices along the through-plane axis {axis} "
            f"(spacing {tuple(round(s, 4) for s in spacing)} mm); at least {MIN_SLICES} are needed"
        )
    return problems


def verify_task(task: Task, check_values: bool = True, progress: bool = False) -> list[str]:
    """Check every case of ``task``; returns one line per problem (empty list when the dataset is fine)."""
    problems: list[str] = []
    for case in tqdm(task.cases, desc=f"verify {task.name}", unit="case", disable=not progress):
        problems.extend(verify_case(case, task, check_values=check_values))
    return problems
