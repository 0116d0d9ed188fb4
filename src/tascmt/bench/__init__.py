"""tascmt.bench: parameters, thop MACs, FLOPs, latency, memory and sizes of models (docs/design.md §4, §3).

``run_benchmark(["tasc_swinmt"], size="paper")`` returns one dict per model; ``write_results`` writes the
JSON (with provenance) and the Markdown table. torch is imported only when a benchmark runs.
"""

from __future__ import annotations

from tascmt.bench.runner import markdown_table, run_benchmark, write_results

__all__ = ["markdown_table", "run_benchmark", "write_results"]
