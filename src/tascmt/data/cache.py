"""The on-disk triplet cache written by :func:`tascmt.data.prepare.prepare_dataset` and its manifest.

Layout of a cache folder::

    manifest.json        parameters, parameter hash, per-case info, one record per triplet
    splits.json          patient-level train/val/test split and cross-validation folds
    config.json, provenance.json
    cases/<case_id>_img.npy   (Z, size, size) float32 raw intensities (original units, e.g. HU)
    cases/<case_id>_seg.npy   (Z, size, size) uint8 foreground mask in {0, 1}
    cases/<case_id>_flow.npy  (T, size, size) flow midpoint of each of the case's T triplets (``flow_base``)

Slices are in model space (in-plane policy applied). Intensities are stored raw because normalisation depends
on each triplet's input pair and is done at load time.
A triplet record is ``{"index", "case_id", "k0", "k1", "k2", "gap_mm", "resampled", "fg": [f1, f2, f3],
"split"}`` where ``k*`` index the stored slices of the case.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tascmt.data.foreground import check_policy, select_triplets
from tascmt.data.splits import SPLITS, split_of
from tascmt.errors import ConfigError, InputError

MANIFEST_FILE = "manifest.json"
CASES_DIR = "cases"
FORMAT_VERSION = 1


def flow_file(case_id: str) -> str:
    """Relative path of a case's flow midpoints (one per triplet; caches prepared with ``flow_base``)."""
    return f"{CASES_DIR}/{case_id}_flow.npy"


def case_files(case_id: str) -> tuple[str, str]:
    """Relative paths of a case's image and mask arrays inside the cache."""
    return f"{CASES_DIR}/{case_id}_img.npy", f"{CASES_DIR}/{case_id}_seg.npy"


@dataclass
class Manifest:
    """What a cache holds. ``params`` are the resolved prepare parameters (incl. ``norm`` and ``inplane``
    dicts and the default foreground policies); ``cases`` maps case id → info (split, shape, spacing, slice
    axis, step, actual gap, number of triplets, or the reason it was excluded)."""

    root: Path
    params: dict
    param_hash: str
    cases: dict[str, dict]
    triplets: list[dict]
    splits: dict = field(default_factory=dict)

    # -- reading -----------------------------------------------------------------------------------------
    @classmethod
    def load(cls, cache_dir: str | Path) -> Manifest:
        root = Path(cache_dir)
        path = root / MANIFEST_FILE
        if not path.exists():
            raise InputError("not a tascmt triplet cache (no manifest.json); run `tascmt prepare` first",
                             path=root)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            splits = json.loads((root / "splits.json").read_text(encoding="utf-8"))
            return cls(root=root, params=d["params"], param_hash=d["param_hash"], cases=d["cases"],
                       triplets=d["triplets"], splits=splits)
        except (OSError, ValueError, KeyError) as err:
            raise InputError(f"unreadable cache manifest ({err}); prepare the cache again",
                             path=path) from err

    def to_json(self) -> dict:
        return {"version": FORMAT_VERSION, "param_hash": self.param_hash, "params": self.params,
                "cases": self.cases, "triplets": self.triplets}

    def is_complete(self) -> bool:
        """Every array a triplet needs exists."""
        ids = {t["case_id"] for t in self.triplets}
        return all((self.root / f).exists() for cid in ids for f in case_files(cid))

    # -- selecting ---------------------------------------------------------------------------------------
    def default_policy(self, split: str) -> str:
        return self.params["fg_policy_train"] if split == "train" else self.params["fg_policy_eval"]

    def select(self, split: str, fg_policy: str | None = None, fold: int | None = None) -> list[dict]:
        """Triplet records of one split (patients of fold ``fold`` when given) kept by the policy
        (default: the manifest's train/eval policy)."""
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
        policy = check_policy(fg_policy or self.default_policy(split))
        if fold is None:
            recs = [t for t in self.triplets if t["split"] == split]
        else:
            members = split_of(self.splits, fold)
            recs = [t for t in self.triplets if members.get(t["case_id"]) == split]
        if not recs:
            return []
        fg = np.array([t["fg"] for t in recs], dtype=bool)  # (N, 3)
        keep = select_triplets(fg, policy, self.params.get("bg_fraction", 0.25),
                               self.params.get("bg_seed", 0))
        return [recs[i] for i in keep]

    def counts(self) -> dict[str, dict[str, int]]:
        """Per split: all triplets, and those kept by the split's default policy."""
        out = {}
        for split in SPLITS:
            n_all = sum(t["split"] == split for t in self.triplets)
            out[split] = {"all": n_all, "selected": len(self.select(split))}
        return out

    def summary(self) -> str:
        """Human-readable triplets per split (printed by ``tascmt prepare``)."""
        lines = []
        for split, c in self.counts().items():
            n_cases = sum(1 for info in self.cases.values() if info.get("split") == split)
            policy = self.default_policy(split)
            lines.append(f"  {split:<5} {n_cases:4d} cases  {c['all']:6d} triplets  "
                         f"{c['selected']:6d} with policy {policy}")
        per_case = [f"{cid} {info.get('n_triplets', 0)}" for cid, info in sorted(self.cases.items())]
        lines.append(textwrap.fill("  triplets per case: " + ", ".join(per_case), width=110,
                                   subsequent_indent="    "))
        excluded = {cid: info["excluded"] for cid, info in self.cases.items() if info.get("excluded")}
        if excluded:
            lines.append(f"  excluded {len(excluded)} case(s): "
                         + "; ".join(f"{c} ({r})" for c, r in sorted(excluded.items())[:5])
                         + (" ..." if len(excluded) > 5 else ""))
        return "\n".join(lines)
