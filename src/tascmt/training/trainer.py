"""The training loop, written once, with hooks that variants override.

Hooks (override in a subclass; each is small):

* ``build_datasets() -> (train, val | None)``  — ``TripletDataset`` on the cache by default.
* ``build_model() -> nn.Module``               — ``tascmt.models.create_model(model, size, **overrides)``.
* ``build_loss()``                             — sets ``interp_loss``, ``seg_loss`` and ``balancer``.
* ``build_optimizer() -> Optimizer``           — AdamW: model group + the balancer's own group.
* ``build_scheduler(optimizer)``               — cosine annealing (``schedule.py``), per epoch or budget.
* ``compute_losses(outputs, batch) -> {"interp": L_i, "seg": L_s}`` (only the tasks the model has).
* ``train_step(batch) -> StepOutput`` / ``validation_step(batch) -> dict of sums`` / ``validate()``.
* ``on_before_optimizer_step()`` (gradients final: averaged across ranks, unscaled, not yet clipped).
* ``on_epoch_end(epoch, record)``; ``set_train_mode()``.
* ``save_model_files(folder, extra)`` / ``load_model_weights(folder)`` — ``models.checkpoint.save_model``.

One process or DDP (from ``torchrun``'s environment) share every line; see ``distributed.py``.
This module runs the loop (set-up, epochs, steps, when to stop). Its books — step sums and logs, the
epoch's record, validation (``validate``), model selection, early stopping — are kept by the
:class:`~tascmt.training.bookkeeping.EpochBookkeeping` mixin. The loop state that resume needs lives in
:class:`LoopState`; ``checkpointing.py`` saves and restores it (seeing the trainer only through
``interfaces.CheckpointedTrainer``).
"""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from tascmt.errors import CheckpointError, ConfigError, InputError, TascmtError
from tascmt.models.baselines.inputs import model_input
from tascmt.models.baselines.nnunet import deep_supervision_loss
from tascmt.training import checkpointing
from tascmt.training.bookkeeping import EpochBookkeeping
from tascmt.training.config import TrainConfig
from tascmt.training.distributed import (
    DistInfo,
    all_reduce_,
    average_gradients_,
    barrier,
    init_distributed,
    resolve_device,
    shutdown_distributed,
    unwrap,
    wrap_model,
)
from tascmt.training.logs import RunLogger
from tascmt.training.metrics import dice_per_sample, psnr_per_sample
from tascmt.training.records import LoopState, RunResult, StepOutput
from tascmt.training.sampler import FixedStepSampler, ResumableSampler
from tascmt.training.schedule import budget_progress, cosine_factor, follows_budget
from tascmt.training.signals import SIGNAL_STOP, StopSignals, TrainingInterrupted, signal_name
from tascmt.utils.seed import seed_everything

TASK_OUTPUT = {"interp": "interp", "seg": "seg_logits"}
__all__ = ["LoopState", "RunResult", "StepOutput", "Trainer"]


class Trainer(EpochBookkeeping):
    """Train one model on one triplet cache according to a :class:`TrainConfig`.

    Args:
        config: the run's configuration (``config.out_dir`` is the run folder).
        resume: continue the run in ``config.out_dir`` from its ``last/`` checkpoint.
    """

    def __init__(self, config: TrainConfig, resume: bool = False):
        self.config = config
        self.run_dir = Path(config.out_dir)
        self.resume = resume
        self.dist = DistInfo.from_env()
        self.device = resolve_device(config.device, self.dist)
        self.use_amp = bool(config.amp and self.device.type == "cuda")  # never autocast on the CPU
        self.num_workers = config.num_workers
        if self.num_workers is None:
            cores = os.cpu_count() or 1
            self.num_workers = 0 if self.device.type == "cpu" else min(4, cores // self.dist.world_size)
        self.state = LoopState()
        self.balancer: nn.Module | None = None
        self.logger = RunLogger(self.run_dir, enabled=False)
        self._start_time = 0.0

    # ------------------------------------------------------------------ hooks
    def build_datasets(self) -> tuple[Dataset, Dataset | None]:
        from tascmt.data.dataset import TripletDataset

        cfg = self.config
        train = TripletDataset(cfg.cache_dir, split="train", augment=cfg.augment, seed=cfg.seed,
                               fold=cfg.fold)
        val = TripletDataset(cfg.cache_dir, split="val", augment=False, seed=cfg.seed, fold=cfg.fold)
        return train, (val if len(val) > 0 else None)

    def build_model(self) -> nn.Module:
        from tascmt.models import create_model

        cfg = self.config
        overrides = dict(cfg.model_overrides)
        size = checkpointing.data_extra(cfg.cache_dir, with_fingerprint=False).get("size")
        if "img_size" not in overrides and isinstance(size, int):
            overrides["img_size"] = size  # the model's nominal size is the cache's in-plane size
        try:
            return create_model(cfg.model, size=cfg.size, **overrides)
        except ValueError as err:  # unknown name/size/override (ModelConfigError lists the known ones)
            raise ConfigError(f"train options model={cfg.model!r}, size={cfg.size!r}, "
                              f"overrides={cfg.model_overrides}: {err}") from err

    def model_tasks(self, model: nn.Module) -> tuple[str, ...]:
        """The tasks the model trains: ``model.config.tasks`` (both when it has no config)."""
        tasks = tuple(getattr(getattr(model, "config", None), "tasks", ("interp", "seg")))
        if not tasks or any(t not in TASK_OUTPUT for t in tasks):
            raise TascmtError(f"model {self.config.model!r} declares tasks {tasks!r}; "
                              f"known: {list(TASK_OUTPUT)}")
        return tasks

    def build_loss(self) -> None:
        from tascmt.losses import HybridInterpLoss, SegLoss, make_balancer

        cfg = self.config
        self.interp_loss = HybridInterpLoss(alpha=cfg.interp_alpha)
        self.seg_loss = SegLoss(kind=cfg.seg_loss)
        self.balancer = None
        if len(self.tasks) > 1:
            kwargs = {"lr": cfg.balancer_lr, **cfg.balancer_kwargs}
            self.balancer = make_balancer(cfg.balancer, task_names=self.tasks, **kwargs)

    def build_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        groups: list[dict[str, Any]] = [{
            "params": [p for p in self.raw_model.parameters() if p.requires_grad],
            "lr": cfg.lr, "weight_decay": cfg.weight_decay, "name": "model",
        }]
        if self.balancer is not None:
            groups += self.balancer.param_groups()
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def build_scheduler(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        """Cosine annealing down to ``min_lr``: over ``epochs`` (T_max), stepped after each epoch; or, with a
        budget (``max_steps`` / ``max_minutes``), over the budget, stepped after every optimiser step.

        Every group (the balancer's too) is annealed from its own initial lr by the same factor.
        """
        cfg = self.config
        floor = cfg.min_lr / cfg.lr
        if follows_budget(cfg):
            self._per_step_schedule = True
            return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: cosine_factor(
                budget_progress(cfg, self.state.global_step, self._start_time), 1.0, floor))
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: cosine_factor(e, cfg.epochs, floor))

    def set_train_mode(self) -> None:
        self.model.train()
        if self.balancer is not None:
            self.balancer.train()

    def compute_losses(self, outputs: dict[str, torch.Tensor],
                       batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Per-task losses in fp32; the interpolation target is clipped to [0, 1]; pixels that the batch's
        ``valid`` map marks as tile padding are left out of both losses."""
        losses: dict[str, torch.Tensor] = {}
        valid = batch.get("valid")
        if valid is not None:
            valid = valid.to(self.device, non_blocking=True).float()  # (B, 1, H, W)
            if bool((valid >= 1).all()):
                valid = None  # nothing padded: the plain means
        if "interp" in self.tasks:
            target = batch["y_interp"].to(self.device, non_blocking=True).float()
            losses["interp"] = self.interp_loss(outputs["interp"].float(), target.clamp(0, 1), valid)
        if "seg" in self.tasks:
            target = batch["y_seg"].to(self.device, non_blocking=True).float()
            # Deep-supervision outputs (nnU-Net-style baseline, train mode only) are weighted in.
            losses["seg"] = deep_supervision_loss(lambda lg, t: self.seg_loss(lg.float(), t, valid), outputs,
                                                  target)
        return losses

    def model_input(self, batch: dict[str, Any]) -> torch.Tensor:
        """The model's input on the device: [X1, X3], or [X1, X2, X3] for triplet-input segmenters."""
        return model_input(self.raw_model, batch, self.device)

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.balancer is None:
            return next(iter(losses.values()))
        # Under fp16 AMP the GradScaler also unscales GradNorm's weight gradients; tell it the scale.
        scale = float(self.scaler.get_scale()) if self.use_amp else 1.0
        return self.balancer.combine(losses, shared_params=self._shared_params(), loss_scale=scale)

    def task_weights(self) -> dict[str, float]:
        if self.balancer is None:
            return dict.fromkeys(self.tasks, 1.0)
        return {k: float(v) for k, v in self.balancer.weights().items()}

    def train_step(self, batch: dict[str, Any]) -> StepOutput:
        """Forward, balanced loss, backward, non-finite checks, clipping and the optimiser step."""
        self.optimizer.zero_grad(set_to_none=True)
        x, _, losses = self.forward_losses(batch)  # x: (B, 2, H, W), or (B, 3, H, W) for triplet baselines
        total = self.combine(losses)
        raw = {k: float(v.detach()) for k, v in losses.items()}
        finite = all(math.isfinite(v) for v in raw.values()) and math.isfinite(float(total.detach()))
        # Every rank must take the same branch, or DDP's gradient all-reduce would hang.
        flag = all_reduce_(torch.tensor([0.0 if finite else 1.0], device=self.device), op="max")
        if flag.item() > 0:
            self.optimizer.zero_grad(set_to_none=True)
            return StepOutput(raw, float(total.detach()), math.nan, x.shape[0], skipped=True,
                              reason="non-finite loss", counts_as_nonfinite=True)
        self.scaler.scale(total).backward()
        if self.balancer is not None:
            average_gradients_([p for p in self.balancer.parameters() if p.requires_grad])
        self.scaler.unscale_(self.optimizer)
        self.on_before_optimizer_step()
        params = [p for p in self.raw_model.parameters() if p.grad is not None]
        clip = self.config.grad_clip if self.config.grad_clip > 0 else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip)) if params else 0.0
        if not math.isfinite(grad_norm):
            if self.use_amp:  # GradScaler's own overflow handling: it skips the step and lowers the scale
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                return StepOutput(raw, float(total.detach()), grad_norm, x.shape[0], skipped=True,
                                  reason="fp16 overflow (GradScaler)")
            self.optimizer.zero_grad(set_to_none=True)
            return StepOutput(raw, float(total.detach()), grad_norm, x.shape[0], skipped=True,
                              reason="non-finite gradient", counts_as_nonfinite=True)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        clipped = batch.get("target_clipped")
        clipped = None if clipped is None else float(torch.as_tensor(clipped, dtype=torch.float64).mean())
        return StepOutput(raw, float(total.detach()), grad_norm, x.shape[0], target_clipped=clipped)

    def on_before_optimizer_step(self) -> None:
        """Called with the final gradients (averaged, unscaled, unclipped); no-op by default."""

    def forward_losses(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any],
                                                              dict[str, torch.Tensor]]:
        """The model's input, its outputs (autocast on CUDA) and the per-task losses of ``batch``."""
        x = self.model_input(batch)
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.use_amp):
            outputs = self.model(x)
        return x, outputs, self.compute_losses(outputs, batch)

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Any]) -> dict[str, float]:
        """Sums over the batch: unweighted task losses × batch size, PSNR and Dice, and the count ``n``."""
        x, outputs, losses = self.forward_losses(batch)
        b = x.shape[0]
        sums = {f"L_{k}": float(v) * b for k, v in losses.items()}
        if "interp" in self.tasks:
            sums["psnr"] = float(psnr_per_sample(outputs["interp"], batch["y_interp"].to(self.device)).sum())
        if "seg" in self.tasks:
            sums["dice"] = float(dice_per_sample(outputs["seg_logits"], batch["y_seg"].to(self.device)).sum())
        sums["n"] = float(b)
        return sums

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None:
        """Called on every rank after each epoch with its ``epochs.csv`` record; no-op by default."""

    def save_model_files(self, folder: Path, extra: dict[str, Any]) -> None:
        """Write the model (``model.safetensors`` + ``model.json``) into ``folder`` (rank 0 only)."""
        from tascmt.models.checkpoint import save_model

        save_model(self.raw_model, folder, extra=extra)

    def load_model_weights(self, folder: Path) -> None:
        """Load the weights :meth:`save_model_files` wrote into the already built model (resume)."""
        from safetensors.torch import load_file

        path = Path(folder) / "model.safetensors"
        try:
            weights = load_file(str(path), device=str(self.device))
            self.raw_model.load_state_dict(weights)
        except (OSError, RuntimeError, ValueError) as err:
            raise CheckpointError(f"{path}: cannot load the model weights into {self.config.model!r} "
                                  f"size {self.config.size!r} ({err})") from err

    # ------------------------------------------------------------------ driver
    def fit(self) -> RunResult:
        """Run (or resume) training to the end; returns a :class:`RunResult` (on every rank).

        The run folder is locked for the run (a second training on it is refused). SIGTERM or SIGINT stops
        after the current step, saves ``last/`` and raises :class:`TrainingInterrupted` (exit status 143 /
        130 from the command line); see ``tascmt.training.signals``.
        """
        owns_group = self.dist.enabled and not torch.distributed.is_initialized()
        init_distributed(self.dist, self.device)
        try:
            with checkpointing.lock_run_folder(self), StopSignals() as stop:
                self._stop_signals = stop
                self._setup()
                reason = self._loop()
                barrier()
                if reason == SIGNAL_STOP:
                    raise self._interrupted(stop.signum or signal.SIGTERM)
                return self._result(reason)
        finally:
            self._stop_signals = None
            self.logger.close()
            if owns_group:
                shutdown_distributed()

    def _signal_requested(self) -> bool:
        """A stop signal arrived (on this rank) while :meth:`fit` runs."""
        stop = getattr(self, "_stop_signals", None)
        return stop is not None and stop.requested

    def _interrupted(self, signum: int) -> TrainingInterrupted:
        st = self.state
        return TrainingInterrupted(signum, (
            f"stopped by {signal_name(signum)} at step {st.global_step} (epoch {st.epoch + 1}); "
            f"{self.run_dir / 'last'} holds the training state: continue with "
            f"`tascmt train --resume {self.run_dir}`"))

    def _setup(self) -> None:
        cfg = self.config
        checkpointing.check_run_folder(self)
        seed_everything(cfg.seed)
        self.train_data, self.val_data = self.build_datasets()
        if len(self.train_data) == 0:
            raise InputError("the training split has no triplets", path=cfg.cache_dir)
        self.raw_model = self.build_model().to(self.device)
        if not getattr(self.raw_model, "trainable", True):
            raise ConfigError(f"model {cfg.model!r} has nothing to train (a fixed reference such as "
                              "linear_interp, or a cascade of separately trained models); "
                              "evaluate it directly")
        self.tasks = self.model_tasks(self.raw_model)
        self.model = wrap_model(self.raw_model, self.dist, self.device, cfg.ddp_find_unused)
        self.raw_model = unwrap(self.model)  # (SyncBatchNorm conversion on CUDA keeps the parameters)
        self.build_loss()
        if self.balancer is not None:
            self.balancer.to(self.device)
        self.optimizer = self.build_optimizer()
        self.scheduler = self.build_scheduler(self.optimizer)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        if self.dist.enabled:  # different augmentation streams per rank (initial weights come from rank 0)
            seed_everything(cfg.seed + 7919 * self.dist.rank)
        if cfg.steps_per_epoch is None:  # the paper's epochs: one pass over the training triplets
            self.sampler = ResumableSampler(self.train_data, self.dist.world_size, self.dist.rank,
                                            shuffle=True, seed=cfg.seed)
        else:  # fixed-length epochs, drawn with replacement
            self.sampler = FixedStepSampler(self.train_data, self.dist.world_size, self.dist.rank, cfg.seed,
                                            cfg.steps_per_epoch * cfg.batch_size)
        if self.val_data is None and self.dist.is_main and cfg.progress:
            print("note: the cache has no validation triplets for this split/fold: no early stopping, "
                  "training runs to its budget and best/ is the lowest training loss", flush=True)
        if self.resume:
            checkpointing.restore(self, self.run_dir / "last")
        elif self.dist.is_main:
            checkpointing.start_run_folder(self)
        barrier()
        self.logger = RunLogger(
            self.run_dir, enabled=self.dist.is_main, tensorboard=cfg.tensorboard,
            resume_step=self.state.global_step if self.resume else None,
            resume_epoch=self.state.epoch if self.resume else None,
        )
        self.set_train_mode()

    def _loader(self, epoch: int) -> DataLoader:
        self.sampler.set_epoch(epoch)
        if hasattr(self.train_data, "set_epoch"):  # augmentation drawn from (seed, epoch, index)
            self.train_data.set_epoch(epoch)
        self.sampler.set_start(self.state.step_in_epoch * self.config.batch_size)
        # A private generator: creating the iterator must not draw from the global RNG (exact resume).
        gen = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch * 1009 + self.dist.rank)
        return DataLoader(self.train_data, batch_size=self.config.batch_size, sampler=self.sampler,
                          num_workers=self.num_workers, generator=gen, drop_last=False,
                          pin_memory=self.device.type == "cuda")

    def _loop(self) -> str:
        cfg, st = self.config, self.state
        self._start_time = time.monotonic()
        if cfg.patience > 0 and st.bad_rounds >= cfg.patience:  # resumed a run that had stopped early
            return "early_stopping"
        while st.epoch < cfg.epochs:
            reason = self._train_epoch()
            if reason is not None:
                return reason
            if self._end_epoch():
                return "early_stopping"
        return "epochs"

    def _stop_request(self) -> str | None:
        """``"max_steps"`` / ``"time_budget"`` / ``"signal"`` when the run must stop now (agreed across
        ranks: a signal that reached one rank stops them all)."""
        cfg = self.config
        code = 0.0
        if cfg.max_steps is not None and self.state.global_step >= cfg.max_steps:
            code = 1.0
        elif cfg.max_minutes is not None and time.monotonic() - self._start_time >= 60.0 * cfg.max_minutes:
            code = 2.0
        if self._signal_requested():
            code = 3.0
        code = all_reduce_(torch.tensor([code], device=self.device), op="max").item()
        return {0.0: None, 1.0: "max_steps", 2.0: "time_budget", 3.0: SIGNAL_STOP}[code]

    def _steps_this_epoch(self) -> int:
        per_rank = self.sampler.num_samples
        steps = math.ceil(per_rank / self.config.batch_size)
        if self.config.steps_per_epoch is not None:
            steps = self.config.steps_per_epoch
        if self.config.max_steps_per_epoch is not None:
            steps = min(steps, self.config.max_steps_per_epoch)
        return steps

    def _train_epoch(self) -> str | None:
        """Train the rest of the current epoch; returns a stop reason, or None when the epoch finished."""
        from tqdm.auto import tqdm

        cfg, st = self.config, self.state
        total = self._steps_this_epoch()
        bar = tqdm(total=total, initial=min(st.step_in_epoch, total),
                   desc=f"epoch {st.epoch + 1}/{cfg.epochs}",
                   disable=not (cfg.progress and self.dist.is_main), leave=False, dynamic_ncols=True)
        it = iter(self._loader(st.epoch))
        speed = None
        try:
            while st.step_in_epoch < total:
                reason = self._stop_request()
                if reason is not None:
                    checkpointing.save_on_stop(self, reason)
                    return reason
                t0 = time.perf_counter()  # samples/s includes data loading: end-to-end throughput
                try:
                    batch = next(it)
                except StopIteration:
                    break
                out = self.train_step(batch)
                dt = max(time.perf_counter() - t0, 1e-9)
                rate = out.batch_size * self.dist.world_size / dt
                speed = rate if speed is None else 0.9 * speed + 0.1 * rate
                self._record_step(out, speed, dt)
                if getattr(self, "_per_step_schedule", False):
                    self.scheduler.step()  # the lr follows the budget, step by step
                bar.update(1)
                bar.set_postfix(self._postfix(out, speed), refresh=False)
                if cfg.checkpoint_every and st.global_step % cfg.checkpoint_every == 0:
                    checkpointing.save_last(self)
        finally:
            bar.close()
        return None

    def _shared_params(self) -> list[nn.Parameter] | None:
        fn = getattr(self.raw_model, "shared_parameters", None)
        return list(fn()) if callable(fn) else None

