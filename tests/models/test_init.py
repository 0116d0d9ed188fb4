"""``init="stable"``: the untrained model starts near its identity paths; ``init="paper"`` is the paper's (docs/design.md §3)."""

from __future__ import annotations

import torch

from tascmt.models import create_model


def _outputs(**kw):
    torch.manual_seed(0)
    model = create_model("tasc_swinmt", size="tiny", **kw).eval()
    x = torch.rand(2, 2, 64, 64)
    with torch.no_grad():
        return x, model(x)


def test_stable_init_starts_near_linear_and_half_probability():
    x, out = _outputs(init="stable", interp_output="residual")
    linear = 0.5 * (x[:, :1] + x[:, 1:])
    assert (out["interp"] - linear).abs().mean() < 0.05
    assert out["seg_logits"].std() < 0.2 and out["seg_logits"].abs().max() < 2.0


def test_stable_init_is_smaller_than_paper_init_and_same_parameter_count():
    _, stable = _outputs(init="stable")
    _, paper = _outputs(init="paper")
    assert stable["seg_logits"].std() < 0.1 * paper["seg_logits"].std()
    n = [sum(p.numel() for p in create_model("tasc_swinmt", size="tiny", init=i).parameters())
         for i in ("paper", "stable")]
    assert n[0] == n[1]
