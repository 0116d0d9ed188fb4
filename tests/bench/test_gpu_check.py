"""benchmarks/gpu_check.py without a GPU: the CPU subset (run with the imaging libraries blocked, as on
the GPU machines, which lack them) writes a JSON file per stage with finite losses; the DDP child runs
through torchrun with gloo."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys

from tests.blocked_imports import REPO, run_blocked

SCRIPT = REPO / "benchmarks" / "gpu_check.py"
RUN_SCRIPT = f"""
import runpy
sys.argv = [{str(SCRIPT)!r}, *sys.argv[1:]]
runpy.run_path({str(SCRIPT)!r}, run_name="__main__")
"""
STAGES = ("gemm", "train_tasc_swinmt", "train_tasc_swinmt_ref", "resume", "ddp", "predict", "latency")


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_cpu_subset_writes_every_stage_with_finite_losses(tmp_path):
    out = tmp_path / "out"
    proc = run_blocked(RUN_SCRIPT, timeout=120, args=["--cpu", "--out", str(out)])
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert "CPU subset" in proc.stdout
    for stage in STAGES:
        assert (out / f"{stage}.json").is_file(), (stage, log)
    summary = _load(out / "summary.json")
    assert summary["passed"] is True and summary["mode"] == "cpu-subset", summary
    assert summary["elapsed_s"] < 60
    assert summary["stages"]["ddp"]["status"] == "skipped"

    for model in ("tasc_swinmt", "tasc_swinmt_ref"):
        rec = _load(out / f"train_{model}.json")
        assert rec["status"] == "pass" and rec["steps"] >= 10, rec
        losses = [s[k] for s in rec["step_log"] for k in ("loss", "L_interp", "L_seg")]
        assert losses and all(isinstance(v, float) and math.isfinite(v) for v in losses)
        assert rec["nonfinite_activations"] == 0 and rec["activation_max_by_module"]

    resume = _load(out / "resume.json")
    assert resume["status"] == "pass" and resume["restored_state_equal"] is True
    assert resume["compared_steps"] >= 3 and resume["max_rel_loss_diff"] <= 1e-3
    predict = _load(out / "predict.json")
    assert predict["status"] == "pass", predict
    assert predict["output_shape"] == predict["expected_shape"] and predict["image_finite"]
    latency = _load(out / "latency.json")
    assert latency["status"] == "pass" and latency["rows"][0]["median_ms"] > 0


def test_ddp_child_under_torchrun_with_gloo(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_check_script", SCRIPT)
    gpu_check = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = gpu_check  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(gpu_check)
    finally:
        sys.modules.pop(spec.name, None)
    result = tmp_path / "ddp.json"
    cmd = gpu_check.ddp_command(result, tmp_path / "work", "tiny", 3, "cpu")
    proc = subprocess.run(cmd, cwd=REPO, env=gpu_check.child_env(), capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rec = _load(result)
    assert rec["ok"] is True, rec
    assert rec["backend"] == "gloo" and rec["ddp_wrapped"] is True and rec["world_size"] == 1
    assert rec["steps"] == 3 and all(math.isfinite(v) for v in rec["losses"])
    assert rec["env"]["LOCAL_RANK"] == "0" and rec["checkpoint_written"] is True
