"""The training loop, written once, with hooks that variants override (STYLE.md example 8).

Hooks (override in a subclass; each is small):

* ``build_datasets() -> (train, val | None)``  — ``TripletDataset`` on the cache by default.
* ``build_model() -> nn.Module``               — ``tascmt.models.create_model(model, size, **overrides)``.
* ``build_loss()``                             — sets ``interp_loss``, ``seg_loss`` and ``balancer``.
* ``build_optimizer() -> Optimizer``           — AdamW: model group + the balancer's own group.
* ``build_scheduler(optimizer)``               — cosine annealing, stepped once per epoch.
* ``compute_losses(outputs, batch) -> {"interp": L_i, "seg": L_s}`` (only the tasks the model has).
* ``train_step(batch) -> StepOutput`` / ``validation_step(batch) -> dict of sums``.
* ``on_before_optimizer_step()`` (gradients final: averaged across ranks, unscaled, not yet clipped).
* ``on_epoch_end(epoch, record)``; ``set_train_mode()``.
* ``save_model_files(folder, extra)`` / ``load_model_weights(folder)`` — ``models.checkpoint.save_model``.

One process or DDP (from ``torchrun``'s environment) share every line; see ``distributed.py``.
The loop state that resume needs lives in :class:`LoopState`; ``checkpointing.py`` saves and restores it.
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
from tascmt.training.logs import RunLogger, epoch_summary
from tascmt.training.metrics import dice_per_sample, psnr_per_sample
from tascmt.training.records import LoopState, RunResult, StepOutput
from tascmt.training.sampler import FixedStepSampler, ResumableSampler
from tascmt.training.signals import SIGNAL_STOP, StopSignals, TrainingInterrupted, signal_name
from tascmt.utils.seed import seed_everything

TASK_OUTPUT = {"interp": "interp", "seg": "seg_logits"}
__all__ = ["LoopState", "RunResult", "StepOutput", "Trainer"]


class Trainer:
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
        size = checkpointing.data_extra(cfg.cache_dir).get("size")
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
        if self._budgeted():
            self._per_step_schedule = True
            return torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda _: _cosine_factor(self._budget_progress(), 1.0, floor))
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: _cosine_factor(e, cfg.epochs, floor))

    def _budgeted(self) -> bool:
        """Whether the lr follows the budget: ``lr_schedule="budget"``, or ``"auto"`` with a budget set."""
        cfg = self.config
        if cfg.lr_schedule == "epochs":
            return False
        has_budget = cfg.max_steps is not None or cfg.max_minutes is not None
        if cfg.lr_schedule == "budget" and not has_budget:
            raise ConfigError("lr_schedule 'budget' needs max_steps or max_minutes")
        return has_budget

    def _budget_progress(self) -> float:
        """Fraction of the training budget used: steps of ``max_steps``, or this invocation's minutes of
        ``max_minutes`` (whichever is further along when both are set)."""
        cfg, p = self.config, 0.0
        if cfg.max_steps is not None:
            p = self.state.global_step / cfg.max_steps
        if cfg.max_minutes is not None and self._start_time:
            p = max(p, (time.monotonic() - self._start_time) / (60.0 * cfg.max_minutes))
        return min(max(p, 0.0), 1.0)

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

    def _postfix(self, out: StepOutput, speed: float) -> dict[str, str]:
        post = {"loss": f"{out.total:.4g}"}
        post.update({f"L_{k}": f"{v:.4g}" for k, v in out.losses.items()})
        post.update({f"w_{k}": f"{v:.4g}" for k, v in self.task_weights().items() if k in self.tasks})
        post["samples/s"] = f"{speed:.2f}"
        return post

    def _record_step(self, out: StepOutput, speed: float, dt: float) -> None:
        st = self.state
        st.global_step += 1
        st.step_in_epoch += 1
        if out.skipped:
            st.skipped_total += 1
            st.nonfinite_streak = st.nonfinite_streak + 1 if out.counts_as_nonfinite else st.nonfinite_streak
        else:
            st.nonfinite_streak = 0
            sums = st.epoch_sums
            for k, v in out.losses.items():
                sums[f"L_{k}"] = sums.get(f"L_{k}", 0.0) + v
            sums["loss"] = sums.get("loss", 0.0) + out.total
            sums["steps"] = sums.get("steps", 0.0) + 1
            if out.target_clipped is not None:
                sums["target_clipped"] = sums.get("target_clipped", 0.0) + out.target_clipped
        st.epoch_sums["time_s"] = st.epoch_sums.get("time_s", 0.0) + dt
        st.epoch_sums["samples"] = st.epoch_sums.get("samples", 0.0) + out.batch_size * self.dist.world_size
        weights = self.task_weights()
        self.logger.log_step({
            "step": st.global_step, "epoch": st.epoch + 1, "loss": out.total,
            "L_interp": out.losses.get("interp"), "L_seg": out.losses.get("seg"),
            "w_interp": weights.get("interp"), "w_seg": weights.get("seg"),
            "lr": self.optimizer.param_groups[0]["lr"], "grad_norm": out.grad_norm,
            "samples_per_s": speed, "skipped": int(out.skipped),
        })
        if st.nonfinite_streak >= self.config.max_nonfinite:
            terms = ", ".join(f"L_{k}={v:.6g}" for k, v in out.losses.items())
            raise TascmtError(
                f"training stopped at step {st.global_step} (epoch {st.epoch + 1}): "
                f"{st.nonfinite_streak} consecutive steps had a non-finite loss or gradient "
                f"(last: {out.reason}; {terms}, total={out.total:.6g}, grad_norm={out.grad_norm:.6g}). "
                f"Try a lower lr (now {self.config.lr}), amp=False, or check the cache for bad values; "
                f"{self.run_dir / 'last'} holds the last good checkpoint"
            )

    def _end_epoch(self) -> bool:
        """Validation, balancer/scheduler updates, early stopping, checkpoints. True → stop early."""
        cfg, st = self.config, self.state
        sums = st.epoch_sums
        n = max(sums.get("steps", 0.0), 1.0)
        train = {k: sums[f"L_{k}"] / n for k in self.tasks if f"L_{k}" in sums}
        record: dict[str, Any] = {"epoch": st.epoch + 1, "step": st.global_step,
                                  "train_loss": sums.get("loss", math.nan) / n,
                                  **{f"train_L_{k}": v for k, v in train.items()},
                                  "lr": self.optimizer.param_groups[0]["lr"],
                                  "skipped_steps": st.skipped_total,
                                  "target_clip_frac": sums["target_clipped"] / n if "target_clipped" in sums
                                  else None,
                                  "epoch_s": sums.get("time_s", 0.0),
                                  "samples_per_s": sums.get("samples", 0.0)
                                  / max(sums.get("time_s", 0.0), 1e-9)}
        criterion = None
        if (st.epoch + 1) % cfg.val_every == 0 or st.epoch + 1 == cfg.epochs:
            if self.val_data is not None:
                record.update(self.validate())
                criterion = self._selection_criterion({k: record[f"val_L_{k}"] for k in self.tasks})
                record["val_criterion"] = criterion
            elif train:
                criterion = self._selection_criterion(train)  # no validation split: the training losses
        if self.balancer is not None and len(train) == len(self.tasks):
            self.balancer.epoch_end(train)
        record.update({f"w_{k}": v for k, v in self.task_weights().items()})
        improved = criterion is not None and criterion < st.best_val
        if improved:
            st.best_val, st.best_epoch, st.bad_rounds = float(criterion), st.epoch + 1, 0
        elif criterion is not None:
            st.bad_rounds += 1
        record["best"] = int(improved)
        self.scheduler.step()
        st.history.append(record)
        self.logger.log_epoch(record)
        if cfg.progress and self.dist.is_main:
            print(epoch_summary(record, cfg.epochs), flush=True)
        self.on_epoch_end(st.epoch, record)
        st.epoch += 1
        st.step_in_epoch = 0
        st.epoch_sums = {}
        if improved:
            checkpointing.save_best(self)
        checkpointing.save_last(self)
        can_stop = self.val_data is not None and st.epoch >= cfg.min_epochs
        return can_stop and cfg.patience > 0 and st.bad_rounds >= cfg.patience

    def _selection_criterion(self, losses: dict[str, float]) -> float:
        """Scale-free model selection: Σ_k L_k / L_k(first validation), so each task counts by its relative
        improvement, not by its loss scale (raw BCE is ~20× the interpolation loss and would otherwise make
        ``best/`` the best segmenter). The reference values are kept in the loop state (exact resume)."""
        ref = self.state.val_ref
        for k, v in losses.items():
            if k not in ref and math.isfinite(v) and v > 0:
                ref[k] = float(v)
        return float(sum(v / ref[k] if ref.get(k) else v for k, v in losses.items()))

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean unweighted validation losses (``val_loss = Σ L_task``), PSNR and Dice over all ranks."""
        assert self.val_data is not None
        self.model.eval()
        sampler = None
        if self.dist.enabled:  # disjoint shards without padding: every sample counted exactly once
            sampler = range(self.dist.rank, len(self.val_data), self.dist.world_size)
        loader = DataLoader(self.val_data, batch_size=self.config.batch_size, sampler=sampler, shuffle=False,
                            num_workers=self.num_workers, generator=torch.Generator().manual_seed(0))
        keys = [f"L_{k}" for k in self.tasks] + (["psnr"] if "interp" in self.tasks else []) \
            + (["dice"] if "seg" in self.tasks else []) + ["n"]
        acc = torch.zeros(len(keys), dtype=torch.float64)
        for batch in loader:
            sums = self.validation_step(batch)
            acc += torch.tensor([sums.get(k, 0.0) for k in keys], dtype=torch.float64)
        acc = all_reduce_(acc.to(self.device), op="sum").cpu()
        total = dict(zip(keys, acc.tolist()))
        n = max(total.pop("n"), 1.0)
        out = {f"val_{k}": v / n for k, v in total.items()}
        out["val_loss"] = sum(out[f"val_L_{k}"] for k in self.tasks)
        self.set_train_mode()
        return out

    def _shared_params(self) -> list[nn.Parameter] | None:
        fn = getattr(self.raw_model, "shared_parameters", None)
        return list(fn()) if callable(fn) else None

    def _result(self, reason: str) -> RunResult:
        best = checkpointing.find_checkpoint_dir(self.run_dir / "best")
        last = checkpointing.find_checkpoint_dir(self.run_dir / "last")
        return RunResult(run_dir=self.run_dir, best_checkpoint=best, last_checkpoint=last,
                         history=list(self.state.history), stop_reason=reason,
                         global_step=self.state.global_step)


def _cosine_factor(epoch: int, t_max: int, floor: float) -> float:
    """lr multiplier after ``epoch`` scheduler steps: ``floor + (1 − floor)·(1 + cos(π·e/T))/2``."""
    e = min(epoch, t_max)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * e / t_max))
