"""The reference configuration (literal CTCI) under fp16 autocast: its decoder runs in float32 from the first
CTCI on, so outputs stay finite (at ``small`` size the literal CTCI's features reach ~1e6 after the second
stage and ~1e9 after the third, and fp16 autocast used to give NaN outputs there).

Two comparisons with the fp32 forward:

* exact tail: replaying the fp32 model with the autocast run's encoder skips and first-CTCI inputs gives the
  autocast outputs to float32 rounding (rtol 1e-5): everything from the first CTCI on is the fp32 maths,
  unchanged;
* end to end: fp16 rounding in the encoder and first decoder stage is amplified by the literal CTCI (an
  unnormalised magnitude spectrum of a product) to 2-10 % in the untrained model (measured over seeds);
  stated tolerance: every output within 15 % of the fp32 forward, norm-relative (||a - b|| / ||b||).
"""

from __future__ import annotations

import pytest
import torch

from tascmt.models import create_model

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                 reason="needs CUDA"))]


def _half_dtype(device: str) -> torch.dtype:
    """float16 where autocast supports it on ``device`` (CPU autocast does in recent torch), else bfloat16."""
    if device == "cuda":
        return torch.float16
    try:
        with torch.autocast("cpu", dtype=torch.float16):
            probe = torch.ones(2, 2) @ torch.ones(2, 2)
        return torch.float16 if probe.dtype == torch.float16 else torch.bfloat16
    except (RuntimeError, ValueError):
        return torch.bfloat16


def _model_and_input(device: str):
    torch.manual_seed(0)
    model = create_model("tasc_swinmt_ref", "small").eval().to(device)
    gen = torch.Generator().manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(2, 2, 16, 16, generator=gen), size=(128, 128),
                                        mode="bilinear", align_corners=False)
    return model, x.to(device)


@pytest.mark.parametrize("device", DEVICES)
def test_reference_config_is_finite_under_autocast_and_runs_its_tail_in_fp32(device):
    model, x = _model_and_input(device)
    dtype = _half_dtype(device)
    enc = model.encoders["shared"]
    seen: dict[str, object] = {}
    hooks = [
        enc.register_forward_hook(lambda _m, _i, out: seen.__setitem__("skips", [s.detach() for s in out])),
        model.ctcis[0].register_forward_pre_hook(
            lambda _m, args, kwargs: seen.__setitem__("ctci0", [a.detach() for a in args]), with_kwargs=True),
    ]
    with torch.no_grad(), torch.autocast(device, dtype=dtype):
        out_half, rec = model.forward_intermediates(x)
    for h in hooks:
        h.remove()
    with torch.no_grad():
        ref = model(x)

    assert seen["skips"][0].dtype == dtype  # the encoder did run in half precision
    assert max(float(rec[f"dec{j}.seg"].abs().max()) for j in (2, 3)) > 65504  # beyond fp16's range
    for j in (1, 2, 3):
        for t in ("interp", "seg"):
            assert rec[f"dec{j}.{t}"].dtype == torch.float32, (j, t)
    for k, v in out_half.items():
        assert v.dtype == torch.float32 and torch.isfinite(v).all(), k

    # the fp32 tail: same encoder skips and first-CTCI inputs → the same outputs
    hooks = [
        enc.register_forward_hook(lambda _m, _i, _out: [s.float() for s in seen["skips"]]),
        model.ctcis[0].register_forward_pre_hook(lambda _m, _args, kwargs: (tuple(seen["ctci0"]), kwargs),
                                                 with_kwargs=True),
    ]
    try:
        with torch.no_grad():
            replay = model(x)
    finally:
        for h in hooks:
            h.remove()
    for k in ref:
        torch.testing.assert_close(out_half[k], replay[k], rtol=1e-5, atol=1e-5 * float(replay[k].abs().max()))

    # end to end against the plain fp32 forward, within the stated tolerance
    for k in ref:
        err = float((out_half[k] - ref[k]).norm() / ref[k].norm())
        assert err < 0.15, (k, err)


def test_fp32_forward_is_unchanged_by_the_precision_switch():
    """Without autocast the fp32 tail changes nothing: float64 inputs stay float64 all the way through."""
    model, x = _model_and_input("cpu")
    model = model.double()
    with torch.no_grad():
        out, rec = model.forward_intermediates(x.double())
    assert all(v.dtype == torch.float64 for v in out.values())
    assert rec["dec3.interp"].dtype == torch.float64
