"""``prepare_dataset``: a task folder → the on-disk triplet cache (see :mod:`tascmt.data.cache`).

Per case: read and check the volume (:mod:`tascmt.io`; a bad file is an :class:`InputError` naming it),
move the slice axis first, apply the in-plane policy (``native``, the default, keeps the pixels; CT slices
whose values are whole HU in the int16 range are stored as int16, exactly, so the cache is about the size
of the input; ``pad_resize`` resizes images bilinearly and masks by nearest neighbour), optionally resample
along z, plan the triplets and record whether each of their masks has foreground. Everything is written into a
temporary folder beside ``out_dir`` and renamed at the end, so an error never leaves a partial cache. Running
again with the same parameters and unchanged input files returns the existing cache at once (parameter hash).
The manifest also records the cache's data fingerprint (content, not paths or times:
:func:`tascmt.data.cache.data_fingerprint`), hashed once from the written arrays.

Faults: the free space is checked against an estimate of the cache's size before anything is written, and
the memory-mapped arrays are preallocated, so a full disk is one clear error (never a SIGBUS) and the
temporary folder is removed. One ``prepare`` at a time writes a given ``out_dir`` (a lock file
``.NAME.lock`` beside it); under that lock, temporary and old folders left by a killed ``prepare`` are
removed, and a cache that a kill between the two renames of the final swap left only in ``.NAME.old-*/``
is put back in place (``cache_folder.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from tascmt.data import triplets as tp
from tascmt.data.cache import CASES_DIR, MANIFEST_FILE, Manifest, case_files, flow_file
from tascmt.data.cache_folder import (
    SPACE_ERRNOS,
    check_free_space,
    debris,
    fsync_tree,
    make_parent,
    preallocate,
    remove_stale,
    swap_into_place,
)
from tascmt.data.foreground import DEFAULT_BG_FRACTION, check_policy
from tascmt.data.inplane import InplanePolicy
from tascmt.data.normalize import make_normalizer, normalizer_from_dict
from tascmt.data.splits import SPLITS_FILE, load_splits, make_splits
from tascmt.errors import ConfigError, InputError
from tascmt.utils.atomic import write_json_atomic
from tascmt.utils.lock import lock_beside
from tascmt.utils.provenance import write_run_info
from tascmt.utils.writable import check_writable_folder


def _verify_headers(task) -> None:
    """Header-level checks of every case before any voxel is read (io's ``verify_task``)."""
    from tascmt.io import verify_task

    problems = verify_task(task, check_values=False)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise InputError(f"dataset check failed with {len(problems)} problem(s): " + "; ".join(problems[:5])
                         + more)


def _resolve_norm(norm, modality: str) -> dict:
    if norm is None:
        return make_normalizer(modality).to_dict()
    if isinstance(norm, dict):
        return normalizer_from_dict(norm).to_dict()
    return make_normalizer(str(norm)).to_dict()


def _input_files(cases) -> list:
    """Identify the input files (path, name, size, mtime) so that a changed file invalidates the cache (the
    parameter hash; not the data fingerprint, which is about content)."""
    out = []
    for c in cases:
        for p in (c.image, c.label):
            if p is None:
                continue
            p = Path(p)
            files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
            out.append([str(p), [(q.name, q.stat().st_size, q.stat().st_mtime_ns) for q in files]])
    return out


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"output {out_dir} exists and is not a folder")
    if out_dir.parent.is_dir() and debris(out_dir):
        try:  # debris of a killed prepare: clean it (and restore an interrupted swap) under the lock
            lock = lock_beside(out_dir, "cache folder")
        except OSError:  # a read-only place: nothing can be cleaned (nor written) there
            lock = None
        if lock is not None:
            with lock:
                remove_stale(out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MANIFEST_FILE).exists():
        raise ConfigError(f"output folder {out_dir} is not empty and is not a tascmt cache; "
                          "refusing to overwrite it (choose an empty or new folder)")


def _foreground(label: np.ndarray, label_values) -> np.ndarray:
    """(Z, H, W) uint8 in {0, 1}, C-contiguous."""
    if label_values is None:
        fg = label > 0
    else:
        lut = np.zeros(256, dtype=bool)
        lut[np.asarray(label_values, dtype=int)] = True
        fg = lut[label]
    return np.ascontiguousarray(fg, dtype=np.uint8)


def _label_values(label: np.ndarray, chunk: int = 8) -> list[int]:
    """Values present in a uint8 label map (bincount in chunks: it casts to int64)."""
    counts = np.zeros(256, dtype=np.int64)
    for a in range(0, label.shape[0], chunk):
        counts += np.bincount(label[a:a + chunk].ravel(), minlength=256)
    return np.flatnonzero(counts).tolist()


def _process_case(ref, load_volume, p: dict, inplane: InplanePolicy, out: Path,
                  declared: dict) -> tuple[dict, list[dict]]:
    """Load one case, write its arrays into ``out``; return (case info, triplet records without split)."""
    vol = load_volume(ref.image, ref.label, case_id=ref.case_id, resample_tilt=bool(p.get("resample_tilt")))
    if declared:
        undeclared = sorted(set(_label_values(vol.label)) - set(declared))
        if undeclared:
            raise InputError(f"label values {undeclared} are not declared in the task's labels "
                             f"{sorted(declared)}", path=ref.label)
    axis = tp.slice_axis(vol.spacing, p["slice_axis"])
    dz = round(float(vol.spacing[axis]), 6)  # float32 header values: 1.37 not 1.3700000047
    positions = vol.meta.get("slice_positions") if isinstance(vol.meta, dict) else None
    img = np.moveaxis(vol.image, axis, 0)  # (Z, H, W) view
    seg = np.moveaxis(vol.label, axis, 0)  # (Z, H, W) view, label values
    info = {"split": None, "image": str(ref.image), "label": str(ref.label), "shape": list(vol.shape),
            "spacing": [round(float(s), 6) for s in vol.spacing], "slice_axis": axis, "dz": dz,
            "hw": list(img.shape[1:]), "n_slices": int(img.shape[0]),
            "pixel_spacing": [round(float(s), 6) for i, s in enumerate(vol.spacing) if i != axis]}
    if inplane.kind == "none" and tuple(img.shape[1:]) != (inplane.size, inplane.size):
        raise InputError(f"slices are {img.shape[1]}×{img.shape[2]} but in-plane policy 'none' needs "
                         f"{inplane.size}×{inplane.size}; use pad_resize", path=ref.image)
    if img.shape[0] < 3:
        info["excluded"] = f"only {img.shape[0]} slices"
        return info, []
    plan = tp.plan_triplets(img.shape[0], dz, p["gap_mm"], p["tol_mm"], p["protocol"], positions)
    info.update(step=plan.step, gap_mm=plan.gap_mm)
    if not plan.triplets:
        info["excluded"] = (f"slice spacing {dz:g} mm: step {plan.step} gives a gap of {plan.gap_mm:g} mm, "
                            f"not {p['gap_mm']:g} ± {p['tol_mm']:g} mm" if p["protocol"] == "acquired"
                            else "too few contiguous slices")
        return info, []
    img_path, seg_path = (out / rel for rel in case_files(ref.case_id))
    resampled = p["protocol"] == "resampled"
    if resampled:  # needs whole runs along z at once
        img_m = inplane.forward(np.ascontiguousarray(img), is_mask=False)  # (Z, size, size) float32
        seg_m = inplane.forward(_foreground(seg, p["label_values"]), is_mask=True)  # (Z, size, size) uint8
        src = tp.resample_source_index(info["n_slices"], dz, p["gap_mm"], positions)
        np.save(img_path, tp.resample_slices(img_m, src, is_mask=False, positions=positions, dz=dz))
        del img_m
        seg_m = tp.resample_slices(seg_m, src, is_mask=True, positions=positions, dz=dz)
        np.save(seg_path, seg_m)
        fg = seg_m.reshape(seg_m.shape[0], -1).any(axis=1)  # (Z',) slice has foreground
        info["n_stored_slices"] = len(src)
    else:
        dtype = _storage_dtype(img, p["modality"]) if inplane.kind == "native" else np.float32
        info["dtype"] = np.dtype(dtype).name
        fg = _write_chunked(img, seg, p["label_values"], inplane, img_path, seg_path, dtype=dtype)
    recs = [{"case_id": ref.case_id, "k0": k0, "k1": k1, "k2": k2, "gap_mm": plan.gap_mm,
             "resampled": resampled, "fg": [bool(fg[k0]), bool(fg[k1]), bool(fg[k2])]}
            for k0, k1, k2 in plan.triplets]
    info["n_triplets"] = len(recs)
    if p.get("flow") is not None and recs:
        _write_flow_midpoints(img_path, out / flow_file(ref.case_id), recs, p["flow"])
    return info, recs


def _write_flow_midpoints(img_path: Path, flow_path: Path, recs: list[dict], flow_params: dict) -> None:
    """The flow midpoint of every triplet's input pair (k0, k2), computed once here on whole slices at cache
    resolution (never per training step): ``(n_triplets_of_case, H, W)``, the image array's dtype (whole HU
    rounded for int16 CT). Each record gets its row as ``flow_index``."""
    from tascmt.data.flow import FlowParams, flow_midpoint

    params = FlowParams.from_dict(flow_params)
    img = np.load(img_path, mmap_mode="r")  # (Z, H, W)
    out = np.lib.format.open_memmap(flow_path, mode="w+", dtype=img.dtype, shape=(len(recs), *img.shape[1:]))
    for j, rec in enumerate(recs):
        mid = flow_midpoint(np.asarray(img[rec["k0"]], np.float32), np.asarray(img[rec["k2"]], np.float32),
                            params).image
        out[j] = np.rint(mid) if img.dtype == np.int16 else mid
        rec["flow_index"] = j
    out.flush()
    del out


def _storage_dtype(img: np.ndarray, modality: str, chunk: int = 16) -> type:
    """int16 for CT whose every value is a whole number of HU inside the int16 range (stored exactly);
    float32 otherwise (MRI, rescaled CT with fractional values)."""
    if str(modality).upper() != "CT":
        return np.float32
    info = np.iinfo(np.int16)
    for a in range(0, img.shape[0], chunk):
        block = img[a:a + chunk]
        if block.min() < info.min or block.max() > info.max or not np.array_equal(block, np.rint(block)):
            return np.float32
    return np.int16


def _write_chunked(img: np.ndarray, seg: np.ndarray, label_values, inplane: InplanePolicy, img_path: Path,
                   seg_path: Path, chunk: int = 16, dtype=np.float32) -> np.ndarray:
    """Write (Z, H, W) slices in cache space (native pixels, or resized by ``pad_resize``) straight into
    ``.npy`` memory maps, ``chunk`` slices at a time, so that memory stays near one copy of the volume.
    Returns (Z,) bool: slice mask has foreground."""
    z = img.shape[0]
    shape = (z, inplane.size, inplane.size) if inplane.kind == "pad_resize" else img.shape
    img_out = np.lib.format.open_memmap(img_path, mode="w+", dtype=dtype, shape=shape)
    preallocate(img_path)
    seg_out = np.lib.format.open_memmap(seg_path, mode="w+", dtype=np.uint8, shape=shape)
    preallocate(seg_path)
    fg = np.zeros(z, dtype=bool)
    for a in range(0, z, chunk):
        b = min(z, a + chunk)
        block_img = inplane.forward(np.ascontiguousarray(img[a:b]), is_mask=False)  # (c, H', W') float32
        img_out[a:b] = np.rint(block_img) if dtype == np.int16 else block_img
        block = inplane.forward(_foreground(seg[a:b], label_values), is_mask=True)  # (c, size, size)
        seg_out[a:b] = block
        fg[a:b] = block.reshape(b - a, -1).any(axis=1)
    img_out.flush()
    seg_out.flush()
    del img_out, seg_out
    return fg


def prepare_dataset(
    task_path: str | Path,
    out_dir: str | Path,
    *,
    size: int = 256,
    gap_mm: float = 1.25,
    tol_mm: float = 0.25,
    protocol: str = "acquired",
    fg_policy_train: str = "every",
    fg_policy_eval: str = "every",
    bg_fraction: float = DEFAULT_BG_FRACTION,
    bg_seed: int = 0,
    norm: str | dict | None = None,
    inplane: str = "native",
    split_seed: int = 42,
    n_folds: int = 5,
    allow_tiny_split: bool = False,
    flow_base: bool = False,
    resample_tilt: bool = False,
    label_values: list[int] | None = None,
    slice_axis: int | None = None,
    modality: str | None = None,
    progress: bool = True,
    verbose: bool = True,
) -> Manifest:
    """Build (or reuse) the triplet cache of a task.

    Args:
        task_path: MSD task folder or plain image/label folder (see :func:`tascmt.io.read_task`).
        out_dir: cache folder (created; an existing non-cache folder with files is refused).
        size: model in-plane size (with ``inplane="native"``: the size of the tiles the model sees).
        gap_mm, tol_mm, protocol: see :func:`tascmt.data.triplets.plan_triplets`.
        fg_policy_train, fg_policy_eval: default foreground policies recorded in the manifest.
        bg_fraction, bg_seed: the ``fg_plus_bg`` background fraction and its seed.
        norm: normalisation name or dict; None picks it from the task's modality (CT → ct_window,
            MRI → minmax_pair; unknown → ConfigError).
        inplane: in-plane policy: ``native`` (default), ``pad_resize`` (the paper's protocol) or ``none``.
        split_seed, n_folds: patient split; an existing ``out_dir/splits.json`` is reused.
        resample_tilt: resample gantry-tilted DICOM series onto a regular grid (refused by default).
        flow_base: also store the flow midpoint of every triplet's input pair (TV-L1; ~0.3 s per 200² pair,
            ~2 s per 512² pair on 2 cores), for models with ``interp_base="flow"``.
        allow_tiny_split: with fewer than 3 cases, put all of them in train (no validation, no test; training
            then runs without early stopping) instead of refusing.
        label_values: label ids counted as foreground (default: every label > 0).
        slice_axis: force the slice axis (default: from the voxel spacing).
        modality: override the task's modality.
    Returns:
        the cache's :class:`Manifest`.
    Raises:
        InputError: a bad input file (named); no cache is written.
        ConfigError: an invalid option.
    """
    if protocol not in tp.PROTOCOLS:
        raise ConfigError(f"protocol must be one of {tp.PROTOCOLS}, got {protocol!r}")
    check_policy(fg_policy_train)
    check_policy(fg_policy_eval)
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    from tascmt.io import load_volume, read_task

    task = read_task(task_path, modality=modality)
    missing = [c.image for c in task.cases if c.label is None]
    if missing:
        raise InputError(f"{len(missing)} case(s) have no label map (e.g. {missing[0]}); "
                         "prepare needs labelled cases", path=task.root)
    mod = task.primary_modality
    inplane_policy = InplanePolicy(inplane, size)
    from tascmt.data.flow import FlowParams
    params = {
        "task": str(Path(task_path).resolve()), "task_name": task.name, "modality": mod,
        "size": int(size), "gap_mm": float(gap_mm), "tol_mm": float(tol_mm), "protocol": protocol,
        "fg_policy_train": fg_policy_train, "fg_policy_eval": fg_policy_eval,
        "bg_fraction": float(bg_fraction), "bg_seed": int(bg_seed),
        "norm": _resolve_norm(norm, mod), "inplane": inplane_policy.to_dict(),
        "split_seed": int(split_seed), "n_folds": int(n_folds),
        "label_values": None if label_values is None else sorted(int(v) for v in label_values),
        "slice_axis": slice_axis,
        "flow": FlowParams().to_dict() if flow_base else None,
        "resample_tilt": bool(resample_tilt),
    }
    splits = _resolve_splits(out_dir, [c.case_id for c in task.cases], split_seed, n_folds, allow_tiny_split)
    param_hash = _hash({"params": params, "inputs": _input_files(task.cases), "splits": splits})
    if (out_dir / MANIFEST_FILE).exists():
        with contextlib.suppress(InputError):
            old = Manifest.load(out_dir)
            if old.param_hash == param_hash and old.is_complete():
                if verbose:
                    fp = f", data fingerprint {old.stored_fingerprint}" if old.stored_fingerprint else ""
                    print(f"cache {out_dir} is up to date (parameter hash {param_hash}{fp})\n{old.summary()}")
                return old

    _verify_headers(task)
    manifest = _build(task, out_dir, params, param_hash, splits, inplane_policy, load_volume, progress)
    if verbose:
        if params["norm"]["name"] == "triplet":
            print("note: norm 'triplet' (the public code's three-frame min-max) leaks the target's intensity "
                  "range into the inputs' scale; report results with it as such")
        unassigned = sorted(c for c, info in manifest.cases.items() if info["split"] is None)
        if unassigned:
            print(f"note: {len(unassigned)} case(s) are not in {out_dir / SPLITS_FILE} and are used by no "
                  f"split: {unassigned[:5]}")
        print(f"prepared {len(manifest.cases)} cases of {task.name} ({mod}) into {out_dir}: "
              f"{len(manifest.triplets)} triplets, protocol {protocol}, gap {gap_mm:g} mm, in-plane "
              f"{inplane}" + (" (the paper's protocol: slices resized to the model size)"
                              if inplane == "pad_resize" else ""))
        mib_cache, mib_in = _cache_bytes(out_dir) / 2**20, _input_bytes(task.cases) / 2**20
        print(f"  cache arrays {mib_cache:.1f} MiB for {mib_in:.1f} MiB of input files; data fingerprint "
              f"{manifest.stored_fingerprint}")
        print(manifest.summary())
    return manifest


def _cache_bytes(out_dir: Path) -> int:
    return sum(f.stat().st_size for f in (out_dir / CASES_DIR).glob("*.npy"))


def _input_bytes(cases) -> int:
    total = 0
    for c in cases:
        for p in (c.image, c.label):
            if p is not None:
                p = Path(p)
                files = [q for q in p.rglob("*") if q.is_file()] if p.is_dir() else [p]
                total += sum(q.stat().st_size for q in files)
    return total


def _resolve_splits(out_dir: Path, case_ids: list[str], split_seed: int, n_folds: int,
                    allow_tiny: bool = False) -> dict:
    """The existing ``out_dir/splits.json`` (checked against the cases and the seed) or a new split."""
    old_splits = out_dir / SPLITS_FILE
    if not old_splits.exists():
        return make_splits(case_ids, seed=split_seed, n_folds=n_folds, allow_tiny=allow_tiny)
    splits = load_splits(old_splits, case_ids)
    if splits.get("seed") != split_seed:
        raise ConfigError(f"{old_splits} was made with split seed {splits.get('seed')}, "
                          f"not {split_seed}; pass that seed or delete the file")
    return splits


def _build(task, out_dir: Path, params: dict, param_hash: str, splits: dict, inplane: InplanePolicy,
           load_volume, progress: bool) -> Manifest:
    """Write the whole cache into a temporary folder beside ``out_dir``, then swap it into place.

    Holds the ``out_dir`` lock throughout; checks the free space first; a full disk while writing is one
    :class:`ConfigError` and removes the temporary folder (as any other error does).
    """
    from tqdm import tqdm

    membership = {c: s for s in ("train", "val", "test") for c in splits[s]}
    check_writable_folder(out_dir.parent, "cache's parent folder")
    parent = make_parent(out_dir)
    with lock_beside(out_dir, "cache folder"):
        remove_stale(out_dir)
        check_free_space(task, params, inplane, out_dir)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{os.getpid()}-", dir=parent))
        try:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the cache is an ordinary folder
            (tmp / CASES_DIR).mkdir()
            cases, records = {}, []
            for ref in tqdm(task.cases, desc="prepare", unit="case", disable=not progress):
                info, recs = _process_case(ref, load_volume, params, inplane, tmp, task.labels)
                info["split"] = membership.get(ref.case_id)
                for r in recs:
                    r["split"] = info["split"]
                cases[ref.case_id] = info
                records += recs
            for i, r in enumerate(records):
                r["index"] = i
            manifest = Manifest(root=tmp, params=params, param_hash=param_hash, cases=cases,
                                triplets=records, splits=splits)
            manifest.fingerprint()  # the data fingerprint, hashed once from the arrays just written
            write_json_atomic(tmp / SPLITS_FILE, splits)
            write_json_atomic(tmp / MANIFEST_FILE, manifest.to_json())
            write_run_info(tmp, {"prepare": params})
            fsync_tree(tmp)
            swap_into_place(tmp, out_dir)
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            if err.errno in SPACE_ERRNOS:
                where = err.filename or tmp
                raise ConfigError(f"no room to write the cache {out_dir} ({where}: {err.strerror}); the "
                                  "partial cache was removed — free some space (or raise the file-size "
                                  "limit) or choose another output folder") from err
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    manifest.root = out_dir
    return manifest
