"""GPU readiness check: one script, one CUDA GPU, under four minutes, a JSON file per stage as it goes.

Stages on CUDA (paper size, 512², batch 2, fp16 autocast + GradScaler, ``cudnn.benchmark`` on):

``gemm``
    The GPU's matmul rate (TFLOP/s of an 8192² product, fp32 and fp16), measured in this run so that the
    latency figures can be read against what this GPU delivers; measured again after ``latency``.
``train_tasc_swinmt``, ``train_tasc_swinmt_ref``
    A few hundred steps of the project's ``Trainer`` on synthesised data (smooth random images with moving
    Gaussian blobs, drawn on the device). Records every step's losses, the steps the GradScaler skipped
    (at most 5 after step 20 pass), and the largest absolute forward activation of every module down to
    four levels of nesting; one non-finite loss or activation fails the stage. The learning rate is held
    constant: the trainer's own schedule follows the run's time budget, i.e. the wall clock, which a
    resumed run cannot reproduce step for step.
``resume``
    ``train_tasc_swinmt`` saved a checkpoint at step K (60) while it ran. That checkpoint is resumed through
    ``tascmt.training.resume`` and must restore the same step, weights, optimizer, GradScaler and RNG states;
    its next 20 losses must match the uninterrupted run's within 1e-3 relative. Bit-equality (losses and
    weights) is required only with ``--deterministic``, which switches on deterministic algorithms.
``ddp``
    ``torchrun --standalone --nproc_per_node 1`` starts this script again; the child trains a few steps
    through the project's distributed code with the NCCL backend: process group, DistributedDataParallel,
    SyncBatchNorm, collective stop flags and RNG gathering. With one process the project normally skips
    DDP, so the child declares its single rank a DDP job to run those code paths.
``predict``
    ``tascmt.inference.predict_volume`` on a synthesised 512×512×60 volume on CUDA with the checkpoint of
    ``train_tasc_swinmt``; a failure is recorded and the later stages still run.
``latency``
    Forward latency, samples/s and peak CUDA memory of the joint model (SDPA and materialised attention)
    and the cascades, batch 1 and 2, fp32 and fp16 autocast. The registered cascades need MONAI for their
    segmenters; where it is missing the row says so and the interpolation part alone is timed as a lower
    bound for that cascade.

Every stage has a time cap, and the caps shrink when earlier stages ran long, so the whole run ends in
under four minutes (``--budget``, default 225 s). Each ``<stage>.json`` is written when its stage ends and
``summary.json`` after every stage.

Without a GPU the script says so and runs a CPU subset at ``tiny`` size in under a minute: both models
train a few dozen steps, the resume check, a small predict and one latency row (no DDP stage; ``--ddp``
adds a gloo run of it).

The script needs only torch, numpy, safetensors and tqdm with ``PYTHONPATH=src`` (it also puts the
repository's ``src`` on the path itself); MONAI, nibabel, SimpleITK and the like are not needed.

Usage::

    PYTHONPATH=src python benchmarks/gpu_check.py [--out DIR] [--budget 225] [--deterministic]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import hashlib
import inspect
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
if SRC.is_dir() and str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

DEFAULT_OUT = REPO / "benchmarks" / "results" / "gpu_check"
TRAIN_MODELS = ("tasc_swinmt", "tasc_swinmt_ref")
SKIP_GRACE_STEPS = 20  # GradScaler finds its scale during the first steps; skips after these are counted
MAX_LATE_SKIPS = 5
RESUME_RTOL = 1e-3


@dataclasses.dataclass
class Plan:
    """What one run does: sizes, step counts and the time cap (seconds) of every stage."""

    size: str
    train_steps: int
    snapshot_step: int
    resume_window: int
    batch: int
    predict_shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    ddp: bool
    ddp_size: str
    ddp_steps: int
    latency_batches: tuple[int, ...]
    latency_precisions: tuple[str, ...]
    latency_attention: tuple[str, ...]
    latency_cascades: bool
    latency_repeats: int
    gemm_n: int
    budget: float
    caps: dict[str, float]


CUDA_PLAN = Plan(
    size="paper", train_steps=300, snapshot_step=60, resume_window=20, batch=2,
    predict_shape=(512, 512, 60), spacing=(0.7, 0.7, 2.0), ddp=True, ddp_size="small", ddp_steps=8,
    latency_batches=(1, 2), latency_precisions=("fp32", "fp16"), latency_attention=("global", "materialised"),
    latency_cascades=True, latency_repeats=10, gemm_n=8192, budget=225.0,
    caps={"gemm": 8, "train_tasc_swinmt": 55, "train_tasc_swinmt_ref": 40, "resume": 20, "ddp": 35,
          "predict": 20, "latency": 35},
)
CPU_PLAN = Plan(
    size="tiny", train_steps=30, snapshot_step=6, resume_window=20, batch=2,
    predict_shape=(64, 64, 6), spacing=(0.7, 0.7, 2.0), ddp=False, ddp_size="tiny", ddp_steps=4,
    latency_batches=(1,), latency_precisions=("fp32",), latency_attention=("global",),
    latency_cascades=False, latency_repeats=3, gemm_n=512, budget=55.0,
    caps={"gemm": 3, "train_tasc_swinmt": 12, "train_tasc_swinmt_ref": 10, "resume": 12, "ddp": 25,
          "predict": 8, "latency": 5},
)
IMG_SIZE = {"paper": 512, "small": 128, "tiny": 64}
STAGE_ORDER = ("gemm", "train_tasc_swinmt", "train_tasc_swinmt_ref", "resume", "ddp", "predict", "latency")


# ---------------------------------------------------------------------- small helpers
def _finite_json(obj: Any) -> Any:
    """``obj`` with non-finite floats as strings ("nan", "inf", "-inf"), so the JSON stays strict."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, dict):
        return {str(k): _finite_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite_json(v) for v in obj]
    if isinstance(obj, np.generic):
        return _finite_json(obj.item())
    if isinstance(obj, Path | torch.device | torch.dtype):
        return str(obj)
    return obj


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_finite_json(obj), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _tensors(obj: Any):
    """Every tensor inside a (nested) tensor / tuple / list / dict output."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, list | tuple):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)


def _run_with_timeout(fn, timeout: float) -> tuple[bool, Any]:
    """Run ``fn()`` in a daemon thread; (finished, result). An exception in ``fn`` is re-raised here.

    Used for calls that cannot be interrupted (prediction): when the cap passes, the check moves on and
    the thread is abandoned (it dies with the process).
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as err:
            box["error"] = err

    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(max(timeout, 0.0))
    if th.is_alive():
        return False, None
    if "error" in box:
        raise box["error"]
    return True, box.get("result")


# ---------------------------------------------------------------------- synthetic data (on the device)
def smooth_blobs(n: int, depth: int, size: int, gen: torch.Generator, device: torch.device,
                 n_blobs: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` stacks of ``depth`` slices ``size``² in [0, 1]: a smooth random background plus Gaussian blobs
    that drift and breathe from slice to slice. Returns (images, blob field), both (n, depth, size, size);
    the blob field (in [0, 1]) thresholded at 0.5 is the segmentation target."""
    coarse = max(4, size // 32)
    zc = max(2, depth // 4 + 2)
    noise = torch.rand(n, 1, zc, coarse, coarse, generator=gen, device=device)
    background = F.interpolate(noise, size=(depth, size, size), mode="trilinear", align_corners=True)[:, 0]
    centre0 = torch.rand(n, n_blobs, 1, 2, generator=gen, device=device) * 0.6 + 0.2
    drift = (torch.rand(n, n_blobs, 1, 2, generator=gen, device=device) - 0.5) * 0.03
    radius0 = torch.rand(n, n_blobs, 1, generator=gen, device=device) * 0.08 + 0.06
    phase = torch.rand(n, n_blobs, 1, generator=gen, device=device) * 6.28
    z = torch.arange(depth, device=device, dtype=torch.float32)
    centres = centre0 + drift * z[None, None, :, None]  # (n, k, depth, 2)
    radius = radius0 * (1 + 0.25 * torch.sin(0.4 * z[None, None, :] + phase))  # (n, k, depth)
    grid = torch.linspace(0, 1, size, device=device)
    field = torch.zeros(n, depth, size, size, device=device)
    for k in range(n_blobs):  # one blob at a time keeps the (n, depth, size, size) temporaries few
        dy = grid[None, None, :, None] - centres[:, k, :, 0, None, None]  # (n, depth, size, 1)
        dx = grid[None, None, None, :] - centres[:, k, :, 1, None, None]  # (n, depth, 1, size)
        r2 = 2 * radius[:, k, :, None, None] ** 2
        field = torch.maximum(field, torch.exp(-(dy**2 + dx**2) / r2))
    images = (0.4 * background + 0.6 * field).clamp(0, 1)
    return images, field


def triplet_pool(n: int, size: int, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    """``n`` training triplets drawn on ``device`` and kept on the CPU (so the loader pins and copies them
    as it would real data): ``x`` (n, 2, S, S) = [X1, X3], ``y_interp`` (n, 1, S, S) = X2 and ``y_seg``
    (n, 3, S, S) = the three blob masks."""
    gen = torch.Generator(device=device).manual_seed(seed)
    xs, ys, segs = [], [], []
    for start in range(0, n, 4):
        img, field = smooth_blobs(min(4, n - start), 3, size, gen, device)
        xs.append(torch.stack([img[:, 0], img[:, 2]], dim=1).cpu())
        ys.append(img[:, 1:2].cpu())
        segs.append((field > 0.5).float().cpu())
    return {"x": torch.cat(xs), "y_interp": torch.cat(ys), "y_seg": torch.cat(segs)}


class PoolDataset(torch.utils.data.Dataset):
    """A long epoch over a small pool: item ``i`` is pool entry ``i mod n`` (no randomness in loading)."""

    def __init__(self, pool: dict[str, torch.Tensor], length: int):
        self.pool, self.length, self.n = pool, length, pool["x"].shape[0]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, Any]:
        k = i % self.n
        return {"x": self.pool["x"][k], "y_interp": self.pool["y_interp"][k], "y_seg": self.pool["y_seg"][k]}


def write_fake_cache(folder: Path, size: int) -> Path:
    """A cache folder holding only ``manifest.json``: what the trainer copies into its checkpoints
    (normalisation, in-plane policy, gap, size), so that ``predict_volume`` can use them."""
    from tascmt.data.inplane import InplanePolicy
    from tascmt.data.normalize import make_normalizer

    params = {"modality": "CT", "norm": make_normalizer("ct_window", lo=-100.0, hi=300.0).to_dict(),
              "inplane": InplanePolicy("pad_resize", size).to_dict(), "gap_mm": 1.0, "size": size}
    write_json(folder / "manifest.json", {"params": params})
    return folder


# ---------------------------------------------------------------------- state digests (resume check)
def _sums(tensors) -> np.ndarray:
    """float64 sum of every tensor (one device sync): a cheap fingerprint that changes with any step."""
    vals = [t.detach().double().sum() for t in tensors]
    if not vals:
        return np.zeros(0)
    return torch.stack([v.to("cpu") for v in vals]).numpy()


def _hash(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, torch.Tensor):
            h.update(p.detach().cpu().contiguous().numpy().tobytes())
        else:
            h.update(repr(p).encode())
    return h.hexdigest()[:16]


def state_digest(trainer: Any) -> dict[str, Any]:
    """Fingerprints of everything a resume must restore: counters, weights, optimizer moments, GradScaler,
    balancer and the Python / NumPy / torch / CUDA random states."""
    opt_tensors = []
    for group in trainer.optimizer.param_groups:
        for p in group["params"]:
            for _, v in sorted(trainer.optimizer.state.get(p, {}).items()):
                if isinstance(v, torch.Tensor):
                    opt_tensors.append(v)
    rng = [torch.get_rng_state()]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng += list(torch.cuda.get_rng_state_all())
    st = trainer.state
    return {
        "counters": {"global_step": st.global_step, "epoch": st.epoch, "step_in_epoch": st.step_in_epoch},
        "model": _sums(list(trainer.raw_model.state_dict().values())),
        "optimizer": _sums(opt_tensors),
        "lr": [g["lr"] for g in trainer.optimizer.param_groups],
        "scaler": {k: v for k, v in trainer.scaler.state_dict().items()},
        "balancer": _sums(list(trainer.balancer.state_dict().values())) if trainer.balancer is not None
        else np.zeros(0),
        "rng": _hash(*rng, random.getstate(), np.random.get_state()),  # noqa: NPY002 (global state)
    }


def compare_digests(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Per part: equal (exactly) and, for the tensor fingerprints, the largest relative difference."""
    out: dict[str, Any] = {}
    for key in a:
        x, y = a[key], b.get(key)
        if isinstance(x, np.ndarray):
            same_shape = isinstance(y, np.ndarray) and x.shape == y.shape
            rel = 0.0
            if same_shape and x.size:
                rel = float(np.max(np.abs(x - y) / np.maximum(np.abs(x), 1e-12)))
            out[key] = {"equal": bool(same_shape and np.array_equal(x, y)),
                        "max_rel_diff": rel if same_shape else None}
        else:
            out[key] = {"equal": x == y}
            if x != y:
                out[key].update(expected=x, got=y)
    return out


# ---------------------------------------------------------------------- the trainer used by the check
def attach_activation_monitor(model: nn.Module, max_depth: int = 4) -> dict[str, torch.Tensor]:
    """Forward hooks that keep, per module (names with at most ``max_depth`` parts), the largest |value| of
    its outputs over all forwards, on the device (no synchronisation). NaN propagates through the
    running maximum, so a non-finite entry means some forward produced NaN or Inf there."""
    stats: dict[str, torch.Tensor] = {}

    def make(name: str):
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            for t in _tensors(output):
                if t.numel() == 0 or not (t.is_floating_point() or t.is_complex()):
                    continue
                m = t.detach().abs().amax().float()
                prev = stats.get(name)
                stats[name] = m if prev is None else torch.maximum(prev, m)

        return hook

    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList | nn.ModuleDict) or len(name.split(".")) > max_depth:
            continue
        module.register_forward_hook(make(name or "<model>"))
    return stats


def make_trainer_class(pool: dict[str, torch.Tensor], length: int, *, snapshot_step: int | None = None,
                       snapshot_dir: Path | None = None, digest_steps: tuple[int, ...] = (),
                       force_ddp: bool = False):
    """A subclass of the project's ``Trainer`` that trains on ``pool`` and records what the check needs.

    Every ``train_step`` is recorded (losses, skip flag and reason, gradient norm, GradScaler scale, time).
    At the start of step ``snapshot_step + 1`` the full training checkpoint is written into
    ``snapshot_dir`` (the same ``save_last`` the trainer uses) and the state fingerprint is kept; the steps
    in ``digest_steps`` also keep one. ``force_ddp`` makes a one-process run behave as a DDP rank.
    """
    from tascmt.training import checkpointing
    from tascmt.training.distributed import DistInfo, resolve_device
    from tascmt.training.trainer import Trainer

    @dataclasses.dataclass(frozen=True)
    class OneRankDDP(DistInfo):
        """torchrun's rank treated as a DDP job even when it is the only process."""

        @property
        def enabled(self) -> bool:
            return True

    class CheckTrainer(Trainer):
        last: CheckTrainer | None = None

        def __init__(self, config: Any, resume: bool = False):
            super().__init__(config, resume=resume)
            type(self).last = self
            if force_ddp:
                self.dist = OneRankDDP(self.dist.rank, self.dist.world_size, self.dist.local_rank)
                self.device = resolve_device(config.device, self.dist)
            self.steps: list[dict[str, Any]] = []
            self.activations: dict[str, torch.Tensor] = {}
            self.digests: dict[int, dict[str, Any]] = {}
            self.snapshot: dict[str, Any] | None = None
            self.ddp_facts: dict[str, Any] = {}

        def build_datasets(self):
            return PoolDataset(pool, length), None

        def build_scheduler(self, optimizer: torch.optim.Optimizer):
            """A constant learning rate. The trainer's schedule follows the run's budget, and a budget in
            minutes depends on the wall clock, which a resumed run cannot reproduce; the check compares
            runs step by step, so the schedule must not depend on time."""
            return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)

        def build_model(self) -> nn.Module:
            model = super().build_model()
            self.activations = attach_activation_monitor(model)
            return model

        def train_step(self, batch: dict[str, Any]):
            done = self.state.global_step
            if snapshot_step is not None and done == snapshot_step and not self.resume:
                self._take_snapshot()
            if done in digest_steps or (self.resume and not self.steps):
                self.digests[done] = state_digest(self)
            if not self.ddp_facts and torch.distributed.is_initialized():
                self.ddp_facts = {
                    "backend": torch.distributed.get_backend(),
                    "world_size": torch.distributed.get_world_size(),
                    "ddp_wrapped": isinstance(self.model, nn.parallel.DistributedDataParallel),
                    "sync_batchnorm": any(isinstance(m, nn.SyncBatchNorm) for m in self.model.modules()),
                    "device": str(self.device),
                }
            t0 = time.perf_counter()
            out = super().train_step(batch)
            self.steps.append({
                "step": done + 1, "loss": out.total, **{f"L_{k}": v for k, v in out.losses.items()},
                "skipped": out.skipped, "reason": out.reason or None, "grad_norm": out.grad_norm,
                "scale": float(self.scaler.get_scale()) if self.use_amp else None,
                "time_s": time.perf_counter() - t0,
            })
            return out

        def _take_snapshot(self) -> None:
            assert snapshot_dir is not None
            run_dir = self.run_dir
            self.run_dir = Path(snapshot_dir)  # save_last and start_run_folder write under run_dir
            try:
                checkpointing.start_run_folder(self)
                checkpointing.save_last(self)
            finally:
                self.run_dir = run_dir
            self.snapshot = state_digest(self)

    return CheckTrainer


def train_config(run_dir: Path, cache_dir: Path, model: str, size: str, device: str, steps: int,
                 batch: int, minutes: float, **extra: Any):
    from tascmt.training.config import TrainConfig

    if "steps_per_epoch" in {f.name for f in dataclasses.fields(TrainConfig)}:
        extra.setdefault("steps_per_epoch", None)  # one epoch = one pass over the (long) pool dataset
    return TrainConfig(cache_dir=str(cache_dir), out_dir=str(run_dir), model=model, size=size, epochs=1,
                       batch_size=batch, max_steps=steps, max_minutes=max(minutes, 0.05), num_workers=0,
                       device=device, amp=True, progress=False, tensorboard=False, patience=0,
                       augment=False, seed=0, **extra)


def summarise_steps(steps: list[dict[str, Any]]) -> dict[str, Any]:
    losses = [s["loss"] for s in steps]
    task_losses = [v for s in steps for k, v in s.items() if k.startswith("L_")]
    skipped = [s["step"] for s in steps if s["skipped"]]
    late = [k for k in skipped if k > SKIP_GRACE_STEPS]
    times = [s["time_s"] for s in steps[5:]] or [s["time_s"] for s in steps]
    return {
        "steps": len(steps),
        "nonfinite_losses": sum(not math.isfinite(v) for v in losses + task_losses),
        "skipped_steps": skipped,
        "skipped_after_step_20": len(late),
        "skip_reasons": sorted({s["reason"] for s in steps if s["skipped"] and s["reason"]}),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "final_scale": steps[-1]["scale"] if steps else None,
        "median_step_s": statistics.median(times) if times else None,
        "first_step_s": steps[0]["time_s"] if steps else None,
    }


# ---------------------------------------------------------------------- stages
class Check:
    """Runs the stages in order under one time budget; writes ``<stage>.json`` and ``summary.json``."""

    def __init__(self, args: argparse.Namespace, plan: Plan, device: torch.device, t0: float):
        self.args, self.plan, self.device = args, plan, device
        self.out = Path(args.out)
        self.t0 = t0
        self.work = Path(args.work_dir or tempfile.mkdtemp(prefix="tascmt-gpucheck-"))
        self.work.mkdir(parents=True, exist_ok=True)
        self.summary: dict[str, Any] = {"device": str(device), "mode": "cuda" if device.type == "cuda" else
                                        "cpu-subset", "size": plan.size, "budget_s": plan.budget,
                                        "deterministic": bool(args.deterministic), "stages": {}}
        self.img = IMG_SIZE[plan.size]
        self.cache = write_fake_cache(self.work / "cache", self.img)
        self.pool: dict[str, torch.Tensor] | None = None
        self.runs: dict[str, Any] = {}

    # -- budget ---------------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def cap_for(self, stage: str) -> float:
        """The stage's own cap, shortened so that every later stage still gets a quarter of its own cap."""
        later = STAGE_ORDER[STAGE_ORDER.index(stage) + 1:]
        reserve = sum(0.25 * self.plan.caps[s] for s in later if self._planned(s))
        return max(0.0, min(self.plan.caps[stage], self.plan.budget - self.elapsed() - reserve))

    def _planned(self, stage: str) -> bool:
        return stage != "ddp" or self.plan.ddp

    # -- bookkeeping ------------------------------------------------------------------------------------
    def run_stage(self, stage: str, fn) -> dict[str, Any]:
        cap = self.cap_for(stage)
        rec: dict[str, Any] = {"stage": stage, "device": str(self.device), "size": self.plan.size,
                               "cap_s": round(cap, 1), "started_at_s": round(self.elapsed(), 1)}
        t = time.monotonic()
        if cap < 1.0:
            rec.update(status="skipped", reason="no time left in the budget")
        else:
            if self.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(self.device)
            try:
                body = fn(cap)
                ok = body.pop("ok", False)
                rec.update(body)
                rec.setdefault("status", "pass" if ok else "fail")
            except Exception as err:
                rec.update(status="error", error=f"{type(err).__name__}: {err}",
                           traceback=traceback.format_exc().splitlines()[-25:])
            if self.device.type == "cuda":
                rec["peak_cuda_mib"] = torch.cuda.max_memory_allocated(self.device) / 2**20
        rec["seconds"] = round(time.monotonic() - t, 2)
        rec["over_cap"] = rec["seconds"] > cap + 2.0
        write_json(self.out / f"{stage}.json", rec)
        self.summary["stages"][stage] = {k: rec.get(k) for k in ("status", "seconds", "cap_s", "error",
                                                                  "reason") if rec.get(k) is not None}
        self.summary["elapsed_s"] = round(self.elapsed(), 1)
        write_json(self.out / "summary.json", self.summary)
        print(f"[{self.elapsed():6.1f}s] {stage:<22} {rec['status']:<7} {rec['seconds']:6.1f}s  "
              f"{self._headline(stage, rec)}", flush=True)
        gc.collect()  # the stage's trainer and model, before the next stage measures memory
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return rec

    @staticmethod
    def _headline(stage: str, rec: dict[str, Any]) -> str:
        if "error" in rec:
            return rec["error"][:160]
        if rec.get("reason"):
            return rec["reason"]
        keys = {
            "gemm": ("fp32_tflops", "fp16_tflops"),
            "resume": ("compared_steps", "max_rel_loss_diff", "bit_exact"),
            "ddp": ("backend", "steps", "ddp_wrapped"),
            "predict": ("seconds_predict", "output_shape"),
            "latency": ("rows",),
        }.get(stage, ("steps", "nonfinite_losses", "nonfinite_activations", "skipped_after_step_20",
                      "median_step_s", "last_loss"))
        parts = []
        for k in keys:
            v = rec.get(k)
            if v is None:
                continue
            if isinstance(v, float):
                v = f"{v:.4g}"
            elif isinstance(v, list) and k == "rows":
                v = len(v)
            parts.append(f"{k}={v}")
        return " ".join(parts)

    # -- stages ------------------------------------------------------------------------------------------
    def gemm(self, cap: float) -> dict[str, Any]:
        out = {f"{p}_tflops": gemm_tflops(self.device, self.plan.gemm_n, p) for p in ("fp32", "fp16")
               if self.device.type == "cuda" or p == "fp32"}
        out.update(n=self.plan.gemm_n, allow_tf32=torch.backends.cuda.matmul.allow_tf32, ok=True)
        self.summary["gemm_before"] = out
        return out

    def train(self, model: str, cap: float) -> dict[str, Any]:
        plan = self.plan
        if self.pool is None:
            self.pool = triplet_pool(16 if self.device.type == "cuda" else 8, self.img, self.device)
        length = plan.train_steps * plan.batch * 4
        snapshot = model == "tasc_swinmt"
        window = tuple(range(plan.snapshot_step, plan.snapshot_step + plan.resume_window)) if snapshot else ()
        cls = make_trainer_class(self.pool, length, snapshot_step=plan.snapshot_step if snapshot else None,
                                 snapshot_dir=self.work / "snapshot" if snapshot else None,
                                 digest_steps=window)
        run_dir = self.work / f"run_{model}"
        setup_allowance = 10.0 if self.device.type == "cuda" else 3.0
        cfg = train_config(run_dir, self.cache, model, plan.size, str(self.device), plan.train_steps,
                           plan.batch, (cap - setup_allowance) / 60.0)
        t = time.monotonic()
        trainer = cls(cfg)
        cls.last = None
        result, error = None, None
        try:
            result = trainer.fit()
        except Exception as err:  # e.g. the trainer's stop after consecutive non-finite steps: keep its log
            error = {"error": f"{type(err).__name__}: {err}",
                     "traceback": traceback.format_exc().splitlines()[-25:]}
        acts = {k: float(v) for k, v in trainer.activations.items()}  # one sync at the end
        bad_acts = sorted(k for k, v in acts.items() if not math.isfinite(v))
        finite_acts = [v for v in acts.values() if math.isfinite(v)]
        rec: dict[str, Any] = {"model": model, "stop_reason": getattr(result, "stop_reason", None),
                               "global_step": trainer.state.global_step, "amp": trainer.use_amp,
                               "batch": plan.batch, "img_size": self.img, "wall_s": time.monotonic() - t,
                               **(error or {})}
        raw = getattr(trainer, "raw_model", None)  # absent when the run failed during its setup
        if raw is not None:
            rec["params_m"] = sum(p.numel() for p in raw.parameters()) / 1e6
        rec.update(summarise_steps(trainer.steps))
        beyond_fp16 = sorted(k for k, v in acts.items() if math.isfinite(v) and v > 65504)
        rec.update(nonfinite_activations=len(bad_acts), nonfinite_activation_modules=bad_acts[:50],
                   max_abs_activation=max(finite_acts) if finite_acts else None,
                   beyond_fp16_range=beyond_fp16, activation_max_by_module=acts, step_log=trainer.steps)
        if rec["median_step_s"]:
            rec["samples_per_s"] = plan.batch / rec["median_step_s"]
        rec["ok"] = (error is None and rec["steps"] > 0 and rec["nonfinite_losses"] == 0 and not bad_acts
                     and rec["skipped_after_step_20"] <= MAX_LATE_SKIPS)
        self.runs[model] = {"run_dir": run_dir, "steps": trainer.steps, "snapshot": trainer.snapshot,
                            "digests": trainer.digests, "result": result}
        del trainer
        return rec

    def resume(self, cap: float) -> dict[str, Any]:
        from tascmt.training.api import resume

        plan = self.plan
        run = self.runs.get("tasc_swinmt")
        if run is None or run["snapshot"] is None:
            return {"status": "fail", "reason": f"no snapshot: train_tasc_swinmt did not reach step "
                                                f"{plan.snapshot_step}"}
        k = plan.snapshot_step
        done = len(run["steps"])
        end = min(k + plan.resume_window, done)
        if end <= k:
            return {"status": "fail", "reason": f"the original run stopped after {done} steps"}
        cls = make_trainer_class(self.pool, plan.train_steps * plan.batch * 4,
                                 digest_steps=tuple(range(k, end)))
        allowance = 8.0 if self.device.type == "cuda" else 2.0  # model build, checkpoint load and save
        resume(self.work / "snapshot", trainer_cls=cls, max_steps=end,
               max_minutes=max(cap - allowance, 2.0) / 60.0)
        tr = cls.last
        cls.last = None
        restored = compare_digests(run["snapshot"], tr.digests.get(k, {}))
        original = {s["step"]: s for s in run["steps"]}
        rows, max_rel, exact = [], 0.0, True
        for s in tr.steps:
            o = original.get(s["step"])
            if o is None:
                continue
            keys = [key for key in s if key.startswith("L_")]
            rel = max(abs(s[key] - o[key]) / max(abs(o[key]), 1e-12) for key in keys)
            same = all(s[key] == o[key] for key in [*keys, "loss"]) and s["skipped"] == o["skipped"]
            exact &= same
            max_rel = max(max_rel, rel)
            rows.append({"step": s["step"], "original": o["loss"], "resumed": s["loss"], "identical": same,
                         "max_rel_task_diff": rel, "skipped": [o["skipped"], s["skipped"]]})
        weights = {step: compare_digests({"model": run["digests"][step]["model"]},
                                         {"model": tr.digests[step]["model"]})["model"]
                   for step in range(k, end) if step in run["digests"] and step in tr.digests}
        weights_exact = all(w["equal"] for w in weights.values())
        state_ok = all(v["equal"] for v in restored.values())
        within = len(rows) == end - k and max_rel <= RESUME_RTOL
        bit_exact = exact and weights_exact and len(rows) == end - k
        ok = state_ok and within and (bit_exact or not self.args.deterministic)
        return {"snapshot_step": k, "compared_steps": len(rows), "requested_window": plan.resume_window,
                "restored_state": restored, "restored_state_equal": state_ok,
                "max_rel_loss_diff": max_rel, "rtol": RESUME_RTOL, "bit_exact": bit_exact,
                "weights_bit_exact": weights_exact,
                "max_rel_weight_fingerprint_diff": max((w["max_rel_diff"] or 0.0 for w in weights.values()),
                                                       default=None),
                "bit_exact_required": bool(self.args.deterministic), "losses": rows, "ok": ok}

    def ddp(self, cap: float) -> dict[str, Any]:
        result_path = self.work / "ddp_result.json"
        cmd = ddp_command(result_path, self.work / "ddp", self.plan.ddp_size, self.plan.ddp_steps,
                          "cuda" if self.device.type == "cuda" else "cpu")
        t = time.monotonic()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=cap, env=child_env(), cwd=REPO,
                                  check=False)
        except subprocess.TimeoutExpired as err:
            tail = err.stdout or ""
            if isinstance(tail, bytes):
                tail = tail.decode(errors="replace")
            return {"status": "fail", "reason": f"torchrun did not finish within {cap:.0f} s",
                    "output_tail": tail.splitlines()[-20:]}
        rec: dict[str, Any] = {"command": " ".join(cmd[2:]), "returncode": proc.returncode,
                               "wall_s": time.monotonic() - t}
        if result_path.is_file():
            rec.update(json.loads(result_path.read_text(encoding="utf-8")))
        if proc.returncode != 0 or not result_path.is_file():
            rec["output_tail"] = (proc.stdout + proc.stderr).splitlines()[-30:]
            rec["ok"] = False
        return rec

    def predict(self, cap: float) -> dict[str, Any]:
        from tascmt.inference import predict_volume

        run = self.runs.get("tasc_swinmt")
        if run is None or run["result"] is None or run["result"].best_checkpoint is None:
            return {"status": "fail", "reason": "no checkpoint from train_tasc_swinmt"}
        ckpt = str(run["result"].best_checkpoint)
        x, y, z = self.plan.predict_shape
        gen = torch.Generator(device=self.device).manual_seed(7)
        img, _ = smooth_blobs(1, z, x, gen, self.device)
        volume = (-100.0 + 400.0 * img[0]).permute(1, 2, 0).contiguous().cpu().numpy()  # (X, Y, Z) HU-like
        kwargs = {"device": self.device.type, "progress": False, "batch_size": 8}
        params = inspect.signature(predict_volume).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        kwargs = {k: v for k, v in kwargs.items() if takes_any or k in params}
        by_keyword = "model" in params or takes_any

        def call():
            if by_keyword:
                try:
                    return predict_volume(volume, self.plan.spacing, model=ckpt, **kwargs), "model="
                except TypeError as err:
                    if "model" not in str(err):
                        raise
            return predict_volume(volume, self.plan.spacing, ckpt, **kwargs), "positional"

        t = time.monotonic()
        finished, value = _run_with_timeout(call, cap - 2.0)
        seconds = time.monotonic() - t
        if not finished:
            return {"status": "fail", "reason": f"predict_volume did not finish within {cap - 2.0:.0f} s "
                                                "(left running in a background thread)",
                    "input_shape": list(volume.shape)}
        res, form = value
        image = getattr(res, "image", None)
        mask = getattr(res, "mask", None)
        expected = (x, y, 2 * z - 1)
        shape = list(image.shape) if image is not None else None
        rec = {"input_shape": list(volume.shape), "spacing": list(self.plan.spacing), "checkpoint": ckpt,
               "call": form, "seconds_predict": seconds, "output_shape": shape,
               "expected_shape": list(expected), "output_slices_per_s": expected[2] / seconds,
               "image_finite": bool(image is not None and np.isfinite(image).all()),
               "mask_values": sorted(int(v) for v in np.unique(mask)) if mask is not None else None,
               "output_spacing": getattr(res, "spacing", None)}
        rec["ok"] = (shape == list(expected) and rec["image_finite"] and mask is not None
                     and list(mask.shape) == list(expected))
        return rec

    def latency(self, cap: float) -> dict[str, Any]:
        rows = latency_rows(self.plan, self.device, deadline=time.monotonic() + cap - 1.0)
        rec: dict[str, Any] = {"rows": rows, "img_size": self.img}
        if self.device.type == "cuda":
            after = {f"{p}_tflops": gemm_tflops(self.device, self.plan.gemm_n, p, repeats=5)
                     for p in ("fp32", "fp16")}
            before = self.summary.get("gemm_before", {})
            rec["gemm"] = {"before": before, "after": after}
            for row in rows:
                rates = [v for v in (before.get(f"{row.get('precision')}_tflops"),
                                     after.get(f"{row.get('precision')}_tflops")) if v]
                if rates and row.get("gflops") and row.get("samples_per_s"):
                    # model FLOP/s over the same-run GEMM FLOP/s of the row's precision
                    row["efficiency"] = row["gflops"] * row["samples_per_s"] / (statistics.fmean(rates) * 1e3)
        measured = [r for r in rows if "median_ms" in r]
        rec["ok"] = bool(measured) and all(r.get("finite", True) for r in measured)
        return rec

    # -- driver -------------------------------------------------------------------------------------------
    def run(self) -> int:
        self.summary["environment"] = environment(self.device)
        write_json(self.out / "summary.json", self.summary)
        self.run_stage("gemm", self.gemm)
        for model in TRAIN_MODELS:
            self.run_stage(f"train_{model}", lambda cap, m=model: self.train(m, cap))
        self.run_stage("resume", self.resume)
        if self.plan.ddp:
            self.run_stage("ddp", self.ddp)
        else:
            rec = {"stage": "ddp", "status": "skipped",
                   "reason": "needs CUDA and NCCL (pass --ddp to run it with gloo on the CPU)"}
            write_json(self.out / "ddp.json", rec)
            self.summary["stages"]["ddp"] = {"status": "skipped", "reason": rec["reason"]}
        self.run_stage("predict", self.predict)
        self.run_stage("latency", self.latency)
        statuses = [s["status"] for s in self.summary["stages"].values()]
        self.summary["passed"] = all(s in ("pass", "skipped") for s in statuses)
        self.summary["elapsed_s"] = round(self.elapsed(), 1)
        write_json(self.out / "summary.json", self.summary)
        print(f"gpu_check: {'PASS' if self.summary['passed'] else 'FAIL'} in {self.elapsed():.1f} s; "
              f"JSON in {self.out}", flush=True)
        if not self.args.work_dir and not self.args.keep_work:
            shutil.rmtree(self.work, ignore_errors=True)
        return 0 if self.summary["passed"] else 1


# ---------------------------------------------------------------------- measurements
def gemm_tflops(device: torch.device, n: int, precision: str, repeats: int = 10) -> float:
    """TFLOP/s of an n×n×n matmul (median of ``repeats`` after two warm-ups)."""
    dtype = torch.float16 if precision == "fp16" else torch.float32
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    times = []
    for i in range(repeats + 2):
        _sync(device)
        t = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        if i >= 2:
            times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e12


class _Autocast(nn.Module):
    """Runs the wrapped model under fp16 autocast (the latency rows' "fp16")."""

    def __init__(self, model: nn.Module, device_type: str):
        super().__init__()
        self.model, self.device_type = model, device_type

    def forward(self, x: torch.Tensor) -> Any:
        with torch.autocast(self.device_type, dtype=torch.float16):
            return self.model(x)


def _latency_models(plan: Plan) -> list[tuple[str, str, dict[str, Any], str | None]]:
    """(row label, registered name, overrides, note) of every model to time."""
    models = [(f"tasc_swinmt[{attn}]", "tasc_swinmt", {"mstaf_attn": attn}, None)
              for attn in plan.latency_attention]
    if plan.latency_cascades:
        from tascmt.models.baselines.cascade import CASCADES

        for name, (interp, _seg) in CASCADES.items():
            if name != "cascade":
                models.append((name, name, {}, interp))
    return models


def latency_rows(plan: Plan, device: torch.device, deadline: float) -> list[dict[str, Any]]:
    """Latency, samples/s and peak memory rows (model × batch × precision), until ``deadline``."""
    from tascmt.models import create_model

    rows: list[dict[str, Any]] = []
    size = IMG_SIZE[plan.size]
    for label, name, overrides, fallback in _latency_models(plan):
        if time.monotonic() > deadline:
            rows.append({"model": label, "skipped": "time cap reached"})
            continue
        note = None
        try:
            with device:  # parameters are created (and initialised) on the device: quicker at 512²
                try:
                    model = create_model(name, plan.size, **overrides)
                except ImportError as err:  # the cascades' segmenters need MONAI
                    if fallback is None:
                        raise
                    note = (f"{name} needs {err.name or 'a missing library'} ({type(err).__name__}); timed "
                            f"its interpolation part {fallback} alone, a lower bound for the cascade")
                    label, model = f"{name}[interp part only]", create_model(fallback, plan.size)
        except Exception as err:
            rows.append({"model": label, "error": f"{type(err).__name__}: {err}"[:400]})
            continue
        model = model.to(device).eval()
        gflops = _gflops(model, size, device)
        for batch in plan.latency_batches:
            for precision in plan.latency_precisions:
                if time.monotonic() > deadline:
                    rows.append({"model": label, "batch": batch, "precision": precision,
                                 "skipped": "time cap reached"})
                    continue
                rows.append(_latency_row(model, label, batch, precision, size, device, plan.latency_repeats,
                                         gflops, note))
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def _gflops(model: nn.Module, size: int, device: torch.device) -> float | None:
    try:
        from tascmt.bench.flops import count_flops

        return count_flops(model, torch.rand(1, 2, size, size, device=device))["total"] / 1e9
    except Exception:
        return None


def _latency_row(model: nn.Module, label: str, batch: int, precision: str, size: int, device: torch.device,
                 repeats: int, gflops: float | None, note: str | None) -> dict[str, Any]:
    from tascmt.bench.latency import measure_latency

    row: dict[str, Any] = {"model": label, "batch": batch, "precision": precision,
                           "input": [batch, 2, size, size]}
    if note:
        row["note"] = note
    try:
        gen = torch.Generator(device=device).manual_seed(0)
        x = torch.rand(batch, 2, size, size, device=device, generator=gen)
        runner = _Autocast(model, device.type) if precision == "fp16" else model
        if device.type == "cuda":
            _sync(device)
            held = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
        res = measure_latency(runner, x, repeats=repeats, warmup=3 if device.type == "cuda" else 1)
        with torch.no_grad():
            out = runner(x)
        row["finite"] = all(bool(torch.isfinite(t).all()) for t in _tensors(out) if t.is_floating_point())
        row.update(median_ms=res["median_ms"], min_ms=res["min_ms"], samples_per_s=res["samples_per_s"],
                   repeats=repeats)
        if gflops is not None:
            row["gflops"] = gflops * 1.0  # per sample, fp32 count
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device)
            row.update(peak_mib=peak / 2**20, forward_peak_mib=(peak - held) / 2**20)
    except Exception as err:
        row["error"] = f"{type(err).__name__}: {err}"[:400]
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return row


def environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {"torch": torch.__version__, "numpy": np.__version__,
                           "python": sys.version.split()[0], "cpu_count": os.cpu_count(),
                           "cudnn_benchmark": torch.backends.cudnn.benchmark}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                   gpu_memory_gib=props.total_memory / 2**30, cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version())
    try:
        from tascmt.utils.provenance import git_commit

        env["git_commit"] = git_commit(REPO)
    except Exception:
        env["git_commit"] = None
    return env


# ---------------------------------------------------------------------- the torchrun child
def ddp_command(result: Path, work: Path, size: str, steps: int, device: str) -> list[str]:
    """``torchrun --standalone --nproc_per_node 1`` (as ``python -m torch.distributed.run``) of this script's
    DDP child, which writes its findings to ``result``."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
            str(Path(__file__).resolve()), "--ddp-child", str(result), "--work-dir", str(work),
            "--size", size, "--steps", str(steps), "--device", device]


def child_env() -> dict[str, str]:
    """This environment with the repository's ``src`` on PYTHONPATH and no inherited rank variables."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    env.setdefault("OMP_NUM_THREADS", "1")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def ddp_child(args: argparse.Namespace) -> int:
    """One torchrun rank: a few steps of the project's trainer as a DDP job (NCCL on CUDA, gloo on CPU)."""
    from tascmt.training.distributed import DistInfo, resolve_device

    t0 = time.monotonic()
    info = DistInfo.from_env()
    work = Path(args.work_dir)
    img = IMG_SIZE[args.size]
    want_cuda = args.device == "cuda"
    rec: dict[str, Any] = {"env": {k: os.environ.get(k) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK",
                                                                  "MASTER_ADDR", "MASTER_PORT")}}
    try:
        device = torch.device("cuda", info.local_rank) if want_cuda else torch.device("cpu")
        if want_cuda:
            torch.backends.cudnn.benchmark = True
        cls = make_trainer_class(triplet_pool(4, img, device), args.steps * 2 * 4, force_ddp=True)
        cfg = train_config(work / "run", write_fake_cache(work / "cache", img), "tasc_swinmt", args.size,
                           "cuda" if want_cuda else "cpu", args.steps, 2, 2.0, ddp_find_unused=True)
        trainer = cls(cfg)
        cls.last = None
        if want_cuda:  # under torchrun "cuda:N" must mean this rank's GPU, whatever N is
            rec["device_resolution"] = {"cuda:7": str(resolve_device("cuda:7", trainer.dist)),
                                        "cuda": str(resolve_device("cuda", trainer.dist)),
                                        "expected": f"cuda:{info.local_rank}"}
        result = trainer.fit()
        summary = summarise_steps(trainer.steps)
        rec.update(trainer.ddp_facts)
        rec.update(steps=summary["steps"], nonfinite_losses=summary["nonfinite_losses"],
                   losses=[s["loss"] for s in trainer.steps], stop_reason=result.stop_reason,
                   checkpoint_written=result.last_checkpoint is not None,
                   dist_info=dataclasses.asdict(trainer.dist), torchrun_dist_info=dataclasses.asdict(info))
        resolution = rec.get("device_resolution", {})
        res_ok = all(v == resolution["expected"] for k, v in resolution.items() if k != "expected")
        backend_ok = rec.get("backend") == ("nccl" if want_cuda else "gloo")
        rec["ok"] = (rec.get("ddp_wrapped") is True and backend_ok and summary["steps"] == args.steps
                     and summary["nonfinite_losses"] == 0 and res_ok and rec["checkpoint_written"])
    except Exception as err:
        rec.update(ok=False, error=f"{type(err).__name__}: {err}",
                   traceback=traceback.format_exc().splitlines()[-25:])
    rec["child_s"] = time.monotonic() - t0
    write_json(Path(args.ddp_child), rec)
    return 0 if rec.get("ok") else 1


# ---------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(DEFAULT_OUT), help="folder for <stage>.json and summary.json")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds for the whole run (default: CUDA 225, CPU 55)")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic algorithms; the resume stage then requires bit-equal losses and "
                        "weights")
    p.add_argument("--cpu", action="store_true", help="run the CPU subset even when CUDA is available")
    p.add_argument("--ddp", action="store_true", help="on the CPU too: run the DDP stage with gloo")
    p.add_argument("--work-dir", default=None, help="folder for the training runs (default: a temporary one, "
                                                     "removed at the end)")
    p.add_argument("--keep-work", action="store_true", help="keep the temporary work folder")
    p.add_argument("--ddp-child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--size", default="small", help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=8, help=argparse.SUPPRESS)
    p.add_argument("--device", default="cuda", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    t0 = time.monotonic()
    args = parse_args(argv)
    if args.deterministic:  # before any CUDA work: cuBLAS reads this when it starts
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
    if args.ddp_child:
        return ddp_child(args)
    use_cuda = torch.cuda.is_available() and not args.cpu
    plan = dataclasses.replace(CUDA_PLAN if use_cuda else CPU_PLAN)
    if args.budget is not None:
        plan.budget = float(args.budget)
    if args.ddp and not plan.ddp:
        plan.ddp = True
        plan.budget += plan.caps["ddp"]
    if use_cuda:
        device = torch.device("cuda", torch.cuda.current_device())
        torch.backends.cudnn.benchmark = not args.deterministic
        print(f"gpu_check: {torch.cuda.get_device_name(device)}; paper size 512², fp16 autocast + "
              f"GradScaler, budget {plan.budget:.0f} s", flush=True)
    else:
        device = torch.device("cpu")
        # One thread: the tiny models gain nothing from more, and on a shared or loaded machine the
        # spin-waiting of several OpenMP threads made a step ten times slower.
        torch.set_num_threads(1)
        why = "--cpu given" if args.cpu else "no CUDA device"
        print(f"gpu_check: {why}: running the CPU subset at tiny size (fp32; budget {plan.budget:.0f} s)",
              flush=True)
    check = Check(args, plan, device, t0)
    if not args.deterministic:
        return check.run()
    # Ops without a deterministic implementation warn (warn_only); list them, they break bit-equality.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = check.run()
    check.summary["nondeterministic_ops"] = sorted({str(w.message)[:200] for w in caught
                                                    if "deterministic" in str(w.message)})
    with contextlib.suppress(OSError):
        write_json(check.out / "summary.json", check.summary)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
