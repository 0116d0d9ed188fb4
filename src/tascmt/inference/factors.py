"""Up-sampling factors: ×2 per model pass, powers of two by recursion, or chosen from a target spacing."""

from __future__ import annotations

import math

from tascmt.errors import ConfigError

MAX_FACTOR = 64


def _check_power_of_two(factor: int) -> int:
    if isinstance(factor, bool) or not isinstance(factor, int | float) or int(factor) != factor:
        raise ConfigError(f"factor must be a power of two ≥ 2 (2, 4, 8, ...), got {factor!r}")
    factor = int(factor)
    if factor < 2 or factor & (factor - 1) or factor > MAX_FACTOR:
        raise ConfigError(f"factor must be a power of two from 2 to {MAX_FACTOR}, got {factor}")
    return factor


def resolve_factor(factor: int | None, target_spacing: float | None, slice_spacing: float | None) -> int:
    """The up-sampling factor along the slice axis.

    Args:
        factor: a power of two ≥ 2, or None.
        target_spacing: desired slice spacing in mm, or None. The factor is then the smallest power of two
            f ≥ 2 with ``slice_spacing / f ≤ target_spacing`` (prediction always synthesises at least one
            slice per gap, so a target at or above the input spacing still gives ×2).
        slice_spacing: the input's slice spacing in mm (needed only with ``target_spacing``).

    Returns:
        The factor (2 when both ``factor`` and ``target_spacing`` are None).

    >>> resolve_factor(None, 1.0, 5.0)
    8
    >>> resolve_factor(None, 2.5, 5.0)
    2
    """
    if factor is not None and target_spacing is not None:
        raise ConfigError(f"give either factor ({factor}) or target_spacing ({target_spacing}), not both")
    if target_spacing is None:
        return 2 if factor is None else _check_power_of_two(factor)
    if not (isinstance(target_spacing, int | float) and math.isfinite(target_spacing) and target_spacing > 0):
        raise ConfigError(f"target_spacing must be a positive number of mm, got {target_spacing!r}")
    if slice_spacing is None or not slice_spacing > 0:
        raise ConfigError(
            f"target_spacing ({target_spacing} mm) needs the input's slice spacing, got {slice_spacing}"
        )
    f = 2
    while slice_spacing / f > target_spacing * (1 + 1e-6):
        f *= 2
        if f > MAX_FACTOR:
            raise ConfigError(
                f"target_spacing {target_spacing} mm would need a factor above {MAX_FACTOR} "
                f"for slice spacing {slice_spacing:g} mm"
            )
    return f


def n_output_slices(n_slices: int, factor: int) -> int:
    """Slices after up-sampling ``n_slices`` by ``factor``: f·(n−1)+1 (both end slices kept)."""
    return factor * (n_slices - 1) + 1
