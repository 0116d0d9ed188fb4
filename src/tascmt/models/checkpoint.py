"""Save/load a model: ``model.safetensors`` (weights) + ``model.json`` (variant, config, extra). No pickle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tascmt._version import __version__
from tascmt.errors import CheckpointError
from tascmt.utils.atomic import atomic_path, write_json_atomic

FORMAT = "tascmt-model"
FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
META_NAME = "model.json"


def save_model(model: nn.Module, out_dir: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``out_dir/model.safetensors`` and ``out_dir/model.json`` atomically; returns ``out_dir``.

    ``extra`` (JSON-serialisable) is stored alongside, e.g. normalisation, in-plane policy, gap_mm.
    """
    from safetensors.torch import save_file

    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        raise CheckpointError(f"save_model: {type(model).__name__} has no dataclass .config to store")
    out_dir = Path(out_dir)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tascmt_version": __version__,
        "model": config.name,
        "config": config.to_dict(),
        "extra": dict(extra or {}),
        "n_tensors": len(tensors),
    }
    json.dumps(meta, default=str)  # fail before writing anything if extra is not serialisable at all
    with atomic_path(out_dir / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
    write_json_atomic(out_dir / META_NAME, meta)
    return out_dir


def _resolve(path: Path) -> tuple[Path, Path]:
    """(meta, weights) paths from a checkpoint folder or either of its files."""
    if path.is_dir():
        return path / META_NAME, path / WEIGHTS_NAME
    if path.suffix == ".json":
        return path, path.with_name(WEIGHTS_NAME if path.name == META_NAME else path.stem + ".safetensors")
    return path.with_name(META_NAME if path.name == WEIGHTS_NAME else path.stem + ".json"), path


def read_meta(path: str | Path) -> dict[str, Any]:
    """Read and check the ``model.json`` of a checkpoint (folder or file path)."""
    meta_path, _ = _resolve(Path(path))
    if not meta_path.is_file():
        raise CheckpointError(f"{path}: not a tascmt model checkpoint (no {meta_path} found)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{meta_path}: not a tascmt model file (invalid JSON: {err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path}: not a tascmt model file (format marker {FORMAT!r} missing)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{meta_path}: model format version {meta.get('format_version')!r} is not supported "
            f"(this tascmt {__version__} reads version {FORMAT_VERSION})"
        )
    for key in ("model", "config"):
        if key not in meta:
            raise CheckpointError(f"{meta_path}: model file lacks the {key!r} entry")
    return meta


def load_model(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint written by :func:`save_model` from its folder or either file.

    Returns ``(model, meta)``; ``meta["extra"]`` is what was passed to ``save_model``. The model is in eval
    mode on ``map_location``. Raises ``CheckpointError`` for anything that is not a matching checkpoint.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from tascmt.models.config import ModelConfigError
    from tascmt.models.registry import model_from_config

    meta = read_meta(path)
    meta_path, weights_path = _resolve(Path(path))
    if not weights_path.is_file():
        raise CheckpointError(f"{meta_path}: weights file {weights_path} is missing")
    try:
        model = model_from_config(meta["model"], meta["config"])
    except (ModelConfigError, TypeError) as err:
        raise CheckpointError(f"{meta_path}: cannot rebuild model {meta['model']!r}: {err}") from None
    try:
        tensors = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{weights_path}: not a readable safetensors file ({err})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    if missing or unexpected or mismatched:
        problems = (("missing", missing), ("unexpected", unexpected), ("shape-mismatched", mismatched))
        parts = [f"{label} {n[:5]}{' ...' if len(n) > 5 else ''}" for label, n in problems if n]
        raise CheckpointError(
            f"{weights_path}: tensors do not match model {meta['model']!r}: " + "; ".join(parts)
        )
    model.load_state_dict(tensors, strict=True)
    model.to(map_location).eval()
    return model, meta
