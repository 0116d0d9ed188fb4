"""Benchmark ``tasc_swinmt`` at the paper size (1×2×512×512) and the small size (native 128²) on the CPU.

Writes ``results/model_paper.json``/``.md`` and ``results/model_small.json``/``.md`` (provenance included).
Run: ``python benchmarks/bench_models.py [--threads 2] [--out-dir DIR] [--sizes paper small]``.
The paper-size forward takes a few seconds on 2 cores, so it uses few repeats.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tascmt.bench import markdown_table, run_benchmark, write_results

# size -> (repeats, warmup)
PLAN = {"paper": (3, 1), "small": (10, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tasc_swinmt")
    p.add_argument("--sizes", nargs="+", default=list(PLAN), choices=list(PLAN))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args(argv)
    for size in args.sizes:
        repeats, warmup = PLAN[size]
        results = run_benchmark([args.model], size=size, device="cpu", repeats=repeats, warmup=warmup,
                                threads=args.threads)
        write_results(results, json_path=args.out_dir / f"model_{size}.json",
                      markdown_path=args.out_dir / f"model_{size}.md")
        print(f"## {args.model} @ {size}\n\n{markdown_table(results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
