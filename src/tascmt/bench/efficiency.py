"""The paper's efficiency tables (Tables 24-25; docs/design.md §9) from `tascmt.bench.runner.run_benchmark`
results.

Table 24's columns are latency (ms), FPS and parameters (M); Table 25's are memory, FLOPs (G) and model
size. Rows are the measured entries (single models and cascades, named as in the comparison tables), plus
the ratio of each entry's latency to TASC-SwinMT's when it was measured in the same run. The published
state-of-the-art models of the paper's tables are not reimplemented: they get one labelled placeholder row,
because this project's sources give no figures for them and nothing is quoted that was not in them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_MIB = 1024 * 1024

#: Display names of registered models in the comparison tables ("nnU-Net-style": MONAI DynUNet planned
#: with nnU-Net's 2-D rules, not the nnunetv2 package).
DISPLAY = {
    "tasc_swinmt": "TASC-SwinMT (full)",
    "swinunet_interp": "SwinUNet-Interp",
    "transunet_interp": "TransUNet-Interp",
    "vtn_interp": "VTN-Interp",
    "linear_interp": "linear (X1+X3)/2",
    "nnunet_seg": "nnU-Net-style",
    "unetpp_seg": "UNet++",
    "swinunetr_seg": "Swin UNETR",
}
FULL_MODEL = "tasc_swinmt"
QUOTED_PLACEHOLDER = (
    "published state of the art (ACVTT, I3Net, Video Interp Net, SFCLI-Net; SegMamba-V2, HiDiff, "
    "Anatomy-Aware Seg, SicTTA)"
)
QUOTED_NOTE = (
    "quoted from the paper, not measured: these models are not reimplemented, and the figures used "
    "here do not include theirs, so none are quoted"
)


def display_name(result: dict[str, Any]) -> str:
    """Row name of a benchmark result: the comparison-table name, ``interp + seg (cascade)`` for cascades."""
    casc = result.get("cascade")
    if casc:
        return (f"{DISPLAY.get(casc['interp_model'], casc['interp_model'])} + "
                f"{DISPLAY.get(casc['seg_model'], casc['seg_model'])} (cascade)")
    return DISPLAY.get(result["entry"], result["entry"])


def _f(v: float | None, digits: int) -> str:
    if v is None:
        return "n/a"
    return f"{v:.{digits}f}" if v == 0 or abs(v) >= 1 else f"{v:.3g}"


def _full_latency(results: Sequence[dict[str, Any]]) -> float | None:
    for r in results:
        if r["entry"] == FULL_MODEL:
            return float(r["latency"]["median_ms"])
    return None


def efficiency_tables(results: Sequence[dict[str, Any]]) -> str:
    """Markdown: Table 24 layout (latency, FPS, params, latency ratio), Table 25 layout (memory, FLOPs,
    MACs, model size, training-checkpoint size), the placeholder for the quoted models, and the setting."""
    if not results:
        return ""
    full = _full_latency(results)
    ratio_head = " | latency ÷ TASC-SwinMT's" if full else ""
    lines = ["## Efficiency (paper layout, Tables 24-25)", "",
             "| method | latency (ms) | FPS | params (M)" + ratio_head + " |",
             "|---|---:|---:|---:" + ("|---:" if full else "") + "|"]
    for r in results:
        ms = float(r["latency"]["median_ms"])
        ratio = f" | {ms / full:.2f}×" if full else ""
        lines.append(f"| {display_name(r)} | {_f(ms, 1)} | {_f(r['latency']['samples_per_s'], 2)} | "
                     f"{_f(r['params']['total'] / 1e6, 3)}{ratio} |")
    lines.append(f"| {QUOTED_PLACEHOLDER} *({QUOTED_NOTE})* | – | – | –" + (" | –" if full else "") + " |")
    lines += ["", "| method | memory (MiB) | FLOPs (G) | thop GMAC | model size (MiB) | training checkpoint "
              "(MiB) |", "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        mem = r.get("memory") or {}
        peak = mem["peak_bytes"] / _MIB if "peak_bytes" in mem else None
        lines.append(f"| {display_name(r)} | {_f(peak, 1)} | {_f(r['flops']['total'] / 1e9, 2)} | "
                     f"{_f(r['macs_per_sample']['macs'] / 1e9, 2)} | {_f(r['weights_bytes'] / _MIB, 1)} | "
                     f"{_f(r['checkpoint']['bytes'] / _MIB, 1)} |")
    lines.append(f"| {QUOTED_PLACEHOLDER} *({QUOTED_NOTE})* | – | – | – | – | – |")
    r0 = results[0]
    shape = "×".join(str(d) for d in r0["input_shape"][2:])
    threads = f", {r0['threads']} threads" if r0.get("threads") else ""
    lines += ["", f"Measured in one run on {r0['device']}{threads} at {shape} (batch "
              f"{r0['input_shape'][0]}); latency = median no-grad forward, FPS = samples/s; a cascade's "
              "forward runs the interpolation model and then the segmenter on [X1, X̂2, X3]; FLOPs = "
              "FlopCounterMode + analytic attention, per sample; memory = peak of one forward (see the "
              "table above); model size = safetensors weights; training checkpoint = weights + AdamW "
              "state. nnU-Net-style = MONAI DynUNet planned with nnU-Net's 2-D rules (not nnunetv2)."]
    return "\n".join(lines) + "\n"
