"""Intensity normalisation strategies (nnU-Net style strategy classes; docs/design.md §2).

Normalisation never sees the target: at prediction time the middle slice does not exist. Each strategy fits
an affine scale ``(x − lo) / (hi − lo)`` on the two INPUT frames only and applies it unchanged to all three
frames.
Values are clipped to [0, 1]; for the target the clipped fraction is returned so it can be logged. A constant
input pair (``hi − lo < eps``) maps to zeros without dividing.

Strategies (``name``):

- ``ct_window``: a fixed HU window (default −1024…2048) → [0, 1]. Default for CT.
- ``minmax_pair``: min–max over the two input frames. Default for MRI.
- ``percentile_pair``: 0.5–99.5 percentiles of the two input frames.
- ``triplet``: the public code's min–max over all THREE frames. It leaks the target's intensity range into the
  inputs' scale and is only for reproducing the reference; every report must label it as leaking.

The strategy and its parameters go into the checkpoint (``to_dict``) and ``predict`` rebuilds it with
:func:`normalizer_from_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tascmt.errors import ConfigError

_MR_NAMES = {"MR", "MRI", "T1", "T1W", "T2", "T2W", "FLAIR", "T1GD", "PD"}


@dataclass(frozen=True)
class NormParams:
    """The fitted scale of one triplet: ``x01 = (x − lo) / (hi − lo)``; ``constant`` pairs map to zeros."""

    lo: float
    hi: float
    constant: bool = False


class Normalizer:
    """Base class. Subclasses implement :meth:`fit`; ``name`` identifies them in :meth:`to_dict`."""

    name = "base"
    leaks_target = False

    def __init__(self, eps: float = 1e-6):
        self.eps = float(eps)

    # -- fitting -----------------------------------------------------------------------------------------
    def fit(self, x1: np.ndarray, x3: np.ndarray, x2: np.ndarray | None = None) -> NormParams:
        """Fit the scale from the input frames X1, X3 (2-D or any shape). ``x2`` is ignored except by
        ``triplet``."""
        raise NotImplementedError

    def _params(self, lo: float, hi: float) -> NormParams:
        return NormParams(float(lo), float(hi), constant=bool(hi - lo < self.eps))

    # -- applying ----------------------------------------------------------------------------------------
    def apply(self, arr, params: NormParams):
        """Scale ``arr`` (NumPy array or torch tensor) to [0, 1] with ``params`` (clipped)."""
        return self._scale(arr, params)[0]

    def apply_target(self, arr, params: NormParams):
        """Scale the target; returns ``(scaled, clipped_fraction)`` where ``clipped_fraction`` is the fraction
        of its values that fell outside [0, 1] before clipping."""
        return self._scale(arr, params)

    def _scale(self, arr, params: NormParams):
        if params.constant:
            zeros = arr * 0.0
            return zeros, 0.0
        scaled = (arr - params.lo) / (params.hi - params.lo)
        outside = (scaled < 0) | (scaled > 1)
        frac = float(outside.sum()) / max(1, _numel(scaled))
        return scaled.clip(0.0, 1.0), frac

    def invert(self, arr01, params: NormParams):
        """Back to original units: ``lo + x·(hi − lo)`` (a constant pair gives ``lo`` everywhere)."""
        if params.constant:
            return arr01 * 0.0 + params.lo
        return arr01 * (params.hi - params.lo) + params.lo

    def normalize_triplet(self, x1, x2, x3):
        """Fit on (X1, X3) and scale all three.

        Returns ``(x1n, x2n, x3n, params, target_clipped_fraction)``.
        """
        params = self.fit(x1, x3, x2)
        x2n, frac = self.apply_target(x2, params)
        return self.apply(x1, params), x2n, self.apply(x3, params), params, frac

    # -- serialisation -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"name": self.name, "eps": self.eps, **self._extra()}

    def _extra(self) -> dict:
        return {}

    @staticmethod
    def from_dict(d: dict) -> Normalizer:
        """Same as :func:`normalizer_from_dict`."""
        return normalizer_from_dict(d)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "name")
        return f"{type(self).__name__}({args})"


def _numel(arr) -> int:
    return int(arr.numel()) if hasattr(arr, "numel") else int(np.size(arr))


def _minmax(*arrays) -> tuple[float, float]:
    return min(float(a.min()) for a in arrays), max(float(a.max()) for a in arrays)


class CTWindow(Normalizer):
    """Clip to a fixed HU window ``[lo, hi]`` (default −1024…2048) and scale to [0, 1]."""

    name = "ct_window"

    def __init__(self, lo: float = -1024.0, hi: float = 2048.0, eps: float = 1e-6):
        super().__init__(eps)
        if not hi > lo:
            raise ConfigError(f"ct_window needs hi > lo, got lo={lo}, hi={hi}")
        self.lo, self.hi = float(lo), float(hi)

    def fit(self, x1, x3, x2=None) -> NormParams:
        return self._params(self.lo, self.hi)

    def _extra(self) -> dict:
        return {"lo": self.lo, "hi": self.hi}


class MinMaxPair(Normalizer):
    """Min–max over the two input frames."""

    name = "minmax_pair"

    def fit(self, x1, x3, x2=None) -> NormParams:
        return self._params(*_minmax(x1, x3))


class PercentilePair(Normalizer):
    """Percentiles (default 0.5 and 99.5) over the two input frames together."""

    name = "percentile_pair"

    def __init__(self, lower: float = 0.5, upper: float = 99.5, eps: float = 1e-6):
        super().__init__(eps)
        if not 0 <= lower < upper <= 100:
            raise ConfigError(f"percentile_pair needs 0 <= lower < upper <= 100, got {lower}, {upper}")
        self.lower, self.upper = float(lower), float(upper)

    def fit(self, x1, x3, x2=None) -> NormParams:
        both = np.concatenate([np.asarray(x1, dtype=np.float32).ravel(),
                               np.asarray(x3, dtype=np.float32).ravel()])
        lo, hi = np.percentile(both, [self.lower, self.upper])
        return self._params(lo, hi)

    def _extra(self) -> dict:
        return {"lower": self.lower, "upper": self.upper}


class TripletMinMax(Normalizer):
    """The public code's min–max over all three frames. LEAKS the target's range into the input scale."""

    name = "triplet"
    leaks_target = True

    def fit(self, x1, x3, x2=None) -> NormParams:
        if x2 is None:
            raise ConfigError("norm 'triplet' needs the target frame (absent at prediction time)")
        return self._params(*_minmax(x1, x2, x3))


NORMALIZERS: dict[str, type[Normalizer]] = {
    cls.name: cls for cls in (CTWindow, MinMaxPair, PercentilePair, TripletMinMax)
}


def default_for_modality(modality: str) -> str:
    """``CT`` → ``ct_window``; MR names (``MR``, ``MRI``, ``T1``, ``T2``, ...) → ``minmax_pair``."""
    key = str(modality).strip().upper()
    if key == "CT":
        return "ct_window"
    if key in _MR_NAMES:
        return "minmax_pair"
    raise ConfigError(
        f"unknown modality {modality!r}: choose a normalisation explicitly (one of {sorted(NORMALIZERS)})")


def make_normalizer(modality_or_name: str, **params) -> Normalizer:
    """A strategy by name (``ct_window``, ``minmax_pair``, ``percentile_pair``, ``triplet``) or by modality
    (``CT``, ``MRI``/``MR``/...); an unknown modality raises :class:`ConfigError`."""
    name = modality_or_name if modality_or_name in NORMALIZERS else default_for_modality(modality_or_name)
    try:
        return NORMALIZERS[name](**params)
    except TypeError as err:
        raise ConfigError(f"bad parameters {params} for normalisation {name!r}: {err}") from err


def normalizer_from_dict(d: dict) -> Normalizer:
    """Rebuild a strategy from :meth:`Normalizer.to_dict` (e.g. out of a checkpoint)."""
    d = dict(d)
    name = d.pop("name", None)
    if name not in NORMALIZERS:
        raise ConfigError(f"unknown normalisation {name!r}; known: {sorted(NORMALIZERS)}")
    return make_normalizer(name, **d)

