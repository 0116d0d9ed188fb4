"""Fixed task weights: (1, 1) reproduces the reference code; the paper's Table 10
uses (0.3, 0.7), (0.4, 0.6) and (0.5, 0.5) (interp, seg).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import torch

from tascmt.errors import ConfigError
from tascmt.losses.balancer import BALANCER_LR, DEFAULT_TASKS, Balancer


class FixedBalancer(Balancer):
    """``L = Σ_k w_k·L_k`` with constant weights (no learnable parameters, no normalisation).

    Args:
        task_names: task order.
        weights: one weight per task, as a sequence in task order or a dict task → weight;
            default 1 for every task.
    """

    name = "fixed"

    def __init__(self, task_names: Iterable[str] = DEFAULT_TASKS,
                 weights: Sequence[float] | Mapping[str, float] | None = None, lr: float = BALANCER_LR):
        super().__init__(task_names, lr)
        if weights is None:
            values = [1.0] * self.num_tasks
        elif isinstance(weights, Mapping):
            if set(weights) != set(self.task_names):
                raise ConfigError(f"fixed loss weights: expected keys {list(self.task_names)}, "
                                  f"got {sorted(weights)}")
            values = [float(weights[n]) for n in self.task_names]
        else:
            values = [float(w) for w in weights]
            if len(values) != self.num_tasks:
                raise ConfigError(f"fixed loss weights: expected {self.num_tasks} values for tasks "
                                  f"{list(self.task_names)}, got {list(weights)!r}")
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ConfigError(f"fixed loss weights must be finite and >= 0, got {values!r}")
        self.register_buffer("fixed_weights", torch.tensor(values, dtype=torch.float32))

    def combine(self, losses: Mapping[str, torch.Tensor],
                shared_params: Iterable[torch.Tensor] | None = None, *,
                loss_scale: float = 1.0) -> torch.Tensor:
        """losses: task → scalar; shared_params ignored. Returns Σ w·L (scalar)."""
        l = self.stack(losses)  # (K,)
        return (self.fixed_weights.to(l.dtype) * l).sum()

    def weights(self) -> dict[str, float]:
        return self._as_dict(self.fixed_weights)
