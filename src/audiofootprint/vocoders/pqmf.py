"""Pseudo-QMF (cosine-modulated) filter bank used by Multi-band MelGAN.

Multi-band MelGAN (Yang et al. 2020, arXiv:2005.05106) predicts ``subbands``
critically-sampled sub-band signals and merges them with a PQMF synthesis
bank (Nguyen 1994, "Near-perfect-reconstruction pseudo-QMF banks"). The
prototype low-pass filter is a Kaiser-windowed sinc (Lin & Vaidyanathan 1998,
"A Kaiser window approach for the design of prototype filters of cosine
modulated filterbanks"); the defaults (62 taps, cutoff ratio 0.142,
beta 9.0, 4 bands) are those of kan-bayashi/ParallelWaveGAN
``parallel_wavegan/layers/pqmf.py``, which the official MB-MelGAN
checkpoints were trained with.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PQMF", "prototype_filter"]


def prototype_filter(taps: int = 62, cutoff_ratio: float = 0.142, beta: float = 9.0) -> torch.Tensor:
    """Kaiser-windowed ideal low-pass with ``taps + 1`` coefficients (float64).

    ``cutoff_ratio`` is the cut-off as a fraction of the Nyquist frequency.
    """
    if taps % 2:
        raise ValueError("taps must be even")
    if not 0.0 < cutoff_ratio < 1.0:
        raise ValueError("cutoff_ratio must lie in (0, 1)")
    n = torch.arange(taps + 1, dtype=torch.float64) - taps / 2
    wc = math.pi * cutoff_ratio
    # sin(wc n) / (pi n), with its limit wc / pi = cutoff_ratio at n = 0.
    ideal = torch.where(n == 0, torch.full_like(n, cutoff_ratio), torch.sin(wc * n) / (math.pi * n))
    window = torch.kaiser_window(taps + 1, periodic=False, beta=beta, dtype=torch.float64)
    return ideal * window


class PQMF(nn.Module):
    """Analysis / synthesis with a ``subbands``-band pseudo-QMF bank.

    ``analysis``: ``[B, 1, T] -> [B, subbands, T // subbands]``;
    ``synthesis``: ``[B, subbands, L] -> [B, 1, L * subbands]``.
    The filters are fixed (buffers, not parameters) and are not written to
    state dicts, so generator checkpoints stay free of them.
    """

    def __init__(self, subbands: int = 4, taps: int = 62, cutoff_ratio: float = 0.142, beta: float = 9.0):
        super().__init__()
        self.subbands = int(subbands)
        self.taps = int(taps)
        self.cutoff_ratio = float(cutoff_ratio)
        self.beta = float(beta)
        h = prototype_filter(self.taps, cutoff_ratio, beta)
        n = torch.arange(self.taps + 1, dtype=torch.float64) - self.taps / 2
        k = torch.arange(self.subbands, dtype=torch.float64).unsqueeze(1)
        phase = (2 * k + 1) * (math.pi / (2 * self.subbands)) * n
        sign = torch.where(k % 2 == 0, 1.0, -1.0) * (math.pi / 4)
        analysis = 2 * h * torch.cos(phase + sign)  # [K, taps + 1]
        synthesis = 2 * h * torch.cos(phase - sign)  # [K, taps + 1]
        self.register_buffer("analysis_filter", analysis.float().unsqueeze(1), persistent=False)  # [K, 1, N]
        self.register_buffer("synthesis_filter", synthesis.float().unsqueeze(0), persistent=False)  # [1, K, N]

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.taps // 2
        y = F.conv1d(F.pad(x, (pad, pad)), self.analysis_filter)
        return y[..., :: self.subbands]

    def synthesis(self, x: torch.Tensor) -> torch.Tensor:
        b, k, length = x.shape
        if k != self.subbands:
            raise ValueError(f"expected {self.subbands} sub-bands, got {k}")
        # Zero-stuffing upsampler; the gain K restores the power lost by decimation.
        up = x.new_zeros(b, k, length * self.subbands)
        up[..., :: self.subbands] = x * self.subbands
        pad = self.taps // 2
        return F.conv1d(F.pad(up, (pad, pad)), self.synthesis_filter)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Synthesis (the direction a vocoder needs)."""
        return self.synthesis(x)
