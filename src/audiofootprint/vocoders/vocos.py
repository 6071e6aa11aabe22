"""Vocos (Siuzdak, arXiv 2306.00814).

A frame-rate vocoder: a ConvNeXt backbone (1-D, depthwise kernel 7, LayerNorm, GELU MLP,
layer scale) keeps the mel frame rate throughout; a linear head predicts, per frame, the
log-magnitude and phase of an STFT frame (``n_fft + 2`` outputs), and the waveform is
obtained by an inverse STFT. No upsampling layers, so it is cheap per sample.

Official configuration reproduced (the constructor's defaults; the zoo entry, with the official
parameter count and its source, is ``conf/vocoder/vocos.yaml``): gemelo-ai/vocos ``configs/vocos.yaml`` (the
``charactr/vocos-mel-24khz`` model): backbone input 100 mels, dim 512, intermediate 1536,
8 ConvNeXt layers, layer scale 1/8; ``ISTFTHead`` n_fft 1024, hop 256; 24 kHz.

Inverse STFT padding: ``"same"`` (our default) trims ``(win - hop) / 2`` samples from both
ends of the overlap-added signal, which yields exactly ``frames * hop`` samples; the
window-envelope normalisation is applied only where it is evaluated, so the NOLA problem of
``torch.istft(center=False)`` does not arise. ``"center"`` uses ``torch.istft(center=True)``
with ``length=frames * hop``. (``configs/vocos.yaml`` trains with ``padding: center``, for
features and head alike; both conventions have the same parameters and nearly the same
cost.)

Input convention (``MelSpectrogramFeatures``): torchaudio ``MelSpectrogram`` (power 1, HTK
mel scale, no filter normalisation, 0 Hz to sr/2), natural log of ``clamp(mel, 1e-7)``.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .base import MelSettings, Vocoder, resolve_mel

VOCOS_24K_MEL = MelSettings(sample_rate=24000, n_fft=1024, win_length=1024, hop_length=256,
                            n_mels=100, f_min=0.0, f_max=None)


class _ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, intermediate_dim: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, C, T]
        h = self.norm(self.dwconv(x).transpose(1, 2))
        h = self.pwconv2(F.gelu(self.pwconv1(h))) * self.gamma
        return x + h.transpose(1, 2)


class _Backbone(nn.Module):
    def __init__(self, n_mels: int, dim: int, intermediate_dim: int, num_layers: int,
                 layer_scale: float | None):
        super().__init__()
        self.embed = nn.Conv1d(n_mels, dim, 7, padding=3)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        scale = layer_scale if layer_scale is not None else 1.0 / num_layers
        self.convnext = nn.ModuleList(
            _ConvNeXtBlock(dim, intermediate_dim, scale) for _ in range(num_layers)
        )
        self.final_layer_norm = nn.LayerNorm(dim, eps=1e-6)
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:  # -> [B, T, dim]
        x = self.norm(self.embed(mel).transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x)
        return self.final_layer_norm(x.transpose(1, 2))


class _ISTFTHead(nn.Module):
    """Linear -> (log-magnitude, phase) -> complex STFT -> inverse STFT."""

    def __init__(self, dim: int, n_fft: int, hop_length: int, padding: str):
        super().__init__()
        if padding not in ("same", "center"):
            raise ValueError("padding must be 'same' or 'center'")
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.padding = padding
        self.out = nn.Linear(dim, n_fft + 2)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_mag, phase = self.out(x).transpose(1, 2).chunk(2, dim=1)  # [B, n_fft/2+1, T]
        mag = torch.exp(log_mag).clamp(max=1e2)
        spec = torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))
        frames = spec.shape[-1]
        if self.padding == "center":
            return torch.istft(spec, self.n_fft, self.hop_length, self.n_fft, self.window,
                               center=True, length=frames * self.hop_length)
        return self._istft_same(spec)

    def _istft_same(self, spec: torch.Tensor) -> torch.Tensor:
        n_fft, hop = self.n_fft, self.hop_length
        frames = spec.shape[-1]
        trim = (n_fft - hop) // 2
        full = (frames - 1) * hop + n_fft
        chunks = torch.fft.irfft(spec, n_fft, dim=1) * self.window[None, :, None]
        # overlap-add of the windowed frames, and of the squared window for normalising
        y = F.fold(chunks, (1, full), (1, n_fft), stride=(1, hop))[:, 0, 0, trim:full - trim]
        win_sq = self.window.square()[None, :, None].expand(1, n_fft, frames)
        env = F.fold(win_sq, (1, full), (1, n_fft), stride=(1, hop))[0, 0, 0, trim:full - trim]
        return y / env.clamp_min(1e-11)


class Vocos(Vocoder):
    """Vocos mel vocoder (ConvNeXt backbone + ISTFT head)."""

    feature_convention = "ln(clamp(mel_magnitude, 1e-7)), HTK mel, no norm (torchaudio default)"

    def __init__(
        self,
        dim: int = 512,
        intermediate_dim: int = 1536,
        num_layers: int = 8,
        n_fft: int = 1024,
        padding: str = "same",
        layer_scale_init_value: float | None = None,
        mel: MelSettings | Mapping | None = None,
    ):
        super().__init__(resolve_mel(mel, VOCOS_24K_MEL))
        if (n_fft - self.hop_length) % 2:
            raise ValueError("n_fft - hop_length must be even for 'same' padding")
        self.backbone = _Backbone(self.mel.n_mels, dim, intermediate_dim, num_layers,
                                  layer_scale_init_value)
        self.head = _ISTFTHead(dim, n_fft, self.hop_length, padding)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(mel))

    def load_checkpoint_state(self, state: dict) -> None:
        """Load our state dict or the official one (``pytorch_model.bin`` layout: the
        feature extractor's and the ISTFT window's buffers are dropped)."""
        state = {k: v for k, v in state.items()
                 if not k.startswith("feature_extractor.") and not k.endswith("istft.window")}
        self.load_state_dict(state)

