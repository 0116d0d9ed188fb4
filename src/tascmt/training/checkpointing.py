"""The run folder's checkpoints: ``last/`` (model + full training state) and ``best/`` (model + metrics).

Each checkpoint folder holds the model as ``tascmt.models.checkpoint.save_model`` writes it
(``model.safetensors`` + ``model.json`` whose ``extra`` carries what ``predict`` needs from the cache
manifest: modality, normalisation, in-plane policy, gap) — so ``load_model(run/best)`` needs nothing
else — and ``last/`` adds ``train_state.safetensors`` + ``train_state.json`` (optimizer, scheduler,
GradScaler, balancer, every rank's RNG states, the loop counters and early-stopping state).
Folders are swapped in whole (``state_io.write_checkpoint_dir``): a kill never leaves a half-written one.

Saving is collective under DDP (RNG states are gathered from every rank); only rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tascmt.errors import CheckpointError, ConfigError
from tascmt.training.distributed import barrier
from tascmt.training.rng import gather_rng_states, restore_rank_rng
from tascmt.training.state_io import find_checkpoint_dir, load_state, save_state, write_checkpoint_dir
from tascmt.utils.atomic import write_json_atomic
from tascmt.utils.provenance import write_run_info

if TYPE_CHECKING:
    from tascmt.training.trainer import Trainer

__all__ = ["data_extra", "find_checkpoint_dir", "restore", "save_best", "save_last", "save_on_stop",
           "start_run_folder"]

#: Entries of the cache manifest's ``params`` copied (same names) into every model checkpoint's ``extra``.
MANIFEST_KEYS = ("modality", "norm", "inplane", "gap_mm", "tol_mm", "protocol", "size", "slice_axis",
                 "task_name", "label_values")


def data_extra(cache_dir: str | Path) -> dict[str, Any]:
    """The manifest parameters ``predict`` needs (``MANIFEST_KEYS``: modality, ``norm`` dict, ``inplane``
    dict, ``gap_mm``, ...) plus ``cache_param_hash``; ``{}`` when the cache has no manifest."""
    path = Path(cache_dir) / "manifest.json"
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the cache manifest ({err})") from err
    params = manifest.get("params", manifest)
    out = {k: params[k] for k in MANIFEST_KEYS if k in params}
    spacings = [c["pixel_spacing"] for c in (manifest.get("cases") or {}).values()
                if isinstance(c, dict) and c.get("pixel_spacing") and c.get("split") == "train"]
    if spacings:  # the in-plane pixel spacing the model was trained at (median over training cases)
        out["pixel_spacing"] = [float(v) for v in np.median(np.asarray(spacings, dtype=float), axis=0)]
    if "param_hash" in manifest:
        out["cache_param_hash"] = manifest["param_hash"]
    return out


def _model_extra(trainer: Trainer, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    if not hasattr(trainer, "_data_extra"):
        trainer._data_extra = data_extra(trainer.config.cache_dir)
    st, cfg = trainer.state, trainer.config
    return {**trainer._data_extra,
            "training": {"run_dir": str(trainer.run_dir), "epoch": st.epoch, "global_step": st.global_step,
                         "seed": cfg.seed, "fold": cfg.fold, "balancer": cfg.balancer,
                         "metrics": metrics or {}}}


def check_run_folder(trainer: Trainer) -> None:
    """A fresh run must not overwrite another run's checkpoints; a resume needs them."""
    last = find_checkpoint_dir(trainer.run_dir / "last")
    if trainer.resume and last is None:
        raise CheckpointError(f"{trainer.run_dir}: nothing to resume (no last/ checkpoint in the run folder)")
    if not trainer.resume and (last is not None or find_checkpoint_dir(trainer.run_dir / "best") is not None):
        raise ConfigError(f"run folder {trainer.run_dir} already holds checkpoints; resume it with "
                          "--resume or choose another --out")


def start_run_folder(trainer: Trainer) -> None:
    """Rank 0 of a fresh run: create the folder, write ``config.json`` and ``provenance.json``."""
    trainer.run_dir.mkdir(parents=True, exist_ok=True)
    write_run_info(trainer.run_dir, trainer.config.to_dict())


def _capture(trainer: Trainer) -> dict[str, Any]:
    return {
        "loop": dataclasses.asdict(trainer.state),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "balancer": None if trainer.balancer is None else trainer.balancer.state_dict(),
        "rng": gather_rng_states(),  # collective
        "world_size": trainer.dist.world_size,
        "config": trainer.config.to_dict(),
    }


def save_last(trainer: Trainer) -> None:
    """Write ``last/`` (model + training state). Call on every rank."""
    state = _capture(trainer)
    if trainer.dist.is_main:
        def write(folder: Path) -> None:
            trainer.save_model_files(folder, _model_extra(trainer))
            save_state(folder, state)

        write_checkpoint_dir(trainer.run_dir / "last", write)
    barrier()


def save_best(trainer: Trainer, metrics: dict[str, Any] | None = None, note: str | None = None) -> None:
    """Write ``best/`` (model + ``metrics.json``). Call on every rank."""
    if metrics is None:
        metrics = dict(trainer.state.history[-1]) if trainer.state.history else {}
    if trainer.dist.is_main:
        def write(folder: Path) -> None:
            trainer.save_model_files(folder, _model_extra(trainer, metrics))
            body = {"metrics": metrics, "best_val_loss": _finite_or_none(trainer.state.best_val),
                    "best_epoch": trainer.state.best_epoch, "global_step": trainer.state.global_step}
            if note:
                body["note"] = note
            write_json_atomic(folder / "metrics.json", body)

        write_checkpoint_dir(trainer.run_dir / "best", write)
    barrier()


def save_on_stop(trainer: Trainer, reason: str) -> None:
    """A clean stop inside an epoch (time budget, max_steps): save ``last/``, and ``best/`` if none exists.

    The fallback ``best/`` is the current model, validated when there is a validation split; it does not
    change the early-stopping state, so a resumed run continues exactly as an uninterrupted one. At an epoch
    boundary ``last/`` was just written by the epoch's end and is not written again.
    """
    if trainer.state.step_in_epoch > 0 or find_checkpoint_dir(trainer.run_dir / "last") is None:
        save_last(trainer)
    if find_checkpoint_dir(trainer.run_dir / "best") is not None:
        return
    metrics = trainer.validate() if trainer.val_data is not None else {}
    save_best(trainer, metrics=metrics, note=f"saved when training stopped ({reason}) before any "
                                             "epoch-end model selection")


def restore(trainer: Trainer, last: Path) -> None:
    """Load ``last/`` into a fully built trainer (model weights, optimizer, ..., RNG states last)."""
    folder = find_checkpoint_dir(last)
    if folder is None:
        raise CheckpointError(f"{last}: no checkpoint to resume from")
    state = load_state(folder)
    _check_same_settings(state.get("config"), trainer.config.to_dict(), folder)
    trainer.load_model_weights(folder)
    try:
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.scheduler.load_state_dict(state["scheduler"])
        trainer.scaler.load_state_dict(state["scaler"])
        if trainer.balancer is not None and state.get("balancer") is not None:
            trainer.balancer.load_state_dict(state["balancer"])
    except (KeyError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{folder}: training state does not match this run's model/optimizer ({err})") \
            from err
    loop = state["loop"]
    fields = {f.name for f in dataclasses.fields(trainer.state)}
    trainer.state = type(trainer.state)(**{k: v for k, v in loop.items() if k in fields})
    restore_rank_rng(state["rng"], trainer.dist.rank)


def _check_same_settings(saved: dict[str, Any] | None, current: dict[str, Any], folder: Path) -> None:
    """Refuse to resume with settings that change the training maths (only runtime options may differ)."""
    if saved is None:
        return
    from tascmt.training.config import RUNTIME_FIELDS

    saved, current = json.loads(json.dumps(saved)), json.loads(json.dumps(current))  # tuples → lists
    diff = sorted(k for k in set(saved) | set(current)
                  if k not in RUNTIME_FIELDS and saved.get(k) != current.get(k))
    if diff:
        detail = ", ".join(f"{k}: {saved.get(k)!r} → {current.get(k)!r}" for k in diff)
        raise ConfigError(f"{folder}: cannot resume with changed training settings ({detail}); only "
                          f"{sorted(RUNTIME_FIELDS)} may differ")


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None
