"""``mtl_moe``: mixture of experts with task-agnostic gating (Tables 13/14, row "MoE").

Shared Swin encoder (the main model's, no TALA) -> at the bottleneck, E experts (default 4) on S4 and
one softmax gate computed from S4 and shared by both tasks -> the gated mixture feeds two separate
decoder towers (as ``mtl_shared_bottom``) with U-Net skips from the shared encoder:

    g = softmax(Linear_{8C->E}(GAP(S4)))                        (B, E), one gate for both tasks
    M = sum_e g_e * Expert_e(S4)                                (B, 8C, H/32, W/32)
    Expert_e(x) = x + Conv1x1(GELU(Conv3x3(GELU(Conv1x1_{8C->h}(x)))))_{h->8C},  h = 8C/4
    tower_t(M, S3, S2, S1) -> Head_t                            t in {interp, seg}

The experts sit at the bottleneck only (not at each decoder level): that is where the tasks' shared
representation ends and the towers begin, as in MoE / MMoE (Ma et al., 2018); with a single gate instead
of MMoE's per-task gates, the gating is task-agnostic. ``forward_intermediates`` records ``moe.gate``
(B, E) and ``moe.mix``.

Parameters: 23,372,546 (paper), 1,478,021 (small), 46,166 (tiny); thop 78.71 GMAC at 1×2×512².
"""

from __future__ import annotations

import torch
from torch import nn

from tascmt.models.baselines.base import Record
from tascmt.models.layers import init_weights
from tascmt.models.mtl.common import TASK_NAMES, MTLModel, TaskTower, record_feats
from tascmt.models.mtl.config import MoEConfig, mtl_size_config
from tascmt.models.registry import register_model


class ConvExpert(nn.Module):
    """Residual bottleneck conv block: x + Conv1x1(h->C) GELU Conv3x3(h->h) GELU Conv1x1(C->h) (x).

    (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(dim, hidden, 1), nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.GELU(),
            nn.Conv2d(hidden, dim, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TaskAgnosticMoE(nn.Module):
    """E experts and one softmax gate over GAP(x). x: (B, C, H, W) -> (mixture (B, C, H, W), gate (B, E))."""

    def __init__(self, dim: int, experts: int, hidden: int):
        super().__init__()
        self.experts = nn.ModuleList(ConvExpert(dim, hidden) for _ in range(experts))
        self.gate = nn.Linear(dim, experts)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.softmax(self.gate(x.mean(dim=(2, 3))), dim=-1)  # (B, E)
        outs = torch.stack([e(x) for e in self.experts], dim=1)  # (B, E, C, H, W)
        return (g[:, :, None, None, None] * outs).sum(dim=1), g  # (B, C, H, W), (B, E)


class MTLMoE(MTLModel):
    """Shared encoder, a task-agnostic mixture of experts at the bottleneck, two separate decoder towers."""

    config_cls = MoEConfig

    def __init__(self, config: MoEConfig):
        super().__init__(config)
        c4 = config.dims[-1]
        self.moe = TaskAgnosticMoE(c4, config.moe_experts, max(1, int(c4 * config.moe_hidden_ratio)))
        self.towers = nn.ModuleDict({t: TaskTower(config) for t in TASK_NAMES})
        self.apply(init_weights)

    def decode(self, skips: list[torch.Tensor], record: Record | None):
        mix, gate = self.moe(skips[3])  # (B, 8C, H/32, W/32), (B, E)
        if record is not None:
            record["moe.gate"] = gate
            record["moe.mix"] = mix
        feats = {t: mix for t in TASK_NAMES}  # both towers consume the same gated mixture
        for j in range(3):
            feats = {t: self.towers[t].stage(j, feats[t], skips[2 - j]) for t in TASK_NAMES}  # (B, C_j, h, w)
            record_feats(record, j, feats)
        return feats, {}

    def shared_parameters(self) -> list[nn.Parameter]:
        """The experts' last convs and the gate: the last layers both tasks pass through."""
        params = [p for e in self.moe.experts for p in e.body[-1].parameters()]
        return params + list(self.moe.gate.parameters())


@register_model(MTLMoE)
def mtl_moe(size: str) -> MoEConfig:
    """Multi-task baseline: mixture of experts at the bottleneck with one task-agnostic gate."""
    return mtl_size_config(MoEConfig, "mtl_moe", size)
