"""ResFormer + DFE multi-task model (Bui et al.; docs/design.md §9): segmentation + multilabel classification.

Encoder: stem Conv7x7 stride 1 (in_chans -> d1) + BN-ReLU + max-pool (H/2), then four ResFormer stages
at H/2, H/4, H/8, H/16 (d1..d4 = 64/128/256/512 at paper size): a ResNet-34 layer (3/4/6/3 BasicBlocks)
fused with multi-scale conv patch tokens + ECA and a depth-2 Swin stage, ``serial``
(Swin(ResNet(x) + tokens)) or ``parallel`` (ResNet(x) + Swin(tokens)). The first stage's tokens embed the
image itself (stride 2); the later ones embed the previous stage's output (stride 2).
DFE refines every skip (e1, e2, e3) and, as in the authors' code, the bottleneck e4.
UNet decoder: ConvTranspose 2x2 stride 2 (C_in -> C_skip), concat with the refined skip, Conv3x3-BN-ReLU
(2·C_skip -> C_skip), three times (H/16 -> H/2); head: bilinear x2 and a 1x1 conv to the seg logits.
Classification: GAP(BN-ReLU(e3)) ++ GAP(BN-ReLU(e4)) (256 + 512 channels) -> FC 768->32 -> ReLU -> FC 32->K.

Re-implemented from the publication (the authors' repo has no licence). Differences from their code, by
choice: stages 2-4 embed their tokens with the same multi-scale strided convs + ECA as stage 1 (theirs:
Swin patch merging; ECA inside the Swin MLP), the Swin blocks use the project's shifted-window mask and
padding (``tascmt.models.layers``), there is no drop-path, and a ReLU sits between the two classifier FCs.

Parameter counts (``count_parameters``; in_chans 3, seg_classes 1, cls_classes 2; equal for both block
designs): paper **57,214,777** (encoder 32.31 M, of which stage 4 21.42 M; DFE 22.64 M, of which 17.3 M on
the 512-channel bottleneck; decoder 2.24 M; classification head 26,210); small 11,791,321; tiny 645,051.
OCT set-up (in_chans 1, seg_classes 4, cls_classes 3) at paper size: 57,206,813. thop MACs at
1x3x256x256 (paper): 50.0 G; CPU forward 4.5 s (1 thread, shared machine, no grad).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tascmt.models.dfe import DFE
from tascmt.models.layers import init_weights
from tascmt.models.registry import register_model
from tascmt.models.resformer.blocks import ResFormerStage, conv_bn_relu
from tascmt.models.resformer.config import SIZE_MULTIPLE, ResFormerConfig, size_config

Record = dict[str, torch.Tensor]


class ResFormerEncoder(nn.Module):
    """x: (B, C_in, H, W) -> [e1 (B, d1, H/2, W/2), e2 (H/4), e3 (H/8), e4 (B, d4, H/16, W/16)]."""

    def __init__(self, cfg: ResFormerConfig):
        super().__init__()
        d = cfg.dims
        self.stem = conv_bn_relu(cfg.in_chans, d[0], k=7)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        common = dict(
            swin_depth=cfg.swin_depth, window=cfg.window_size, mlp_ratio=cfg.mlp_ratio, block=cfg.block
        )
        stages = [
            ResFormerStage(
                d[0],
                d[0],
                cfg.res_depths[0],
                1,
                cfg.heads[0],
                token_in=cfg.in_chans,
                token_stride=2,
                **common,
            )
        ]
        stages += [
            ResFormerStage(d[i - 1], d[i], cfg.res_depths[i], 2, cfg.heads[i], **common) for i in (1, 2, 3)
        ]
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f = self.pool(self.stem(x))  # (B, d1, H/2, W/2)
        feats = []
        for i, stage in enumerate(self.stages):
            f = stage(f, x if i == 0 else None)  # the first stage's tokens come from the image
            feats.append(f)
        return feats


class DecoderBlock(nn.Module):
    """ConvTranspose 2x2 stride 2 (C_x -> C_s), concat with the skip, Conv3x3-BN-ReLU (2·C_s -> C_s).

    x: (B, C_x, h, w), skip: (B, C_s, 2h, 2w) -> (B, C_s, 2h, 2w).
    """

    def __init__(self, c_x: int, c_skip: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(c_x, c_skip, 2, stride=2)
        self.conv = conv_bn_relu(2 * c_skip, c_skip)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)  # (B, C_s, 2h, 2w)
        return self.conv(torch.cat([x, skip], dim=1))


class ClassificationHead(nn.Module):
    """GAP of BN-ReLU(e3) and BN-ReLU(e4) -> concat (d3 + d4) -> FC -> ReLU -> FC -> (B, K) logits."""

    def __init__(self, c3: int, c4: int, hidden: int, n_classes: int):
        super().__init__()
        self.norm3 = nn.Sequential(nn.BatchNorm2d(c3), nn.ReLU(inplace=True))
        self.norm4 = nn.Sequential(nn.BatchNorm2d(c4), nn.ReLU(inplace=True))
        self.fc1 = nn.Linear(c3 + c4, hidden)
        self.fc2 = nn.Linear(hidden, n_classes)

    def reset_parameters(self) -> None:
        """Xavier-normal FC weights (as in the authors' code): with the project's trunc-normal(0.02) the two
        stacked FCs start with vanishing gradients and the classifier barely moves in short runs."""
        for fc in (self.fc1, self.fc2):
            nn.init.xavier_normal_(fc.weight)
            nn.init.zeros_(fc.bias)

    def forward(self, e3: torch.Tensor, e4: torch.Tensor) -> torch.Tensor:
        g = torch.cat([self.norm3(e3).mean(dim=(2, 3)), self.norm4(e4).mean(dim=(2, 3))], dim=1)  # (B, c3+c4)
        return self.fc2(F.relu(self.fc1(g)))


class ResFormerMTL(nn.Module):
    """x (B, in_chans, H, W) in [0, 1], H and W multiples of 16 ->
    {"seg_logits": (B, seg_classes, H, W), "cls_logits": (B, cls_classes)}."""

    config_cls = ResFormerConfig
    size_multiple = SIZE_MULTIPLE

    def __init__(self, config: ResFormerConfig):
        super().__init__()
        cfg = self.config = config
        d = cfg.dims
        self.encoder = ResFormerEncoder(cfg)
        self.dfe = nn.ModuleList(DFE(c, cfg.dfe_dilations) for c in d)  # e1, e2, e3 and the bottleneck e4
        self.decoder = nn.ModuleList(DecoderBlock(d[i + 1], d[i]) for i in (2, 1, 0))
        self.seg_head = nn.Conv2d(d[0], cfg.seg_classes, 1)
        self.cls_head = ClassificationHead(d[2], d[3], cfg.cls_hidden, cfg.cls_classes)
        self.apply(init_weights)
        self.cls_head.reset_parameters()

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` naming the shape unless x is (B, in_chans, H, W) with H, W multiples of 16."""
        c = self.config.in_chans
        if x.ndim != 4 or x.shape[1] != c:
            raise ValueError(f"{self.config.name}: input must be (B, {c}, H, W), got {tuple(x.shape)}")
        for axis, n in zip("HW", x.shape[-2:]):
            if n <= 0 or n % SIZE_MULTIPLE:
                raise ValueError(f"{self.config.name}: {axis}={n} is not a multiple of {SIZE_MULTIPLE}")

    def _forward(self, x: torch.Tensor, record: Record | None) -> dict[str, torch.Tensor]:
        feats = self.encoder(x)  # [e1, e2, e3, e4]
        refined = [dfe(f) for dfe, f in zip(self.dfe, feats)]
        d = refined[3]  # (B, d4, H/16, W/16)
        decoded = []
        for block, skip in zip(self.decoder, refined[2::-1]):
            d = block(d, skip)  # H/8, H/4, H/2
            decoded.append(d)
        seg = self.seg_head(F.interpolate(d, size=x.shape[-2:], mode="bilinear", align_corners=False))
        if record is not None:
            names = ("e1", "e2", "e3", "e4")
            record.update({f"enc.{n}": f for n, f in zip(names, feats)})
            record.update({f"dfe.{n}": f for n, f in zip(names, refined)})
            record.update({f"dec.{i + 1}": f for i, f in enumerate(decoded)})
        return {"seg_logits": seg, "cls_logits": self.cls_head(feats[2], feats[3])}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: (B, in_chans, H, W) -> {"seg_logits": (B, seg_classes, H, W), "cls_logits": (B, K)}."""
        self.check_input(x)
        return self._forward(x, None)

    def forward_intermediates(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], Record]:
        """Like ``forward`` and also the encoder maps, DFE-refined skips and decoder maps by name."""
        self.check_input(x)
        record: Record = {}
        return self._forward(x, record), record

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"seg": probabilities (B, seg_classes, H, W) (sigmoid if binary else softmax),
        "cls": sigmoid probabilities (B, K)}; no gradients, mode unchanged (call ``eval()`` first)."""
        out = self.forward(x)
        seg = out["seg_logits"]
        seg = torch.sigmoid(seg) if self.config.binary else torch.softmax(seg, dim=1)
        return {"seg": seg, "cls": torch.sigmoid(out["cls_logits"])}

    def shared_parameters(self) -> list[nn.Parameter]:
        """The last layer shared by both tasks: the encoder's final stage."""
        return list(self.encoder.stages[-1].parameters())


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@register_model(ResFormerMTL)
def resformer_mtl(size: str) -> ResFormerConfig:
    """ResFormer + DFE multi-task model (seg + multilabel cls), serial ResNet->Swin blocks."""
    return size_config("resformer_mtl", size)


@register_model(ResFormerMTL)
def resformer_mtl_parallel(size: str) -> ResFormerConfig:
    """ResFormer + DFE multi-task model with the parallel block design (ResNet + Swin on the same input)."""
    return size_config("resformer_mtl_parallel", size, block="parallel")


def predictions(outputs: dict[str, torch.Tensor], binary: bool) -> tuple[np.ndarray, np.ndarray]:
    """(label maps (B, H, W) int64, multilabel predictions (B, K) int64) from the model outputs:
    sigmoid > 0.5 (binary) or argmax (multi-class) for segmentation, sigmoid > 0.5 for classification."""
    seg = outputs["seg_logits"].detach().float()
    seg_pred = (seg[:, 0] > 0).long() if binary else seg.argmax(dim=1)
    cls_pred = (outputs["cls_logits"].detach().float() > 0).long()
    return seg_pred.cpu().numpy(), cls_pred.cpu().numpy()
