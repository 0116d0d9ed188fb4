"""TALA, MSTAF, CTCI: attention implementations, the literal CTCI's symmetry, precision, NaN-free phase."""

from __future__ import annotations

import pytest
import torch

from tascmt.models.ctci import CTCI
from tascmt.models.mstaf import MSTAF, SpectralFilter
from tascmt.models.tala import TALA


def test_sdpa_equals_materialised_attention():
    m = MSTAF(16, attn_impl="global").double()
    fa, fb = torch.randn(2, 16, 12, 12).double(), torch.randn(2, 16, 12, 12).double()
    out_sdpa = m(fa, fb)
    m.attn_impl = "materialised"
    out_mat = m(fa, fb)
    for key in ("interp", "seg"):
        rel = (out_sdpa[key] - out_mat[key]).abs().max() / out_mat[key].abs().max()
        assert rel <= 1e-5, key
    m.attn_impl = "window"  # windowed attention is a different operator at this size
    assert not torch.allclose(m(fa, fb)["interp"], out_mat["interp"], atol=1e-4)


def test_sdpa_equals_materialised_float32():
    m = MSTAF(32)
    fa, fb = torch.randn(1, 32, 16, 16), torch.randn(1, 32, 16, 16)
    a = m(fa, fb)["interp"]
    m.attn_impl = "materialised"
    b = m(fa, fb)["interp"]
    assert ((a - b).abs().max() / b.abs().max()) <= 1e-5


@pytest.mark.parametrize("impl", ["window", "pool"])
@pytest.mark.parametrize("hw", [(16, 16), (20, 12), (4, 4)])
def test_window_and_pool_run(impl, hw):
    m = MSTAF(8, attn_impl=impl, pool=4)
    out = m(torch.randn(2, 8, *hw), torch.randn(2, 8, *hw))
    assert out["interp"].shape == out["seg"].shape == (2, 8, *hw)
    assert all(torch.isfinite(v).all() for v in out.values())


def test_window_attention_ignores_padding():
    """With a map of 12 and window 8, padded keys must get no weight: zero-padding the input map to 16
    changes nothing for a window that contains no padded token."""
    m = MSTAF(8, attn_impl="window")
    fa, fb = torch.randn(1, 8, 12, 12), torch.randn(1, 8, 12, 12)
    q, k, v = torch.randn(3, 1, 144, 8).unbind(0)
    from tascmt.models.mstaf import cross_attention

    out = cross_attention(q, k, v, 1.0, "window", (12, 12), 8)
    # top-left window (rows 0-7, cols 0-7) has no padding: compare with plain attention inside it
    idx = torch.arange(144).view(12, 12)[:8, :8].flatten()
    ref = torch.softmax(q[:, idx] @ k[:, idx].transpose(1, 2), -1) @ v[:, idx]
    assert torch.allclose(out[:, idx], ref, atol=1e-5)
    # bottom-right window (rows 8-11, cols 8-11 real, rest padding): only real keys count
    idx2 = torch.arange(144).view(12, 12)[8:, 8:].flatten()
    ref2 = torch.softmax(q[:, idx2] @ k[:, idx2].transpose(1, 2), -1) @ v[:, idx2]
    assert torch.allclose(out[:, idx2], ref2, atol=1e-5)
    assert m(fa, fb)["seg"].shape == fa.shape


def test_noop_gate_is_identity_and_task_gate_is_not():
    noop, task = MSTAF(8, gate="noop"), MSTAF(8, gate="task")
    task.load_state_dict(noop.state_dict())
    fa, fb = torch.randn(2, 8, 8, 8), torch.randn(2, 8, 8, 8)
    rec: dict = {}
    out_noop = noop(fa, fb, record=rec)
    expected = rec["freq"] + noop.out_a(fa)
    assert torch.allclose(out_noop["interp"], expected, atol=1e-5)
    assert rec["gate"].shape == (2, 2)
    assert torch.allclose(rec["gate"].sum(-1), torch.ones(2))
    out_task = task(fa, fb)
    w1 = rec["gate"][:, 0, None, None, None]
    assert torch.allclose(out_task["interp"], 2 * w1 * rec["freq"] + noop.out_a(fa), atol=1e-5)


def test_literal_ctci_is_point_symmetric_and_fixed_is_not():
    torch.manual_seed(1)
    lit, fixed = CTCI(8, "literal"), CTCI(8, "fixed")
    fixed.load_state_dict(lit.state_dict())
    fi, fs = torch.randn(2, 8, 16, 16), torch.randn(2, 8, 16, 16)

    def point_flip(t: torch.Tensor) -> torch.Tensor:  # f(p) -> f(-p mod N)
        return torch.roll(torch.flip(t, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))

    for out in lit(fi, fs):
        assert torch.allclose(out, point_flip(out), rtol=1e-4, atol=1e-3 * out.abs().max().item())
    for out in fixed(fi, fs):
        assert not torch.allclose(out, point_flip(out), rtol=1e-2, atol=1e-2 * out.abs().max().item())


def test_alignment_shift_behaviour():
    """docs/design.md §3: the literal F_align is blind to circular shifts of its inputs; the fixed one follows."""
    xs, xt = torch.randn(1, 4, 16, 16), torch.randn(1, 4, 16, 16)
    roll = (lambda t: torch.roll(t, shifts=(5, 8), dims=(-2, -1)))  # noqa: E731
    lit, fixed = CTCI(4, "literal"), CTCI(4, "fixed")
    assert torch.allclose(lit.align(roll(xs), roll(xt)), lit.align(xs, xt), rtol=1e-4, atol=1e-3)
    a = fixed.align(xs, xt)
    assert torch.allclose(fixed.align(roll(xs), roll(xt)), roll(a), atol=1e-4)
    assert not torch.allclose(roll(a), a, atol=1e-2)


def _fft_blocks():
    """block, number of inputs, input offset. The inputs' spectra overflow fp16 at DC (64*64*20 = 81920 >
    65504) unless the FFT runs in fp32. The literal CTCI's *output* is itself a squared-magnitude spectrum
    (docs/design.md §3: ~3.6e5 at initialisation), which no fp16 tensor can hold: it is checked with bf16 only."""
    return {
        "tala": (TALA(8), 1, 20.0),
        "spectral": (SpectralFilter(8), 1, 20.0),
        "ctci_fixed": (CTCI(8, "fixed"), 2, 20.0),
        "ctci_literal": (CTCI(8, "literal"), 2, 20.0),
    }


HALF = (torch.float16, torch.bfloat16)


@pytest.mark.parametrize(("name", "dtype"), [
    (n, d) for n in ("tala", "spectral", "ctci_fixed", "ctci_literal") for d in HALF
    if (n, d) != ("ctci_literal", torch.float16)  # its output exceeds the fp16 range: see _fft_blocks
])  # fmt: skip
def test_fft_blocks_compute_in_fp32(name, dtype):
    block, n_in, offset = _fft_blocks()[name]
    block.eval()
    seen = []
    hook = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda mod, args: seen.extend(a.dtype for a in args if isinstance(a, torch.Tensor))
    )
    try:
        xs = [(offset + torch.rand(1, 8, 64, 64)).to(dtype) for _ in range(n_in)]
        out = block(*xs)
    finally:
        hook.remove()
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        assert o.dtype == dtype
        assert torch.isfinite(o.float()).all()
    assert len(seen) > n_in and all(d == torch.float32 for d in seen[n_in:])  # every sub-module saw fp32


def test_literal_ctci_output_exceeds_fp16_range():
    """Why the literal CTCI is not run in fp16: its output alone is beyond 65504 for ordinary inputs."""
    out_i, _ = CTCI(8, "literal")(torch.rand(1, 8, 64, 64), torch.rand(1, 8, 64, 64))
    assert out_i.abs().max() > torch.finfo(torch.float16).max


@pytest.mark.parametrize("name", ["mstaf", "ctci_fixed", "ctci_literal", "tala"])
def test_constant_map_gives_finite_gradients(name):
    """A constant map has exact zeros everywhere but DC in its spectrum (docs/design.md §3)."""
    x = torch.full((2, 8, 8, 8), 0.5, requires_grad=True)
    y = torch.full((2, 8, 8, 8), -0.25, requires_grad=True)
    if name == "mstaf":
        block = MSTAF(8)
        out = sum(v.square().mean() for v in block(x, y).values())
    elif name == "tala":
        block = TALA(8)
        out = block(x).square().mean()
    else:
        block = CTCI(8, name.split("_")[1])
        out = sum(o.square().mean() for o in block(x, y))
    out.backward()
    grads = [p.grad for p in block.parameters() if p.grad is not None] + [x.grad]
    assert all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
