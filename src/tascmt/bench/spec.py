"""What a benchmark entry names, and how to build it (also in a fresh subprocess, for peak memory).

An entry is a registered model name (``tasc_swinmt``, or a registered cascade such as
``cascade_swinunet_nnunet``) or a cascade ``"interp_model+seg_model"`` (e.g.
``swinunet_interp+nnunet_seg``): both parts are built by the builder at the entry's size and chained by
``tascmt.models.baselines.CascadeModel`` (pair in; the segmenter sees [X1, X̂2, X3]). Everything
downstream takes any module; the input has ``model.in_frames`` channels (2 unless the model says otherwise).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tascmt.errors import ConfigError

if TYPE_CHECKING:
    import torch.nn as nn

# "module:function" with the signature of tascmt.models.create_model(name, size=..., **overrides).
DEFAULT_BUILDER = "tascmt.models:create_model"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A buildable benchmark entry: ``builder(name, size=size, **overrides)``; JSON-serialisable."""

    name: str
    size: str = "small"
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    builder: str = DEFAULT_BUILDER

    @property
    def parts(self) -> tuple[str, str] | None:
        """``(interp_model, seg_model)`` of an ``"a+b"`` cascade entry, else None."""
        if "+" not in self.name:
            return None
        a, _, b = self.name.partition("+")
        return a, b

    def build(self) -> nn.Module:
        """Build the model (CPU, eval mode). Unknown names and bad sizes raise :class:`ConfigError`."""
        create = resolve_builder(self.builder)
        try:
            if self.parts is None:
                model = create(self.name, size=self.size, **self.overrides)
            else:
                from tascmt.models.baselines import CascadeModel

                interp, seg = (create(n, size=self.size, **self.overrides) for n in self.parts)
                model = CascadeModel(interp, seg)
        except (ValueError, KeyError) as err:
            kind = "cascade " if self.parts else ""
            raise ConfigError(f"--model {kind}{self.name!r} (size {self.size!r}): {err}") from err
        return model.eval()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        return cls(**d)


def resolve_builder(builder: str) -> Callable[..., nn.Module]:
    """Import ``"package.module:function"``; a missing one raises :class:`ConfigError` naming it."""
    module_name, _, func_name = builder.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, func_name)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"model builder {builder!r} is not available: {err}") from err


def parse_entry(entry: str, size: str, overrides: dict[str, Any] | None = None,
                builder: str | None = None) -> ModelSpec:
    """Turn one ``--model`` value into a :class:`ModelSpec`: a model name, or ``"interp+seg"`` for the
    cascade of an interpolation model and a segmenter of the three frames (module docstring)."""
    entry = entry.strip()
    if not entry:
        raise ConfigError("--model: empty model name")
    if "+" in entry:
        parts = [p.strip() for p in entry.split("+")]
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"--model {entry!r}: a cascade is 'interp_model+seg_model' (two names joined "
                              "by one '+')")
        entry = "+".join(parts)
    spec = ModelSpec(entry, size, dict(overrides or {}), builder or DEFAULT_BUILDER)
    _check_known(spec)
    return spec


def _check_known(spec: ModelSpec) -> None:
    """Fail fast on an unknown name when the builder's module has ``list_models()``."""
    module = importlib.import_module(resolve_builder(spec.builder).__module__)
    known = getattr(module, "list_models", None)
    if not callable(known):
        return
    for name in spec.parts or (spec.name,):
        if name not in known():
            where = f"cascade {spec.name!r}: part {name!r}" if spec.parts else repr(name)
            raise ConfigError(f"--model {where}: unknown model; known models: {', '.join(known())}")


def input_channels(model: nn.Module) -> int:
    """Channels of the model's input: ``model.in_frames`` (3 for the triplet segmenters), else 2."""
    return int(getattr(model, "in_frames", 2))


def cascade_parts(model: nn.Module) -> tuple[str, str] | None:
    """``(interp_model, seg_model)`` names of a cascade module (registered or built from ``"a+b"``)."""
    cfg = getattr(model, "config", None)
    if hasattr(model, "interp_model") and hasattr(model, "seg_model") and cfg is not None:
        return str(getattr(cfg, "interp_model", "?")), str(getattr(cfg, "seg_model", "?"))
    return None


def model_config(model: nn.Module) -> dict[str, Any] | None:
    """``dataclasses.asdict(model.config)`` when the model carries a config dataclass, else None."""
    cfg = getattr(model, "config", None)
    if cfg is not None and dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return dataclasses.asdict(cfg)
    return None


def native_hw(model: nn.Module) -> tuple[int, int] | None:
    """The model's native input size ``(H, W)`` from ``model.config.img_size`` (int or pair), else None."""
    size = getattr(getattr(model, "config", None), "img_size", None)
    if size is None:
        return None
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)
