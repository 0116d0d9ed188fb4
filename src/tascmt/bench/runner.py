"""``run_benchmark``: params, thop MACs, FLOPs, latency, memory and sizes for a list of models.

Each entry of ``model_names`` is parsed by :func:`tascmt.bench.spec.parse_entry`; cascades (issue #6) plug
in there. Counting (MACs, FLOPs) uses one sample (batch 1); latency and peak memory use ``batch``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tascmt.bench import spec as spec_mod
from tascmt.errors import ConfigError

_MIB = 1024 * 1024


@contextlib.contextmanager
def _num_threads(threads: int | None) -> Iterator[None]:
    import torch

    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def run_benchmark(model_names: list[str], size: str = "small", input_hw: tuple[int, int] | None = None,
                  batch: int = 1, device: str = "cpu", repeats: int = 10, warmup: int = 2,
                  threads: int | None = None, overrides: dict[str, Any] | None = None,
                  measure_memory: bool = True, gemm_n: int = 2048,
                  builder: str | None = None) -> list[dict[str, Any]]:
    """Benchmark every entry of ``model_names`` at ``size`` on ``device``; one result dict per entry.

    ``input_hw`` defaults to the model's native ``config.img_size``. ``threads`` sets torch's CPU threads
    for the run (and the memory subprocess). ``builder`` ("module:function") replaces
    ``tascmt.models:create_model`` (tests use stand-in models). The fp32 GEMM rate (``gemm_n``²) is
    measured right before and after each model's timed forwards; ``"efficiency"`` uses their mean.
    """
    import torch

    if not model_names:
        raise ConfigError("--model: give at least one model name")
    if batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {batch}")
    if repeats < 1 or warmup < 0:
        raise ConfigError(f"--repeats must be >= 1 and --warmup >= 0, got {repeats} and {warmup}")
    if input_hw is not None and (len(input_hw) != 2 or min(input_hw) < 1):
        raise ConfigError(f"--input must be two positive integers H W, got {input_hw}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine")
    specs = [spec_mod.parse_entry(n, size, overrides, builder) for n in model_names]
    results = []
    with _num_threads(threads):
        for s in specs:
            res = benchmark_one(s, input_hw, batch, device, repeats, warmup, threads, measure_memory, gemm_n)
            results.append(res)
    return results


def benchmark_one(spec: spec_mod.ModelSpec, input_hw: tuple[int, int] | None, batch: int, device: str,
                  repeats: int, warmup: int, threads: int | None, measure_memory: bool,
                  gemm_n: int = 2048) -> dict[str, Any]:
    """All measurements for one entry (see :func:`run_benchmark`)."""
    import torch

    from tascmt.bench.flops import count_flops
    from tascmt.bench.latency import checkpoint_bytes, measure_latency, weights_bytes
    from tascmt.bench.macs import count_macs
    from tascmt.bench.memory import peak_memory
    from tascmt.bench.params import count_parameters
    from tascmt.bench.reference import gemm_rate

    model = spec.build()
    hw = tuple(input_hw) if input_hw is not None else spec_mod.native_hw(model)
    if hw is None:
        raise ConfigError(f"--model {spec.name!r} has no config.img_size; give --input H W")
    dev = torch.device(device)
    model = model.to(dev).eval()
    gen = torch.Generator().manual_seed(0)
    c = spec_mod.input_channels(model)  # 2 = [X1, X3]; 3 = [X1, X2, X3] for the triplet segmenters
    one = torch.rand(1, c, *hw, generator=gen).to(dev)  # (1, C, H, W)
    try:
        macs = count_macs(model, one)
    except ValueError as err:  # e.g. an in-plane size the model does not accept (docs/design.md §3)
        raise ConfigError(f"--model {spec.name!r} rejects input 1×{c}×{hw[0]}×{hw[1]}: {err}") from err
    flops = count_flops(model, one)
    x = torch.rand(batch, c, *hw, generator=gen).to(dev)  # (B, C, H, W)
    # The GEMM reference is timed right before and after the forwards, under the same load; CPU timings
    # are only as good as the machine was idle, so the 1-minute load average is kept too.
    load_before, gemm_before = _load_average(), gemm_rate(n=gemm_n, device=device)
    latency = measure_latency(model, x, repeats=repeats, warmup=warmup)
    gemm_after, load_after = gemm_rate(n=gemm_n, device=device), _load_average()
    rates = (gemm_before["gflops_per_s"], gemm_after["gflops_per_s"])
    gemm = dict(gemm_before, gflops_per_s=sum(rates) / 2, gflops_per_s_before_after=list(rates))
    efficiency = flops["total"] * latency["samples_per_s"] / (gemm["gflops_per_s"] * 1e9)
    memory = None
    if measure_memory:
        memory = peak_memory(spec, tuple(x.shape), device, threads or torch.get_num_threads())
    result = {
        "entry": spec.name,
        "spec": spec.to_dict(),
        "config": spec_mod.model_config(model),
        "input_shape": list(x.shape),
        "device": str(dev),
        "threads": torch.get_num_threads() if dev.type == "cpu" else None,
        "params": count_parameters(model),
        "macs_per_sample": macs,
        "flops": flops,
        "latency": latency,
        "gemm_reference": gemm,
        "efficiency": efficiency,
        "load_average_1m": {"before": load_before, "after": load_after},
        "memory": memory,
        "weights_bytes": weights_bytes(model),
        "checkpoint": checkpoint_bytes(model),
    }
    parts = spec_mod.cascade_parts(model)
    if parts is not None:
        result["cascade"] = {
            "interp_model": parts[0], "seg_model": parts[1],
            "params": {"interp": count_parameters(model.interp_model)["total"],
                       "seg": count_parameters(model.seg_model)["total"]},
            "note": "one forward = the interpolation model on [X1, X3], then the segmenter on [X1, X̂2, X3]",
        }
    del model, one, x
    return result


# ---- reporting -----------------------------------------------------------------------------------------

MARKDOWN_HEADER = (
    "| model | size | input (B×C×H×W) | device | params (M) | thop GMAC | GFLOPs (counted + SDPA) "
    "| ms/forward | FPS | peak MiB | weights MiB | checkpoint MiB | GEMM GFLOP/s | efficiency |\n"
    "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _num(v: float, decimals: int) -> str:
    """Fixed decimals for values >= 1, three significant digits below (so tiny models do not show 0.0)."""
    return f"{v:.{decimals}f}" if v == 0 or abs(v) >= 1 else f"{v:.3g}"


def markdown_row(r: dict[str, Any]) -> str:
    """One Markdown table row for a result of :func:`run_benchmark`."""
    fl = r["flops"]
    mem = r.get("memory") or {}
    peak = _num(mem["peak_bytes"] / _MIB, 1) if "peak_bytes" in mem else "n/a"
    eff = r.get("efficiency")
    cells = [
        r["entry"],
        r["spec"]["size"],
        "×".join(str(d) for d in r["input_shape"]),
        r["device"] + (f" ({r['threads']} thr)" if r.get("threads") else ""),
        _num(r["params"]["total"] / 1e6, 3),
        _num(r["macs_per_sample"]["macs"] / 1e9, 3),
        f"{_num(fl['total'] / 1e9, 1)} "
        f"({_num(fl['counted'] / 1e9, 1)} + {_num(fl['sdpa_analytic'] / 1e9, 1)})",
        _num(r["latency"]["median_ms"], 1),
        _num(r["latency"]["samples_per_s"], 2),
        peak,
        _num(r["weights_bytes"] / _MIB, 1),
        _num(r["checkpoint"]["bytes"] / _MIB, 1),
        _num(r["gemm_reference"]["gflops_per_s"], 1),
        "n/a" if eff is None else f"{eff:.3g}",
    ]
    return "| " + " | ".join(cells) + " |"


def markdown_table(results: list[dict[str, Any]]) -> str:
    """Header, one row per result, and notes on what the counts include."""
    from tascmt.bench.flops import FLOPS_NOTE
    from tascmt.bench.macs import MACS_NOTE

    lines = [MARKDOWN_HEADER, *(markdown_row(r) for r in results), ""]
    if results:
        g = results[0]["gemm_reference"]
        lines.append(
            f"GEMM GFLOP/s: this machine's fp32 {g['n']}² matmul rate (median of {g['repeats']}, timed "
            "before and after each model's forwards, mean of the two); efficiency = model FLOP/s ÷ GEMM "
            "FLOP/s (GFLOPs × FPS ÷ GEMM GFLOP/s)."
        )
        loads = [
            f"{r['entry']}: {r['load_average_1m']['before']:.2f} → {r['load_average_1m']['after']:.2f}"
            for r in results
            if r.get("load_average_1m", {}).get("before") is not None
        ]
        if loads:
            lines.append(
                "1-minute load average around the timed forwards (timings are inflated when it exceeds the "
                "thread count): " + "; ".join(loads) + "."
            )
        m = results[0]["macs_per_sample"]
        lines.append(f"MACs and FLOPs are per sample (batch 1). MAC tool: {m['tool']} {m['tool_version']}.")
    lines += [
        f"- {MACS_NOTE}.",
        f"- GFLOPs: {FLOPS_NOTE}.",
        "- ms/forward: median no-grad forward of the whole batch; FPS = samples/s.",
        "- peak MiB: weights + input + activations of one no-grad forward (CPU: peak RSS in a fresh "
        "process; CUDA: max_memory_allocated).",
        "- checkpoint MiB: weights + AdamW moments + scheduler, written with torch.save.",
    ]
    return "\n".join(lines) + "\n"


def write_results(results: list[dict[str, Any]], json_path: str | Path | None = None,
                  markdown_path: str | Path | None = None,
                  paper_tables_path: str | Path | None = None) -> dict[str, Any]:
    """Write ``{"provenance", "results"}`` as JSON, the Markdown measurement table and/or the paper-layout
    efficiency tables (`tascmt.bench.efficiency.efficiency_tables`), atomically."""
    from tascmt.utils.atomic import write_json_atomic, write_text_atomic
    from tascmt.utils.provenance import provenance

    doc = {"provenance": provenance(), "results": results}
    if json_path is not None:
        write_json_atomic(json_path, doc)
    if markdown_path is not None:
        write_text_atomic(markdown_path, markdown_table(results))
    if paper_tables_path is not None:
        from tascmt.bench.efficiency import efficiency_tables

        write_text_atomic(paper_tables_path, efficiency_tables(results))
    return doc
