"""Time and peak memory of ``prepare_dataset`` on one MSD Task06-sized CT case (512×512×120, Δz 1.25 mm).

A synthetic lung phantom of that size is written first; ``prepare`` then runs in a fresh child process so that
its peak resident memory (``ru_maxrss``, with the RSS before the run for reference) is its own. The second,
idempotent run (parameter hash unchanged) is timed as well; a third, untimed run measures the peak traced
allocation (``tracemalloc``; NumPy reports its buffers to it).
Writes ``results/prepare.json``. Run: ``python benchmarks/bench_prepare.py [--sizes 512 256] [--slices 120]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

from tascmt.utils.atomic import write_json_atomic
from tascmt.utils.provenance import provenance


def _rss_mib() -> float:
    """Peak resident memory of this process in MiB: VmHWM on Linux (reset by exec, unlike ru_maxrss, which
    a spawned child inherits from its parent), else ``ru_maxrss``."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _child(task: str, out: str, size: int, queue) -> None:
    import shutil
    import tracemalloc

    from tascmt.data.prepare import prepare_dataset

    rss_before = _rss_mib()  # interpreter + imports (torch is imported only when slices are resized)
    t0 = time.perf_counter()
    m = prepare_dataset(task, out, size=size, progress=False, verbose=False, allow_tiny_split=True)
    first = time.perf_counter() - t0
    rss_peak = _rss_mib()
    cache_mib = sum(q.stat().st_size for q in (Path(out) / "cases").glob("*.npy")) / 2**20
    input_mib = sum(q.stat().st_size for q in Path(task).rglob("*.nii.gz")) / 2**20
    dtypes = sorted({c.get("dtype", "?") for c in m.cases.values()})
    t0 = time.perf_counter()
    prepare_dataset(task, out, size=size, progress=False, verbose=False, allow_tiny_split=True)
    again = time.perf_counter() - t0
    shutil.rmtree(out)
    tracemalloc.start()  # a separate, untimed run: tracing slows allocation down
    prepare_dataset(task, out, size=size, progress=False, verbose=False, allow_tiny_split=True)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    queue.put({"prepare_s": first, "rerun_s": again, "peak_rss_mib": rss_peak, "rss_before_mib": rss_before,
               "peak_traced_mib": traced_peak / 2**20, "n_triplets": len(m.triplets),
               "inplane": m.params["inplane"]["kind"], "cache_arrays_mib": cache_mib,
               "input_files_mib": input_mib, "image_dtype": dtypes})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[128],
                   help="model (tile) sizes; the native policy keeps the 512² pixels (default 128)")
    p.add_argument("--slices", type=int, default=120)
    p.add_argument("--dz", type=float, default=1.25)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "prepare.json")
    args = p.parse_args(argv)
    from tascmt.data.synth import make_synthetic_task

    with tempfile.TemporaryDirectory() as tmp:
        task = make_synthetic_task(Path(tmp) / "task", "lung", n_cases=1, size=512, n_slices=args.slices,
                                   seed=0, dz=args.dz)
        input_mib = sum(f.stat().st_size for f in task.rglob("*.nii.gz")) / 2**20
        volume_mib = 512 * 512 * args.slices * 4 / 2**20
        runs = []
        for size in args.sizes:
            ctx = mp.get_context("spawn")
            queue = ctx.Queue()
            cache = Path(tmp) / f"cache{size}"
            proc = ctx.Process(target=_child, args=(str(task), str(cache), size, queue))
            proc.start()
            res = queue.get()
            proc.join()
            grown = res["peak_rss_mib"] - res["rss_before_mib"]
            runs.append({"size": size, **res, "rss_increase_over_volume": grown / volume_mib,
                         "traced_over_volume": res["peak_traced_mib"] / volume_mib,
                         "cache_mib": sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) / 2**20})
    result = {
        "benchmark": "prepare_dataset",
        "case": {"shape": [512, 512, args.slices], "dz_mm": args.dz, "modality": "CT (synthetic phantom)",
                 "float32_volume_mib": volume_mib, "input_nifti_gz_mib": input_mib},
        "runs": runs,
        "provenance": provenance(),
    }
    write_json_atomic(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "provenance"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
