"""Registry of named model variants (timm-style): ``create_model(name, size, **overrides)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from tascmt.models.config import SIZES, ModelConfigError


@dataclass(frozen=True)
class ModelEntry:
    """A registered variant: ``make_config(size)`` gives its config, ``model_cls(config)`` builds it."""

    name: str
    make_config: Callable[[str], Any]
    model_cls: type[nn.Module]
    description: str = ""


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    model_cls: type[nn.Module], name: str | None = None
) -> Callable[[Callable[[str], Any]], Callable[[str], Any]]:
    """Decorate ``fn(size) -> config`` to register it under ``name`` (default: the function's name)."""

    def deco(fn: Callable[[str], Any]) -> Callable[[str], Any]:
        key = name or fn.__name__
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} is already registered")
        doc = (fn.__doc__ or "").strip().splitlines()
        _REGISTRY[key] = ModelEntry(key, fn, model_cls, doc[0] if doc else "")
        return fn

    return deco


def list_models() -> list[str]:
    """Names of all registered variants, sorted."""
    return sorted(_REGISTRY)


def list_sizes() -> list[str]:
    return sorted(SIZES)


def get_entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise ModelConfigError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _REGISTRY[name]


def model_config(name: str, size: str = "small", **overrides: Any) -> Any:
    """The config that ``create_model(name, size, **overrides)`` would build, without building it."""
    cfg = get_entry(name).make_config(size)
    return cfg.replace(**overrides) if overrides else cfg


def create_model(name: str, size: str = "small", **overrides: Any) -> nn.Module:
    """Build variant ``name`` at ``size`` ("paper", "small", "tiny") with config ``overrides``.

    Unknown names, sizes and override keys raise ``ModelConfigError`` (a ``ValueError``) listing the
    valid ones.
    """
    entry = get_entry(name)
    return _initialised(entry.model_cls(model_config(name, size, **overrides)))


def _initialised(model: nn.Module) -> nn.Module:
    """Apply ``init="stable"`` to models that implement it outside their constructor (the baselines)."""
    stable = getattr(getattr(model, "config", None), "init", None) == "stable"
    if stable and hasattr(model, "apply_stable_init"):
        model.apply_stable_init()
    return model


def model_from_config(name: str, config: dict[str, Any]) -> nn.Module:
    """Rebuild variant ``name`` from a config dict (as stored in a checkpoint)."""
    entry = get_entry(name)
    return _initialised(entry.model_cls(entry.model_cls.config_cls.from_dict(config)))
