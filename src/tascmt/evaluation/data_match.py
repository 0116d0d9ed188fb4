"""Whether a checkpoint was trained on data prepared like the cache it is evaluated on (docs/design.md §2,
§7).

``train`` records its cache's preprocessing in every checkpoint (``model.json``'s ``extra``: normalisation,
target protocol, in-plane policy, gap, data fingerprint). A model fed inputs on another intensity scale, or
judged on targets of another kind (resampled instead of acquired) or at another in-plane geometry, gives
numbers that say nothing about it, so evaluation refuses such a pair, naming the field and both values.
A different gap is a legitimate experiment (a model trained for 2.5 mm gaps up-sampling 5 mm ones) and is
evaluated with a warning, labelled in the report. ``allow_mismatch`` (``--allow-mismatch``) downgrades the
refusals to labelled warnings as well. Checkpoints without these records (older ones, models saved by hand)
are evaluated with a warning that they could not be checked.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from typing import Any

from tascmt.errors import ConfigError

__all__ = ["LABELLED_FIELDS", "REFUSED_FIELDS", "DataMismatchWarning", "check_checkpoint_data"]

#: Fields whose difference is refused (unless ``allow_mismatch``): (``extra``/``params`` key, name).
REFUSED_FIELDS = (("norm", "normalisation"), ("protocol", "target protocol"), ("inplane", "in-plane policy"))
#: Fields whose difference is evaluated with a warning and labelled in the report.
LABELLED_FIELDS = (("gap_mm", "gap"),)
#: Other names a hand-made checkpoint may use for the normalisation (those ``Predictor`` accepts).
_NORM_ALIASES = ("norm", "normalization", "normalisation", "normalizer")


class DataMismatchWarning(UserWarning):
    """A checkpoint evaluated on a cache prepared differently from its training data (or unrecorded)."""


def _recorded(extra: dict[str, Any], key: str) -> Any:
    if key == "norm":
        return next((extra[k] for k in _NORM_ALIASES if extra.get(k) is not None), None)
    return extra.get(key)


def _comparable(key: str, value: Any) -> Any:
    """The part of a recorded value that must agree (the in-plane policy's kind: its size is checked by
    ``check_size``; dicts compared as canonical JSON)."""
    if key == "inplane" and isinstance(value, dict):
        return value.get("kind")
    if key == "gap_mm":
        try:
            return round(float(value), 6)
        except (TypeError, ValueError):
            return value
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _show(key: str, value: Any) -> str:
    value = _comparable(key, value)
    if key == "gap_mm" and isinstance(value, float) and math.isfinite(value):
        return f"{value:g} mm"
    return value if isinstance(value, str) and value.startswith("{") else repr(value)


def check_checkpoint_data(extra: dict[str, Any] | None, params: dict[str, Any], *,
                          checkpoint: str | os.PathLike, cache_dir: str | os.PathLike,
                          allow_mismatch: bool = False,
                          not_recorded_ok: tuple[str, ...] = ()) -> dict[str, Any]:
    """Compare a checkpoint's recorded preprocessing (``meta["extra"]``) with a cache's ``params``.

    Returns ``{"data_mismatch": [...], "data_unrecorded": str}`` (each only when there is something to
    say; merge it into the evaluation summary): one entry per differing field that was evaluated anyway
    ("gap: checkpoint 2.5 mm, cache 1.25 mm"), and which fields the checkpoint does not record. Each is
    also issued as a :class:`DataMismatchWarning`. ``not_recorded_ok``: keys whose absence is not reported
    (what a caller cannot know, e.g. the protocol of an in-memory ``Predictor``).

    Raises:
        ConfigError: normalisation, target protocol or in-plane policy differ (one line naming the field
            and both values) and ``allow_mismatch`` is False.
    """
    extra = dict(extra or {})
    refused, labelled, missing = [], [], []
    for key, name in (*REFUSED_FIELDS, *LABELLED_FIELDS):
        ours = _recorded(extra, key)
        theirs = params.get(key, "acquired" if key == "protocol" else None)
        if ours is None:
            if key not in not_recorded_ok:
                missing.append(name)
            continue
        if theirs is None or _comparable(key, ours) == _comparable(key, theirs):
            continue
        note = f"{name}: checkpoint {_show(key, ours)}, cache {_show(key, theirs)}"
        (refused if (key, name) in REFUSED_FIELDS else labelled).append(note)
    if refused and not allow_mismatch:
        raise ConfigError(f"checkpoint {checkpoint} was trained on data prepared differently from the cache "
                          f"{cache_dir} ({'; '.join(refused)}); its figures would not be comparable — pass "
                          "--allow-mismatch (allow_mismatch=True) to evaluate anyway, labelled as such")
    out: dict[str, Any] = {}
    notes = [f"{n} (mismatch allowed)" for n in refused] + labelled
    if notes:
        out["data_mismatch"] = notes
        warnings.warn(f"checkpoint {checkpoint} evaluated on the cache {cache_dir} prepared differently: "
                      + "; ".join(notes) + " (labelled in the report)", DataMismatchWarning, stacklevel=2)
    if missing:
        out["data_unrecorded"] = (f"the checkpoint records no {', '.join(missing)} of its training data; "
                                  "not checked against the cache")
        warnings.warn(f"checkpoint {checkpoint}: {out['data_unrecorded']}", DataMismatchWarning, stacklevel=2)
    return out
