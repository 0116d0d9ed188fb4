"""tascmt.data: triplet planning, patient splits, normalisation, in-plane policy, the triplet cache, the torch
Dataset with paired augmentation, phantom tasks and the MNI152 default task.

``TripletDataset`` (and the augmentation) import torch; they are loaded lazily so that ``import tascmt.data``
stays light.
"""

from __future__ import annotations

from tascmt.data.cache import Manifest
from tascmt.data.foreground import FG_POLICIES, select_triplets
from tascmt.data.inplane import InplanePolicy
from tascmt.data.mni import build_mni_task
from tascmt.data.normalize import NormParams, make_normalizer, normalizer_from_dict
from tascmt.data.prepare import prepare_dataset
from tascmt.data.splits import load_or_create_splits, make_splits
from tascmt.data.synth import make_synthetic_task
from tascmt.data.triplets import (
    TripletPlan,
    plan_triplets,
    resample_slices,
    resample_source_index,
    slice_axis,
)

__all__ = [
    "FG_POLICIES",
    "InplanePolicy",
    "Manifest",
    "NormParams",
    "TripletDataset",
    "TripletPlan",
    "build_mni_task",
    "load_or_create_splits",
    "make_normalizer",
    "make_splits",
    "make_synthetic_task",
    "normalizer_from_dict",
    "plan_triplets",
    "prepare_dataset",
    "resample_slices",
    "resample_source_index",
    "select_triplets",
    "slice_axis",
]


def __getattr__(name: str):
    if name == "TripletDataset":
        from tascmt.data.dataset import TripletDataset

        return TripletDataset
    raise AttributeError(f"module 'tascmt.data' has no attribute {name!r}")
