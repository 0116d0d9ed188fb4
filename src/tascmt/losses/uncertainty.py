"""Homoscedastic-uncertainty weighting: Kendall's form (default) and the paper's literal form (an ablation).

Kendall's form ``Σ_k exp(−θ_k)·L_k + θ_k`` has its minimum in θ at ``θ_k = log L_k``, where every weighted
term ``exp(−θ_k)·L_k`` equals 1, i.e. the tasks weigh the same whatever the scale of their losses. How fast
θ gets there decides whether a short (CPU-budget) run ever trains balanced, hence two choices here:

* **Initialisation from the first losses** (``init="first_loss"``, the default): on the first ``combine``
  in training mode θ is set to ``log L(0)`` (detached), so the run starts at the balance point instead of
  at weights 1. Measured with Adam, losses ``(L_interp, L_seg) = (0.005, 0.09)`` held constant: from θ = 0
  at lr 1e-3 the weighted terms were still 0.02 and 0.34 after 1,400 steps (segmentation outweighing
  interpolation 17:1); with this initialisation they are within 1 ± 0.01 from the first step on.
  ``init="zero"`` restores θ₀ = 0 (weights 1). Whether the initialisation has happened is kept in the
  boolean buffer ``initialised``, so it is saved in ``state_dict()`` and a resumed run does not redo it.
* **Its own learning rate** ``KENDALL_LR`` = 1e-2 (the other balancers keep ``BALANCER_LR`` = 1e-3).
  With Adam near the balance point θ moves by at most about ``lr`` per step. Measured (constant losses as
  above, θ₀ = 0, steps until both weighted terms stay within 1 ± 0.1): lr 1e-3 never within 6,000 steps,
  5e-3 → 1,330, 1e-2 → 663, 2e-2 → 322, 3e-2 → 209, 1e-1 → 79. The price of a large lr is jitter under
  noisy per-batch losses: with mean-preserving log-normal noise of σ = 0.2 on each step's losses the
  largest deviation of ``exp(−θ)·E[L]`` from 1 (steps 1,000–4,000) was 0.03 at 1e-3, 0.10 at 1e-2, 0.21 at
  3e-2 and 0.39 at 1e-1. With the first-loss initialisation 1e-2 also follows a fast early drop of the
  losses (interp 0.05 → 0.005, seg 0.3 → 0.09 with a 150-step time constant) within 1 ± 0.01, which 1e-3
  (deviation up to 0.77) and 2e-3 (0.55) do not.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping

import torch
import torch.distributed as dist
from torch import nn

from tascmt.losses.balancer import BALANCER_LR, DEFAULT_TASKS, Balancer

#: Default learning rate of Kendall's θ group (see the module docstring for the measurements).
KENDALL_LR = 1e-2
#: θ initialisations of :class:`KendallBalancer`.
KENDALL_INITS = ("first_loss", "zero")
#: First losses below this are raised to it before ``log``: a zero first loss would give θ = −∞.
MIN_INIT_LOSS = 1e-4


class KendallBalancer(Balancer):
    """``L = Σ_k exp(−θ_k)·L_k + θ_k`` with learnable θ.

    ∂L/∂θ_k = 1 − exp(−θ_k)·L_k vanishes at θ_k = log L_k, so for a fixed loss the weight
    ``exp(−θ_k)`` converges to ``1/L_k`` and every weighted term to 1. θ must be in the optimiser
    (``param_groups()``); the reference code forgot this and trained with fixed 1:1 weights.
    ``weights()`` → ``{task: exp(−θ_k)}``.

    Args:
        task_names: task order.
        lr: learning rate of θ's optimiser group (None → ``KENDALL_LR``).
        init: ``"first_loss"`` (default): θ ← log L on the first ``combine`` in training mode (losses
            below ``MIN_INIT_LOSS`` are raised to it; a step with a non-finite loss is not used, the next
            one is); ``"zero"``: θ₀ = 0, i.e. weights 1.
    Attributes:
        theta: (K,) parameter.
        initialised: bool buffer, True once θ has its initial value (at once for ``init="zero"``).

    Under DDP (``torch.distributed`` initialised) the first losses are averaged across the processes
    before the initialisation, so that every replica of θ starts equal; this is a collective call, made by
    the first training ``combine`` of every process.
    """

    name = "kendall"
    default_lr = KENDALL_LR

    def __init__(self, task_names: Iterable[str] = DEFAULT_TASKS, lr: float | None = KENDALL_LR,
                 init: str = "first_loss"):
        super().__init__(task_names, lr)
        if init not in KENDALL_INITS:
            raise ValueError(f"KendallBalancer: init must be one of {KENDALL_INITS}, got {init!r}")
        self.init = init
        self.theta = nn.Parameter(torch.zeros(self.num_tasks))
        self.register_buffer("initialised", torch.tensor(init == "zero"))

    def combine(self, losses: Mapping[str, torch.Tensor],
                shared_params: Iterable[torch.Tensor] | None = None, *,
                loss_scale: float = 1.0) -> torch.Tensor:
        """losses: task → scalar; shared_params ignored. Returns Σ exp(−θ)·L + θ (scalar)."""
        l = self.stack(losses)  # (K,)
        if self.training and self.init == "first_loss" and not bool(self.initialised):
            self._init_from(l)
        theta = self.theta.to(l.dtype)
        return (torch.exp(-theta) * l + theta).sum()

    @torch.no_grad()
    def _init_from(self, l: torch.Tensor) -> None:
        """θ ← log max(L, MIN_INIT_LOSS) from the (K,) losses ``l`` (averaged over DDP processes)."""
        l0 = l.detach().float().clone()  # (K,)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(l0, op=dist.ReduceOp.SUM)
            l0 /= dist.get_world_size()
        if not bool(torch.isfinite(l0).all()):
            return  # every process sees the same average, so all of them wait for the next step
        self.theta.copy_(torch.log(l0.clamp_min(MIN_INIT_LOSS)).to(self.theta))
        self.initialised.fill_(True)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        """Accept state dicts saved before the ``initialised`` flag existed.

        Such a state counts as initialised when its θ is not all zero (θ has been trained, or set, so it
        must not be overwritten); an all-zero θ is a run that never moved θ and gets the first-loss
        initialisation on its next training step.
        """
        key = prefix + "initialised"
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        if key not in state_dict:
            if key in missing_keys:
                missing_keys.remove(key)
            theta = state_dict.get(prefix + "theta")
            trained = theta is not None and bool(torch.as_tensor(theta).ne(0).any())
            with torch.no_grad():
                self.initialised.fill_(trained or self.init == "zero")

    def weights(self) -> dict[str, float]:
        return self._as_dict(torch.exp(-self.theta))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, init={self.init}"


class PaperBalancer(Balancer):
    """The paper's literal form ``L = Σ_k exp(θ_k)·L_k + θ_k`` — a flagged ablation that DIVERGES.

    ∂L/∂θ_k = exp(θ_k)·L_k + 1 > 0 everywhere, so there is no minimum: θ decreases without bound, the
    weights ``exp(θ_k)`` go to 0 and the total goes to −∞ (the sign of θ in the weight is flipped with
    respect to Kendall's form). Kept only to reproduce that behaviour, with θ₀ = 0 and lr ``BALANCER_LR``.
    ``weights()`` carries the extra key ``"paper_form_diverges": 1.0`` so that every log of this run shows
    the flag, and construction emits a ``UserWarning``.
    """

    name = "paper"

    def __init__(self, task_names: Iterable[str] = DEFAULT_TASKS, lr: float | None = BALANCER_LR):
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
