"""The training loop's bookkeeping, as a mixin of :class:`~tascmt.training.trainer.Trainer`.

``trainer.py`` runs the loop (set-up, epochs, steps, stopping); this module keeps its books: the per-step
sums and log lines (``_record_step``), the epoch's record with validation, balancer and scheduler updates,
model selection and early stopping, and the end-of-epoch checkpoints (``_end_epoch``), the default
:meth:`validate` hook, and the :class:`RunResult` of a finished run.

It works on the attributes :class:`Trainer` sets up (``config``, ``state``, ``tasks``, ``optimizer``,
``scheduler``, ``balancer``, ``logger``, ``dist``, ``device``, ``val_data``, ``run_dir``) and calls its hooks
(``task_weights``, ``validation_step``, ``set_train_mode``, ``on_epoch_end``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.utils.data import DataLoader

from tascmt.errors import TascmtError
from tascmt.training import checkpointing
from tascmt.training.distributed import all_reduce_
from tascmt.training.logs import epoch_summary
from tascmt.training.records import RunResult, StepOutput

__all__ = ["EpochBookkeeping"]


class EpochBookkeeping:
    """Step records, epoch ends (validation, model selection, early stopping, checkpoints), the run result."""

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

    def _result(self, reason: str) -> RunResult:
        best = checkpointing.find_checkpoint_dir(self.run_dir / "best")
        last = checkpointing.find_checkpoint_dir(self.run_dir / "last")
        return RunResult(run_dir=self.run_dir, best_checkpoint=best, last_checkpoint=last,
                         history=list(self.state.history), stop_reason=reason,
                         global_step=self.state.global_step)
