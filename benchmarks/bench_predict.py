"""Benchmark ``predict_volume`` (×2 with masks) on a 512×512×60 CT-like volume on the CPU.

Native-resolution prediction runs the model on overlapping S×S tiles (S = the model size) and blends them.
For each model size and tile overlap this reports the wall time, seconds per output slice and peak RSS,
beside, measured in the same run: scipy's linear ``zoom`` of the same volume; 59 single forwards of the
model on whole 512² slice pairs (one per slice pair); and the pure network time of exactly the tiles the
predictor runs (same count, same tile batch). ``overhead`` = predict − network time on its tiles: what
tiling, blending, normalisation and bookkeeping add.

Each measurement runs in its own freshly spawned process, so peak memory (RSS, ``ru_maxrss``) belongs to
that measurement alone; the baseline RSS (after imports and building the volume) is reported beside it.
Models are untrained (only timing matters).

Usage: ``python benchmarks/bench_predict.py [--models small,paper] [--overlaps 0.25,0.5] [--slices 60]``
Writes ``benchmarks/results/predict.json`` by default.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "predict.json"


def ct_like(size: int, n: int, seed: int = 0) -> np.ndarray:
    """(size, size, n) float32 in HU: air outside, soft-tissue body, two lungs, a spine, noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5  # (size, size) in [-0.5, 0.5)
    vol = np.empty((size, size, n), np.float32)
    for k in range(n):
        t = k / max(n - 1, 1)
        body = (x / 0.42) ** 2 + (y / 0.32) ** 2 < 1
        lung_r = 0.12 + 0.05 * np.sin(np.pi * t)
        lungs = ((x - 0.17) ** 2 + y**2 < lung_r**2) | ((x + 0.17) ** 2 + y**2 < lung_r**2)
        spine = x**2 + (y - 0.22) ** 2 < 0.04**2
        sl = np.full((size, size), -1000.0, np.float32)
        sl[body] = 40.0
        sl[lungs] = -850.0
        sl[spine] = 700.0
        vol[..., k] = sl + rng.normal(0, 15, (size, size)).astype(np.float32)
    return vol


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _model(model_size: str, flow: bool = False):
    import torch

    from tascmt.models import create_model

    torch.manual_seed(0)
    over = {"interp_output": "residual", "init": "stable"} if model_size != "paper" else {}
    if flow:
        over["interp_base"] = "flow"
    return create_model("tasc_swinmt", size=model_size, **over).eval()


def _measure(kind: str, size: int, n: int, batch_size: int, queue, model_size: str = "small",
             overlap: float = 0.5) -> None:
    """Child process: build the volume, run one operation, report time and memory."""
    import torch

    vol = ct_like(size, n)
    spacing = (0.7, 0.7, 2.5)
    if kind in ("predict", "predict_flow"):
        from tascmt.data.inplane import InplanePolicy
        from tascmt.data.normalize import make_normalizer
        from tascmt.inference import Predictor, predict_volume
        from tascmt.inference.tiling import n_tiles

        model = _model(model_size, flow=kind == "predict_flow")
        tile = model.config.img_size
        policy = InplanePolicy("native", tile)
        predictor = Predictor(model, make_normalizer("CT"), policy, gap_mm=1.25, tile_overlap=overlap)
        predict_volume(vol[..., :2], spacing, model=predictor, progress=False)  # warm-up (one pair)
        base = _rss_mib()
        t0 = time.perf_counter()
        res = predict_volume(vol, spacing, model=predictor, batch_size=batch_size, progress=False)
        seconds = time.perf_counter() - t0
        n_out = res.n_slices
        out_mib = n_out * size * size * (4 + 1) / 2**20  # float32 image + uint8 mask
        extra = {"output_mib": out_mib, "peak_over_output": (_peak_mib() - base) / out_mib,
                 "model": "tasc_swinmt", "model_size": model_size, "tile": tile, "overlap": overlap,
                 "tiles_per_pair": n_tiles((size, size), tile, overlap),
                 "params": sum(p.numel() for p in model.parameters()), "batch_size": batch_size,
                 "inplane": "native (blended tiles)", "torch_threads": torch.get_num_threads(),
                 "interp_base": "flow (TV-L1 per slice pair)" if kind == "predict_flow" else "linear"}
    elif kind in ("forwards", "tile_forwards"):
        from tascmt.inference.tiling import DEFAULT_TILE_BATCH, n_tiles

        model = _model(model_size)
        tile = model.config.img_size
        pairs = n - 1
        with torch.no_grad():
            model.predict(torch.rand(1, 2, tile, tile))  # warm-up
            base = _rss_mib()
            if kind == "forwards":  # one forward per slice pair on the whole 512² pair
                x = torch.rand(1, 2, size, size)
                t0 = time.perf_counter()
                for _ in range(pairs):
                    model.predict(x)
                count = pairs
            else:  # exactly the tiles the predictor runs, in its tile batches
                count = pairs * n_tiles((size, size), tile, overlap)
                x = torch.rand(DEFAULT_TILE_BATCH, 2, tile, tile)
                t0 = time.perf_counter()
                done = 0
                while done < count:
                    k = min(DEFAULT_TILE_BATCH, count - done)
                    model.predict(x[:k])
                    done += k
            seconds = time.perf_counter() - t0
        n_out = 2 * n - 1
        extra = {"model_size": model_size, "tile": tile, "forwards": count,
                 "overlap": overlap if kind == "tile_forwards" else None}
    else:
        from scipy import ndimage

        base = _rss_mib()
        t0 = time.perf_counter()
        out = ndimage.zoom(vol, (1, 1, (2 * n - 1) / n), order=1, grid_mode=False)  # knots at k/2
        seconds = time.perf_counter() - t0
        n_out = out.shape[2]
        np.testing.assert_allclose(out[..., 2], vol[..., 1], atol=1e-2)  # acquired slices kept
        extra = {"method": "scipy.ndimage.zoom(order=1)"}
    queue.put({"kind": kind, "seconds": seconds, "n_out": n_out, "s_per_output_slice": seconds / n_out,
               "baseline_rss_mib": base, "peak_rss_mib": _peak_mib(), **extra})


def run(kind: str, size: int, n: int, batch_size: int, model_size: str = "small",
        overlap: float = 0.5) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(kind, size, n, batch_size, queue, model_size, overlap))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--slices", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--models", default="small,paper", help="model sizes, comma-separated")
    ap.add_argument("--overlaps", default="0.25,0.5", help="tile overlaps, comma-separated")
    ap.add_argument("--flow", action="store_true", help="also time a small flow-base model (overlap 0.5)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    import scipy
    import torch

    import tascmt
    from tascmt.inference.tiling import n_tiles
    from tascmt.models import create_model
    from tascmt.utils.atomic import write_json_atomic

    rows = [run("linear", args.size, args.slices, args.batch_size)]
    for ms in args.models.split(","):
        fwd = run("forwards", args.size, args.slices, args.batch_size, ms)
        rows.append(fwd)
        tile = create_model("tasc_swinmt", size=ms).config.img_size
        done_single = False
        for ov in (float(v) for v in args.overlaps.split(",")):
            single = n_tiles((args.size, args.size), tile, ov) == 1  # one tile per slice: overlap is moot
            if single and done_single:
                continue
            net = fwd if single else run("tile_forwards", args.size, args.slices, args.batch_size, ms, ov)
            pred = run("predict", args.size, args.slices, args.batch_size, ms, ov)
            pred["network_s_on_its_tiles"] = net["seconds"]
            pred["overhead_vs_its_tiles"] = pred["seconds"] / net["seconds"] - 1.0
            rows += [pred] if single else [net, pred]
            done_single = done_single or single
    if args.flow:
        rows.append(run("predict_flow", args.size, args.slices, args.batch_size, "small", 0.5))
    for r in rows:
        parts = (r["kind"], r.get("model_size"), r.get("overlap"))
        r["key"] = "_".join(str(v) for v in parts if v is not None)
    result = {
        "volume": {"shape": [args.size, args.size, args.slices], "dtype": "float32", "kind": "CT-like (HU)",
                   "output_slices": 2 * args.slices - 1},
        "device": "cpu",
        "results": {r["key"]: r for r in rows},
        "env": {"tascmt": tascmt.__version__, "torch": torch.__version__, "numpy": np.__version__,
                "scipy": scipy.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
                "load_average_1m_at_end": os.getloadavg()[0]},
    }
    write_json_atomic(args.out, result)
    for r in rows:
        more = ""
        if "overhead_vs_its_tiles" in r:
            more = f"  overhead {100 * r['overhead_vs_its_tiles']:+.1f} % over its tiles"
        print(f"{r['key']:26s} {r['seconds']:8.2f} s  {1000 * r['s_per_output_slice']:8.1f} ms/output slice  "
              f"peak RSS {r['peak_rss_mib']:7.0f} MiB (baseline {r['baseline_rss_mib']:.0f} MiB){more}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
