"""Training hook-up: :class:`ResFormerTrainer` overrides only the project trainer's hooks (data, model tasks,
loss, scheduler, validation); the loop, checkpoints, resume, DDP and logs are the project's.

``TrainConfig.cache_dir`` is the 2-D dataset folder (``tascmt.data.images2d.folder``); the model comes from
``create_model(model, size, **model_overrides)`` (set ``in_chans``, ``seg_classes``, ``cls_classes`` there).
The published training protocol (docs/design.md §9): AdamW lr 1e-4, weight decay 3e-5, poly decay 0.9 (per
epoch), batch 8, 150 epochs, flip + rotation ±25°; :data:`RESFORMER_DEFAULTS` holds these and
:func:`resformer_train_config` applies them.
The gradient clipping (1.0) and early stopping (patience 10) are the project's defaults.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from tascmt.models.resformer.config import RESFORMER_MODELS, is_resformer
from tascmt.models.resformer.model import predictions
from tascmt.training.config import TrainConfig
from tascmt.training.distributed import all_reduce_
from tascmt.training.sampler import ResumableSampler
from tascmt.training.trainer import Trainer

RESFORMER_DEFAULTS: dict[str, Any] = {"lr": 1e-4, "weight_decay": 3e-5, "batch_size": 8, "epochs": 150,
                                      "steps_per_epoch": None}  # its own protocol: one-pass epochs
POLY_POWER = 0.9
__all__ = [
    "RESFORMER_DEFAULTS",
    "RESFORMER_MODELS",
    "ResFormerTrainer",
    "is_resformer",
    "poly_factor",
    "predictions",
    "resformer_train_config",
    "train_resformer",
    "trainer_for_model",
    "with_defaults",
]


def trainer_for_model(model_name: str | None) -> type[Trainer]:
    """:class:`ResFormerTrainer` for the ResFormer models, the project's ``Trainer`` otherwise."""
    return ResFormerTrainer if is_resformer(model_name) else Trainer


def with_defaults(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` (TrainConfig fields a user gave) under :data:`RESFORMER_DEFAULTS` when ``options["model"]``
    is a ResFormer model; unchanged otherwise. For the ``tascmt train`` command."""
    return {**RESFORMER_DEFAULTS, **options} if is_resformer(options.get("model")) else dict(options)


def resformer_train_config(data_dir: str, out_dir: str, **options: Any) -> TrainConfig:
    """A ``TrainConfig`` with :data:`RESFORMER_DEFAULTS` under the given ``options``."""
    options.setdefault("model", "resformer_mtl")
    return TrainConfig(cache_dir=str(data_dir), out_dir=str(out_dir), **{**RESFORMER_DEFAULTS, **options})


def train_resformer(data_dir: str, out_dir: str, **options: Any) -> Any:
    """Train a ResFormer model on a 2-D folder dataset with the project loop; returns its ``RunResult``.

    ``options`` are ``TrainConfig`` fields (``model``, ``size``, ``model_overrides``, ``epochs``, ...) over
    :data:`RESFORMER_DEFAULTS`.
    """
    return ResFormerTrainer(resformer_train_config(data_dir, out_dir, **options)).fit()


def poly_factor(epoch: int, epochs: int, power: float = POLY_POWER) -> float:
    """lr multiplier after ``epoch`` scheduler steps: ``(1 − e/E)^power``."""
    return (1.0 - min(epoch, epochs) / epochs) ** power


class ResFormerTrainer(Trainer):
    """The project trainer for the ResFormer segmentation + classification task family."""

    def _model_cfg(self) -> Any:
        if not hasattr(self, "_mcfg"):
            from tascmt.models.registry import model_config

            cfg = self.config
            self._mcfg = model_config(cfg.model, cfg.size, **cfg.model_overrides)
        return self._mcfg

    def build_datasets(self) -> tuple[Dataset, Dataset | None]:
        from tascmt.data.images2d.dataset import FolderDataset

        cfg, m = self.config, self._model_cfg()
        kw = dict(
            img_size=m.img_size,
            in_chans=m.in_chans,
            seg_classes=m.seg_classes,
            cls_classes=m.cls_classes,
            seed=cfg.seed,
        )
        train = FolderDataset(cfg.cache_dir, "train", augment=cfg.augment, **kw)
        val = FolderDataset(cfg.cache_dir, "val", augment=False, **kw)
        self.class_names = train.class_names
        return train, (val if len(val) > 0 else None)

    def build_model(self) -> nn.Module:
        from tascmt.models.resformer.model import ResFormerMTL

        return ResFormerMTL(self._model_cfg())

    def model_tasks(self, model: nn.Module) -> tuple[str, ...]:
        return ("seg", "cls")

    def build_loss(self) -> None:
        from tascmt.losses.resformer import ResFormerLoss, class_weights

        weights = class_weights(self.train_data.labels_array())
        self.loss_fn = ResFormerLoss(self._model_cfg().seg_classes, weights).to(self.device)
        self.balancer = None

    def build_scheduler(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        """Poly decay ``(1 − epoch/epochs)^0.9``, stepped after each epoch."""
        epochs = self.config.epochs
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: poly_factor(e, epochs))

    def model_input(self, batch: dict[str, Any]) -> torch.Tensor:
        """The image batch ``x`` (B, in_chans, H, W) on the device."""
        return batch["x"].to(self.device, non_blocking=True)

    def compute_losses(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, Any]
    ) -> dict[str, torch.Tensor]:
        y_seg = batch["y_seg"].to(self.device, non_blocking=True)  # (B, H, W) int64
        y_cls = batch["y_cls"].to(self.device, non_blocking=True)  # (B, K)
        return self.loss_fn(outputs["seg_logits"], y_seg, outputs["cls_logits"], y_cls)

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.loss_fn.combine(losses)

    def task_weights(self) -> dict[str, float]:
        return {"seg": 1.0, "cls": float(self.loss_fn.cls_weight)}

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Any]) -> dict[str, float]:
        """Loss sums over the batch; also adds the batch's predictions to ``self.meter``."""
        x, outputs, losses = self.forward_losses(batch)
        seg_pred, cls_pred = predictions(outputs, self._model_cfg().binary)
        self.meter.update(seg_pred, batch["y_seg"].numpy(), cls_pred, batch["y_cls"].numpy())
        b = x.shape[0]
        return {**{f"L_{k}": float(v) * b for k, v in losses.items()}, "n": float(b)}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """``val_L_seg``, ``val_L_cls``, ``val_loss = L_seg + 0.25 L_cls`` and the metrics of
        :class:`~tascmt.evaluation.metrics.resformer.MetricMeter` (``val_dice``, ``val_jaccard``,
        ``val_accuracy_macro``, ...) over the validation split, gathered over all ranks."""
        from tascmt.evaluation.metrics.resformer import MetricMeter

        assert self.val_data is not None
        m = self._model_cfg()
        self.model.eval()
        self.meter = MetricMeter(m.seg_classes, m.cls_classes)
        sampler = None
        if self.dist.enabled:
            sampler = ResumableSampler(
                self.val_data, self.dist.world_size, self.dist.rank, shuffle=False, seed=0
            )
        loader = DataLoader(
            self.val_data,
            batch_size=self.config.batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.config.num_workers,
            generator=torch.Generator().manual_seed(0),
        )
        sums = np.zeros(3)
        for batch in loader:
            s = self.validation_step(batch)
            sums += [s["L_seg"], s["L_cls"], s["n"]]
        vec = torch.from_numpy(np.concatenate([sums, self.meter.to_vector()]))
        vec = all_reduce_(vec.to(self.device), op="sum").cpu().numpy()
        self.meter = MetricMeter(m.seg_classes, m.cls_classes)
        self.meter.add_vector(vec[3:])
        n = max(vec[2], 1.0)
        out = {"val_L_seg": vec[0] / n, "val_L_cls": vec[1] / n}
        out["val_loss"] = out["val_L_seg"] + self.loss_fn.cls_weight * out["val_L_cls"]
        summary = self.meter.summary(getattr(self, "class_names", None))
        summary.pop("n")
        out.update({f"val_{k}": v for k, v in summary.items()})
        self.set_train_mode()
        return {k: float(v) for k, v in out.items()}

    def save_model_files(self, folder: Any, extra: dict[str, Any]) -> None:
        """The project's model files, with the class names and the dataset folder in ``extra``."""
        extra = {
            **extra,
            "resformer": {
                "class_names": getattr(self, "class_names", None),
                "data_dir": str(self.config.cache_dir),
            },
        }
        super().save_model_files(folder, extra)

