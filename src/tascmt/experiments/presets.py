"""Named experiments (docs/design.md §9): which configurations are compared, against which reference, on
which columns.

An experiment is a list of configurations (a table's rows). Each configuration names a registered model and
the training options it changes (``tascmt.training.TrainConfig`` fields such as ``balancer``,
``balancer_kwargs`` or ``interp_alpha``); everything else comes from the runner's base settings. A spec can
also be a JSON file::

    {"name": "my_study", "reference": "full",
     "metrics": ["psnr", "ssim", "dice", "dice_fg", "recall"],
     "configs": [{"label": "full", "model": "tasc_swinmt"},
                 {"label": "fixed 1:1", "model": "tasc_swinmt",
                  "train": {"balancer": "fixed", "balancer_kwargs": {"weights": [1, 1]}}},
                 {"label": "cubic", "model": "cubic"},
                 {"label": "UNet++ (cascade)", "model": "unetpp_seg", "interp": "swinunet_interp"}]}

Three kinds of rows: a trained model (the default); a parameter-free reference evaluated without training
(``model`` in :data:`REFERENCE_MODELS`: ``linear_interp`` or ``cubic``); a cascade (``interp`` set): the
interpolation model ``interp`` and the triplet segmenter ``model`` are trained separately and the segmenter
is evaluated on [X1, X̂2, X3]. A triplet segmenter without ``interp`` is evaluated in the oracle setting
(given the real middle slice X2). The comparison presets label the two settings in the row names.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tascmt.errors import ConfigError

#: Columns a table can show: summary keys of `tascmt.evaluation.evaluate.evaluate_checkpoint` (see
#: `tascmt.experiments.runner.extract_metrics`), plus ``val_loss`` (the best unweighted validation loss).
#: ``*_whole_volume`` and ``*_synth`` columns need ``eval_options={"volumes": True}`` (whole volumes at
#: native resolution, `tascmt.evaluation.volume_eval`).
INTERP_COLUMNS = ("psnr", "ssim", "lpips", "edge_ssim")
SEG_COLUMNS = ("dice", "iou", "precision", "recall")
#: Ŷ2 on the triplets whose ground-truth Y2 has foreground: predicting nothing scores 0 there (Precision 1).
FG_COLUMNS = ("dice_fg", "iou_fg", "precision_fg", "recall_fg")
#: HD95 counts every volume (a missed or false-positive one as the in-plane diagonal), with those counts.
VOLUME_COLUMNS = ("dice_volume", "dice_whole_volume", "hd95_mm_whole_volume", "hd95_missed_whole_volume",
                  "hd95_false_whole_volume", "surface_dice_whole_volume")
#: Whole volumes, on the synthesised slices: the model's image metrics and Dice.
WHOLE_VOLUME_COLUMNS = ("psnr_synth", "ssim_synth", "edge_ssim_synth", "dice_synth")
#: The flow-midpoint reference on the same synthesised slices (TV-L1, no training; ``flow_dice_synth``
#: carries the neighbours' true masks halfway: an oracle).
FLOW_COLUMNS = ("flow_psnr_synth", "flow_ssim_synth", "flow_edge_ssim_synth", "flow_dice_synth")
KNOWN_METRICS = (*INTERP_COLUMNS, *SEG_COLUMNS, *FG_COLUMNS, "dice_y2", "dice_global", "tcs", "tcs_fg",
                 "val_loss", *VOLUME_COLUMNS, *WHOLE_VOLUME_COLUMNS, *FLOW_COLUMNS)
#: The columns of a table whose specification names none: interpolation, the frame-averaged segmentation and
#: Dice on foreground middle slices (which predicting nothing cannot game).
DEFAULT_METRICS = ("psnr", "ssim", "dice", "dice_fg", "recall")

#: The columns of the claim tables (module ablation, single- vs multi-task, multi-task methods, balancing):
#: whole volumes at native resolution first (the model's synthesised slices at every thinning offset, its
#: masks there and over the whole thin volume, HD95 with missed volumes counted), then the per-triplet PSNR
#: and foreground-Ŷ2 Dice (also native; the only columns where whole volumes are not evaluated).
CLAIM_METRICS = ("psnr_synth", "edge_ssim_synth", "dice_synth", "dice_whole_volume", "hd95_mm_whole_volume",
                 "psnr", "dice_fg")

#: Training options a configuration may set (the rest are the runner's: cache, run folder, seed, budget).
_RUNNER_OWNED = {"cache_dir", "out_dir", "seed", "model", "size"}

#: Rows evaluated without training: the registered parameter-free ``linear_interp`` and the Catmull-Rom
#: ``cubic`` reference (`tascmt.evaluation.evaluate.CUBIC`, needs the whole cached volumes).
REFERENCE_MODELS = ("linear_interp", "cubic")


@dataclass(frozen=True)
class RunSpec:
    """One configuration (one table row).

    Attributes:
        label: row name, unique within the experiment; also names its run folders (made file-safe).
        model: a registered model name (``tascmt.models.list_models()``).
        train: ``TrainConfig`` fields this configuration sets (e.g. ``{"balancer": "dwa"}``); for a cascade
            they apply to both parts.
        interp: for a cascade row, the interpolation model (registered pair model or ``linear_interp``)
            whose output X̂2 the segmenter ``model`` sees; None otherwise.
    """

    label: str
    model: str
    train: dict[str, Any] = field(default_factory=dict)
    interp: str | None = None

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.label).strip("_") or "config"

    @property
    def is_reference(self) -> bool:
        """Evaluated without training (``model`` in :data:`REFERENCE_MODELS`, not a cascade)."""
        return self.interp is None and self.model in REFERENCE_MODELS

    @property
    def kind(self) -> str:
        """``"reference"``, ``"cascade"`` or ``"trained"``."""
        return "reference" if self.is_reference else ("cascade" if self.interp is not None else "trained")


@dataclass(frozen=True)
class ExperimentSpec:
    """A named set of configurations compared against one reference configuration."""

    name: str
    configs: tuple[RunSpec, ...]
    reference: str
    metrics: tuple[str, ...] = DEFAULT_METRICS
    description: str = ""
    deltas_from: str | None = None  # also write a table of differences over this row (Tables 11-12)

    def __post_init__(self) -> None:
        labels = [c.label for c in self.configs]
        if not labels:
            raise ConfigError(f"experiment {self.name!r} has no configurations")
        if len(set(labels)) != len(labels):
            raise ConfigError(f"experiment {self.name!r}: configuration labels must be unique, got {labels}")
        slugs = [c.slug for c in self.configs]
        if len(set(slugs)) != len(slugs):
            raise ConfigError(f"experiment {self.name!r}: labels {labels} collide as folder names {slugs}")
        for ref_name, ref in (("reference", self.reference), ("deltas_from", self.deltas_from)):
            if ref is not None and ref not in labels:
                raise ConfigError(f"experiment {self.name!r}: {ref_name} {ref!r} is not one of {labels}")
        unknown = [m for m in self.metrics if m not in KNOWN_METRICS]
        if unknown:
            raise ConfigError(f"experiment {self.name!r}: unknown metrics {unknown}; "
                              f"known: {list(KNOWN_METRICS)}")
        for c in self.configs:
            if c.is_reference and c.train:
                raise ConfigError(f"experiment {self.name!r}, configuration {c.label!r}: {c.model!r} is "
                                  "evaluated without training; remove its training options "
                                  f"{sorted(c.train)}")
            bad = sorted(set(c.train) & _RUNNER_OWNED)
            if bad:
                raise ConfigError(f"experiment {self.name!r}, configuration {c.label!r}: options {bad} are "
                                  "set by the experiment runner, not per configuration")


def _fixed(w_interp: float, w_seg: float) -> dict[str, Any]:
    return {"balancer": "fixed", "balancer_kwargs": {"weights": [w_interp, w_seg]}}


FULL = "tasc_swinmt"

# Module ablation (Tables 8-9, 11-12): IndEnc and the modules added to it; registry names in models.
_ABLATION_ROWS = (
    ("IndEnc", "tasc_indenc"),
    ("+TALA", "tasc_indenc_tala"),
    ("+CTCI", "tasc_indenc_ctci"),
    ("+MSTAF", "tasc_indenc_mstaf"),
    ("+TALA+CTCI", "tasc_indenc_tala_ctci"),
    ("+TALA+MSTAF", "tasc_indenc_tala_mstaf"),
    ("+CTCI+MSTAF", "tasc_indenc_ctci_mstaf"),
    ("full", FULL),
)

# Comparison tables (docs/design.md §9): baselines and multi-task methods against the full model.
_INTERP_BASELINES = (
    ("linear (X1+X3)/2", "linear_interp"),
    ("cubic (Catmull-Rom)", "cubic"),
    ("SwinUNet-Interp", "swinunet_interp"),
    ("TransUNet-Interp", "transunet_interp"),
    ("VTN-Interp", "vtn_interp"),
    ("full", FULL),
)
_SEGMENTERS = (("nnU-Net-style", "nnunet_seg"), ("UNet++", "unetpp_seg"), ("Swin UNETR", "swinunetr_seg"))
#: The interpolation baseline whose X̂2 the segmenters see in the cascade rows of ``seg_baselines`` (one
#: interpolator for all three, so that the rows differ only by the segmenter).
CASCADE_INTERP = ("SwinUNet-Interp", "swinunet_interp")
#: The cascades of the paper's efficiency tables (interpolation model, segmenter); the registered
#: ``cascade_swinunet_nnunet``, ``cascade_transunet_swinunetr`` and ``cascade_vtn_unetpp``.
EFFICIENCY_CASCADES = (("swinunet_interp", "nnunet_seg"), ("transunet_interp", "swinunetr_seg"),
                       ("vtn_interp", "unetpp_seg"))
DISPLAY_NAMES = {"swinunet_interp": "SwinUNet-Interp", "transunet_interp": "TransUNet-Interp",
                 "vtn_interp": "VTN-Interp", "nnunet_seg": "nnU-Net-style", "unetpp_seg": "UNet++",
                 "swinunetr_seg": "Swin UNETR"}
_MTL_METHODS = (
    ("direct concatenation", "mtl_concat"),
    ("Shared-Bottom", "mtl_shared_bottom"),
    ("cross-task concatenation", "mtl_cross_concat"),
    ("MMoE (multi-gate mixture of experts)", "mtl_moe"),
    ("full", FULL),
)

PRESETS: dict[str, ExperimentSpec] = {
    "interp_baselines": ExperimentSpec(
        name="interp_baselines",
        configs=tuple(RunSpec(label, model) for label, model in _INTERP_BASELINES),
        reference="full",
        metrics=INTERP_COLUMNS,
        description="Interpolation baselines (the paper's Tables 4, 6); linear and cubic are evaluated "
        "without training (cubic: Catmull-Rom over the stored slices k-3s, k-s, k+s, k+3s, linear where "
        "k±3s is outside the volume).",
    ),
    "seg_baselines": ExperimentSpec(
        name="seg_baselines",
        configs=(
            *(RunSpec(f"{label} (oracle)", model) for label, model in _SEGMENTERS),
            *(RunSpec(f"{label} (cascade, {CASCADE_INTERP[0]})", model, interp=CASCADE_INTERP[1])
              for label, model in _SEGMENTERS),
            RunSpec("full", FULL),
        ),
        reference="full",
        metrics=(*SEG_COLUMNS, "dice_y2", "dice_fg", "recall_fg"),
        description="Segmentation baselines (the paper's Tables 5, 7) in two settings: *oracle* (the "
        "segmenter is given the real middle slice X2; not available at prediction time) and *cascade* (given "
        f"X̂2 from {CASCADE_INTERP[0]}). nnU-Net-style = MONAI DynUNet planned with nnU-Net's 2-D rules, not "
        "the nnunetv2 package.",
    ),
    "cascades": ExperimentSpec(
        name="cascades",
        configs=(
            *(RunSpec(f"{DISPLAY_NAMES[i]} + {DISPLAY_NAMES[s]} (cascade)", s, interp=i)
              for i, s in EFFICIENCY_CASCADES),
            RunSpec("full", FULL),
        ),
        reference="full",
        metrics=(*INTERP_COLUMNS, *SEG_COLUMNS, "dice_fg"),
        description="Accuracy of the cascades of the efficiency tables (the paper's Tables 24-25; `tascmt "
        "benchmark --model cascade_swinunet_nnunet ...` measures their cost): each interpolation baseline "
        "and segmenter trained separately, the segmenter evaluated on [X1, X̂2, X3]. The paper pairs "
        "TransUNet with UNETR; Swin UNETR is used here.",
    ),
    "mtl_methods": ExperimentSpec(
        name="mtl_methods",
        configs=tuple(RunSpec(label, model) for label, model in _MTL_METHODS),
        reference="full",
        metrics=CLAIM_METRICS,
        description="Multi-task methods on the same Swin backbone (the paper's Tables 13, 14).",
    ),
    "ablation": ExperimentSpec(
        name="ablation",
        configs=tuple(RunSpec(label, model) for label, model in _ABLATION_ROWS),
        reference="full",
        deltas_from="IndEnc",
        metrics=CLAIM_METRICS,
        description="Module ablation (the paper's Tables 8-9; deltas over IndEnc as Tables 11-12).",
    ),
    "single_vs_multi": ExperimentSpec(
        name="single_vs_multi",
        configs=(RunSpec("TASC-Interp", "tasc_interp"), RunSpec("TASC-Seg", "tasc_seg"),
                 RunSpec("full", FULL)),
        reference="full",
        metrics=(*CLAIM_METRICS, "tcs"),
        description="Single-task vs multi-task (the paper's Tables 16-19); TCS = 1 − mean|Ŷ2 − (Ŷ1+Ŷ3)/2|, "
        "the consistency of the three masks (docs/design.md §7).",
    ),
    "loss_weights": ExperimentSpec(
        name="loss_weights",
        configs=(
            RunSpec("fixed 0.3/0.7", FULL, _fixed(0.3, 0.7)),
            RunSpec("fixed 0.4/0.6", FULL, _fixed(0.4, 0.6)),
            RunSpec("fixed 0.5/0.5", FULL, _fixed(0.5, 0.5)),
            RunSpec("dynamic (kendall)", FULL, {"balancer": "kendall"}),
        ),
        reference="dynamic (kendall)",
        metrics=("psnr", "dice", "val_loss"),
        description="Fixed vs dynamic task weights (the paper's Table 10).",
    ),
    "balancing": ExperimentSpec(
        name="balancing",
        configs=(
            RunSpec("GradNorm", FULL, {"balancer": "gradnorm"}),
            RunSpec("DWA", FULL, {"balancer": "dwa"}),
            RunSpec("dynamic (kendall)", FULL, {"balancer": "kendall"}),
        ),
        reference="dynamic (kendall)",
        metrics=CLAIM_METRICS,
        description="Loss-balancing strategies (the paper's Table 15); the Kendall row is the full model's "
        "default training (with a shared runs folder, its run is the other tables' *full* row).",
    ),
    "hybrid_alpha": ExperimentSpec(
        name="hybrid_alpha",
        configs=(
            RunSpec("alpha 0.3", FULL, {"interp_alpha": 0.3}),
            RunSpec("alpha 0.4", FULL, {"interp_alpha": 0.4}),
            RunSpec("alpha 0.5", FULL, {"interp_alpha": 0.5}),
        ),
        reference="alpha 0.4",
        description="Hybrid interpolation loss α·L1 + (1−α)·MSE (the paper's text).",
    ),
}


def list_presets() -> list[str]:
    return sorted(PRESETS)


def spec_from_dict(d: dict[str, Any], source: str = "<dict>") -> ExperimentSpec:
    """Build an `ExperimentSpec` from a JSON-like dict (see the module docstring); errors name ``source``."""
    if not isinstance(d, dict):
        raise ConfigError(f"{source}: an experiment spec must be a JSON object, got {type(d).__name__}")
    unknown = sorted(set(d) - {"name", "configs", "reference", "metrics", "description", "deltas_from"})
    if unknown:
        raise ConfigError(f"{source}: unknown experiment keys {unknown}")
    raw = d.get("configs")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{source}: 'configs' must be a non-empty list of configurations")
    configs = []
    for i, c in enumerate(raw):
        if not isinstance(c, dict) or "label" not in c or "model" not in c:
            raise ConfigError(f"{source}: configs[{i}] must be an object with 'label' and 'model', got {c!r}")
        extra = sorted(set(c) - {"label", "model", "train", "interp"})
        if extra:
            raise ConfigError(f"{source}: configs[{i}] has unknown keys {extra} (put options under 'train')")
        interp = c.get("interp")
        configs.append(RunSpec(str(c["label"]), str(c["model"]), dict(c.get("train") or {}),
                               None if interp is None else str(interp)))
    return ExperimentSpec(
        name=str(d.get("name") or Path(source).stem),
        configs=tuple(configs),
        reference=str(d.get("reference") or configs[-1].label),
        metrics=tuple(d.get("metrics") or DEFAULT_METRICS),
        description=str(d.get("description") or ""),
        deltas_from=d.get("deltas_from"),
    )


def resolve_spec(preset_or_spec: str | os.PathLike | ExperimentSpec | dict) -> ExperimentSpec:
    """A preset name, a path to a JSON spec file, a dict, or an `ExperimentSpec` → `ExperimentSpec`."""
    if isinstance(preset_or_spec, ExperimentSpec):
        return preset_or_spec
    if isinstance(preset_or_spec, dict):
        return spec_from_dict(preset_or_spec)
    text = str(preset_or_spec)
    if text in PRESETS:
        return PRESETS[text]
    path = Path(text)
    if path.suffix.lower() == ".json" or path.is_file():
        if not path.is_file():
            raise ConfigError(f"experiment spec file not found: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ConfigError(f"{path}: cannot read the experiment spec ({err})") from err
        return spec_from_dict(data, source=str(path))
    raise ConfigError(f"unknown experiment {text!r}; presets: {', '.join(list_presets())} "
                      "(or a JSON spec file)")
