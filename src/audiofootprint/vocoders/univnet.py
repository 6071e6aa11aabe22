"""UnivNet generator (Jang et al. 2021, arXiv:2106.07889).

A noise sequence is upsampled by three blocks of location-variable
convolutions (LVC, Zeng et al. 2021, arXiv:2102.10815) whose kernels a
kernel predictor computes from the mel-spectrogram frame by frame, each LVC
output passing through a gated activation unit. The paper's authors released
no code; configurations and module names follow the widely used
mindslab-ai/univnet (``config/default_c32.yaml``, ``config/default_c16.yaml``:
noise 64, channels 32/16, strides 8, 8, 4, dilations 1, 3, 9, 27, kernel
predictor hidden 64, 100 mel bands at 24 kHz), whose generator matches the
paper's parameter counts, so its ``model_g`` state dicts load unchanged.
The constructor's defaults are UnivNet-c32 (``conf/vocoder/univnet_c32.yaml``,
which also gives the official parameter count and its source); ``channel_size=16``
gives UnivNet-c16.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import MelSettings, Vocoder, resolve_mel
from .layers import adapt_weight_norm_state, unwrap_checkpoint, weight_norm

__all__ = [
    "UNIVNET_MEL",
    "KernelPredictor",
    "LVCBlock",
    "UnivNet",
]

#: The paper's (and mindslab's) analysis: LibriTTS at 24 kHz, 100 bands up to 12 kHz.
UNIVNET_MEL = MelSettings(24000, 1024, 1024, 256, 100, 0.0, 12000.0)


class KernelPredictor(nn.Module):
    """Predicts, per mel frame, the LVC kernels and biases of one LVC block."""

    def __init__(
        self,
        cond_channels: int,
        conv_in_channels: int,
        conv_out_channels: int,
        conv_layers: int,
        conv_kernel_size: int = 3,
        kpnet_hidden_channels: int = 64,
        kpnet_conv_size: int = 3,
        kpnet_dropout: float = 0.0,
        lrelu_slope: float = 0.1,
    ):
        super().__init__()
        self.conv_in_channels = conv_in_channels
        self.conv_out_channels = conv_out_channels
        self.conv_kernel_size = conv_kernel_size
        self.conv_layers = conv_layers
        hidden = kpnet_hidden_channels
        pad = (kpnet_conv_size - 1) // 2
        self.input_conv = nn.Sequential(
            weight_norm(nn.Conv1d(cond_channels, hidden, 5, padding=2)),
            nn.LeakyReLU(lrelu_slope),
        )
        self.residual_convs = nn.ModuleList(
            nn.Sequential(
                nn.Dropout(kpnet_dropout),
                weight_norm(nn.Conv1d(hidden, hidden, kpnet_conv_size, padding=pad)),
                nn.LeakyReLU(lrelu_slope),
                weight_norm(nn.Conv1d(hidden, hidden, kpnet_conv_size, padding=pad)),
                nn.LeakyReLU(lrelu_slope),
            )
            for _ in range(3)
        )
        n_kernel = conv_in_channels * conv_out_channels * conv_kernel_size * conv_layers
        n_bias = conv_out_channels * conv_layers
        self.kernel_conv = weight_norm(nn.Conv1d(hidden, n_kernel, kpnet_conv_size, padding=pad))
        self.bias_conv = weight_norm(nn.Conv1d(hidden, n_bias, kpnet_conv_size, padding=pad))

    def forward(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``c [B, cond, L]`` -> kernels ``[B, layers, in, out, k, L]``, biases ``[B, layers, out, L]``."""
        b, _, length = c.shape
        h = self.input_conv(c)
        for block in self.residual_convs:
            h = h + block(h)
        kernels = self.kernel_conv(h).reshape(
            b, self.conv_layers, self.conv_in_channels, self.conv_out_channels, self.conv_kernel_size, length
        )
        bias = self.bias_conv(h).reshape(b, self.conv_layers, self.conv_out_channels, length)
        return kernels, bias


def location_variable_conv(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor, hop: int) -> torch.Tensor:
    """Convolve each ``hop``-sample segment of ``x`` with its own kernel.

    x ``[B, Cin, L * hop]``, kernel ``[B, Cin, Cout, K, L]``, bias ``[B, Cout, L]``
    -> ``[B, Cout, L * hop]``; 'same' zero padding, dilation 1 (as in UnivNet,
    where the dilation lives in the convolution before the LVC).
    """
    b, c_in, t = x.shape
    _, _, c_out, k, length = kernel.shape
    if t != length * hop:
        raise ValueError(f"input length {t} != frames {length} * hop {hop}")
    pad = (k - 1) // 2
    x = F.pad(x, (pad, pad))
    # Windows of hop + k - 1 samples, one per frame: [B, Cin, L, hop + k - 1].
    windows = x.unfold(2, hop + k - 1, hop)
    # Taps: [B, Cin, L, K, hop]
    taps = torch.stack([windows[..., j : j + hop] for j in range(k)], dim=3)
    out = torch.einsum("bilkt,biokl->bolt", taps, kernel) + bias.unsqueeze(-1)
    return out.reshape(b, c_out, t)


class LVCBlock(nn.Module):
    """Upsample by ``stride``, then ``len(dilations)`` x (dilated conv, LVC, gated residual)."""

    def __init__(
        self,
        in_channels: int,
        cond_channels: int,
        stride: int,
        dilations: Sequence[int] = (1, 3, 9, 27),
        lrelu_slope: float = 0.2,
        conv_kernel_size: int = 3,
        cond_hop_length: int = 256,
        kpnet_hidden_channels: int = 64,
        kpnet_conv_size: int = 3,
        kpnet_dropout: float = 0.0,
    ):
        super().__init__()
        self.cond_hop_length = cond_hop_length
        self.in_channels = in_channels
        self.kernel_predictor = KernelPredictor(
            cond_channels,
            in_channels,
            2 * in_channels,
            len(dilations),
            conv_kernel_size,
            kpnet_hidden_channels,
            kpnet_conv_size,
            kpnet_dropout,
            lrelu_slope,
        )
        self.convt_pre = nn.Sequential(
            nn.LeakyReLU(lrelu_slope),
            weight_norm(
                nn.ConvTranspose1d(
                    in_channels,
                    in_channels,
                    2 * stride,
                    stride=stride,
                    padding=stride // 2 + stride % 2,
                    output_padding=stride % 2,
                )
            ),
        )
        self.conv_blocks = nn.ModuleList(
            nn.Sequential(
                nn.LeakyReLU(lrelu_slope),
                weight_norm(
                    nn.Conv1d(
                        in_channels,
                        in_channels,
                        conv_kernel_size,
                        padding=d * (conv_kernel_size - 1) // 2,
                        dilation=d,
                    )
                ),
                nn.LeakyReLU(lrelu_slope),
            )
            for d in dilations
        )

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        x = self.convt_pre(x)
        kernels, bias = self.kernel_predictor(c)
        ch = self.in_channels
        for i, conv in enumerate(self.conv_blocks):
            y = location_variable_conv(conv(x), kernels[:, i], bias[:, i], self.cond_hop_length)
            x = x + torch.sigmoid(y[:, :ch]) * torch.tanh(y[:, ch:])
        return x


class UnivNet(Vocoder):
    """UnivNet generator. ``forward(mel, noise=None)``; noise ~ N(0, 1) when omitted."""

    def __init__(
        self,
        noise_dim: int = 64,
        channel_size: int = 32,
        dilations: Sequence[int] = (1, 3, 9, 27),
        strides: Sequence[int] = (8, 8, 4),
        lrelu_slope: float = 0.2,
        kpnet_conv_size: int = 3,
        kpnet_hidden_channels: int = 64,
        mel: MelSettings | Mapping | None = None,
    ):
        super().__init__(resolve_mel(mel, UNIVNET_MEL))
        strides = [int(s) for s in strides]
        dilations = [int(d) for d in dilations]
        if math.prod(strides) != self.mel.hop_length:
            raise ValueError(f"prod(strides)={math.prod(strides)} != hop_length={self.mel.hop_length}")
        self.noise_dim = int(noise_dim)
        channel_size = int(channel_size)
        self.res_stack = nn.ModuleList()
        hop = 1
        for s in strides:
            hop *= s
            self.res_stack.append(
                LVCBlock(
                    channel_size,
                    self.mel.n_mels,
                    stride=s,
                    dilations=dilations,
                    lrelu_slope=float(lrelu_slope),
                    cond_hop_length=hop,
                    kpnet_hidden_channels=int(kpnet_hidden_channels),
                    kpnet_conv_size=int(kpnet_conv_size),
                )
            )
        self.conv_pre = weight_norm(nn.Conv1d(self.noise_dim, channel_size, 7, padding=3, padding_mode="reflect"))
        self.conv_post = nn.Sequential(
            nn.LeakyReLU(float(lrelu_slope)),
            weight_norm(nn.Conv1d(channel_size, 1, 7, padding=3, padding_mode="reflect")),
            nn.Tanh(),
        )

    def forward(self, mel: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            noise = torch.randn(mel.shape[0], self.noise_dim, mel.shape[2], device=mel.device, dtype=mel.dtype)
        z = self.conv_pre(noise)
        for block in self.res_stack:
            z = block(z, mel)
        return self.conv_post(z).squeeze(1)

    def load_checkpoint_state(self, state: dict) -> None:
        """Accepts mindslab's ``{"model_g": ...}``, ``{"generator": ...}`` or a bare state dict."""
        state = unwrap_checkpoint(state, ("model_g",), ("generator",))
        self.load_state_dict(adapt_weight_norm_state(state, self))
