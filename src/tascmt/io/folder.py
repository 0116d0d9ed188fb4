"""Plain dataset folders of NIfTI image/label pairs, matched by name.

Two layouts are recognised:

1. ``images/`` and ``labels/`` sub-folders (also ``imagesTr``/``labelsTr``) holding files with the same
   names (an nnU-Net channel suffix ``_0000`` on image names is ignored). Without a label folder every
   image is an unlabelled case.
2. Files side by side, named ``<case>_image.nii.gz`` / ``<case>_label.nii.gz`` (image suffixes
   ``_image``, ``_img``, ``_vol``, ``_volume``; label suffixes ``_label``, ``_labels``, ``_seg``,
   ``_segmentation``, ``_mask``, ``_gt``; ``-`` works like ``_``; a file without suffix is an image).

Hidden and AppleDouble (``._*``) files and non-NIfTI files are ignored. Files that cannot be matched are
an :class:`InputError` listing them.
"""

from __future__ import annotations

import re
from pathlib import Path

from tascmt.errors import InputError
from tascmt.io.nifti import case_id_from_path, is_nifti_path
from tascmt.io.task_types import CaseRef, Task

DIR_PAIRS = (("images", "labels"), ("imagesTr", "labelsTr"))
IMAGE_SUFFIXES = ("image", "img", "vol", "volume")
LABEL_SUFFIXES = ("label", "labels", "seg", "segmentation", "mask", "gt")
_SUFFIX_RE = re.compile(r"^(?P<case>.+?)[_-](?P<suffix>[A-Za-z]+)$")
_CHANNEL_RE = re.compile(r"_0000$")


def nifti_files(folder: Path) -> list[Path]:
    """NIfTI files directly in ``folder``, sorted, without hidden / AppleDouble files."""
    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and is_nifti_path(p)
    )


def _unique(refs: dict[str, list[Path]], root: Path, what: str) -> dict[str, Path]:
    dupes = {k: v for k, v in refs.items() if len(v) > 1}
    if dupes:
        listing = "; ".join(f"{k}: {', '.join(p.name for p in v)}" for k, v in sorted(dupes.items()))
        raise InputError(f"several {what} files map to the same case id ({listing})", path=root)
    return {k: v[0] for k, v in refs.items()}


def _pair(images: dict[str, Path], labels: dict[str, Path], root: Path) -> list[CaseRef]:
    if not labels:
        return [CaseRef(cid, p, None) for cid, p in sorted(images.items())]
    lonely_images = sorted(set(images) - set(labels))
    lonely_labels = sorted(set(labels) - set(images))
    if lonely_images or lonely_labels:
        parts = []
        if lonely_images:
            parts.append("images without a label: " + ", ".join(images[c].name for c in lonely_images))
        if lonely_labels:
            parts.append("labels without an image: " + ", ".join(labels[c].name for c in lonely_labels))
        raise InputError("unmatched files (" + "; ".join(parts) + ")", path=root)
    return [CaseRef(cid, images[cid], labels[cid]) for cid in sorted(images)]


def _read_subfolders(root: Path, image_dir: Path, label_dir: Path | None) -> list[CaseRef]:
    images: dict[str, list[Path]] = {}
    for p in nifti_files(image_dir):
        images.setdefault(_CHANNEL_RE.sub("", case_id_from_path(p)), []).append(p)
    labels: dict[str, list[Path]] = {}
    if label_dir is not None:
        for p in nifti_files(label_dir):
            labels.setdefault(case_id_from_path(p), []).append(p)
    return _pair(_unique(images, image_dir, "image"), _unique(labels, label_dir or root, "label"), root)


def _read_flat(root: Path) -> list[CaseRef]:
    images: dict[str, list[Path]] = {}
    labels: dict[str, list[Path]] = {}
    for p in nifti_files(root):
        stem = case_id_from_path(p)
        m = _SUFFIX_RE.match(stem)
        suffix = m.group("suffix").lower() if m else ""
        if suffix in LABEL_SUFFIXES:
            labels.setdefault(m.group("case"), []).append(p)  # type: ignore[union-attr]
        elif suffix in IMAGE_SUFFIXES:
            images.setdefault(m.group("case"), []).append(p)  # type: ignore[union-attr]
        else:
            images.setdefault(stem, []).append(p)
    return _pair(_unique(images, root, "image"), _unique(labels, root, "label"), root)


def read_folder_task(root: Path) -> Task:
    """Read a plain folder of NIfTI images (and labels); modality "unknown", labels unknown (empty)."""
    for image_name, label_name in DIR_PAIRS:
        image_dir, label_dir = root / image_name, root / label_name
        if image_dir.is_dir():
            cases = _read_subfolders(root, image_dir, label_dir if label_dir.is_dir() else None)
            break
    else:
        cases = _read_flat(root)
    if not cases:
        raise InputError(
            "no NIfTI files found: expected dataset.json (MSD), images/ + labels/ sub-folders, or "
            "<case>_image.nii.gz / <case>_label.nii.gz files",
            path=root,
        )
    return Task(name=root.name, modality={"0": "unknown"}, labels={}, cases=cases, root=root)
