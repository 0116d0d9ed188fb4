"""The interface every loss-balancing strategy implements, and the unweighted total used for early stopping.

A balancer turns the per-task losses of one step into the scalar that the training loop back-propagates:

    total = balancer.combine({"interp": l_i, "seg": l_s}, shared_params=model.shared_parameters())
    total.backward()

Learnable strategies keep their parameters (θ, task weights) in the balancer module; ``param_groups()``
returns them as their own optimiser group with no weight decay (decay would pull θ towards 0, i.e. towards
weights of 1, which is no balance point), so the training loop builds one optimiser over
``[model group(s)] + balancer.param_groups()``. The group's learning rate is the balancer's ``lr``; passed
as None it is the strategy's ``default_lr``: ``BALANCER_LR`` (1e-3) for GradNorm and the paper form,
``KENDALL_LR`` (1e-2, see ``tascmt.losses.uncertainty`` for why) for Kendall's weighting. ``epoch_end`` is
called once per epoch with the epoch's average training losses (only DWA uses it). Early stopping and
checkpoint selection use :func:`unweighted_total`, never the balanced total (the paper form's total → −∞).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import nn

DEFAULT_TASKS = ("interp", "seg")
#: Default learning rate of a balancer's optimiser group (strategies may override ``default_lr``).
BALANCER_LR = 1e-3


def unweighted_total(losses: Mapping[str, torch.Tensor | float]) -> torch.Tensor | float:
    """Plain sum of the task losses (e.g. ``L_interp + L_seg``): the early-stopping criterion.

    Returns a tensor when any value is a tensor, else a float.
    """
    if not losses:
        raise ValueError("unweighted_total: no losses given")
    total: torch.Tensor | float = 0.0
    for value in losses.values():
        total = total + value
    return total


class Balancer(nn.Module):
    """Base class: checks the loss dict, owns the task order and the optimiser group.

    Args:
        task_names: task keys in a fixed order, e.g. ("interp", "seg"); ``combine`` expects exactly these.
        lr: learning rate of the balancer's own optimiser group; None → the class's ``default_lr``.
    """

    name = "base"
    default_lr = BALANCER_LR

    def __init__(self, task_names: Iterable[str] = DEFAULT_TASKS, lr: float | None = None):
        super().__init__()
        if lr is None:
            lr = type(self).default_lr
        names = tuple(task_names)
        if not names or len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{type(self).__name__}: task_names must be distinct strings, got {names!r}")
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: lr must be > 0, got {lr!r}")
        self.task_names = names
        self.lr = float(lr)

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    def stack(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Scalar losses in ``task_names`` order → (K,) tensor (keeps the graph)."""
        keys = set(losses)
        if keys != set(self.task_names):
            raise ValueError(f"{type(self).__name__}: expected losses for tasks {list(self.task_names)}, "
                             f"got {sorted(keys)}")
        values = []
        for name in self.task_names:
            value = losses[name]
            if not isinstance(value, torch.Tensor) or value.numel() != 1:
                raise ValueError(f"{type(self).__name__}: loss {name!r} must be a scalar tensor, "
                                 f"got {type(value).__name__} {getattr(value, 'shape', '')}")
            values.append(value.reshape(()))
        return torch.stack(values)  # (K,)

    def combine(self, losses: Mapping[str, torch.Tensor],
                shared_params: Iterable[torch.Tensor] | None = None, *,
                loss_scale: float = 1.0) -> torch.Tensor:
        """Per-task scalar losses → the scalar to back-propagate.

        ``shared_params`` (the model's last shared layer) and ``loss_scale`` (the AMP GradScaler's scale)
        are used only by GradNorm; the other strategies ignore them.
        """
        raise NotImplementedError

    def forward(self, losses: Mapping[str, torch.Tensor],
                shared_params: Iterable[torch.Tensor] | None = None, *,
                loss_scale: float = 1.0) -> torch.Tensor:
        return self.combine(losses, shared_params, loss_scale=loss_scale)

    def weights(self) -> dict[str, float]:
        """Current effective weight of each task (the factor in front of its loss)."""
        raise NotImplementedError

    def param_groups(self) -> list[dict]:
        """The balancer's learnable parameters as one optimiser group (empty list when it has none)."""
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:
            return []
        return [{"params": params, "lr": self.lr, "weight_decay": 0.0, "name": f"balancer_{self.name}"}]

    def epoch_end(self, epoch_losses: Mapping[str, float] | None = None) -> None:
        """Called once at the end of every training epoch with its average losses (no-op by default)."""

    def _as_dict(self, values: torch.Tensor) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.task_names, values.detach().cpu().tolist())}

    def extra_repr(self) -> str:
        return f"tasks={self.task_names}, lr={self.lr}"


def check_epoch_losses(balancer: Balancer, epoch_losses: Mapping[str, float]) -> torch.Tensor:
    """Epoch-average losses → (K,) float64 tensor in task order; finite and ≥ 0 or ValueError."""
    if set(epoch_losses) != set(balancer.task_names):
        raise ValueError(f"{type(balancer).__name__}.epoch_end: expected losses for tasks "
                         f"{list(balancer.task_names)}, got {sorted(epoch_losses)}")
    vals = [float(epoch_losses[n]) for n in balancer.task_names]
    if not all(math.isfinite(v) and v >= 0 for v in vals):
        raise ValueError(f"{type(balancer).__name__}.epoch_end: losses must be finite and >= 0, got "
                         f"{dict(zip(balancer.task_names, vals))}")
    return torch.tensor(vals, dtype=torch.float64)
