"""Baselines of the comparison suite (issue #6): interpolation (SwinUNet, TransUNet, VTN, linear, cubic),
segmentation of three given frames (UNet++, Swin UNETR, nnU-Net-style), and cascades of the two.

Importing this package registers the models: ``swinunet_interp``, ``transunet_interp``, ``vtn_interp``,
``linear_interp`` (input pair), ``unetpp_seg``, ``swinunetr_seg``, ``nnunet_seg`` (input triplet),
``cascade`` and ``cascade_*`` (input pair, both outputs). ``model_input(model, batch)`` builds the right
input from a batch; ``cubic_middle`` is the Catmull-Rom reference on whole volumes.
"""

from __future__ import annotations

from tascmt.models.baselines import linear, nnunet, swinunet, swinunetr, transunet, unetpp, vtn
from tascmt.models.baselines.cascade import CascadeModel, build_cascade
from tascmt.models.baselines.classical import cubic_middle, cubic_midpoints, has_cubic_support
from tascmt.models.baselines.inputs import input_frames, model_input
from tascmt.models.baselines.nnunet import deep_supervision_loss, ds_weights, plan_nnunet_2d

BASELINES = (
    "swinunet_interp", "transunet_interp", "vtn_interp", "linear_interp",
    "unetpp_seg", "swinunetr_seg", "nnunet_seg",
)

__all__ = [
    "BASELINES",
    "CascadeModel",
    "build_cascade",
    "cubic_middle",
    "cubic_midpoints",
    "deep_supervision_loss",
    "ds_weights",
    "has_cubic_support",
    "input_frames",
    "linear",
    "model_input",
    "nnunet",
    "plan_nnunet_2d",
    "swinunet",
    "swinunetr",
    "transunet",
    "unetpp",
    "vtn",
]
