"""``import tascmt`` and the modules training, inference and the GPU check use must not need the imaging
and medical libraries (SimpleITK, nilearn, pydicom, nibabel, MONAI, thop): the GPU machines lack them."""

from __future__ import annotations

from tests.blocked_imports import BLOCKED, run_blocked

CODE = """
import tascmt, tascmt.models, tascmt.training, tascmt.losses, tascmt.inference
import tascmt.training.trainer, tascmt.training.api, tascmt.training.distributed
import tascmt.bench.latency, tascmt.bench.flops, tascmt.data, tascmt.io
from tascmt.data.triplets import slice_axis
from tascmt.inference import predict_volume
import torch

assert tascmt.predict_volume is predict_volume
model = tascmt.create_model("tasc_swinmt", "tiny").eval()
with torch.no_grad():
    out = model(torch.rand(1, 2, 64, 64))
assert set(out) == {"interp", "seg_logits"}
assert slice_axis((0.7, 0.7, 2.0)) == 2
try:
    import nibabel  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("the blocker let nibabel through")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in _BLOCKED)
print("LOADED", loaded)
"""


def test_tascmt_imports_without_the_imaging_libraries():
    proc = run_blocked(CODE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "LOADED []" in proc.stdout, proc.stdout
    assert len(BLOCKED) == 6
