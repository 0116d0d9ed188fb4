"""Saving and loading the training state without pickle.

A nested state (optimizer/scheduler/scaler state dicts, RNG states, counters) is split in two files:
``train_state.safetensors`` holds every tensor and NumPy array under a flattened key
(e.g. ``optimizer.state.3.exp_avg``) and ``train_state.json`` holds the structure and the scalars, with
small markers for what JSON cannot express (tensors, arrays, tuples, dicts with non-string keys).
Both carry the same random ``save_id`` so that a mismatched pair is detected.

A checkpoint folder (``last/``, ``best/``) is written as a whole into a temporary sibling folder and then
swapped in with two renames (``dest → .dest.old``, ``tmp → dest``), so a kill at any moment leaves either
the complete new folder or the complete previous one (:func:`find_checkpoint_dir` finds it).
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
from safetensors.torch import load_file, save_file

from tascmt.errors import CheckpointError
from tascmt.utils.atomic import atomic_path, write_json_atomic

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
    """Read what :func:`save_state` wrote; a missing, foreign or mismatched pair raises CheckpointError."""
    folder = Path(folder)
    jpath, tpath = folder / "train_state.json", folder / "train_state.safetensors"
    try:
        meta = json.loads(jpath.read_text(encoding="utf-8"))
        tensors = load_file(str(tpath))
        from safetensors import safe_open

        with safe_open(str(tpath), framework="pt") as f:
            tmeta = f.metadata() or {}
    except (OSError, json.JSONDecodeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{folder}: cannot read the training state ({err})") from err
    if meta.get("format") != STATE_FORMAT or meta.get("version") != STATE_VERSION:
        raise CheckpointError(f"{jpath}: not a tascmt training state (format {meta.get('format')!r}, "
                              f"version {meta.get('version')!r}; expected {STATE_FORMAT!r} v{STATE_VERSION})")
    if tmeta.get("save_id") != meta.get("save_id"):
        raise CheckpointError(f"{folder}: train_state.json and train_state.safetensors come from different "
                              "saves (save_id mismatch)")
    return _decode(meta["state"], tensors)


def write_checkpoint_dir(dest: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_folder)`` and swap the finished folder in as ``dest`` (see module docstring)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    old = dest.parent / f".{dest.name}.old"
    for stale in dest.parent.glob(f".{dest.name}.tmp-*"):  # left by a process killed while writing
        shutil.rmtree(stale, ignore_errors=True)
    tmp.mkdir()
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if dest.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
    os.replace(tmp, dest)
    with contextlib.suppress(OSError):
        shutil.rmtree(old)
    return dest


def find_checkpoint_dir(dest: str | os.PathLike) -> Path | None:
    """``dest`` if it exists, else the previous version left by a kill between the two renames, else None."""
    dest = Path(dest)
    if dest.is_dir():
        return dest
    old = dest.parent / f".{dest.name}.old"
    return old if old.is_dir() else None
