"""Homoscedastic-uncertainty weighting: Kendall's form (default) and the paper's literal form (SPEC §5)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from tascmt.losses.balancer import BALANCER_LR, DEFAULT_TASKS, Balancer


class KendallBalancer(Balancer):
    """``L = Σ_k exp(−θ_k)·L_k + θ_k`` with learnable θ (init 0, i.e. weights 1).

    ∂L/∂θ_k = 1 − exp(−θ_k)·L_k vanishes at θ_k = log L_k, so for a fixed loss the weight
    ``exp(−θ_k)`` converges to ``1/L_k`` and every weighted term to 1. θ must be in the optimiser
    (``param_groups()``); the reference code forgot this and trained with fixed 1:1 weights.
    ``weights()`` → ``{task: exp(−θ_k)}``.
    """

    name = "kendall"

    def __init__(self, task_names: Iterable[str] = DEFAULT_TASKS, lr: float = BALANCER_LR):
        super().__init__(task_names, lr)
        self.theta = nn.Parameter(torch.zeros(self.num_tasks))

    def combine(self, losses: Mapping[str, torch.Tensor],
                shared_params: Iterable[torch.Tensor] | None = None, *,
                loss_scale: float = 1.0) -> torch.Tensor:
        """losses: task → scalar; shared_params ignored. Returns Σ exp(−θ)·L + θ (scalar)."""
        l = self.stack(losses)  # (K,)
        theta = self.theta.to(l.dtype)
        return (torch.exp(-theta) * l + theta).sum()

    def weights(self) -> dict[str, float]:
        return self._as_dict(torch.exp(-self.theta))


class PaperBalancer(Balancer):
    """The paper's literal form ``L = Σ_k exp(θ_k)·L_k + θ_k`` — a flagged ablation that DIVERGES.

    ∂L/∂θ_k = exp(θ_k)·L_k + 1 > 0 everywhere, so there is no minimum: θ decreases without bound, the
    weights ``exp(θ_k)`` go to 0 and the total goes to −∞ (SPEC §5). Kept only to reproduce that
    behaviour. ``weights()`` carries the extra key ``"paper_form_diverges": 1.0`` so that every log
    of this run shows the flag, and construction emits a ``UserWarning``.
    """

    name = "paper"

    def __init__(self, task_names: Iterable[str] = DEFAULT_TASKS, lr: float = BALANCER_LR):
        super().__init__(task_names, lr)
        self.theta = nn.Parameter(torch.zeros(self.num_tasks))
        warnings.warn("loss balancing 'paper' (exp(θ)·L + θ) has no minimum: θ → −∞ and the total loss "
                      "→ −∞; use it only as a flagged ablation", UserWarning, stacklevel=2)

    def combine(self, losses: Mapping[str, torch.Tensor],
                shared_params: Iterable[torch.Tensor] | None = None, *,
                loss_scale: float = 1.0) -> torch.Tensor:
        """losses: task → scalar; shared_params ignored. Returns Σ exp(θ)·L + θ (scalar)."""
        l = self.stack(losses)  # (K,)
        theta = self.theta.to(l.dtype)
        return (torch.exp(theta) * l + theta).sum()

    def weights(self) -> dict[str, float]:
        out = self._as_dict(torch.exp(self.theta))
        out["paper_form_diverges"] = 1.0
        return out
