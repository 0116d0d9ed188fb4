"""bf16 against fp32 for ``predict`` with a trained checkpoint on this CPU: speed and PSNR.

Runs ``predict_volume`` ×2 on every test volume of a cache (thinned to every 2·step-th slice, so the
synthesised slices have acquired ground truth) with ``precision="fp32"`` and ``"bf16"``, each timed after a
warm-up, and reports seconds, the speed-up, PSNR of the synthesised slices (normaliser scale, as in
evaluation) for both, and the CPU's bf16 capability flags.

Usage: ``python benchmarks/bench_precision.py CHECKPOINT CACHE [--out benchmarks/results/precision.json]``
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "precision.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("cache")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    import torch

    from tascmt.data.cache import Manifest, case_files
    from tascmt.evaluation import metrics as M
    from tascmt.inference import Predictor, predict_volume
    from tascmt.utils.atomic import write_json_atomic
    from tascmt.utils.precision import cpu_flags

    manifest = Manifest.load(args.cache)
    predictor = Predictor.from_checkpoint(args.checkpoint)
    norm = predictor.normalizer
    rows = {}
    for precision in ("fp32", "bf16"):
        seconds, psnrs = 0.0, []
        for cid, info in sorted(manifest.cases.items()):
            if info.get("split") != "test" or not info.get("step"):
                continue
            img = np.load(Path(args.cache) / case_files(cid)[0]).astype(np.float32)  # (n, X, Y)
            s = int(info["step"])
            thick = np.moveaxis(img[::2 * s], 0, 2)
            predict_volume(thick[..., :2], (1, 1, 2), model=predictor, precision=precision, progress=False)
            t0 = time.perf_counter()
            res = predict_volume(thick, (1, 1, 2), model=predictor, precision=precision, progress=False,
                                 outputs=("image",))
            seconds += time.perf_counter() - t0
            out = np.moveaxis(res.image, 2, 0)
            for j in range(1, out.shape[0], 2):
                k = j * s
                p = norm.fit(img[k - s], img[k + s])
                psnrs.append(M.psnr(norm.apply(out[j], p), norm.apply(img[k], p)))
        rows[precision] = {"seconds": seconds, "psnr": float(np.mean(psnrs)), "n_synth": len(psnrs)}
    result = {"checkpoint": args.checkpoint, "rows": rows,
              "speedup_bf16": rows["fp32"]["seconds"] / rows["bf16"]["seconds"],
              "psnr_diff_bf16_minus_fp32": rows["bf16"]["psnr"] - rows["fp32"]["psnr"],
              "cpu_bf16_flags": sorted(f for f in cpu_flags() if "bf16" in f or f.startswith("amx")),
              "threads": torch.get_num_threads(), "load_average_1m_at_end": os.getloadavg()[0]}
    write_json_atomic(args.out, result)
    for k, r in rows.items():
        print(f"{k}: {r['seconds']:.1f} s, PSNR {r['psnr']:.3f} dB on {r['n_synth']} synthesised slices")
    print(f"bf16 speed-up ×{result['speedup_bf16']:.2f}, PSNR difference "
          f"{result['psnr_diff_bf16_minus_fp32']:+.3f} dB; CPU flags {result['cpu_bf16_flags']}")


if __name__ == "__main__":
    main()
