"""Synthetic volumes, stand-in models and file writers for the inference tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from torch import nn

from tascmt.data.inplane import InplanePolicy
from tascmt.data.normalize import make_normalizer
from tascmt.inference import Predictor


def phantom(shape=(40, 36, 21), spacing=(1.0, 1.0, 1.25), seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A thin-slice phantom: a smooth ellipsoid (about 100 inside, 0-20 outside) and its mask.

    Returns:
        image (X, Y, Z) float32, mask (X, Y, Z) uint8 (1 inside the ellipsoid).
    """
    rng = np.random.default_rng(seed)
    x, y, z = (np.arange(n) * s for n, s in zip(shape, spacing))
    xx, yy, zz = np.meshgrid(x, y, z, indexing="ij")
    c = [n * s / 2 + rng.uniform(-1, 1) for n, s in zip(shape, spacing)]
    r = [0.3 * n * s for n, s in zip(shape, spacing)]
    d = ((xx - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + ((zz - c[2]) / r[2]) ** 2
    mask = (d < 1).astype(np.uint8)
    image = 10 + 10 * np.sin(xx / 7 + zz / 9) + 90 * (1 / (1 + np.exp((d - 1) * 12)))  # soft edge
    return image.astype(np.float32), mask


@dataclass
class StandInConfig:
    name: str = "stand_in"
    tasks: tuple = ("interp", "seg")
    img_size: int = 32


class LinearStandIn(nn.Module):
    """predict(x): interp = (X1 + X3) / 2; seg = sigmoid(20 (frame − 0.5)) for (X1, average, X3).

    ``fixed_probs`` (three numbers) replaces the seg output by constants; calls and batch sizes are recorded.
    """

    def __init__(self, tasks=("interp", "seg"), img_size=32, fixed_probs=None):
        super().__init__()
        self.config = StandInConfig(tasks=tuple(tasks), img_size=img_size)
        self.dummy = nn.Parameter(torch.zeros(()))
        self.fixed_probs = fixed_probs
        self.batch_sizes: list[int] = []

    def predict(self, x: torch.Tensor) -> dict:
        assert x.ndim == 4 and x.shape[1] == 2, x.shape
        self.batch_sizes.append(x.shape[0])
        mid = x.mean(dim=1, keepdim=True)  # (B, 1, S, S)
        out = {}
        if "interp" in self.config.tasks:
            out["interp"] = mid.clamp(0, 1)
        if "seg" in self.config.tasks:
            frames = torch.cat([x[:, :1], mid, x[:, 1:]], dim=1)  # (B, 3, S, S)
            seg = torch.sigmoid(20 * (frames - 0.5))
            if self.fixed_probs is not None:
                seg = torch.ones_like(seg) * torch.tensor(self.fixed_probs).view(1, 3, 1, 1)
            out["seg"] = seg
        return out


def stand_in_predictor(model=None, *, size=32, gap_mm=None, label_id=1, **norm) -> Predictor:
    """Stand-in model with a fixed window (−10…130, the phantom's range) so that 0.5 ↔ 60."""
    model = LinearStandIn(img_size=size) if model is None else model
    norm = norm or {"lo": -10.0, "hi": 130.0}
    return Predictor(
        model=model,
        normalizer=make_normalizer("ct_window", **norm),
        inplane=InplanePolicy("pad_resize", size),
        gap_mm=gap_mm,
        tasks=model.config.tasks,
        label_id=label_id,
    )


def psnr(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 100.0 if mse == 0 else 10 * np.log10(data_range**2 / mse)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else 2 * float((a & b).sum()) / float(s)


# ---------------------------------------------------------------------- files
def ras_affine(spacing=(1.0, 1.0, 2.5), origin=(-20.0, 15.0, 30.0)) -> np.ndarray:
    a = np.diag([*spacing, 1.0])
    a[:3, 3] = origin
    return a


def lps_affine(spacing=(0.9, 0.9, 2.5), origin=(18.0, 16.0, -12.0)) -> np.ndarray:
    """Array axes 0 and 1 run to the Left and Posterior (DICOM-style storage)."""
    a = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    a[:3, 3] = origin
    return a


def write_nii(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    img = nib.Nifti1Image(data, affine)
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)
    return path


def write_dicom_series(folder: Path, data: np.ndarray, spacing=(0.8, 0.8, 2.5), origin=(-15.0, -12.0, 40.0),
                       direction=(1, 0, 0, 0, 1, 0, 0, 0, 1)) -> Path:
    """Write an (I, J, K) int16 array (ITK index order) as a CT DICOM series, one file per slice (LPS)."""
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    vol = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(data, (2, 1, 0))).astype(np.int16))
    vol.SetSpacing(spacing)
    vol.SetOrigin(origin)
    vol.SetDirection(direction)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series_uid = "1.2.826.0.1.3680043.2.1125.1.42"
    dir_tag = "\\".join(str(v) for v in (direction[0], direction[3], direction[6], direction[1], direction[4],
                                           direction[7]))
    for k in range(vol.GetDepth()):
        sl = vol[:, :, k]
        pos = vol.TransformIndexToPhysicalPoint((0, 0, k))
        tags = {
            "0008|0060": "CT", "0008|0016": "1.2.840.10008.5.1.4.1.1.2",
            "0008|0018": f"{series_uid}.{k + 1}", "0020|000d": "1.2.826.0.1.3680043.2.1125.1.41",
            "0020|000e": series_uid, "0020|0013": str(k + 1), "0020|0037": dir_tag,
            "0020|0032": "\\".join(f"{p:.6f}" for p in pos), "0018|0050": str(spacing[2]),
            "0028|0030": f"{spacing[1]}\\{spacing[0]}", "0010|0020": "PHANTOM",
            "0028|1052": "0", "0028|1053": "1",
        }
        for key, value in tags.items():
            sl.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"slice_{k:03d}.dcm"))
        writer.Execute(sl)
    return folder


# ---------------------------------------------------------------------- a real tiny model
WINDOW = {"lo": -10.0, "hi": 130.0}  # the phantom's intensity range (ct_window normalisation)


def tiny_model(size=32, seed=0, zero_residual=False):
    """The real ``tasc_swinmt`` at size "tiny" with the residual interpolation head.

    ``zero_residual``: zero the head's last conv, so the output is exactly the linear average.
    """
    from tascmt.models import create_model

    torch.manual_seed(seed)
    model = create_model("tasc_swinmt", size="tiny", interp_output="residual", img_size=size)
    if zero_residual:
        last = model.heads["interp"].conv3
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    return model.eval()


def triplet_tensors(image, mask, size=32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All (k, k+1, k+2) triplets of a thin-slice phantom, normalised like the stand-in predictor.

    Returns:
        x (T, 2, S, S), y_interp (T, 1, S, S), y_seg (T, 3, S, S).
    """
    norm, policy = make_normalizer("ct_window", **WINDOW), InplanePolicy("pad_resize", size)
    params = norm.fit(image[..., 0], image[..., 1])  # a fixed window: the same for every pair
    img = policy.forward(np.moveaxis(np.asarray(norm.apply(image, params), np.float32), 2, 0))  # (Z, S, S)
    msk = policy.forward(np.moveaxis(mask, 2, 0), is_mask=True).astype(np.float32)  # (Z, S, S)
    k = np.arange(image.shape[2] - 2)
    x = np.stack([img[k], img[k + 2]], axis=1)  # (T, 2, S, S)
    seg = np.stack([msk[k], msk[k + 1], msk[k + 2]], axis=1)  # (T, 3, S, S)
    return torch.from_numpy(x), torch.from_numpy(img[k + 1][:, None].copy()), torch.from_numpy(seg)


def train_tiny(model, volumes, steps, batch=8, lr=2e-3, seed=0):
    """Direct optimisation on the triplets of ``volumes`` [(image, mask), ...]: L1 + MSE + BCE."""
    parts = [triplet_tensors(im, m, model.config.img_size) for im, m in volumes]
    x, yi, ys = (torch.cat(t) for t in zip(*parts))  # (T, 2, S, S), (T, 1, S, S), (T, 3, S, S)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (batch,), generator=gen)
        out = model(x[idx])
        li = 0.4 * (out["interp"] - yi[idx]).abs().mean() + 0.6 * ((out["interp"] - yi[idx]) ** 2).mean()
        ls = nn.functional.binary_cross_entropy_with_logits(out["seg_logits"], ys[idx])
        opt.zero_grad()
        (10 * li + ls).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return model.eval()


def save_checkpoint(model, folder: Path, gap_mm=1.25, **extra) -> Path:
    from tascmt.models import save_model

    meta = {
        "norm": make_normalizer("ct_window", **WINDOW).to_dict(),
        "inplane": InplanePolicy("pad_resize", model.config.img_size).to_dict(),
        "gap_mm": gap_mm,
        "modality": "CT",
        **extra,
    }
    return save_model(model, folder, extra=meta)
