"""The run folder's checkpoints: ``last/`` (model + full training state) and ``best/`` (model + metrics).

Each checkpoint folder holds the model as ``tascmt.models.checkpoint.save_model`` writes it
(``model.safetensors`` + ``model.json`` whose ``extra`` carries what ``predict`` needs from the cache
manifest: modality, normalisation, in-plane policy, gap, and the cache's data fingerprint) — so
``load_model(run/best)`` needs nothing else — and ``last/`` adds ``train_state.safetensors`` +
``train_state.json`` (optimizer, scheduler, GradScaler, balancer, every rank's RNG states, the loop counters
and early-stopping state).
Folders are swapped in whole (``state_io.write_checkpoint_dir``): a kill never leaves a half-written one.
Each save of ``last/`` keeps the one before as ``last.prev/``; a resume whose ``last/`` is damaged (any
file unreadable, truncated or inconsistent) falls back to ``last.prev/`` with a warning — never to
``best/``, which would silently rewind the run to its best epoch. A resume on a cache whose data
fingerprint differs from the one the run recorded (the cache was prepared again from other data or with
other settings) is refused with a :class:`ConfigError` naming both.

Saving is collective under DDP (RNG states are gathered from every rank); only rank 0 writes. Rank 0 also
holds the run folder's lock (:func:`lock_run_folder`) for the whole run, so that a second training on the
same folder is refused instead of overwriting this one's checkpoints and logs.

The trainer calls these functions; they see it only through
:class:`~tascmt.training.interfaces.CheckpointedTrainer` (no import of ``trainer.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tascmt.errors import CheckpointError, ConfigError, TascmtError
from tascmt.training.distributed import all_reduce_, barrier
from tascmt.training.rng import gather_rng_states, restore_rank_rng
from tascmt.training.signals import SIGNAL_STOP
from tascmt.training.state_io import (
    checkpoint_candidates,
    find_checkpoint_dir,
    load_state,
    save_state,
    write_checkpoint_dir,
)
from tascmt.utils.atomic import write_json_atomic
from tascmt.utils.lock import lock_folder
from tascmt.utils.provenance import write_run_info

if TYPE_CHECKING:
    from tascmt.training.interfaces import CheckpointedTrainer

__all__ = ["data_extra", "find_checkpoint_dir", "lock_run_folder", "restore", "save_best", "save_last",
           "save_on_stop", "start_run_folder"]

#: Entries of the cache manifest's ``params`` copied (same names) into every model checkpoint's ``extra``.
MANIFEST_KEYS = ("modality", "norm", "inplane", "gap_mm", "tol_mm", "protocol", "size", "slice_axis",
                 "task_name", "label_values", "flow")


def data_extra(cache_dir: str | Path, with_fingerprint: bool = True) -> dict[str, Any]:
    """The manifest parameters ``predict`` needs (``MANIFEST_KEYS``: modality, ``norm`` dict, ``inplane``
    dict, ``gap_mm``, ...) plus ``cache_param_hash`` and ``data_fingerprint`` (the cache's content
    fingerprint, :meth:`tascmt.data.cache.Manifest.fingerprint`; computed from the arrays for a cache that
    does not record one, unless ``with_fingerprint`` is False); ``{}`` when the cache has no manifest."""
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
    if isinstance(manifest.get("fingerprint"), str):
        out["data_fingerprint"] = manifest["fingerprint"]
    elif with_fingerprint and "params" in manifest:
        from tascmt.data.cache import Manifest

        with contextlib.suppress(TascmtError, OSError, ValueError):  # not a readable cache: nothing to record
            out["data_fingerprint"] = Manifest.load(cache_dir).fingerprint()
    return out


def _model_extra(trainer: CheckpointedTrainer, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    if not hasattr(trainer, "_data_extra"):
        trainer._data_extra = data_extra(trainer.config.cache_dir)
    st, cfg = trainer.state, trainer.config
    return {**trainer._data_extra,
            "training": {"run_dir": str(trainer.run_dir), "epoch": st.epoch, "global_step": st.global_step,
                         "seed": cfg.seed, "fold": cfg.fold, "balancer": cfg.balancer,
                         "metrics": metrics or {}}}


def check_run_folder(trainer: CheckpointedTrainer) -> None:
    """A fresh run must not overwrite another run's checkpoints; a resume needs them."""
    last = find_checkpoint_dir(trainer.run_dir / "last")
    if trainer.resume and last is None:
        raise CheckpointError(f"{trainer.run_dir}: nothing to resume (no last/ checkpoint in the run folder)")
    if not trainer.resume and (last is not None or find_checkpoint_dir(trainer.run_dir / "best") is not None):
        raise ConfigError(f"run folder {trainer.run_dir} already holds checkpoints; resume it with "
                          "--resume or choose another --out")


def lock_run_folder(trainer: CheckpointedTrainer) -> contextlib.AbstractContextManager[Any]:
    """Lock the run folder for this run (rank 0 holds the lock; call on every rank after the process group
    is up). Raises :class:`~tascmt.utils.lock.FolderInUseError` on every rank when another process holds it.

    A fresh run creates the folder first; a resume of a missing folder is left to
    :func:`check_run_folder` (nothing to resume).
    """
    lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    error: Exception | None = None
    created = None
    if trainer.dist.is_main:
        try:
            if not trainer.resume and not trainer.run_dir.exists():
                trainer.run_dir.mkdir(parents=True)
                created = trainer.run_dir
            if trainer.run_dir.is_dir():
                lock = lock_folder(trainer.run_dir, "run folder")
        except (TascmtError, OSError) as err:  # raised on every rank below, or the others would wait forever
            error = err
    failed = all_reduce_(torch.tensor([0.0 if error is None else 1.0], device=trainer.device), op="max")
    if error is not None:
        raise error
    if failed.item() > 0:
        raise ConfigError(f"run folder {trainer.run_dir} could not be locked by rank 0 (another process uses "
                          "it, or it cannot be created)")
    return _holding(lock, created)


@contextlib.contextmanager
def _holding(lock: contextlib.AbstractContextManager[Any], created: Path | None) -> Iterator[None]:
    """Hold ``lock``; when the run fails, remove the run folder this run created if it is still empty."""
    try:
        with lock:
            yield
    except BaseException:
        if created is not None:
            with contextlib.suppress(OSError):
                created.rmdir()  # only an empty folder: a failure before anything was written
        raise


def start_run_folder(trainer: CheckpointedTrainer) -> None:
    """Rank 0 of a fresh run: create the folder, write ``config.json`` and ``provenance.json``."""
    trainer.run_dir.mkdir(parents=True, exist_ok=True)
    write_run_info(trainer.run_dir, trainer.config.to_dict())


def _capture(trainer: CheckpointedTrainer) -> dict[str, Any]:
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


def save_last(trainer: CheckpointedTrainer) -> None:
    """Write ``last/`` (model + training state). Call on every rank."""
    state = _capture(trainer)
    if trainer.dist.is_main:
        def write(folder: Path) -> None:
            trainer.save_model_files(folder, _model_extra(trainer))
            save_state(folder, state)

        write_checkpoint_dir(trainer.run_dir / "last", write, keep_previous=True)
    barrier()


def save_best(trainer: CheckpointedTrainer, metrics: dict[str, Any] | None = None,
              note: str | None = None) -> None:
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


def save_on_stop(trainer: CheckpointedTrainer, reason: str) -> None:
    """A clean stop inside an epoch (time budget, max_steps, a signal): save ``last/``, and ``best/`` if none
    exists (not after a signal: no validation pass then, the process is expected to end soon).

    The fallback ``best/`` is the current model, validated when there is a validation split; it does not
    change the early-stopping state, so a resumed run continues exactly as an uninterrupted one. At an epoch
    boundary ``last/`` was just written by the epoch's end and is not written again.
    """
    if trainer.state.step_in_epoch > 0 or find_checkpoint_dir(trainer.run_dir / "last") is None:
        save_last(trainer)
    if reason == SIGNAL_STOP or find_checkpoint_dir(trainer.run_dir / "best") is not None:
        return
    metrics = trainer.validate() if trainer.val_data is not None else {}
    save_best(trainer, metrics=metrics, note=f"saved when training stopped ({reason}) before any "
                                             "epoch-end model selection")


def restore(trainer: CheckpointedTrainer, last: Path) -> None:
    """Load ``last/`` into a fully built trainer (model weights, optimizer, ..., RNG states last).

    When the newest version is damaged (:class:`CheckpointError`), the previous one (``last.prev/``) is
    loaded instead, with a warning: the run continues from up to ``checkpoint_every`` steps earlier.
    Changed training settings (:class:`ConfigError`) are never worked around.
    """
    candidates = checkpoint_candidates(last)
    if not candidates:
        raise CheckpointError(f"{last}: no checkpoint to resume from")
    errors: list[CheckpointError] = []
    for folder in candidates:
        try:
            _restore_from(trainer, folder)
        except CheckpointError as err:
            errors.append(err)
            continue
        if errors and trainer.dist.is_main:
            print(f"warning: {errors[0]}; resuming from the previous checkpoint {folder} instead",
                  file=sys.stderr, flush=True)
            _set_aside(candidates[0], folder)
        return
    if len(errors) == 1:
        raise errors[0]
    raise CheckpointError(f"{errors[0]}; the previous checkpoint is damaged too ({errors[-1]})")


def _set_aside(damaged: Path, used: Path) -> None:
    """Rename a damaged newest ``last/`` to ``last.damaged/`` (kept for inspection), so that the next save
    does not rotate it into ``last.prev/`` in place of the good checkpoint the run resumed from."""
    if damaged == used or damaged.name != used.name.removesuffix(".prev"):
        return
    target = damaged.parent / f"{damaged.name}.damaged"
    with contextlib.suppress(OSError):
        if target.exists():
            shutil.rmtree(target)
        damaged.rename(target)
        print(f"warning: the damaged checkpoint was moved to {target}", file=sys.stderr, flush=True)


#: What ``train_state.json``'s ``state`` must hold, with the type of each entry.
_STATE_ENTRIES = {"loop": dict, "optimizer": dict, "scheduler": dict, "scaler": dict, "rng": list}


def _restore_from(trainer: CheckpointedTrainer, folder: Path) -> None:
    """Load one checkpoint folder; every damaged or missing piece is a :class:`CheckpointError` naming it."""
    state = load_state(folder)
    jpath = folder / "train_state.json"
    for key, kind in _STATE_ENTRIES.items():
        if not isinstance(state.get(key), kind):
            found = "missing" if key not in state else f"a {type(state[key]).__name__}"
            raise CheckpointError(f"{jpath}: the training state's {key!r} entry is {found} (damaged file)")
    saved = state.get("config")
    if saved is not None and not isinstance(saved, dict):
        raise CheckpointError(f"{jpath}: the training state's 'config' entry is not an object (damaged file)")
    _check_same_settings(saved, trainer.config.to_dict(), folder)
    _check_same_data(trainer, folder)
    _check_weights_file(folder / "model.safetensors")
    try:
        trainer.load_model_weights(folder)
    except CheckpointError:
        raise
    except Exception as err:  # a hook's own reader (safetensors raises its own error type)
        raise CheckpointError(f"{folder / 'model.safetensors'}: cannot load the model weights "
                              f"({_one_line(err)})") from err
    try:
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.scheduler.load_state_dict(state["scheduler"])
        trainer.scaler.load_state_dict(state["scaler"])
        if trainer.balancer is not None and state.get("balancer") is not None:
            trainer.balancer.load_state_dict(state["balancer"])
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError, IndexError) as err:
        raise CheckpointError(f"{jpath}: training state does not match this run's model/optimizer "
                              f"({_one_line(err)})") from err
    loop = state["loop"]
    fields = {f.name for f in dataclasses.fields(trainer.state)}
    try:
        new_state = type(trainer.state)(**{k: v for k, v in loop.items() if k in fields})
        if not all(isinstance(getattr(new_state, k), int) for k in ("epoch", "global_step", "step_in_epoch")):
            raise TypeError("loop counters are not integers")
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{jpath}: the training state's loop counters are damaged ({_one_line(err)})") \
            from err
    try:
        restore_rank_rng(state["rng"], trainer.dist.rank)
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        raise CheckpointError(f"{jpath}: the saved random number generator states are damaged "
                              f"({_one_line(err)})") from err
    trainer.state = new_state


def _check_weights_file(path: Path) -> None:
    """Parse the header of a safetensors file (fast: no tensor is read) so that a damaged file is named."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise CheckpointError(f"{path}: the model weights file is missing")
    try:
        with safe_open(str(path), framework="pt") as f:
            f.keys()
    except (OSError, SafetensorError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: cannot read the model weights ({_one_line(err)})") from err


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:300] or type(err).__name__


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


def _check_same_data(trainer: CheckpointedTrainer, folder: Path) -> None:
    """Refuse to resume on a cache whose data fingerprint differs from the one the checkpoint recorded
    (checkpoints without one, and caches that are not triplet caches, are not checked)."""
    try:
        saved = json.loads((folder / "model.json").read_text(encoding="utf-8")).get("extra", {})
    except (OSError, ValueError, AttributeError):  # a damaged model.json is reported by the weights' loader
        return
    recorded = saved.get("data_fingerprint") if isinstance(saved, dict) else None
    if not isinstance(recorded, str):
        return
    if not hasattr(trainer, "_data_extra"):
        trainer._data_extra = data_extra(trainer.config.cache_dir)
    current = trainer._data_extra.get("data_fingerprint")
    if current is not None and current != recorded:
        raise ConfigError(f"{folder}: cannot resume on the cache {trainer.config.cache_dir}: its data "
                          f"fingerprint is {current}, but the run was trained on data with fingerprint "
                          f"{recorded} (the cache was prepared again from other data or with other "
                          "settings); prepare the run's data again or start a new run")


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None
