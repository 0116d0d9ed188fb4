"""``tascmt benchmark``: parameters, thop MACs, FLOPs, latency, peak memory and sizes of models."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "benchmark",
        help="count parameters/MACs/FLOPs and time models",
        description="Benchmark one or more registered models and cascades side by side: parameters, thop "
        "MACs, FLOPs (FlopCounterMode + analytic SDPA), forward latency, FPS, peak memory, weights and "
        "checkpoint size, and efficiency against this machine's fp32 GEMM rate; then the same figures in "
        "the layout of the paper's efficiency tables (24-25). Published state-of-the-art models are not "
        "reimplemented (a labelled placeholder row says so).",
    )
    p.add_argument("--model", action="append", required=True, metavar="NAME",
                   help="registered model name (e.g. tasc_swinmt, cascade_swinunet_nnunet) or a cascade "
                   "INTERP+SEG (e.g. swinunet_interp+nnunet_seg); repeat for several")
    p.add_argument("--size", default="small", help="model size preset (default: small; paper = 512²)")
    p.add_argument("--input", nargs=2, type=int, metavar=("H", "W"), default=None,
                   help="input height and width (default: the model's native size)")
    p.add_argument("--batch", type=int, default=1, help="batch size for latency and memory (default 1)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--repeats", type=int, default=10, help="timed forwards (median reported; default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed warm-up forwards (default 2)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--gemm-size", type=int, default=2048, metavar="N",
                   help="size of the fp32 N×N matmul used as the efficiency reference (default 2048)")
    p.add_argument("--json", default=None, metavar="OUT", help="write results as JSON")
    p.add_argument("--markdown", default=None, metavar="OUT", help="write a Markdown table")
    p.add_argument("--paper-tables", default=None, metavar="OUT",
                   help="write the efficiency tables in the paper's layout (Tables 24-25) as Markdown")
    return p


def run(args: argparse.Namespace) -> int:
    from tascmt.bench.efficiency import efficiency_tables
    from tascmt.bench.runner import markdown_table, run_benchmark, write_results
    from tascmt.utils.device import resolve_device

    args.device = resolve_device(args.device, option="--device")
    results = run_benchmark(
        args.model,
        size=args.size,
        input_hw=tuple(args.input) if args.input else None,
        batch=args.batch,
        device=args.device,
        repeats=args.repeats,
        warmup=args.warmup,
        threads=args.threads,
        measure_memory=not args.no_memory,
        gemm_n=args.gemm_size,
    )
    write_results(results, json_path=args.json, markdown_path=args.markdown,
                  paper_tables_path=args.paper_tables)
    print(markdown_table(results) + "\n" + efficiency_tables(results), end="")
    return 0
