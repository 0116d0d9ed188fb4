"""Saving and loading the training state without pickle.

A nested state (optimizer/scheduler/scaler state dicts, RNG states, counters) is split in two files:
``train_state.safetensors`` holds every tensor and NumPy array under a flattened key
(e.g. ``optimizer.state.3.exp_avg``) and ``train_state.json`` holds the structure and the scalars, with
small markers for what JSON cannot express (tensors, arrays, tuples, dicts with non-string keys).
Both carry the same random ``save_id`` so that a mismatched pair is detected.

A checkpoint folder (``last/``, ``best/``) is written as a whole into a temporary sibling folder, flushed
to disk (``fsync``), and then swapped in with two renames, so a kill or a power loss at any moment leaves
either the complete new folder or the complete previous one (:func:`find_checkpoint_dir` finds it).
``best/`` replaces its previous version (``best → .best.old``, ``tmp → best``, old removed); ``last/`` keeps
it as ``last.prev/`` (``last → last.prev``, ``tmp → last``), so that a resume can fall back one save when
the newest one turns out to be damaged (a disk error, a file truncated by a full disk).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from tascmt.errors import CheckpointError
from tascmt.utils.atomic import atomic_path, fsync_dir, fsync_file, write_json_atomic

STATE_FORMAT = "tascmt-train-state"
STATE_VERSION = 1


def _encode(obj: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace tensors/arrays in ``obj`` by markers (storing them in ``tensors``); make it JSON-able."""
    if isinstance(obj, torch.Tensor):
        name = _unique(key, tensors)
        tensors[name] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": name}
    if isinstance(obj, np.ndarray):
        name = _unique(key, tensors)
        tensors[name] = torch.from_numpy(np.ascontiguousarray(obj).astype(np.int64, copy=True)) \
            if obj.dtype.kind in "ui" else torch.from_numpy(np.array(obj, copy=True))
        return {"__ndarray__": name, "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, f"{key}.{k}", tensors) for k, v in obj.items()}
        return {"__dict__": [[_encode(k, f"{key}.k{i}", tensors), _encode(v, f"{key}.{k}", tensors)]
                             for i, (k, v) in enumerate(obj.items())]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"training state entry {key!r} has unsupported type {type(obj).__name__}")


def _unique(key: str, taken: dict[str, Any]) -> str:
    key = key.lstrip(".") or "tensor"
    name, i = key, 1
    while name in taken:
        name, i = f"{key}#{i}", i + 1
    return name


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__ndarray__" in obj:
            return tensors[obj["__ndarray__"]].numpy().astype(np.dtype(obj["dtype"]))
        if "__tuple__" in obj:
            return tuple(_decode(v, tensors) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["__dict__"]}
        return {k: _decode(v, tensors) for k, v in obj.items()}
    return obj


def save_state(folder: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` as ``train_state.safetensors`` + ``train_state.json`` into ``folder`` (atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    body = _encode(state, "", tensors)
    save_id = uuid.uuid4().hex
    with atomic_path(folder / "train_state.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"format": STATE_FORMAT, "save_id": save_id})
    write_json_atomic(folder / "train_state.json",
                      {"format": STATE_FORMAT, "version": STATE_VERSION, "save_id": save_id, "state": body})


def load_state(folder: str | os.PathLike) -> dict[str, Any]:
    """Read what :func:`save_state` wrote.

    A missing, truncated, garbled, foreign or mismatched pair raises :class:`CheckpointError` naming the
    file (never a raw JSON/safetensors error).
    """
    folder = Path(folder)
    jpath, tpath = folder / "train_state.json", folder / "train_state.safetensors"
    try:
        meta = json.loads(jpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{jpath}: cannot read the training state ({_reason(err)})") from err
    if not isinstance(meta, dict):
        raise CheckpointError(f"{jpath}: not a tascmt training state (a JSON {type(meta).__name__}, "
                              "expected an object)")
    if meta.get("format") != STATE_FORMAT or meta.get("version") != STATE_VERSION:
        raise CheckpointError(f"{jpath}: not a tascmt training state (format {meta.get('format')!r}, "
                              f"version {meta.get('version')!r}; expected {STATE_FORMAT!r} v{STATE_VERSION})")
    if not isinstance(meta.get("state"), dict):
        raise CheckpointError(f"{jpath}: the training state has no \"state\" object (damaged file)")
    try:
        tensors = load_file(str(tpath))
        with safe_open(str(tpath), framework="pt") as f:
            tmeta = f.metadata() or {}
    except (OSError, SafetensorError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{tpath}: cannot read the training state tensors ({_reason(err)})") from err
    if tmeta.get("save_id") != meta.get("save_id"):
        raise CheckpointError(f"{folder}: train_state.json and train_state.safetensors come from different "
                              "saves (save_id mismatch)")
    try:
        return _decode(meta["state"], tensors)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"{jpath}: the training state refers to entries that "
                              f"train_state.safetensors lacks or cannot hold ({_reason(err)})") from err


def _reason(err: BaseException) -> str:
    """A one-line description of a read error."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return " ".join(str(err).split()) or type(err).__name__


def previous_dir(dest: str | os.PathLike) -> Path:
    """The rotated previous version of a checkpoint folder: ``last`` → ``last.prev``."""
    dest = Path(dest)
    return dest.parent / f"{dest.name}.prev"


def write_checkpoint_dir(dest: str | os.PathLike, write: Callable[[Path], None],
                         keep_previous: bool = False) -> Path:
    """Call ``write(tmp_folder)`` and swap the finished folder in as ``dest`` (see module docstring).

    With ``keep_previous`` the replaced folder is kept as ``dest.prev`` (one save older) instead of being
    deleted. Only one process may write a run folder at a time (the run-folder lock), so leftovers of
    earlier writers are removed first.
    """
    dest = Path(dest)
    parent = dest.parent
    parent.mkdir(parents=True, exist_ok=True)
    for pattern in (f".{dest.name}.tmp-*", f".{dest.name}.trash-*"):  # left by a process killed mid-save
        for stale in parent.glob(pattern):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = parent / f".{dest.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    try:
        write(tmp)
        _fsync_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep_previous:
        prev, trash = previous_dir(dest), parent / f".{dest.name}.trash-{os.getpid()}"
        if dest.is_dir():
            if prev.exists():
                os.replace(prev, trash)  # one rename: a kill leaves no half-deleted last.prev
            os.replace(dest, prev)
        # (a kill here leaves dest missing and prev complete: find_checkpoint_dir falls back to it)
        os.replace(tmp, dest)
        fsync_dir(parent)
        shutil.rmtree(trash, ignore_errors=True)
        return dest
    old = parent / f".{dest.name}.old"
    if dest.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
    os.replace(tmp, dest)
    fsync_dir(parent)
    with contextlib.suppress(OSError):
        shutil.rmtree(old)
    return dest


def _fsync_tree(folder: Path) -> None:
    """Flush every file under ``folder`` and the folders themselves to disk (before the swap-in)."""
    for sub, _, files in os.walk(folder):
        for name in files:
            fsync_file(Path(sub) / name)
        fsync_dir(sub)


def checkpoint_candidates(dest: str | os.PathLike) -> list[Path]:
    """The existing versions of a checkpoint folder, newest first: ``dest``; ``.dest.old`` (the previous
    folder, left by a kill between the two renames of a swap); ``dest.prev`` (the rotated previous save)."""
    dest = Path(dest)
    out = [dest, dest.parent / f".{dest.name}.old", previous_dir(dest)]
    return [p for p in out if p.is_dir()]


def find_checkpoint_dir(dest: str | os.PathLike) -> Path | None:
    """The newest existing version of a checkpoint folder (:func:`checkpoint_candidates`), else None."""
    found = checkpoint_candidates(dest)
    return found[0] if found else None
