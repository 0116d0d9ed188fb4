"""Dynamic Weight Average (Liu et al., CVPR 2019), temperature T = 2 (docs/design.md §6)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch

from tascmt.losses.balancer import BALANCER_LR, DEFAULT_TASKS, Balancer, check_epoch_losses


class DWABalancer(Balancer):
    """``L = Σ_k w_k·L_k`` with ``w_k = K·softmax_k(r_k / T)``, ``r_k = L̄_k(t−1) / L̄_k(t−2)``.

    L̄_k(t) is the average training loss of task k over epoch t, handed in by ``epoch_end`` (call it
    once per epoch, after the epoch). The weights stay 1 until two epochs have ended (epochs 1 and 2),
    and then change only at ``epoch_end``; the task whose loss decreased least (largest ratio) gets the
    largest weight. No learnable parameters; the last two epoch averages are buffers, so a resumed run
    continues with the same weights.

    Args:
        task_names: task order.
        temperature: T (2); larger T → weights closer to uniform.
    """

    name = "dwa"

    def __init__(self, task_names: Iterable[str] = DEFAULT_TASKS, temperature: float = 2.0,
                 lr: float = BALANCER_LR):
        super().__init__(task_names, lr)
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"DWA temperature must be > 0, got {temperature!r}")
        self.temperature = float(temperature)
        k = self.num_tasks
        self.register_buffer("history", torch.full((2, k), math.nan, dtype=torch.float64))  # (2, K)
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.long))
        self.register_buffer("dwa_weights", torch.ones(k))

    def epoch_end(self, epoch_losses: Mapping[str, float] | None = None) -> None:
        """Record one epoch's average losses (task → float) and recompute the weights."""
        if epoch_losses is None:
            raise ValueError("DWA.epoch_end needs the epoch's average losses (task → float)")
        vals = check_epoch_losses(self, epoch_losses)  # (K,)
        self.history[0] = self.history[1]
        self.history[1] = vals
        self.epochs_seen += 1
        if int(self.epochs_seen) >= 2:
            ratio = self.history[1] / self.history[0].clamp_min(1e-12)  # (K,)
            w = self.num_tasks * torch.softmax(ratio / self.temperature, dim=0)
            self.dwa_weights.copy_(w.float())

    def combine(self, losses: Mapping[str, torch.Tensor],
                shared_params: Iterable[torch.Tensor] | None = None, *,
                loss_scale: float = 1.0) -> torch.Tensor:
        """losses: task → scalar; shared_params ignored. Returns Σ w·L (scalar)."""
        l = self.stack(losses)  # (K,)
        return (self.dwa_weights.to(l.dtype) * l).sum()

    def weights(self) -> dict[str, float]:
        return self._as_dict(self.dwa_weights)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, temperature={self.temperature}"
