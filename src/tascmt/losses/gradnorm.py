"""GradNorm (Chen et al., ICML 2018) on the last shared layer, α = 1.5 (docs/design.md §6).

What ``combine`` returns and when the weights move
---------------------------------------------------
* Returned total: ``Σ_k w_k·L_k`` with the task weights **detached**, so ``total.backward()`` trains the
  model exactly like fixed weights ``w`` would and puts no gradient on ``w``.
* In training mode with gradients enabled, ``combine`` also computes the GradNorm gradient of ``w``:
  ``g_k = ‖∇_W L_k‖`` over ``shared_params`` W (one ``torch.autograd.grad`` per task with
  ``retain_graph=True``, so the graph stays usable and no ``.grad`` of the model is touched);
  ``G_k = w_k·g_k``; ``r_k = L̃_k / mean(L̃)`` with ``L̃_k = L_k / L_k(0)`` (``L_k(0)`` = the losses of
  the first training ``combine``, stored in the state dict); target ``Ĝ_k = mean(G)·r_k^α`` held constant;
  ``L_grad = Σ_k |G_k − Ĝ_k|``. Its gradient ∂L_grad/∂w (by ``torch.autograd.grad``) is **added to
  ``w.grad``**, exactly as a backward pass would. The training loop's ``optimizer.step()`` over
  ``param_groups()`` (lr 1e-3, no weight decay) then applies it.
* Renormalisation: at the start of every ``combine`` (and in ``weights()``), ``w`` is clamped to ≥ 1e-6 and
  rescaled to sum to the number of tasks, so the weights used at step t are the renormalised result of
  the update made at step t − 1.
* A task whose gradient norm is too small for its relative training rate (G_k < Ĝ_k) gets
  ∂L_grad/∂w_k = −g_k < 0, so gradient descent raises its weight (and renormalisation lowers the others).
* Gradient clipping in the loop should cover only the model's parameters, not ``w``.
* AMP: pass ``loss_scale=scaler.get_scale()``. The per-task gradients are then taken of ``scale·L_k``
  (no fp16 underflow) and divided back, and the stored ``w.grad`` is multiplied by the scale, so that
  ``GradScaler.unscale_`` (which divides every gradient in the optimiser, ``w``'s included) restores it.
* DDP (not tested here): the per-task gradients come from ``torch.autograd.grad``, which accumulates no
  ``.grad``; ``w.grad`` is computed from the local batch, so average it across ranks like the other
  gradients DDP does not manage.
* In eval mode or under ``torch.no_grad()`` it only returns the weighted sum.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from tascmt.losses.balancer import BALANCER_LR, DEFAULT_TASKS, Balancer

MIN_WEIGHT = 1e-6


class GradNormBalancer(Balancer):
    """GradNorm task weighting; see the module docstring for the exact update rule.

    Args:
        task_names: task order.
        alpha: restoring-force strength α (1.5).
        lr: learning rate of the task-weight optimiser group.
    Attributes:
        task_weights: (K,) learnable weights, init 1.
        initial_losses: (K,) buffer, L(0) (NaN until the first training step).
        last_grad_loss: the latest L_grad (float, for logging; NaN before the first update).
    """

    name = "gradnorm"

    def __init__(self, task_names: Iterable[str] = DEFAULT_TASKS, alpha: float = 1.5,
                 lr: float = BALANCER_LR):
        super().__init__(task_names, lr)
        if not (math.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"GradNorm alpha must be finite and >= 0, got {alpha!r}")
        self.alpha = float(alpha)
        self.task_weights = nn.Parameter(torch.ones(self.num_tasks))
        self.register_buffer("initial_losses", torch.full((self.num_tasks,), math.nan))
        self.last_grad_loss = math.nan
        self.last_grad_norms: dict[str, float] = {}

    def _normalised(self) -> torch.Tensor:
        w = self.task_weights.detach().clamp_min(MIN_WEIGHT)
        return w * (self.num_tasks / w.sum())

    def combine(self, losses: Mapping[str, torch.Tensor],
                shared_params: Iterable[torch.Tensor] | None = None, *,
                loss_scale: float = 1.0) -> torch.Tensor:
        """losses: task → scalar; shared_params: the last shared layer's parameters (required while
        training); loss_scale: the AMP GradScaler's current scale (``scaler.get_scale()``, 1 without AMP).
        Returns Σ w.detach()·L (scalar); see the module docstring for the weight update."""
        l = self.stack(losses)  # (K,)
        with torch.no_grad():
            self.task_weights.copy_(self._normalised())
        total = (self.task_weights.detach().clone().to(l.dtype) * l).sum()
        if self.training and torch.is_grad_enabled() and l.requires_grad:
            if shared_params is None:
                raise ValueError("GradNorm needs shared_params (model.shared_parameters()) while training")
            self._accumulate_weight_grad(l, [p for p in shared_params if p.requires_grad], float(loss_scale))
        return total

    def _accumulate_weight_grad(self, l: torch.Tensor, params: list[torch.Tensor], scale: float) -> None:
        if not params:
            raise ValueError("GradNorm: shared_params contains no parameter that requires grad")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"GradNorm: loss_scale must be finite and > 0, got {scale!r}")
        norms = []
        for k in range(self.num_tasks):
            if not l[k].requires_grad:
                norms.append(torch.zeros((), device=l.device))
                continue
            grads = torch.autograd.grad(l[k] * scale, params, retain_graph=True, allow_unused=True)
            sq = sum(((g.detach().float() ** 2).sum() for g in grads if g is not None),
                     torch.zeros((), device=l.device))
            norms.append(sq.sqrt() / scale)
        g = torch.stack(norms).to(self.task_weights.device)  # (K,) ‖∇_W L_k‖
        l_now = l.detach().float().to(self.task_weights.device)  # (K,)
        if torch.isnan(self.initial_losses).any():
            self.initial_losses.copy_(l_now)
        ratio = l_now / self.initial_losses.clamp_min(1e-12)  # (K,) L̃_k
        rate = ratio / ratio.mean().clamp_min(1e-12)  # (K,) r_k
        with torch.enable_grad():
            big_g = self.task_weights * g  # (K,) G_k, differentiable in w only
            target = (big_g.detach().mean() * rate**self.alpha)  # (K,) held constant
            grad_loss = (big_g - target).abs().sum()
            (dw,) = torch.autograd.grad(grad_loss, self.task_weights)
        dw = dw.detach() * scale  # so that GradScaler.unscale_ restores ∂L_grad/∂w
        if self.task_weights.grad is None:
            self.task_weights.grad = dw.clone()
        else:
            self.task_weights.grad.add_(dw)
        self.last_grad_loss = float(grad_loss.detach())
        self.last_grad_norms = self._as_dict(g)

    def weights(self) -> dict[str, float]:
        return self._as_dict(self._normalised())

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, alpha={self.alpha}"
