"""nnU-Net v2 raw dataset folders: ``dataset.json`` with ``channel_names`` + ``imagesTr/<case>_0000.nii.gz``.

dataset.json (nnU-Net v2 format)::

    {"channel_names": {"0": "CT"}, "labels": {"background": 0, "tumour": 1},
     "numTraining": 32, "file_ending": ".nii.gz"}

Cases are the label files ``labelsTr/<case>.nii.gz``; their image is ``imagesTr/<case>_0000.nii.gz``.
Test images (``imagesTs/<case>_0000.nii.gz``) are listed when the folder exists.
"""

from __future__ import annotations

from pathlib import Path

from tascmt.errors import InputError
from tascmt.io.task_types import CaseRef, Task


def _labels(meta: dict, json_path: Path) -> dict[int, str]:
    labels = meta.get("labels")
    if not isinstance(labels, dict) or not labels:
        raise InputError(f"'labels' must be a non-empty object like {{\"background\": 0}}, got {labels!r}",
                         path=json_path)
    out: dict[int, str] = {}
    for name, value in labels.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
            raise InputError(
                f"label {name!r} has value {value!r}: expected an integer in 0..255 (region-based "
                "labels are not supported)",
                path=json_path,
            )
        out[value] = str(name)
    return dict(sorted(out.items()))


def _case_files(folder: Path, ending: str, suffix: str) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    tail = f"{suffix}{ending}"
    return {
        p.name[: -len(tail)]: p
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith(".") and p.name.endswith(tail)
    }


def read_nnunet_task(root: Path, meta: dict) -> Task:
    """Build a :class:`Task` from an nnU-Net v2 raw dataset folder whose dataset.json is ``meta``."""
    json_path = root / "dataset.json"
    channels = meta["channel_names"]
    if not isinstance(channels, dict) or len(channels) != 1:
        raise InputError(
            f"'channel_names' must hold exactly one channel, got {channels!r}; multi-channel datasets are "
            "out of scope: tascmt reads single-channel 3D volumes",
            path=json_path,
        )
    ending = str(meta.get("file_ending", ".nii.gz"))
    labels = _case_files(root / "labelsTr", ending, "")
    images = _case_files(root / "imagesTr", ending, "_0000")
    missing = sorted(set(labels) - set(images))
    if missing:
        raise InputError(f"labelsTr has cases without imagesTr/<case>_0000{ending}: {', '.join(missing)}",
                         path=json_path)
    if "numTraining" in meta and meta["numTraining"] != len(labels):
        raise InputError(f"numTraining is {meta['numTraining']} but labelsTr holds {len(labels)} cases",
                         path=json_path)
    cases = [CaseRef(cid, images[cid], labels[cid]) for cid in sorted(labels)]
    tests = _case_files(root / "imagesTs", ending, "_0000")
    return Task(
        name=str(meta.get("name") or root.name),
        modality={"0": str(next(iter(channels.values())))},
        labels=_labels(meta, json_path),
        cases=cases,
        root=root,
        test_cases=[CaseRef(cid, p, None) for cid, p in sorted(tests.items())],
    )
