"""Qualitative figures of an evaluation: which triplets to show and the PNGs written for them
(interpolation rows, segmentation overlays, interpretability maps), through ``tascmt.evaluation.figures``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["N_FIGURE_SAMPLES", "figure_positions", "write_eval_figures"]

N_FIGURE_SAMPLES = 3


def figure_positions(records: list[dict[str, Any]], n: int = N_FIGURE_SAMPLES) -> list[int]:
    """Dataset positions for qualitative figures: spread over the triplets with a foreground middle slice."""
    fg = [i for i, r in enumerate(records) if r["fg"][1]] or list(range(len(records)))
    if not fg:
        return []
    picks = np.linspace(0, len(fg) - 1, num=min(n, len(fg))).round().astype(int)
    return sorted({fg[p] for p in picks})


def write_eval_figures(model, samples: list[dict[str, Any]], fig_dir: Path, device: str) -> list[str]:
    """Qualitative figures for a few triplets; returns the written file names. ``model`` (or None) gives
    the interpretability maps of the first sample when it has ``forward_intermediates``."""
    import torch

    from tascmt.evaluation import figures as F

    fig_dir.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    titles = [f"{s['meta']['case_id']} #{s['meta']['index']}" for s in samples]
    if samples[0]["pred"] is not None:
        rows = [{"x1": s["x"][0], "gt": s["gt"], "pred": np.clip(s["pred"], 0, 1), "x3": s["x"][1]}
                for s in samples]
        written.append(F.plot_interpolation_rows(rows, fig_dir / "interpolation.png", titles=titles).name)
    if samples[0]["seg"] is not None:
        written.append(F.plot_segmentation_overlay(
            [s["gt"] for s in samples], [s["seg"][1] for s in samples], [s["seg_gt"][1] for s in samples],
            fig_dir / "segmentation_y2.png", titles=[f"{t} (Y2)" for t in titles],
        ).name)
    if model is not None and hasattr(model, "forward_intermediates"):
        from tascmt.models.baselines.inputs import model_input

        s = samples[0]
        batch = {"x": torch.from_numpy(s["x"][None]),  # (1, 2, H, W)
                 "y_interp": torch.from_numpy(np.asarray(s["gt"], dtype=np.float32)[None, None])}
        if s.get("flow_mid") is not None:  # models correcting the flow midpoint take it as a third channel
            batch["flow_mid"] = torch.from_numpy(np.asarray(s["flow_mid"], dtype=np.float32)[None])
        x = model_input(model, batch, device)  # (1, 2 or 3, H, W)
        size = getattr(getattr(model, "config", None), "img_size", None)
        image = s["gt"]
        if isinstance(size, int) and tuple(x.shape[-2:]) != (size, size):  # native slices: the centre tile
            from tascmt.data.tiles import pad_planes

            xp = torch.from_numpy(pad_planes(x.cpu().numpy(), size))
            gp = pad_planes(np.asarray(image, dtype=np.float32), size)
            r0, c0 = (xp.shape[-2] - size) // 2, (xp.shape[-1] - size) // 2
            x = xp[..., r0:r0 + size, c0:c0 + size].to(device)
            image = gp[r0:r0 + size, c0:c0 + size]
        with torch.no_grad():
            _, maps = model.forward_intermediates(x)
        maps2d = F.select_interpretability_maps({k: v.detach().float().cpu().numpy() for k, v in maps.items()
                                                 if torch.is_tensor(v)})
        if maps2d:
            written.append(F.plot_interpretability(maps2d, fig_dir / "interpretability.png",
                                                   image=image).name)
    return written
