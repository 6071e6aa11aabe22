"""Parallel WaveGAN generator (Yamamoto, Song & Kim, arXiv 1910.11480).

A non-causal, non-autoregressive WaveNet that turns Gaussian noise into a waveform,
conditioned on a mel-spectrogram that is first upsampled to the sample rate by a
"conv-in + upsampling" network (a 1-D convolution over +-``aux_context_window`` frames,
then per scale nearest-neighbour stretching followed by a [1 x (2s+1)] 2-D smoothing
convolution).

Official configuration reproduced (the constructor's defaults; the zoo entry, with the official
parameter count and its source, is ``conf/vocoder/parallel_wavegan.yaml``): kan-bayashi/ParallelWaveGAN,
``egs/ljspeech/voc1/conf/parallel_wavegan.v1.yaml`` (30 layers in 3 dilation cycles,
residual 64 / gate 128 / skip 64 channels, kernel 3, ``ConvInUpsampleNetwork`` with
scales 4-4-4-4, aux context window 2; 22.05 kHz, FFT 1024, hop 256, 80 mels 80-7600 Hz).

Input convention (as in that recipe): log10 mel magnitude (``log10(max(mel, 1e-10))``,
Slaney mel filters from librosa) normalised per band to zero mean / unit variance with the
training-set statistics.

The module is the *inference* graph: weight normalisation (used for training) is
folded into plain weights, as the official decoding script does with
``remove_weight_norm``. :meth:`ParallelWaveGAN.load_checkpoint_state` reads the official
checkpoint layout (``{"model": {"generator": ...}}`` with ``weight_g``/``weight_v``) and
folds it.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .base import MelSettings, Vocoder, resolve_mel
from .layers import fold_weight_norm, unwrap_checkpoint

PWG_LJSPEECH_MEL = MelSettings(sample_rate=22050, n_fft=1024, win_length=1024, hop_length=256,
                               n_mels=80, f_min=80.0, f_max=7600.0)


class _GatedResidualBlock(nn.Module):
    """Dilated conv + mel conditioning, tanh*sigmoid gate, residual and skip outputs."""

    def __init__(self, residual: int, gate: int, skip: int, aux: int, kernel_size: int,
                 dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(residual, gate, kernel_size, dilation=dilation,
                              padding=(kernel_size - 1) // 2 * dilation)
        self.conv1x1_aux = nn.Conv1d(aux, gate, 1, bias=False)
        self.conv1x1_out = nn.Conv1d(gate // 2, residual, 1)
        self.conv1x1_skip = nn.Conv1d(gate // 2, skip, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.conv(x) + self.conv1x1_aux(cond)
        filt, gate = h.chunk(2, dim=1)
        h = torch.tanh(filt) * torch.sigmoid(gate)
        return (self.conv1x1_out(h) + x) * math.sqrt(0.5), self.conv1x1_skip(h)


class _ConvInUpsampler(nn.Module):
    """Context convolution over mel frames, then nearest stretch + smoothing per scale."""

    def __init__(self, n_mels: int, aux_context_window: int, scales: list[int]):
        super().__init__()
        self.context = aux_context_window
        self.conv_in = nn.Conv1d(n_mels, n_mels, 2 * aux_context_window + 1, bias=False)
        self.scales = [int(s) for s in scales]
        self.smooth = nn.ModuleList(
            nn.Conv2d(1, 1, (1, 2 * s + 1), padding=(0, s), bias=False) for s in self.scales
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        # replicate-pad so that the valid context convolution keeps the frame count
        c = F.pad(mel, (self.context, self.context), mode="replicate")
        c = self.conv_in(c).unsqueeze(1)  # [B, 1, n_mels, T]
        for scale, conv in zip(self.scales, self.smooth):
            c = conv(torch.repeat_interleave(c, scale, dim=-1))
        return c.squeeze(1)


class ParallelWaveGAN(Vocoder):
    """Parallel WaveGAN generator: noise + mel -> waveform in one pass."""

    feature_convention = "log10 mel magnitude (Slaney), z-normalised with dataset statistics"

    def __init__(
        self,
        layers: int = 30,
        stacks: int = 3,
        residual_channels: int = 64,
        gate_channels: int = 128,
        skip_channels: int = 64,
        kernel_size: int = 3,
        aux_context_window: int = 2,
        upsample_scales: list[int] | tuple[int, ...] = (4, 4, 4, 4),
        mel: MelSettings | Mapping | None = None,
    ):
        super().__init__(resolve_mel(mel, PWG_LJSPEECH_MEL))
        if layers % stacks:
            raise ValueError("layers must be a multiple of stacks")
        if math.prod(upsample_scales) != self.hop_length:
            raise ValueError(f"prod(upsample_scales)={math.prod(upsample_scales)} "
                             f"!= hop_length={self.hop_length}")
        n_mels = self.mel.n_mels
        per_stack = layers // stacks
        self.first_conv = nn.Conv1d(1, residual_channels, 1)
        self.upsample = _ConvInUpsampler(n_mels, aux_context_window, list(upsample_scales))
        self.blocks = nn.ModuleList(
            _GatedResidualBlock(residual_channels, gate_channels, skip_channels, n_mels,
                                kernel_size, 2 ** (i % per_stack))
            for i in range(layers)
        )
        self.post1 = nn.Conv1d(skip_channels, skip_channels, 1)
        self.post2 = nn.Conv1d(skip_channels, 1, 1)

    def forward(self, mel: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        cond = self.upsample(mel)  # [B, n_mels, T*hop]
        if noise is None:
            noise = torch.randn(mel.shape[0], 1, cond.shape[-1], device=mel.device,
                                dtype=mel.dtype)
        x = self.first_conv(noise.view(mel.shape[0], 1, -1))
        skips = torch.zeros((), device=mel.device, dtype=mel.dtype)
        for block in self.blocks:
            x, s = block(x, cond)
            skips = skips + s
        h = F.relu(skips * math.sqrt(1.0 / len(self.blocks)))
        return self.post2(F.relu(self.post1(h))).squeeze(1)

    # -- checkpoint layout -------------------------------------------------------
    def load_checkpoint_state(self, state: dict) -> None:
        """Load our own state dict, or an official kan-bayashi generator checkpoint."""
        state = fold_weight_norm(unwrap_checkpoint(state, ("model", "generator"), ("generator",), ("model",)))
        if any(k.startswith("conv_layers.") for k in state):
            state = _rename_official(state)
        self.load_state_dict(state)


def _rename_official(state: dict) -> dict:
    """Map kan-bayashi ``ParallelWaveGANGenerator`` keys onto this module's keys."""
    out = {}
    for key, value in state.items():
        if key in ("mean", "scale"):  # feature statistics registered for decoding
            continue
        new = re.sub(r"^conv_layers\.", "blocks.", key)
        new = re.sub(r"^upsample_net\.conv_in\.", "upsample.conv_in.", new)
        m = re.match(r"^upsample_net\.upsample\.up_layers\.(\d+)\.(.*)", new)
        if m:  # Stretch2d / Conv2d alternate (no activation in v1): convs sit at odd indices
            new = f"upsample.smooth.{int(m.group(1)) // 2}.{m.group(2)}"
        new = re.sub(r"^last_conv_layers\.1\.", "post1.", new)
        new = re.sub(r"^last_conv_layers\.3\.", "post2.", new)
        out[new] = value
    return out

