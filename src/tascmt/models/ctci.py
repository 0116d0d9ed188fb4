"""CTCI: cross-task spectral alignment between the interp and seg decoder branches (docs/design.md §3).

Parameters: 33C^2 + 10C.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tascmt.models.layers.helpers import float32_block, unit_phasor

CTCI_MODES = ("fixed", "literal")


class CTCI(nn.Module):
    """``Xs = SiLU D3 SiLU D2 SiLU D1 (Fi)`` (3x3, dilation 1/2/3), ``Xt = Conv1x1(Fs)``, then alignment:

    - ``literal`` (reference code): ``F_align = |FFT2(Xs) conj(FFT2(Xt))|`` (norm "backward"), a magnitude
      spectrum: point-symmetric and blind to circular shifts. Outputs ``Conv_i(F_gate)``, ``Conv_s(F_gate)``
      *replace* the branch features.
    - ``fixed`` (default): FFTs with norm "ortho"; ``F_align = Re(iFFT2(|Xs_f conj Xt_f| * Xs_f/|Xs_f|))``
      (the cross-spectrum magnitude as a zero-phase filter on Xs, back in the spatial domain). Outputs are
      residual: ``Fi + Conv_i(F_gate)``, ``Fs + Conv_s(F_gate)``.

    Both: ``F_bn = BN(F_align)``, ``F_ca = F_bn * sigmoid(Conv1x1(GAP(F_bn)))``,
    ``G = sigmoid(GELU(Conv1x1(cat(F_ca, F_align))))``, ``F_gate = G * F_align``.
    The whole block computes in fp32 and returns the input dtype.
    """

    def __init__(self, dim: int, mode: str = "fixed"):
        super().__init__()
        if mode not in CTCI_MODES:
            raise ValueError(f"ctci mode={mode!r} is not one of {CTCI_MODES}")
        self.mode = mode
        self.d1 = nn.Conv2d(dim, dim, 3, padding=1, dilation=1)
        self.d2 = nn.Conv2d(dim, dim, 3, padding=2, dilation=2)
        self.d3 = nn.Conv2d(dim, dim, 3, padding=3, dilation=3)
        self.xt_conv = nn.Conv2d(dim, dim, 1)
        self.bn = nn.BatchNorm2d(dim)
        self.ca_conv = nn.Conv2d(dim, dim, 1)
        self.gate_conv = nn.Conv2d(2 * dim, dim, 1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.out_i = nn.Conv2d(dim, dim, 1)
        self.out_s = nn.Conv2d(dim, dim, 1)

    def align(self, xs: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        """xs, xt: (B, C, H, W) real -> F_align (B, C, H, W) real."""
        if self.mode == "literal":
            cross = torch.fft.fft2(xs, dim=(-2, -1)) * torch.fft.fft2(xt, dim=(-2, -1)).conj()
            return cross.abs()
        xs_f = torch.fft.fft2(xs, dim=(-2, -1), norm="ortho")  # (B, C, H, W) complex
        xt_f = torch.fft.fft2(xt, dim=(-2, -1), norm="ortho")
        filtered = (xs_f * xt_f.conj()).abs() * unit_phasor(xs_f)
        return torch.fft.ifft2(filtered, dim=(-2, -1), norm="ortho").real

    @float32_block
    def forward(
        self, f_i: torch.Tensor, f_s: torch.Tensor, record: dict[str, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """f_i, f_s: (B, C, H, W) -> (f_i', f_s'), same shapes. ``record`` receives ``align`` and ``gate``."""
        if f_i.shape != f_s.shape:
            raise ValueError(f"CTCI inputs differ in shape: f_i {tuple(f_i.shape)} vs f_s {tuple(f_s.shape)}")
        xs = F.silu(self.d3(F.silu(self.d2(F.silu(self.d1(f_i))))))  # (B, C, H, W)
        xt = self.xt_conv(f_s)  # (B, C, H, W)
        f_align = self.align(xs, xt)  # (B, C, H, W)
        f_bn = self.bn(f_align)
        f_ca = f_bn * torch.sigmoid(self.ca_conv(self.gap(f_bn)))  # (B, C, H, W)
        gate = torch.sigmoid(F.gelu(self.gate_conv(torch.cat([f_ca, f_align], dim=1))))  # (B, C, H, W)
        f_gate = gate * f_align
        if record is not None:
            record.update(align=f_align, gate=gate)
        if self.mode == "literal":
            return self.out_i(f_gate), self.out_s(f_gate)
        return f_i + self.out_i(f_gate), f_s + self.out_s(f_gate)
