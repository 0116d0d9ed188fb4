"""Is data loading the bottleneck? DataLoader throughput (with augmentation) vs the training step rate.

For the ``small`` model at 128² and the ``paper`` model at 512², on a phantom MSD task prepared at that
size: samples/s that a DataLoader delivers with the paired training augmentation (0 and 2 workers) and
samples/s of full training steps (forward, loss, backward, AdamW step; batch 2), measured in the same run.
A ratio loader ÷ training above 1 means the GPU-less training loop is compute-bound, not input-bound.

    python benchmarks/bench_loader.py [--quick]     # writes benchmarks/results/loader.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from tascmt.data.dataset import TripletDataset
from tascmt.data.prepare import prepare_dataset
from tascmt.data.synth import make_synthetic_task
from tascmt.losses import HybridInterpLoss, SegLoss, make_balancer
from tascmt.models import create_model
from tascmt.utils.provenance import provenance

RESULTS = Path(__file__).resolve().parent / "results"


def loader_rate(cache: Path, workers: int, batches: int, batch_size: int = 2) -> float:
    ds = TripletDataset(cache, split="train", augment=True, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         drop_last=True)
    n, it = 0, iter(loader)
    next(it)  # warm-up (worker start-up)
    t0 = time.perf_counter()
    for _ in range(batches):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        n += batch["x"].shape[0]
    return n / (time.perf_counter() - t0)


def train_rate(cache: Path, size: str, steps: int, batch_size: int = 2) -> float:
    ds = TripletDataset(cache, split="train", augment=False, seed=0)
    batch = torch.utils.data.default_collate([ds[i % len(ds)] for i in range(batch_size)])
    model = create_model("tasc_swinmt", size=size, img_size=batch["x"].shape[-1])
    balancer = make_balancer("kendall")
    opt = torch.optim.AdamW([*model.parameters(), *balancer.parameters()], lr=1e-4, weight_decay=1e-5)
    interp, seg = HybridInterpLoss(), SegLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = model(batch["x"])
        loss = balancer.combine({"interp": interp(out["interp"], batch["y_interp"]),
                                 "seg": seg(out["seg_logits"], batch["y_seg"])})
        loss.backward()
        opt.step()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small model only, fewer batches")
    args = parser.parse_args()
    torch.set_num_threads(2)
    settings = [("small", 128, 60, 20)] + ([] if args.quick else [("paper", 512, 20, 2)])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size, px, batches, steps in settings:
            task = make_synthetic_task(Path(tmp) / f"task{px}", task="heart", n_cases=10, size=px,
                                       n_slices=12, seed=0)
            cache = Path(tmp) / f"cache{px}"
            prepare_dataset(task, cache, size=px, progress=False, verbose=False)
            row = {"model": "tasc_swinmt", "size": size, "input": f"2x{px}x{px}", "batch": 2}
            for w in (0, 2):
                row[f"loader_samples_per_s_workers{w}"] = loader_rate(cache, w, batches)
            row["train_samples_per_s"] = train_rate(cache, size, steps)
            row["loader_over_train"] = row["loader_samples_per_s_workers0"] / row["train_samples_per_s"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = {"benchmark": "dataloader throughput vs training step rate (CPU)", "torch_threads": 2,
           "results": rows, "provenance": provenance()}
    (RESULTS / "loader.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS / 'loader.json'}")


if __name__ == "__main__":
    main()
