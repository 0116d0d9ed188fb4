"""The on-disk triplet cache written by :func:`tascmt.data.prepare.prepare_dataset` and its manifest.

Layout of a cache folder::

    manifest.json        parameters, parameter hash, data fingerprint, per-case info, one record per triplet
    splits.json          patient-level train/val/test split and cross-validation folds
    config.json, provenance.json
    cases/<case_id>_img.npy   (Z, size, size) float32 raw intensities (original units, e.g. HU)
    cases/<case_id>_seg.npy   (Z, size, size) uint8 foreground mask in {0, 1}
    cases/<case_id>_flow.npy  (T, size, size) flow midpoint of each of the case's T triplets (``flow_base``)

Slices are in model space (in-plane policy applied). Intensities are stored raw because normalisation depends
on each triplet's input pair and is done at load time.
A triplet record is ``{"index", "case_id", "k0", "k1", "k2", "gap_mm", "resampled", "fg": [f1, f2, f3],
"split"}`` where ``k*`` index the stored slices of the case.

Two hashes identify a cache. ``param_hash`` (parameters, input file names, sizes and modification times,
absolute paths, the split) only tells ``prepare`` whether its existing output can be returned as is. The
*data fingerprint* (:func:`data_fingerprint`, ``"fingerprint"`` in ``manifest.json``) identifies what the
cache holds, wherever it was built: the bytes of every cached array (images, masks, flow midpoints), the
preprocessing parameters (:data:`FINGERPRINT_PARAMS`), the per-case geometry and triplet records (without
file paths) and the split (``splits.json``). The same data prepared from a copy of the task in another
folder has the same fingerprint; checkpoints and experiment results record it, so that a resume, an
evaluation or a reused result can tell whether it is about the same data (docs/design.md §2). A cache
written before fingerprints existed gets its fingerprint computed when first asked for
(:meth:`Manifest.fingerprint`); the cache is not rewritten.
"""

from __future__ import annotations

import hashlib
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


#: The ``params`` entries that define what a cache holds (its data fingerprint covers them; the task's path
#: and name, the split seed and the number of folds are not among them: the split itself is hashed).
FINGERPRINT_PARAMS = ("modality", "norm", "inplane", "size", "gap_mm", "tol_mm", "protocol", "label_values",
                      "slice_axis", "flow", "fg_policy_train", "fg_policy_eval", "bg_fraction", "bg_seed")
#: Version of the fingerprint's recipe (part of what is hashed: a new recipe never matches an old value).
FINGERPRINT_VERSION = 1
#: Per-case info entries left out of the fingerprint: where the case's files were read from.
_CASE_PATH_KEYS = ("image", "label")
_CHUNK_BYTES = 16 * 2**20


def flow_file(case_id: str) -> str:
    """Relative path of a case's flow midpoints (one per triplet; caches prepared with ``flow_base``)."""
    return f"{CASES_DIR}/{case_id}_flow.npy"


def case_files(case_id: str) -> tuple[str, str]:
    """Relative paths of a case's image and mask arrays inside the cache."""
    return f"{CASES_DIR}/{case_id}_img.npy", f"{CASES_DIR}/{case_id}_seg.npy"


def _plain(o):
    """JSON form of numpy scalars and arrays as ``manifest.json`` stores them (so that a fingerprint computed
    from a fresh manifest equals the one computed from its file)."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _hash_array(h, path: Path, chunk_bytes: int = _CHUNK_BYTES) -> None:
    """Feed one ``.npy`` array into ``h``: its dtype, shape and raw bytes, read in chunks through a memory
    map (the ``.npy`` header's own layout, which differs between numpy versions, is not hashed)."""
    arr = np.load(path, mmap_mode="r")
    h.update(json.dumps([arr.dtype.str, list(arr.shape)]).encode())
    flat = arr.reshape(-1) if arr.flags.c_contiguous else np.ascontiguousarray(arr).reshape(-1)
    step = max(1, chunk_bytes // max(arr.itemsize, 1))
    for a in range(0, flat.size, step):
        h.update(np.ascontiguousarray(flat[a:a + step]).tobytes())


def data_fingerprint(root: str | Path, params: dict, cases: dict[str, dict], triplets: list[dict],
                     splits: dict) -> str:
    """The content fingerprint of a cache folder (module docstring): 16 hexadecimal digits of a SHA-256
    over the preprocessing parameters, the split, the case and triplet records without file paths, and the
    bytes of every cached array, case by case in sorted order."""
    root = Path(root)
    h = hashlib.sha256()
    header = {
        "version": FINGERPRINT_VERSION,
        "params": {k: params.get(k) for k in FINGERPRINT_PARAMS},
        "splits": splits,
        "cases": {cid: {k: v for k, v in info.items() if k not in _CASE_PATH_KEYS}
                  for cid, info in cases.items()},
        "triplets": triplets,
    }
    h.update(json.dumps(header, sort_keys=True, default=_plain).encode())
    for cid in sorted(cases):
        for rel in (*case_files(cid), flow_file(cid)):
            path = root / rel
            if path.is_file():
                h.update(f"\0{rel}\0".encode())
                _hash_array(h, path)
    return h.hexdigest()[:16]


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
    #: the data fingerprint recorded by ``prepare`` (None for a cache written before fingerprints existed;
    #: :meth:`fingerprint` then computes it)
    stored_fingerprint: str | None = None

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
                       triplets=d["triplets"], splits=splits, stored_fingerprint=d.get("fingerprint"))
        except (OSError, ValueError, KeyError) as err:
            raise InputError(f"unreadable cache manifest ({err}); prepare the cache again",
                             path=path) from err

    def to_json(self) -> dict:
        out = {"version": FORMAT_VERSION, "param_hash": self.param_hash, "params": self.params,
               "cases": self.cases, "triplets": self.triplets}
        if self.stored_fingerprint is not None:
            out["fingerprint"] = self.stored_fingerprint
        return out

    def fingerprint(self) -> str:
        """The cache's data fingerprint (:func:`data_fingerprint`): the one ``prepare`` recorded, else
        computed now from the cache's arrays (once per instance; the cache on disk is left unchanged)."""
        if self.stored_fingerprint is None:
            self.stored_fingerprint = data_fingerprint(self.root, self.params, self.cases, self.triplets,
                                                       self.splits)
        return self.stored_fingerprint

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
