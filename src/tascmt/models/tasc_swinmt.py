"""TASC-SwinMT (docs/design.md §3): a Swin encoder with TALA, a two-branch decoder with MSTAF and CTCI, two
heads.

One configurable class covers the paper model, the reference-code behaviour, the module ablations
(IndEnc + modules) and the single-task models; the named variants are registered at the bottom.

Forward, shared encoder, both tasks (i = 1..3; S1..S4 = encoder stage outputs, Fi = Fs = S4 at first):

    Ui, Us = PE_i(Fi), PE_i(Fs)
    Out_int, Out_seg = MSTAF_i(Ui, S_{4-i});  Fi = Out_int;  Fs = Out_seg (+ Us when seg_carry)
    Fi, Fs = Blk_i(Fi), Blk_i(Fs)             # shared weights
    Fi, Fs = CTCI_i(Fi, Fs)
    interp = sigma(Head_i(Fi)) or (X1+X3)/2 + Head_i(Fi);  seg_logits = Head_s(Fs)

Module ablations (docs/design.md §3; the paper's Tables 8/9) are built on IndEnc, ``shared_encoder=False``:
one complete encoder per task (each with TALA when it is on), and each branch uses its own encoder's skips.
Everything else keeps the full model's structure, so a row differs from IndEnc only by the named modules:

| variant                  | TALA (both encoders) | fusion per stage                      | CTCI     |
|--------------------------|----------------------|---------------------------------------|----------|
| tasc_indenc              | identity             | Conv1x1(cat(U_t, S_t)), per branch    | identity |
| tasc_indenc_tala         | F + TALA(F)          | Conv1x1                               | identity |
| tasc_indenc_ctci         | identity             | Conv1x1                               | CTCI     |
| tasc_indenc_mstaf        | identity             | MSTAF(U_t, S_t), per branch           | identity |
| ..._tala_ctci / _tala_mstaf / _ctci_mstaf: the two named modules on                              |
| tasc_swinmt (full model) | shared encoder, TALA | one MSTAF(Ui, S) call, both outputs   | CTCI     |

With two skips a single MSTAF call (decoder feature vs one skip) cannot serve both branches, so the
same MSTAF weights are called once per branch: ``MSTAF_i(Ui, S^int)["interp"]`` gives Fi and
``MSTAF_i(Us, S^seg)["seg"] (+ Us)`` gives Fs ("two MSTAF calls per stage, shared weights",
as in the full model; parameters unchanged, MSTAF compute doubled). Decoder expands, blocks and the Conv1x1
fusion are shared by the branches, as the full model's decoder is. The "+X" rows therefore measure X
on top of task-separate encoders; "full model vs IndEnc+TALA+CTCI+MSTAF" (not a paper row) would
isolate the shared encoder.

Single-task models (``tasc_interp``, ``tasc_seg``) have one encoder with TALA, one branch with MSTAF
(only that task's output conv), and no CTCI (it needs two branches).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from tascmt.models.config import TascConfig, size_config
from tascmt.models.ctci import CTCI
from tascmt.models.encoder import Record, TascEncoder
from tascmt.models.layers import (
    PatchExpand,
    PixelShuffleHead,
    SwinTransformerBlock,
    check_input_size,
    init_weights,
)
from tascmt.models.layers.helpers import no_autocast, public_outputs
from tascmt.models.mstaf import MSTAF
from tascmt.models.registry import register_model

__all__ = ["TascEncoder", "TascSwinMT"]  # TascEncoder lives in encoder.py; re-exported here


def _unhalved(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 when it is float16/bfloat16, else unchanged (float64 stays float64)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class TascSwinMT(nn.Module):
    """The TASC-SwinMT family; see the module docstring. ``model(x)`` with x (B, 2, H, W) in [0, 1], H and W
    multiples of 32, returns ``{"interp": (B, 1, H, W), "seg_logits": (B, 3, H, W)}`` (the tasks it has)."""

    config_cls = TascConfig

    def __init__(self, config: TascConfig):
        super().__init__()
        cfg = self.config = config
        self.tasks = tuple(t for t in ("interp", "seg") if t in cfg.tasks)
        self.two_branch = len(self.tasks) == 2
        enc_names = ["shared"] if cfg.shared_encoder or not self.two_branch else list(self.tasks)
        self.encoders = nn.ModuleDict({n: TascEncoder(cfg) for n in enc_names})
        dec_dims = cfg.dims[-2::-1]  # (4C, 2C, C): decoder stage widths
        self.expands = nn.ModuleList(PatchExpand(2 * d) for d in dec_dims)
        if cfg.use_mstaf:
            self.fusions = nn.ModuleList(
                MSTAF(d, cfg.mstaf_attn, cfg.mstaf_gate, self.tasks, cfg.mstaf_scale_div, cfg.window,
                      cfg.mstaf_pool)
                for d in dec_dims
            )
        else:
            self.fusions = nn.ModuleList(nn.Conv2d(2 * d, d, 1) for d in dec_dims)
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(d, h, cfg.window, 0, cfg.mlp_ratio, cfg.shift_mask)
            for d, h in zip(dec_dims, cfg.dec_heads)
        )
        self.ctcis = nn.ModuleList(CTCI(d, cfg.ctci) for d in dec_dims) if cfg.use_ctci else None
        out_chans = {"interp": 1, "seg": cfg.seg_classes}
        self.heads = nn.ModuleDict({t: PixelShuffleHead(cfg.dims[0], out_chans[t]) for t in self.tasks})
        self.apply(init_weights)
        if cfg.init == "stable":
            self._scale_output_convs(cfg.stable_init_gain)

    @torch.no_grad()
    def _scale_output_convs(self, gain: float) -> None:
        """``init="stable"``: shrink the convolutions that write into the outputs and the CTCI residuals."""
        convs = [head.conv3 for head in self.heads.values()]
        if self.ctcis is not None and self.config.ctci == "fixed":
            convs += [c for ctci in self.ctcis for c in (ctci.out_i, ctci.out_s)]
        for conv in convs:
            conv.weight.mul_(gain)

    # ------------------------------------------------------------------ decoder pieces
    def _fuse(self, j: int, u: dict[str, torch.Tensor], skip: dict[str, torch.Tensor], record: Record | None):
        """Stage ``j`` fusion of expanded features ``u`` with skips; returns the new branch features."""
        fusion = self.fusions[j]
        if not self.config.use_mstaf:
            return {t: fusion(torch.cat([u[t], skip[t]], dim=1)) for t in self.tasks}  # (B, C, h, w) each
        shared_call = self.two_branch and "shared" in self.encoders
        if shared_call:  # one MSTAF call on (Ui, S) gives both outputs
            sub = {} if record is not None else None
            out = fusion(u["interp"], skip["interp"], record=sub)
            subs = {"mstaf": sub}
        else:  # one call per branch on (U_t, S_t), same weights
            out, subs = {}, {}
            for t in self.tasks:
                subs[f"mstaf_{t}"] = {} if record is not None else None
                out.update(fusion(u[t], skip[t], outputs=(t,), record=subs[f"mstaf_{t}"]))
        if "seg" in out and self.config.seg_carry:
            out["seg"] = out["seg"] + u["seg"]
        if record is not None:
            for tag, sub in subs.items():
                record.update({f"dec{j + 1}.{tag}.{k}": v for k, v in sub.items()})
        return out

    def forward_intermediates(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], Record]:
        """Like ``forward`` and also a dict of named maps: encoder skips ``enc.s1..s4`` (``enc_interp``/
        ``enc_seg`` for IndEnc), TALA ``enc.tala{k}.freq``, MSTAF ``dec{i}.mstaf.{attn,freq,gate}``, CTCI
        ``dec{i}.ctci.{align,gate}``, decoder features ``dec{i}.{interp,seg}``."""
        record: Record = {}
        return self._forward(x, record), record

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: (B, 2, H, W) -> {"interp": (B, 1, H, W), "seg_logits": (B, 3, H, W)} (present tasks only)."""
        return self._forward(x, None)

    def _forward(self, x: torch.Tensor, record: Record | None) -> dict[str, torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != self.config.in_chans:
            raise ValueError(f"input must be (B, {self.config.in_chans}, H, W), got {tuple(x.shape)}")
        check_input_size(x.shape[-2], x.shape[-1])
        skips = {}
        for name, enc in self.encoders.items():
            s = enc(x, record, "enc" if name == "shared" else f"enc_{name}")
            skips.update({t: s for t in self.tasks} if name == "shared" else {name: s})
        feats = {t: skips[t][3] for t in self.tasks}  # bottleneck (B, 8C, H/32, W/32)
        # The literal CTCI outputs an unnormalised magnitude spectrum: at 512² the decoder features reach
        # ~1e6 after the first CTCI and ~1e9 after the third, far beyond float16's 65504. With
        # ctci="literal" everything from the first CTCI on (its output, the later decoder stages, the
        # heads) therefore runs in float32 with autocast off; the maths are unchanged. Before it (encoder,
        # first decoder stage) autocast applies as usual, and without autocast nothing changes.
        fp32_tail = self.ctcis is not None and self.config.ctci == "literal"
        with contextlib.ExitStack() as precision:
            for j in range(3):
                # PE is applied to both branches even where they are equal (stage 1 of the shared encoder)
                # and where Us is then discarded (ref): the reference does the same, and thop counts it.
                u = {t: self.expands[j](feats[t]) for t in self.tasks}  # (B, C_j, 2h, 2w)
                skip = {t: skips[t][2 - j] for t in self.tasks}
                if fp32_tail and j > 0:  # encoder skips may be half precision
                    skip = {t: _unhalved(s) for t, s in skip.items()}
                feats = self._fuse(j, u, skip, record)
                feats = {t: self.blocks[j](f) for t, f in feats.items()}
                if self.ctcis is not None:
                    sub = {} if record is not None else None
                    if fp32_tail:  # float32 in, so the fp32 CTCI block does not cast its output back down
                        feats = {t: _unhalved(f) for t, f in feats.items()}
                    feats["interp"], feats["seg"] = self.ctcis[j](feats["interp"], feats["seg"], record=sub)
                    if fp32_tail and j == 0:
                        precision.enter_context(no_autocast(x.device.type))
                    if record is not None:
                        record.update({f"dec{j + 1}.ctci.{k}": v for k, v in sub.items()})
                if record is not None:
                    record.update({f"dec{j + 1}.{t}": f for t, f in feats.items()})
            out = {}
            if "interp" in self.tasks:
                r = self.heads["interp"](feats["interp"])  # (B, 1, H, W)
                if self.config.interp_output == "direct":
                    out["interp"] = torch.sigmoid(r)
                else:
                    out["interp"] = self.interp_base(x) + r
            if "seg" in self.tasks:
                out["seg_logits"] = self.heads["seg"](feats["seg"])  # (B, 3, H, W)
        return out

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"interp": clamp(interp, 0, 1), "seg": sigmoid(seg_logits)} without gradients.

        Does not change train/eval mode: call ``model.eval()`` first for inference.
        """
        return public_outputs(self.forward(x), x, self.interp_is_residual(), base=self.interp_base(x))

    def interp_is_residual(self) -> bool:
        """True with ``interp_output="residual"``: ``predict`` also returns the raw ``"interp_residual"``."""
        return self.config.interp_output == "residual"

    def interp_base(self, x: torch.Tensor) -> torch.Tensor:
        """What the residual head corrects (B, 1, H, W): (X1 + X3)/2, or the flow midpoint x[:, 2:3]."""
        if self.config.interp_base == "flow":
            return x[:, 2:3]
        return 0.5 * (x[:, 0:1] + x[:, 1:2])

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters of the last layer both tasks pass through (for GradNorm): the last CTCI's gate conv,
        or (without CTCI) the last decoder block's second MLP layer, whose weights both branches share."""
        layer = self.ctcis[-1].gate_conv if self.ctcis is not None else self.blocks[-1].mlp.fc2
        return list(layer.parameters())


# ---------------------------------------------------------------------- named variants
def _ablation(name: str, tala: bool, mstaf: bool, ctci: bool):
    def make(size: str) -> TascConfig:
        return size_config(name, size, shared_encoder=False, use_tala=tala, use_mstaf=mstaf, use_ctci=ctci)

    make.__name__ = name
    mods = [m for m, on in (("TALA", tala), ("CTCI", ctci), ("MSTAF", mstaf)) if on]
    make.__doc__ = "IndEnc ablation (two encoders)" + (" + " + " + ".join(mods) if mods else "") + "."
    return make


@register_model(TascSwinMT)
def tasc_swinmt(size: str) -> TascConfig:
    """TASC-SwinMT with the project fixes (mask, TALA residual, fixed CTCI, seg carry, task gate, SDPA)."""
    return size_config("tasc_swinmt", size)


@register_model(TascSwinMT)
def tasc_swinmt_ref(size: str) -> TascConfig:
    """Public-code behaviour: no shift mask, TALA replaces, literal CTCI, seg discarded, no-op gate.

    Attention stays SDPA (same maths, O(N) memory); pass ``mstaf_attn="materialised"`` to reproduce the
    reference's N x N matrix and its memory use.
    """
    return size_config(
        "tasc_swinmt_ref",
        size,
        shift_mask=False,
        tala_mode="replace",
        ctci="literal",
        seg_carry=False,
        mstaf_gate="noop",
    )


ABLATIONS = {
    "tasc_indenc": (False, False, False),
    "tasc_indenc_tala": (True, False, False),
    "tasc_indenc_ctci": (False, False, True),
    "tasc_indenc_mstaf": (False, True, False),
    "tasc_indenc_tala_ctci": (True, False, True),
    "tasc_indenc_tala_mstaf": (True, True, False),
    "tasc_indenc_ctci_mstaf": (False, True, True),
}
for _name, (_tala, _mstaf, _ctci) in ABLATIONS.items():
    register_model(TascSwinMT, _name)(_ablation(_name, _tala, _mstaf, _ctci))


@register_model(TascSwinMT)
def tasc_interp(size: str) -> TascConfig:
    """Single-task interpolation: encoder + TALA, MSTAF decoder, interp head (no CTCI)."""
    return size_config("tasc_interp", size, tasks=("interp",), use_ctci=False)


@register_model(TascSwinMT)
def tasc_seg(size: str) -> TascConfig:
    """Single-task segmentation: encoder + TALA, MSTAF decoder, seg head (no CTCI)."""
    return size_config("tasc_seg", size, tasks=("seg",), use_ctci=False)
