"""Peak memory of one inference forward.

CUDA: ``torch.cuda.max_memory_allocated`` in this process (weights + input + activations, allocator
bytes). CPU: a fresh subprocess builds the model and runs one forward; the peak resident set size of that
forward is read from ``/proc/self/status`` (``VmHWM``, reset just before the forward through
``/proc/self/clear_refs``) so that earlier peaks (imports, model construction) do not hide it. Where the
peak cannot be reset, ``ru_maxrss`` is used and the result says so.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
from typing import Any

from tascmt.bench.spec import ModelSpec


def peak_memory(spec: ModelSpec, input_shape: tuple[int, ...], device: str = "cpu",
                threads: int | None = None, timeout_s: float = 1800) -> dict[str, Any]:
    """Peak memory (bytes) of one no-grad forward of ``spec``'s model on a (B, 2, H, W) input.

    Returns ``{"peak_bytes", "forward_peak_bytes", "method", ...}``: ``peak_bytes`` counts the weights,
    the input and the activations (the CUDA allocator figure, or RSS above the interpreter-with-torch
    baseline on the CPU); ``forward_peak_bytes`` is the part above the memory held before the forward.
    """
    if device.startswith("cuda"):
        return _peak_cuda(spec, input_shape, device)
    payload = {"spec": spec.to_dict(), "input_shape": list(input_shape), "threads": threads}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "tascmt.bench.memory", json.dumps(payload)],
        capture_output=True, text=True, timeout=timeout_s, env=env, check=False,
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {"error": f"memory probe exited with status {proc.returncode}: " + " | ".join(tail)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _peak_cuda(spec: ModelSpec, input_shape: tuple[int, ...], device: str) -> dict[str, Any]:
    import torch

    dev = torch.device(device)
    torch.cuda.synchronize(dev)
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated(dev)
    model = spec.build().to(dev)
    x = torch.rand(*input_shape, device=dev)
    held = torch.cuda.memory_allocated(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    with torch.no_grad():
        model(x)
    torch.cuda.synchronize(dev)
    peak = torch.cuda.max_memory_allocated(dev)
    del model, x
    torch.cuda.empty_cache()
    return {
        "peak_bytes": peak - base,
        "forward_peak_bytes": peak - held,
        "method": "torch.cuda.max_memory_allocated (weights + input + activations)",
    }


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        match = re.search(rf"^{key}:\s+(\d+)\s+kB", f.read(), re.MULTILINE)
    if match is None:
        raise OSError(f"/proc/self/status has no {key}")
    return int(match.group(1))


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # Linux >= 4.0: reset VmHWM to the current RSS
        return True
    except OSError:
        return False


def _child_main(payload: dict[str, Any]) -> dict[str, Any]:
    """Runs in the fresh subprocess: build, one forward, report RSS figures in bytes."""
    import torch

    if payload.get("threads"):
        torch.set_num_threads(int(payload["threads"]))
    try:
        base = _status_kib("VmRSS") * 1024
    except OSError:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    model = ModelSpec.from_dict(payload["spec"]).build()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(*payload["input_shape"], generator=gen)
    reset = _reset_peak_rss()
    if reset:
        held = _status_kib("VmRSS") * 1024
    else:
        held = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with torch.no_grad():
        model(x)
    peak = (_status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    method = (
        "peak RSS (VmHWM reset before the forward) above the RSS of a fresh interpreter with torch imported"
        if reset
        else "ru_maxrss delta in a fresh process (may include model construction)"
    )
    return {
        "peak_bytes": peak - base,
        "forward_peak_bytes": max(peak - held, 0),
        "process_peak_rss_bytes": peak,
        "baseline_rss_bytes": base,
        "threads": torch.get_num_threads(),
        "method": method,
    }


if __name__ == "__main__":
    print(json.dumps(_child_main(json.loads(sys.argv[1]))))
