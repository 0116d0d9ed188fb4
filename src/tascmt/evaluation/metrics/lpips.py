"""LPIPS (Zhang et al. 2018, v0.1, VGG backbone) in plain torch, without torchvision (docs/design.md §7).

Pipeline for grey images in [0, 1]: scale to [−1, 1], replicate to 3 channels, the LPIPS scaling layer
``(x − shift) / scale``, VGG16 ``features``; at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (module
indices 3, 8, 15, 22, 29) unit-normalise each feature vector over channels, take the squared difference,
then

* ``variant="v0.1"``: apply the learned 1×1 linear head of that layer, average over space, **sum** over
  the 5 layers (the released metric);
* ``variant="paper"``: no learned weights — sum over channels, average over space, **mean** over layers
  (the formula as printed in the TASC paper, which omits the weights).

Weights are never downloaded and never invented:

* VGG16: a torchvision-format state dict (keys ``features.N.weight/bias``, extra keys such as
  ``classifier.*`` ignored) from a given path, or else the torch hub cache
  ``torch.hub.get_dir()/checkpoints/vgg16-*.pth`` when present;
* linear heads (v0.1 only): the LPIPS release file (keys ``lin{k}.model.1.weight``, shape (1, C, 1, 1)).

Files are read with ``torch.load(weights_only=True)`` or, for ``*.safetensors``, with safetensors.
Without the files, :func:`load_lpips` returns None and :func:`lpips_value` returns None ("unavailable").
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tascmt.errors import CheckpointError, ConfigError

# torchvision's VGG16 "D" configuration; "M" = 2×2 max-pool. Module indices follow from it.
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
TAP_INDICES = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
TAP_CHANNELS = (64, 128, 256, 512, 512)
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
VARIANTS = ("v0.1", "paper")
EPS = 1e-10


def build_vgg16_features() -> nn.Sequential:
    """VGG16 ``features`` with torchvision's module indices (conv at 0, 2, 5, 7, 10, …, 28)."""
    layers: list[nn.Module] = []
    in_ch = 3
    for v in VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_ch, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            in_ch = int(v)
    return nn.Sequential(*layers)


class Vgg16Features(nn.Module):
    """Holds ``features`` so a torchvision VGG16 state dict's ``features.*`` keys load unchanged."""

    def __init__(self):
        super().__init__()
        self.features = build_vgg16_features()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: (B, 3, H, W) → 5 maps (B, C_k, H/2^k, W/2^k) at relu1_2 … relu5_3."""
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAP_INDICES:
                taps.append(x)
                if i == TAP_INDICES[-1]:
                    break
        return taps


class LinearHead(nn.Module):
    """LPIPS's ``NetLinLayer``: dropout + 1×1 conv to one channel, no bias (keys ``model.1.weight``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(p=0.0), nn.Conv2d(channels, 1, kernel_size=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Lpips(nn.Module):
    """LPIPS distance between grey images; see the module docstring.

    Args:
        variant: "v0.1" (learned linear heads, sum over layers) or "paper" (no weights, mean over layers).
    Build with :meth:`from_paths` (or :func:`load_lpips`) so the weights are real; a bare ``Lpips()`` has
    random weights (tests only).
    """

    def __init__(self, variant: str = "v0.1"):
        super().__init__()
        if variant not in VARIANTS:
            raise ConfigError(f"LPIPS variant must be one of {VARIANTS}, got {variant!r}")
        self.variant = variant
        self.net = Vgg16Features()
        for k, c in enumerate(TAP_CHANNELS):
            self.add_module(f"lin{k}", LinearHead(c))
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_paths(cls, vgg_path: str | Path | None = None, lin_path: str | Path | None = None,
                   variant: str = "v0.1") -> Lpips:
        """Load VGG16 weights (``vgg_path`` or the torch hub cache) and, for v0.1, the linear heads.

        Raises:
            CheckpointError: a weight file is missing, unreadable or lacks a tensor / has a wrong shape.
        """
        model = cls(variant)
        vgg_file = find_vgg_weights(vgg_path)
        if vgg_file is None:
            raise CheckpointError(f"LPIPS: no VGG16 weights at {vgg_path!r} or in "
                                  f"{hub_checkpoint_dir()}/vgg16-*.pth")
        model.load_vgg(read_state_dict(vgg_file), source=vgg_file)
        if variant == "v0.1":
            if lin_path is None or not Path(lin_path).is_file():
                raise CheckpointError(f"LPIPS v0.1: linear-head weights not found at {lin_path!r}")
            model.load_lin(read_state_dict(lin_path), source=lin_path)
        return model

    def load_vgg(self, state: Mapping[str, torch.Tensor], source: str | Path = "<state dict>") -> None:
        """Copy ``features.N.weight/bias`` (torchvision format) into the backbone; others are ignored."""
        own = self.net.state_dict()
        _copy_checked(own, {k: v for k, v in state.items() if k.startswith("features.")}, source)
        self.net.load_state_dict(own)

    def load_lin(self, state: Mapping[str, torch.Tensor], source: str | Path = "<state dict>") -> None:
        """Copy ``lin{k}.model.1.weight`` (LPIPS release format) into the five heads."""
        own = {k: v for k, v in self.state_dict().items() if k.startswith("lin")}
        _copy_checked(own, {k: v for k, v in state.items() if k.startswith("lin")}, source)
        self.load_state_dict(own, strict=False)

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """x0, x1: (B, 1, H, W) grey (or (B, 3, H, W)) in [0, 1] → (B,) distances."""
        if x0.shape != x1.shape or x0.ndim != 4 or x0.shape[1] not in (1, 3):
            raise ValueError(f"Lpips: expects two equal (B, 1|3, H, W) tensors, got {tuple(x0.shape)} and "
                             f"{tuple(x1.shape)}")
        f0 = self.net(self._prepare(x0))
        f1 = self.net(self._prepare(x1))
        per_layer = []
        for k, (a, b) in enumerate(zip(f0, f1)):
            diff = (_unit_normalise(a) - _unit_normalise(b)) ** 2  # (B, C_k, h, w)
            if self.variant == "v0.1":
                d = getattr(self, f"lin{k}")(diff)  # (B, 1, h, w)
            else:
                d = diff.sum(dim=1, keepdim=True)  # (B, 1, h, w)
            per_layer.append(d.mean(dim=(1, 2, 3)))  # (B,)
        stacked = torch.stack(per_layer)  # (5, B)
        return stacked.sum(0) if self.variant == "v0.1" else stacked.mean(0)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.shift.dtype) * 2.0 - 1.0  # [0, 1] → [−1, 1]
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # (B, 3, H, W)
        return (x - self.shift) / self.scale


def _unit_normalise(x: torch.Tensor) -> torch.Tensor:
    """Divide each spatial position's channel vector by its L2 norm (LPIPS ``normalize_tensor``)."""
    return x / (torch.sqrt((x**2).sum(dim=1, keepdim=True)) + EPS)


def _copy_checked(own: dict[str, torch.Tensor], given: Mapping[str, torch.Tensor], source) -> None:
    for key, ref in own.items():
        if key not in given:
            raise CheckpointError(f"{source}: missing tensor {key!r} (found {len(given)} matching keys)")
        value = given[key]
        if tuple(value.shape) != tuple(ref.shape):
            raise CheckpointError(f"{source}: tensor {key!r} has shape {tuple(value.shape)}, "
                                  f"expected {tuple(ref.shape)}")
        own[key] = value.detach().to(ref.dtype)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weights file: ``*.safetensors`` via safetensors, else ``torch.load(weights_only=True)``."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unreadable / pickled objects refused by weights_only
        raise CheckpointError(f"{path}: cannot read weights ({type(err).__name__}: {err})") from err
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    return dict(state)


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_vgg_weights(vgg_path: str | Path | None = None) -> Path | None:
    """The VGG16 weights file: ``vgg_path`` if given (None when it does not exist), else the newest
    ``vgg16-*.pth`` in the torch hub cache, else None."""
    if vgg_path is not None:
        p = Path(vgg_path)
        return p if p.is_file() else None
    found = sorted(hub_checkpoint_dir().glob("vgg16-*.pth"), key=lambda q: q.stat().st_mtime)
    return found[-1] if found else None


def lpips_available(vgg_path: str | Path | None = None, lin_path: str | Path | None = None,
                    variant: str = "v0.1") -> bool:
    """True when the weight files the variant needs exist (their contents are checked at load time)."""
    if find_vgg_weights(vgg_path) is None:
        return False
    return variant == "paper" or (lin_path is not None and Path(lin_path).is_file())


def load_lpips(vgg_path: str | Path | None = None, lin_path: str | Path | None = None,
               variant: str = "v0.1", device: str | torch.device = "cpu") -> Lpips | None:
    """:meth:`Lpips.from_paths` on ``device``, or None when the weight files are absent (LPIPS is then
    reported as unavailable). A file that exists but is broken still raises CheckpointError."""
    if not lpips_available(vgg_path, lin_path, variant):
        return None
    return Lpips.from_paths(vgg_path, lin_path, variant).to(device)


@torch.no_grad()
def lpips_value(model: Lpips | None, pred, gt) -> float | None:
    """LPIPS of one pair of 2-D grey arrays in [0, 1] (both clipped to [0, 1]); None when ``model`` is
    None (weights unavailable) — never a made-up number."""
    if model is None:
        return None
    p = np.clip(np.asarray(pred, dtype=np.float32), 0.0, 1.0)
    g = np.clip(np.asarray(gt, dtype=np.float32), 0.0, 1.0)
    if p.ndim != 2 or p.shape != g.shape:
        raise ValueError(f"lpips_value: expects two equal 2-D images, got {p.shape} and {g.shape}")
    device = model.shift.device
    tp = torch.from_numpy(p)[None, None].to(device)  # (1, 1, H, W)
    tg = torch.from_numpy(g)[None, None].to(device)  # (1, 1, H, W)
    return float(model(tp, tg)[0])
