"""What an evaluation runs: a :class:`Subject` per checkpoint, cascade or parameter-free reference.

A subject's ``predict(batch, records)`` returns ``{"interp": (B, 1, H, W), "seg": (B, 3, H, W)}`` (the
tasks it has) for a batch of the split; ``evaluate.py`` runs every subject through the same per-triplet
loop. The ``setting`` it records (:data:`SETTINGS`) says what the segmenter was given.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tascmt.errors import InputError

__all__ = ["CUBIC", "CUBIC_NOTE", "SETTINGS", "Subject", "check_size", "cubic_subject", "img_size_override",
           "is_reference_name", "model_subject", "native_tile"]

#: Name of the Catmull-Rom cubic reference (`evaluate_checkpoint(CUBIC, ...)`).
CUBIC = "cubic"

CUBIC_NOTE = (
    "cubic (Catmull-Rom) on a triplet (k-s, k, k+s) uses the stored slices k-3s, k-s, k+s, k+3s of the case, "
    "X̂2 = (-X(k-3s) + 9 X(k-s) + 9 X(k+s) - X(k+3s)) / 16, computed in the cache's intensity units and "
    "normalised with the triplet's input-pair scale; where k-3s or k+3s lies outside the stored volume it "
    "falls back to linear (X1+X3)/2 (count in 'cubic_support')"
)

SETTINGS = {
    "pair": "the model sees only the input pair X1, X3",
    "oracle": "the segmenter is given the real, acquired middle slice X2 ([X1, X2, X3]); an upper bound, "
              "not available at prediction time",
    "cascade": "the segmenter is given [X1, X̂2, X3] with X̂2 synthesised by the interpolation model",
    "reference": "a parameter-free reference, not trained",
}


@dataclass
class Subject:
    """What is evaluated: ``predict(batch, records)`` -> {"interp": (B, 1, H, W), "seg": (B, 3, H, W)}."""

    name: str
    tasks: tuple[str, ...]
    setting: str
    predict: Callable[[dict, list[dict]], dict[str, Any]]
    model: Any = None  # nn.Module for the interpretability figure (None: none)
    info: dict[str, Any] = field(default_factory=dict)  # extra summary fields
    checkpoint: Any = None  # a checkpoint path that predict_volume can run (pair models only)


def check_size(meta: dict[str, Any], cache_size: int | None, checkpoint, cache_dir) -> None:
    """The in-plane size the checkpoint was trained at (``extra["size"]``, recorded from its cache) must be
    the evaluated cache's; checkpoints without that record (not from ``train``) are not checked."""
    extra = meta.get("extra") or {}
    trained = extra.get("size") or (extra.get("inplane") or {}).get("size")
    if trained is not None and cache_size is not None and int(trained) != int(cache_size):
        raise InputError(f"the cache holds {cache_size}×{cache_size} slices but checkpoint {checkpoint} was "
                         f"trained at {trained}×{trained}; prepare a cache with --size {trained}",
                         path=cache_dir)


def is_reference_name(name: str | os.PathLike) -> bool:
    """Whether ``name`` names a reference evaluable without training: ``"cubic"`` or a registered model
    without parameters (``linear_interp``). An existing path is never a name."""
    text = str(name)
    if Path(text).exists():
        return False
    if text == CUBIC:
        return True
    from tascmt.models import create_model, list_models

    if text not in list_models():
        return False
    model = create_model(text, size="tiny")
    return not getattr(model, "trainable", True) and not any(True for _ in model.parameters())


def model_subject(model, name: str, info: dict[str, Any], checkpoint=None, tile: int | None = None,
                   overlap: float = 0.5) -> Subject:
    """A subject running ``model.predict`` on the input it expects (``model_input``: pair or triplet); with
    ``tile`` (a native cache) on blended tile×tile tiles of the whole native slices, as ``predict`` does."""
    from tascmt.models.baselines.inputs import input_frames, model_input

    frames = input_frames(model)
    tasks = tuple(getattr(model.config, "tasks", ("interp", "seg")))
    setting = "oracle" if frames == "triplet" else "pair"
    if not getattr(model, "trainable", True) and not any(True for _ in model.parameters()):
        setting = "reference"
    device = next((p.device for p in model.parameters()), None)

    def predict(batch: dict, records: list[dict]) -> dict[str, Any]:
        x = model_input(model, batch, device or batch["x"].device)
        if tile is None:
            return model.predict(x)
        from tascmt.inference.tiling import tiled_predict

        return tiled_predict(model, x, tile=tile, overlap=overlap)

    return Subject(name, tasks, setting, predict, model=model, info=info, checkpoint=checkpoint)


def native_tile(ds) -> int | None:
    """The tile size of a native cache (its model size), None for resized caches."""
    return getattr(ds, "tile_size", None)


def cubic_subject(ds) -> Subject:
    """The Catmull-Rom reference (:data:`CUBIC_NOTE`) on the triplets of dataset ``ds``."""
    import torch

    from tascmt.data.cache import case_files
    from tascmt.models.baselines.classical import cubic_middle, has_cubic_support

    volumes: dict[str, np.ndarray] = {}
    counts = {"cubic": 0, "linear_fallback": 0}

    def volume(case_id: str) -> np.ndarray:
        if case_id not in volumes:
            volumes[case_id] = np.load(ds.root / case_files(case_id)[0], mmap_mode="r")  # (Z, H, W)
        return volumes[case_id]

    def predict(batch: dict, records: list[dict]) -> dict[str, Any]:
        out = []
        for rec in records:
            img = volume(rec["case_id"])  # (Z, H, W) raw intensities
            k0, k1, k2 = rec["k0"], rec["k1"], rec["k2"]
            step = k1 - k0
            if step < 1 or k2 - k1 != step:
                raise InputError(f"triplet {rec['index']} of case {rec['case_id']} is not equally spaced "
                                 f"({k0}, {k1}, {k2}); the cubic reference needs (k-s, k, k+s)", path=ds.root)
            est = cubic_middle(img, k1, step=step, axis=0).astype(np.float32)  # (H, W)
            counts["cubic" if has_cubic_support(img.shape[0], k1, step) else "linear_fallback"] += 1
            x1, x2, x3 = (np.asarray(img[k], dtype=np.float32) for k in (k0, k1, k2))
            params = ds.normalizer.fit(x1, x3, x2)  # the dataset's own fit (input pair; 'triplet' leaks)
            out.append(ds.normalizer.apply(est, params))
        interp = torch.from_numpy(np.stack(out).astype(np.float32))[:, None]  # (B, 1, H, W)
        return {"interp": interp.to(batch["x"].device)}

    info = {"cubic_note": CUBIC_NOTE, "cubic_support": counts}
    return Subject("cubic (Catmull-Rom)", ("interp",), "reference", predict, info=info)


def img_size_override(cache_size: Any) -> dict[str, int]:
    """``{"img_size": cache_size}`` when it is a valid nominal model size (a multiple of 32), else {}."""
    return {"img_size": cache_size} if isinstance(cache_size, int) and cache_size % 32 == 0 else {}
