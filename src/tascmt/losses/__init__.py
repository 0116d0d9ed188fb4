"""tascmt.losses: task losses and the loss-balancing strategies (docs/design.md §6).

>>> from tascmt.losses import HybridInterpLoss, SegLoss, make_balancer
>>> bal = make_balancer("kendall")
>>> sorted(bal.weights())
['interp', 'seg']
"""

from __future__ import annotations

from collections.abc import Iterable

from tascmt.errors import ConfigError
from tascmt.losses.balancer import DEFAULT_TASKS, Balancer, unweighted_total
from tascmt.losses.dwa import DWABalancer
from tascmt.losses.fixed import FixedBalancer
from tascmt.losses.gradnorm import GradNormBalancer
from tascmt.losses.interp import HybridInterpLoss
from tascmt.losses.seg import SegLoss, soft_dice_loss
from tascmt.losses.uncertainty import KendallBalancer, PaperBalancer

BALANCERS: dict[str, type[Balancer]] = {
    "kendall": KendallBalancer,
    "paper": PaperBalancer,
    "fixed": FixedBalancer,
    "gradnorm": GradNormBalancer,
    "dwa": DWABalancer,
}


def list_balancers() -> list[str]:
    return list(BALANCERS)


def make_balancer(name: str = "kendall", task_names: Iterable[str] = DEFAULT_TASKS, **kwargs) -> Balancer:
    """Build a balancing strategy by name.

    Args:
        name: "kendall" (default), "paper", "fixed", "gradnorm" or "dwa".
        task_names: task order, e.g. ("interp", "seg").
        **kwargs: strategy options: ``lr`` (all), ``weights`` (fixed), ``alpha`` (gradnorm),
            ``temperature`` (dwa).
    Raises:
        ConfigError: unknown name (lists the known ones) or an option the strategy does not take.
    """
    if name not in BALANCERS:
        raise ConfigError(f"unknown loss balancing {name!r}; known: {', '.join(BALANCERS)}")
    try:
        return BALANCERS[name](task_names, **kwargs)
    except TypeError as err:
        raise ConfigError(f"loss balancing {name!r}: invalid options {sorted(kwargs)} ({err})") from err


__all__ = [
    "BALANCERS", "Balancer", "DWABalancer", "FixedBalancer", "GradNormBalancer", "HybridInterpLoss",
    "KendallBalancer", "PaperBalancer", "SegLoss", "list_balancers", "make_balancer", "soft_dice_loss",
    "unweighted_total",
]
