"""In-plane policy: how an (H, W) slice is stored in the cache and fed to the model (docs/design.md §5).

One policy is stored in the checkpoint and used by ``prepare`` and ``predict`` alike:

- ``native`` (default): slices keep their native pixels. The model sees S×S tiles (S = ``size``, the model's
  size): random tiles in training, overlapping Gaussian-blended tiles in ``predict``
  (:mod:`tascmt.data.tiles`, :mod:`tascmt.inference.tiling`). ``forward`` and ``inverse`` are identities.
- ``pad_resize`` (the paper's protocol, kept to reproduce it and labelled so in reports): pad to a square
  S = max(H, W) around the centre (images with the slice's minimum,
  i.e. its background value; masks with 0), then resize S×S → size×size (bilinear for images, antialiased
  when shrinking; nearest for masks). :meth:`InplanePolicy.inverse` resizes back to S×S and crops the
  padding, restoring the original H×W; masks stay hard labels, and when the model size is at least S the
  mask round trip is exact.
- ``none``: the slices already have the model size; anything else is an error.

Resizing uses ``torch.nn.functional.interpolate`` with half-pixel centres (``align_corners=False``,
``nearest-exact`` for masks), so forward and inverse sample the same pixel grid.
"""

from __future__ import annotations

import numpy as np

from tascmt.errors import ConfigError

KINDS = ("native", "pad_resize", "none")


class InplanePolicy:
    """Native pixels (tiles), pad-to-square + resize, or nothing; exactly invertible in shape and position.

    Args:
        kind: ``"native"``, ``"pad_resize"`` or ``"none"``.
        size: the model's in-plane size (square).
    """

    def __init__(self, kind: str = "pad_resize", size: int = 256):
        if kind not in KINDS:
            raise ConfigError(f"in-plane policy must be one of {KINDS}, got {kind!r}")
        if int(size) < 1:
            raise ConfigError(f"in-plane size must be >= 1, got {size}")
        self.kind, self.size = kind, int(size)

    # -- geometry ----------------------------------------------------------------------------------------
    @staticmethod
    def padding(hw: tuple[int, int]) -> tuple[int, tuple[int, int], tuple[int, int]]:
        """(S, (top, bottom), (left, right)) padding that centres an H×W slice in an S×S square."""
        h, w = int(hw[0]), int(hw[1])
        s = max(h, w)
        return s, ((s - h) // 2, s - h - (s - h) // 2), ((s - w) // 2, s - w - (s - w) // 2)

    def _check_none(self, hw) -> None:
        if tuple(hw) != (self.size, self.size):
            raise ConfigError(
                f"in-plane policy 'none' needs {self.size}×{self.size} slices, got {hw[0]}×{hw[1]}; "
                "use 'pad_resize'")

    # -- forward / inverse -------------------------------------------------------------------------------
    def forward(self, arr: np.ndarray, is_mask: bool = False) -> np.ndarray:
        """Slice(s) → model space.

        Args:
            arr: (H, W) or (N, H, W) (slices in the last two axes).
            is_mask: nearest interpolation and zero padding; output keeps the input's integer dtype.
        Returns:
            (size, size) or (N, size, size); float32 for images. Slices that already are size×size come back
            without a copy.
        """
        arr = np.asarray(arr)
        hw = arr.shape[-2:]
        if self.kind == "native":
            return arr if is_mask else arr.astype(np.float32, copy=False)
        if self.kind == "none":
            self._check_none(hw)
            return arr if is_mask else arr.astype(np.float32, copy=False)
        stack = arr.reshape(-1, *hw)  # (N, H, W)
        s, (top, bottom), (left, right) = self.padding(hw)
        if s == hw[0] == hw[1] and s == self.size:  # already square at the model size: nothing to do
            return arr if is_mask else arr.astype(np.float32, copy=False)
        if s == hw[0] == hw[1]:
            padded = stack if is_mask else stack.astype(np.float32, copy=False)
        elif is_mask:
            padded = np.pad(stack, ((0, 0), (top, bottom), (left, right)), constant_values=0)
        else:
            stack = stack.astype(np.float32, copy=False)
            padded = np.empty((stack.shape[0], s, s), dtype=np.float32)
            padded[:] = stack.reshape(stack.shape[0], -1).min(axis=1)[:, None, None]  # background per slice
            padded[:, top:top + hw[0], left:left + hw[1]] = stack
        out = _resize(padded, self.size, is_mask)
        return out.reshape(*arr.shape[:-2], self.size, self.size)

    def inverse(self, arr: np.ndarray, original_hw: tuple[int, int], is_mask: bool = False) -> np.ndarray:
        """Model space → the original H×W (undo resize, then crop the padding).

        Args:
            arr: (size, size) or (N, size, size).
            original_hw: (H, W) of the slice before :meth:`forward`.
        Returns:
            (H, W) or (N, H, W).
        """
        arr = np.asarray(arr)
        h, w = int(original_hw[0]), int(original_hw[1])
        if self.kind == "native":
            if arr.shape[-2:] != (h, w):
                raise ConfigError(f"native policy: expected {h}×{w} slices, got shape {arr.shape}")
            return arr
        if arr.shape[-2:] != (self.size, self.size):
            raise ConfigError(f"inverse expects {self.size}×{self.size} slices, got shape {arr.shape}")
        if self.kind == "none":
            self._check_none((h, w))
            return arr
        s, (top, _), (left, _) = self.padding((h, w))
        if s == h == w == self.size:
            return arr
        stack = arr.reshape(-1, self.size, self.size)  # (N, size, size)
        square = _resize(stack if is_mask else stack.astype(np.float32, copy=False), s, is_mask)
        out = square[:, top:top + h, left:left + w]
        return np.ascontiguousarray(out.reshape(*arr.shape[:-2], h, w))

    @property
    def tiled(self) -> bool:
        """True when the model sees S×S tiles of native slices (policy ``native``)."""
        return self.kind == "native"

    # -- serialisation -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"kind": self.kind, "size": self.size}

    @classmethod
    def from_dict(cls, d: dict) -> InplanePolicy:
        try:
            return cls(kind=d["kind"], size=d["size"])
        except (KeyError, TypeError) as err:
            raise ConfigError(f"not an in-plane policy dict: {d!r}") from err

    def __repr__(self) -> str:
        return f"InplanePolicy(kind={self.kind!r}, size={self.size})"


def _resize(stack: np.ndarray, size: int, is_mask: bool) -> np.ndarray:
    """(N, S, S) → (N, size, size): bilinear (antialiased when shrinking) or nearest, half-pixel centres."""
    if stack.shape[-1] == size and stack.shape[-2] == size:
        return stack.copy()
    if stack.shape[0] == 0:
        return np.zeros((0, size, size), dtype=stack.dtype)
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32))[:, None]  # (N, 1, S, S)
    with torch.no_grad():
        if is_mask:
            out = F.interpolate(t, size=(size, size), mode="nearest-exact")
        else:
            shrink = size < stack.shape[-1]
            out = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
    out = out[:, 0].numpy()  # (N, size, size)
    return out.astype(stack.dtype) if is_mask else out
