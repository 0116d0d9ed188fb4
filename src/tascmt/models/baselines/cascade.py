"""Cascades of single-task models: an interpolation model synthesises X2, a segmentation model segments
the three frames [X1, X2_hat, X3] (the "cascade" setting of the comparison and efficiency tables,
docs/design.md §9).

* ``CascadeModel(interp_model, seg_model)``: pair in, ``{"interp", "seg_logits"}`` out, ``predict``.
* ``build_cascade(interp, seg, size)``: each part is a registered name or a checkpoint path.
* Registered names (``create_model`` works, e.g. for ``tascmt benchmark``): ``cascade`` (parts chosen by
  the ``interp_model``/``seg_model`` config fields) and the paper's efficiency-table pairs
  ``cascade_swinunet_nnunet``, ``cascade_transunet_swinunetr`` (the paper pairs TransUNet with UNETR; we
  have Swin UNETR) and ``cascade_vtn_unetpp``. A cascade is ``trainable = False``: train its parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tascmt.models.baselines.base import BaselineModel, Record
from tascmt.models.baselines.config import BaselineConfig
from tascmt.models.config import SIZES, ModelConfigError
from tascmt.models.registry import create_model, get_entry, register_model


@dataclass(frozen=True)
class CascadeConfig(BaselineConfig):
    """Parts by registered name at ``size``; ``interp_config``/``seg_config`` (full part configs, when set)
    take precedence, so a cascade of trained checkpoints can be saved and rebuilt exactly."""

    name: str = "cascade"
    tasks: tuple[str, ...] = ("interp", "seg")
    interp_model: str = "swinunet_interp"
    seg_model: str = "nnunet_seg"
    interp_config: dict = field(default_factory=dict)
    seg_config: dict = field(default_factory=dict)


def _part_info(model: nn.Module) -> tuple[str, tuple[str, ...]]:
    cfg = getattr(model, "config", None)
    frames = getattr(model, "input_frames", getattr(cfg, "input_frames", "pair"))
    return frames, tuple(getattr(cfg, "tasks", ()))


class CascadeModel(BaselineModel):
    """x (B, 2, H, W) = [X1, X3] -> {"interp": (B, 1, H, W), "seg_logits": (B, 3, H, W)} (and
    ``"seg_logits_ds"`` when the segmenter is in training mode and has deep supervision).

    The segmenter sees [X1, clamp(interp, 0, 1), X3]; gradients flow through both parts.
    """

    config_cls = CascadeConfig
    trainable = False

    def __init__(self, interp_model: nn.Module, seg_model: nn.Module, config: CascadeConfig | None = None):
        super().__init__()
        frames, tasks = _part_info(interp_model)
        if frames != "pair" or "interp" not in tasks:
            raise ModelConfigError(
                f"CascadeModel: interp_model {type(interp_model).__name__} must take the pair "
                f"and predict 'interp' (input_frames={frames!r}, tasks={tasks})"
            )
        frames, tasks = _part_info(seg_model)
        if frames != "triplet" or "seg" not in tasks:
            raise ModelConfigError(
                f"CascadeModel: seg_model {type(seg_model).__name__} must take the three "
                f"frames and predict 'seg' (input_frames={frames!r}, tasks={tasks})"
            )
        icfg, scfg = interp_model.config, seg_model.config
        self.config = config or CascadeConfig(
            size=icfg.size, img_size=icfg.img_size, interp_model=icfg.name, seg_model=scfg.name,
            interp_config=icfg.to_dict(), seg_config=scfg.to_dict(),
        )
        self.interp_model = interp_model
        self.seg_model = seg_model

    def _forward(self, x: torch.Tensor, record: Record | None) -> dict[str, torch.Tensor]:
        interp = self.interp_model(x)["interp"]  # (B, 1, H, W)
        triplet = torch.cat([x[:, :1], interp.clamp(0, 1), x[:, 1:]], dim=1)  # (B, 3, H, W)
        if record is not None:
            record["cascade.triplet"] = triplet
        return {"interp": interp, **self.seg_model(triplet)}

    def interp_is_residual(self) -> bool:
        fn = getattr(self.interp_model, "interp_is_residual", None)
        return bool(fn()) if callable(fn) else False


def _part_from_config(name: str, size: str, cfg: dict[str, Any]) -> nn.Module:
    if cfg:
        return get_entry(name).model_cls(get_entry(name).model_cls.config_cls.from_dict(cfg))
    return create_model(name, size)


class RegisteredCascade(CascadeModel):
    """A cascade built from its config (what ``create_model``/``load_model`` call)."""

    def __init__(self, config: CascadeConfig):
        super().__init__(
            _part_from_config(config.interp_model, config.size, config.interp_config),
            _part_from_config(config.seg_model, config.size, config.seg_config),
            config=config,
        )


def build_cascade(
    interp: str | Path | nn.Module,
    seg: str | Path | nn.Module,
    size: str = "small",
    map_location: str | torch.device = "cpu",
) -> tuple[CascadeModel, dict[str, dict]]:
    """A cascade from two parts, each a module, a checkpoint (folder or file written by ``save_model``)
    or a registered name (built at ``size``, untrained). Returns ``(model, metas)`` where ``metas`` maps
    "interp"/"seg" to the checkpoint meta of the parts loaded from checkpoints (normalisation, gap_mm ...).
    """
    from tascmt.models.checkpoint import load_model

    metas: dict[str, dict] = {}
    parts = {}
    for role, part in (("interp", interp), ("seg", seg)):
        if isinstance(part, nn.Module):
            parts[role] = part
        elif Path(part).exists():
            parts[role], metas[role] = load_model(part, map_location=map_location)
        else:
            parts[role] = create_model(str(part), size)
    return CascadeModel(parts["interp"], parts["seg"]), metas


def _preset(name: str, interp_model: str, seg_model: str):
    def make(size: str) -> CascadeConfig:
        if size not in SIZES:
            raise ModelConfigError(f"unknown model size {size!r} for {name!r}; known sizes: {sorted(SIZES)}")
        img = {"paper": 512, "small": 128, "tiny": 64}[size]
        return CascadeConfig(
            name=name, size=size, img_size=img, interp_model=interp_model, seg_model=seg_model
        )

    make.__name__ = name
    make.__doc__ = f"Cascade {interp_model} -> {seg_model} (not trained as a whole: train the parts)."
    return make


CASCADES = {
    "cascade": ("swinunet_interp", "nnunet_seg"),
    "cascade_swinunet_nnunet": ("swinunet_interp", "nnunet_seg"),
    "cascade_transunet_swinunetr": ("transunet_interp", "swinunetr_seg"),
    "cascade_vtn_unetpp": ("vtn_interp", "unetpp_seg"),
}
for _name, (_i, _s) in CASCADES.items():
    register_model(RegisteredCascade, _name)(_preset(_name, _i, _s))
