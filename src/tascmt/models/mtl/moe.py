"""``mtl_moe``: multi-gate mixture of experts (MMoE, Ma et al., 2018; Tables 13/14, row "MoE").

MMoE replaces the shared bottom network of Shared-Bottom by E expert networks and gives every task its
own softmax gate over the experts. Here the shared bottom is the main model's Swin encoder, so each
expert is such an encoder, and every encoder output a decoder uses (the skips S1..S3 and the bottleneck
S4) is a per-task gated mixture of the experts' outputs:

    S_k^e = Encoder_e(x)_k                         e = 1..E (default 4), k = 1..4;  (B, C_k, h_k, w_k)
    g_t = softmax(W_t · AvgPool_{G x G}(x) + b_t)  (B, E), one gate per task t in {interp, seg}
    M_t,k = sum_e g_t,e · S_k^e
    tower_t(M_t,4; M_t,3, M_t,2, M_t,1) -> Head_t  (the towers of ``mtl_shared_bottom``)

As in MMoE, the gates are linear in the input: the pair [X1, X3] is average-pooled to a fixed G x G grid
(``moe_gate_grid``, default 8; 2·G² inputs), so that the gate does not depend on the image size. One gate
per task weights the experts at all four scales alike (an expert is one network, as in MMoE).
``forward_intermediates`` records ``moe.gate.interp`` / ``moe.gate.seg`` (B, E), the experts' maps
``expert{e}.s{k}`` and the mixtures ``moe.{task}.s{k}``.

Cost: E encoders instead of one (E times the encoder's parameters and MACs; the towers and heads are
Shared-Bottom's). Parameters with E = 4: 53,807,008 (paper), 3,403,894 (small), 107,004 (tiny).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tascmt.models.baselines.base import Record
from tascmt.models.encoder import TascEncoder
from tascmt.models.layers import init_weights
from tascmt.models.mtl.common import TASK_NAMES, MTLModel, TaskTower, record_feats
from tascmt.models.mtl.config import MoEConfig, mtl_size_config
from tascmt.models.registry import register_model


class MTLMoE(MTLModel):
    """E expert encoders, one softmax gate per task over them, two separate decoder towers."""

    config_cls = MoEConfig

    def __init__(self, config: MoEConfig):
        super().__init__(config, shared_encoder=False)
        enc = config.encoder_config()
        self.experts = nn.ModuleList(TascEncoder(enc) for _ in range(config.moe_experts))
        g = config.moe_gate_grid
        self.gates = nn.ModuleDict(
            {t: nn.Linear(config.in_chans * g * g, config.moe_experts) for t in TASK_NAMES}
        )
        self.towers = nn.ModuleDict({t: TaskTower(config) for t in TASK_NAMES})
        self.apply(init_weights)

    def gate(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: (B, 2, H, W) -> {task: (B, E) softmax weights over the experts}."""
        pooled = F.adaptive_avg_pool2d(x, self.config.moe_gate_grid).flatten(1)  # (B, 2 G²)
        return {t: torch.softmax(self.gates[t](pooled), dim=-1) for t in TASK_NAMES}

    def task_features(self, x: torch.Tensor, record: Record | None):
        outs = [e(x, record, f"expert{i + 1}") for i, e in enumerate(self.experts)]  # E x [S1..S4]
        gates = self.gate(x)
        mixes: dict[str, list[torch.Tensor]] = {}
        for t in TASK_NAMES:
            w = gates[t][:, :, None, None, None]  # (B, E, 1, 1, 1)
            mixes[t] = [(w * torch.stack([o[k] for o in outs], dim=1)).sum(dim=1) for k in range(4)]
            if record is not None:
                record[f"moe.gate.{t}"] = gates[t]
                record.update({f"moe.{t}.s{k + 1}": m for k, m in enumerate(mixes[t])})
        feats = {t: mixes[t][3] for t in TASK_NAMES}  # (B, 8C, H/32, W/32)
        for j in range(3):
            feats = {t: self.towers[t].stage(j, feats[t], mixes[t][2 - j]) for t in TASK_NAMES}
            record_feats(record, j, feats)
        return feats, {}

    def shared_parameters(self) -> list[nn.Parameter]:
        """The experts' last MLP layers: the top of the (mixed) shared bottom, reached by both tasks."""
        return [p for e in self.experts for p in e.stages[-1][-1].mlp.fc2.parameters()]


@register_model(MTLMoE)
def mtl_moe(size: str) -> MoEConfig:
    """Multi-task baseline: multi-gate mixture of expert encoders (MMoE), one softmax gate per task."""
    return mtl_size_config(MoEConfig, "mtl_moe", size)
