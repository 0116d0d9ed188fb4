"""Small stand-ins for the training tests: a tiny conv net and a synthetic triplet dataset.

They follow the contracts in ``docs/interfaces.md`` (model returns ``{"interp", "seg_logits"}``, dataset items
carry ``x``, ``y_interp``, ``y_seg``) but run in milliseconds. Kept importable (``tests.training._standins``)
so that subprocesses and spawned DDP workers can use them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import Dataset

from tascmt.training import TrainConfig
from tascmt.training.trainer import Trainer

SIZE = 16


@dataclass
class TinyConfig:
    name: str = "standin"
    tasks: tuple[str, ...] = ("interp", "seg")
    width: int = 8
    dropout: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class TinyNet(nn.Module):
    """x (B, 2, H, W) → {"interp": (B, 1, H, W) in (0, 1), "seg_logits": (B, 3, H, W)} (per its tasks)."""

    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.body = nn.Sequential(nn.Conv2d(2, w, 3, padding=1), nn.BatchNorm2d(w), nn.GELU(),
                                  nn.Dropout2d(config.dropout), nn.Conv2d(w, w, 3, padding=1), nn.GELU())
        self.interp_head = nn.Conv2d(w, 1, 1) if "interp" in config.tasks else None
        self.seg_head = nn.Conv2d(w, 3, 1) if "seg" in config.tasks else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.body(x)  # (B, w, H, W)
        out = {}
        if self.interp_head is not None:
            out["interp"] = torch.sigmoid(self.interp_head(f))
        if self.seg_head is not None:
            out["seg_logits"] = self.seg_head(f)
        return out

    def shared_parameters(self):
        return list(self.body[-2].parameters())


class SyntheticTriplets(Dataset):
    """Deterministic triplets: X2 is the mean of X1 and X3, masks are thresholds; with ``noise`` the
    global torch RNG adds input noise per item (like augmentation), which exercises RNG save/restore."""

    def __init__(self, n: int = 12, noise: bool = True, seed: int = 0):
        g = torch.Generator().manual_seed(1234 + seed)
        base = torch.rand(n, 1, SIZE // 4, SIZE // 4, generator=g)
        base = nn.functional.interpolate(base, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        shift = torch.rand(n, 1, SIZE, SIZE, generator=g) * 0.2
        self.x = torch.cat([base, (base + shift).clamp(0, 1)], dim=1)  # (n, 2, H, W)
        self.y = self.x.mean(dim=1, keepdim=True)  # (n, 1, H, W)
        self.seg = torch.cat([self.x[:, :1], self.y, self.x[:, 1:]], dim=1).gt(0.5).float()  # (n, 3, H, W)
        self.noise = noise

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> dict[str, Any]:
        x = self.x[i]
        if self.noise:
            x = (x + 0.01 * torch.randn(x.shape)).clamp(0, 1)
        return {"x": x, "y_interp": self.y[i], "y_seg": self.seg[i], "case_id": f"c{i % 3}", "index": i}


class StandinTrainer(Trainer):
    """The real loop with the stand-in model and data. Options via ``config.model_overrides``:
    ``tasks``, ``n_train``, ``n_val``, ``sleep`` (seconds per step), ``bn_eval`` (BatchNorm in eval mode),
    ``grad_file`` (rank 0 writes the first step's gradients there), ``nan_from``/``nan_to`` (steps whose
    interpolation loss is NaN)."""

    def _opt(self, key: str, default: Any) -> Any:
        return self.config.model_overrides.get(key, default)

    def build_datasets(self):
        n_val = self._opt("n_val", 4)
        return (SyntheticTriplets(self._opt("n_train", 12), noise=self._opt("noise", True)),
                SyntheticTriplets(n_val, noise=False, seed=1) if n_val else None)

    def build_model(self) -> nn.Module:
        return TinyNet(TinyConfig(tasks=tuple(self._opt("tasks", ("interp", "seg"))),
                                  dropout=self._opt("dropout", 0.1)))

    def set_train_mode(self) -> None:
        super().set_train_mode()
        if self._opt("bn_eval", False):
            for m in self.model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()

    def compute_losses(self, outputs, batch):
        losses = super().compute_losses(outputs, batch)
        lo, hi = self._opt("nan_from", None), self._opt("nan_to", None)
        step = self.state.global_step + 1
        if lo is not None and step >= lo and (hi is None or step <= hi) and self.model.training:
            losses["interp"] = losses["interp"] * float("nan")
        return losses

    def train_step(self, batch):
        if self._opt("sleep", 0):
            time.sleep(self._opt("sleep", 0))
        return super().train_step(batch)

    def on_before_optimizer_step(self) -> None:
        path = self._opt("grad_file", None)
        if path and self.state.global_step == 0 and self.dist.is_main:
            grads = {n: p.grad.detach().clone() for n, p in self.raw_model.named_parameters()
                     if p.grad is not None}
            save_file(grads, path)

    def save_model_files(self, folder: Path, extra: dict[str, Any]) -> None:
        save_file({k: v.detach().contiguous() for k, v in self.raw_model.state_dict().items()},
                  str(Path(folder) / "model.safetensors"))
        (Path(folder) / "model.json").write_text(json.dumps({"config": self.raw_model.config.to_dict(),
                                                            "extra": extra}))


def standin_config(out_dir: str | Path, **kw: Any) -> TrainConfig:
    """A fast default configuration for the stand-ins (CPU, no workers, no progress bar)."""
    overrides = kw.pop("model_overrides", {})
    base = dict(cache_dir=str(out_dir) + "_nocache", out_dir=str(out_dir), model="standin", size="tiny",
                epochs=3, steps_per_epoch=None, lr_schedule="epochs", batch_size=2, lr=3e-3, num_workers=0, device="cpu",
                progress=False,
                tensorboard=False, model_overrides=overrides)
    base.update(kw)
    return TrainConfig(**base)


def ddp_worker(rank: int, world: int, port: int, config_dict: dict[str, Any]) -> None:
    """``torch.multiprocessing.spawn`` target: one DDP rank (gloo) of a stand-in run."""
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    StandinTrainer(TrainConfig.from_dict(config_dict)).fit()


def main_resume_or_run(argv: list[str]) -> None:
    """Subprocess entry: ``python -m tests.training._standins run|resume CONFIG_JSON``."""
    mode, cfg_path = argv
    from tascmt.training.api import resume, train

    cfg = TrainConfig.load(cfg_path)
    torch.set_num_threads(1)
    if mode == "run":
        train(cfg, trainer_cls=StandinTrainer)
    else:  # continue to the end, whatever step limit the interrupted run had
        resume(cfg.out_dir, trainer_cls=StandinTrainer, max_steps=None)


if __name__ == "__main__":
    import sys

    main_resume_or_run(sys.argv[1:])
