"""tascmt.inference: thick-slice volume in → thin-slice volume and masks out.

- :func:`predict_volume`: arrays / :class:`tascmt.io.Volume` → :class:`PredictionResult`.
- :func:`predict_files`: files and folders → ``<case>_image/_mask/_prob.nii.gz`` (``tascmt predict``).
- :class:`Predictor`: a model with its checkpoint's normalisation, in-plane policy and gap.
"""

from __future__ import annotations

from tascmt.inference.factors import n_output_slices, resolve_factor
from tascmt.inference.files import predict_files
from tascmt.inference.predict import PredictionResult, SpacingWarning, predict_volume
from tascmt.inference.predictor import Predictor

__all__ = [
    "PredictionResult",
    "Predictor",
    "SpacingWarning",
    "n_output_slices",
    "predict_files",
    "predict_volume",
    "resolve_factor",
]
