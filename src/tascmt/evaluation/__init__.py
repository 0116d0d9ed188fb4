"""tascmt.evaluation: metrics, per-split and per-volume evaluation, statistics, tables and figures.

- ``metrics``: pure per-image metrics (PSNR, SSIM, EdgeSSIM, LPIPS, Dice/IoU/Precision/Recall, TCS).
- ``stats``: mean ± std over seeds, Welch's t-test and significance markers.
- ``evaluate.evaluate_checkpoint``: a checkpoint on a prepared split (CSV, JSON, Markdown, figures),
  always with the linear-interpolation baseline; ``volume_eval.evaluate_volumes``: whole volumes through
  ``predict_volume``.
- ``folders.evaluate_folders``: predicted NIfTI masks against ground truth (Dice, IoU, HD95, surface Dice).
- ``figures``: loss curves, convergence, weight trajectories, qualitative rows, overlays, interpretability.

Submodules are imported on use (``evaluate`` and ``volume_eval`` import torch).
"""
