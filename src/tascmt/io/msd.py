"""Medical Segmentation Decathlon task folders: ``dataset.json``, ``imagesTr/``, ``labelsTr/``, ``imagesTs/``.

dataset.json (MSD format)::

    {"name": "Heart", "modality": {"0": "MRI"}, "labels": {"0": "background", "1": "left atrium"},
     "numTraining": 20, "training": [{"image": "./imagesTr/la_003.nii.gz",
                                      "label": "./labelsTr/la_003.nii.gz"}, ...],
     "test": ["./imagesTs/la_001.nii.gz", ...]}

Every inconsistency is an :class:`InputError` naming dataset.json. AppleDouble ``._*`` entries are skipped.
An nnU-Net v2 dataset.json (``channel_names`` instead of ``modality``) is read by :mod:`tascmt.io.nnunet`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path, PureWindowsPath

from tascmt.errors import InputError
from tascmt.io.nifti import case_id_from_path
from tascmt.io.nnunet import read_nnunet_task
from tascmt.io.task_types import CaseRef, Task

REQUIRED_KEYS = ("modality", "labels", "training")


def _is_appledouble(rel: str) -> bool:
    return Path(rel).name.startswith("._")


def _escapes_task_folder(rel: str) -> bool:
    """True when ``rel`` is absolute or, with ``.`` and ``..`` applied to the path string alone, leaves the
    folder it is relative to (or names that folder itself).

    The check is lexical: symbolic links are not followed, so a task whose ``imagesTr/`` links to a folder
    elsewhere still reads, while ``../../etc/passwd`` or ``./imagesTr/../../x.nii.gz`` are refused. Both
    ``/`` and ``\\`` count as separators, so a dataset.json written on Windows is judged the same way.
    """
    if rel.startswith(("/", "\\")) or PureWindowsPath(rel).drive or Path(rel).is_absolute():
        return True
    depth = 0
    for part in re.split(r"[/\\]+", rel):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return depth == 0


def _resolve(root: Path, rel, what: str, json_path: Path) -> Path:
    if not isinstance(rel, str) or not rel:
        raise InputError(f"{what} must be a non-empty path string, got {rel!r}", path=json_path)
    if _escapes_task_folder(rel):
        raise InputError(
            f"{what} {rel!r} is not a path inside the task folder {root} (entries must be relative paths "
            "like ./imagesTr/case.nii.gz that do not climb out of it with '..')",
            path=json_path,
        )
    p = (root / rel).resolve()
    if not p.exists():
        raise InputError(f"{what} {rel!r} is listed but does not exist ({p})", path=json_path)
    return p


def _parse_modality(meta: dict, json_path: Path) -> dict[str, str]:
    modality = meta["modality"]
    if not isinstance(modality, dict) or not modality:
        raise InputError(f"'modality' must be a non-empty object like {{\"0\": \"CT\"}}, got {modality!r}",
                         path=json_path)
    if len(modality) > 1:
        raise InputError(
            f"has {len(modality)} modality channels {modality}; multi-channel tasks (e.g. BraTS, Prostate) "
            "are out of scope: tascmt reads single-channel 3D volumes",
            path=json_path,
        )
    return {str(k): str(v) for k, v in modality.items()}


def _parse_labels(meta: dict, json_path: Path) -> dict[int, str]:
    labels = meta["labels"]
    if not isinstance(labels, dict) or not labels:
        raise InputError(
            f"'labels' must be a non-empty object like {{\"0\": \"background\"}}, got {labels!r}",
            path=json_path,
        )
    out: dict[int, str] = {}
    for key, name in labels.items():
        try:
            value = int(key)
        except (TypeError, ValueError):
            value = None
        if value is None or str(value) != str(key).strip() or not 0 <= value <= 255:
            raise InputError(f"label key {key!r} is not an integer in 0..255 (labels: {labels})",
                             path=json_path)
        out[value] = str(name)
    return dict(sorted(out.items()))


def read_msd_task(root: Path) -> Task:
    """Read ``root/dataset.json`` and check that every listed file exists."""
    json_path = root / "dataset.json"
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read: {err}", path=json_path) from err
    except json.JSONDecodeError as err:
        raise InputError(f"invalid JSON: {err}", path=json_path) from err
    if not isinstance(meta, dict):
        raise InputError(f"must hold a JSON object, got {type(meta).__name__}", path=json_path)
    if "channel_names" in meta and "modality" not in meta:
        return read_nnunet_task(root, meta)
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise InputError(f"missing key(s) {missing} (MSD dataset.json needs {list(REQUIRED_KEYS)})",
                         path=json_path)
    modality = _parse_modality(meta, json_path)
    labels = _parse_labels(meta, json_path)

    training = meta["training"]
    if not isinstance(training, list):
        raise InputError(f"'training' must be a list, got {type(training).__name__}", path=json_path)
    entries = [e for e in training if not (isinstance(e, dict) and _is_appledouble(str(e.get("image", ""))))]
    if "numTraining" in meta and meta["numTraining"] != len(entries):
        raise InputError(f"numTraining is {meta['numTraining']} but 'training' lists {len(entries)} cases",
                         path=json_path)
    cases: list[CaseRef] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "image" not in entry or "label" not in entry:
            raise InputError(f"training[{i}] must be an object with 'image' and 'label', got {entry!r}",
                             path=json_path)
        image = _resolve(root, entry["image"], f"training[{i}] image", json_path)
        label = _resolve(root, entry["label"], f"training[{i}] label", json_path)
        cases.append(CaseRef(case_id_from_path(image), image, label))

    test_cases: list[CaseRef] = []
    test = meta.get("test", [])
    if not isinstance(test, list):
        raise InputError(f"'test' must be a list, got {type(test).__name__}", path=json_path)
    for i, entry in enumerate(test):
        rel = entry.get("image") if isinstance(entry, dict) else entry
        if isinstance(rel, str) and _is_appledouble(rel):
            continue
        image = _resolve(root, rel, f"test[{i}] image", json_path)
        test_cases.append(CaseRef(case_id_from_path(image), image, None))

    for group, refs in (("training", cases), ("test", test_cases)):
        dupes = sorted(cid for cid, n in Counter(c.case_id for c in refs).items() if n > 1)
        if dupes:
            raise InputError(f"'{group}' lists case(s) {dupes} more than once", path=json_path)
    name = str(meta.get("name") or root.name)
    return Task(name=name, modality=modality, labels=labels, cases=sorted(cases, key=lambda c: c.case_id),
                root=root, test_cases=sorted(test_cases, key=lambda c: c.case_id))
