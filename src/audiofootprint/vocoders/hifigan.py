"""HiFi-GAN generator (Kong, Kim & Bae 2020, arXiv:2010.05646).

Architecture follows the official release, jik876/hifi-gan (``models.py``
``Generator``/``ResBlock1``/``ResBlock2``); the constructor's defaults are
``config_v1.json``. The official V1, V2 and V3 hyperparameters, parameter counts
and their sources are in ``conf/vocoder/hifigan_v1.yaml``, ``hifigan_v2.yaml`` and
``hifigan_v3.yaml`` (build them with :func:`audiofootprint.vocoders.zoo.build`).
Submodule names are the official ones (``conv_pre``, ``ups.N``,
``resblocks.N.convs1.M`` ...), so an official ``generator_v1`` checkpoint
(``{"generator": state_dict}`` with ``weight_g``/``weight_v`` keys) loads unchanged
through :meth:`HiFiGAN.from_checkpoint`.

Weight normalisation uses :mod:`torch.nn.utils.parametrizations`; the key mapping to
and from the legacy ``*.weight_g``/``*.weight_v`` names of the official checkpoints is
in :mod:`.layers`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import MelSettings, Vocoder, resolve_mel
from .layers import (
    adapt_weight_norm_state,
    to_legacy_weight_norm_keys,
    unwrap_checkpoint,
    wn_conv1d,
    wn_conv_transpose1d,
)

__all__ = [
    "HIFIGAN_MEL",
    "HiFiGAN",
    "ResBlock1",
    "ResBlock2",
]

#: The official configs were all trained on this mel analysis (LJSpeech, 22.05 kHz).
HIFIGAN_MEL = MelSettings(22050, 1024, 1024, 256, 80, 0.0, 8000.0)

LRELU_SLOPE = 0.1


# ---------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------


class ResBlock1(nn.Module):
    """Residual block of HiFi-GAN V1/V2: pairs of (dilated conv, plain conv)."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3, 5)):
        super().__init__()
        self.convs1 = nn.ModuleList(wn_conv1d(channels, channels, kernel_size, d) for d in dilation)
        self.convs2 = nn.ModuleList(wn_conv1d(channels, channels, kernel_size, 1) for _ in dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.convs1, self.convs2):
            y = dilated(F.leaky_relu(x, LRELU_SLOPE))
            y = plain(F.leaky_relu(y, LRELU_SLOPE))
            x = x + y
        return x


class ResBlock2(nn.Module):
    """Residual block of HiFi-GAN V3: one dilated conv per residual step."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3)):
        super().__init__()
        self.convs = nn.ModuleList(wn_conv1d(channels, channels, kernel_size, d) for d in dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, LRELU_SLOPE))
        return x


class HiFiGAN(Vocoder):
    """HiFi-GAN generator: transposed-conv upsampling + multi-receptive-field fusion.

    The defaults are V1; the official variants are ``conf/vocoder/hifigan_v{1,2,3}.yaml``.
    """

    feature_convention = "hifigan"  # ln(clamp(mel_magnitude, 1e-5)), Slaney mel

    checkpoint_key = "generator"

    def __init__(
        self,
        resblock: str = "1",
        upsample_rates: Sequence[int] = (8, 8, 2, 2),
        upsample_kernel_sizes: Sequence[int] = (16, 16, 4, 4),
        upsample_initial_channel: int = 512,
        resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
        resblock_dilation_sizes: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
        mel: MelSettings | Mapping | None = None,
    ):
        super().__init__(resolve_mel(mel, HIFIGAN_MEL))
        upsample_rates = [int(u) for u in upsample_rates]
        upsample_kernel_sizes = [int(k) for k in upsample_kernel_sizes]
        resblock_kernel_sizes = [int(k) for k in resblock_kernel_sizes]
        resblock_dilation_sizes = [[int(d) for d in ds] for ds in resblock_dilation_sizes]
        if len(upsample_rates) != len(upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes differ in length")
        if math.prod(upsample_rates) != self.mel.hop_length:
            raise ValueError(
                f"prod(upsample_rates)={math.prod(upsample_rates)} != hop_length={self.mel.hop_length}"
            )
        block_cls = {"1": ResBlock1, "2": ResBlock2}.get(str(resblock))
        if block_cls is None:
            raise ValueError(f"resblock must be '1' or '2', got {resblock!r}")

        self.num_kernels = len(resblock_kernel_sizes)
        self.num_upsamples = len(upsample_rates)
        ch = int(upsample_initial_channel)
        # conv_pre keeps PyTorch's default init in the official code.
        self.conv_pre = wn_conv1d(self.mel.n_mels, ch, 7, padding=3, std=None)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for u, k in zip(upsample_rates, upsample_kernel_sizes):
            self.ups.append(wn_conv_transpose1d(ch, ch // 2, k, u, padding=(k - u) // 2))
            ch //= 2
            for k_r, d_r in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(block_cls(ch, k_r, d_r))
        self.conv_post = wn_conv1d(ch, 1, 7, padding=3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            acc = blocks[0](x)
            for block in blocks[1:]:
                acc = acc + block(x)
            x = acc / self.num_kernels
        # The official generator uses leaky_relu's default slope (0.01) here.
        x = self.conv_post(F.leaky_relu(x))
        return torch.tanh(x).squeeze(1)

    def state_dict_for_checkpoint(self) -> dict:
        """``{"generator": state}`` with legacy ``weight_g``/``weight_v`` keys, as released."""
        return {self.checkpoint_key: to_legacy_weight_norm_keys(self.state_dict())}

    def load_checkpoint_state(self, state: dict) -> None:
        """Load ``{"generator": ...}`` or a bare state dict, legacy or parametrised keys."""
        state = unwrap_checkpoint(state, (self.checkpoint_key,))
        self.load_state_dict(adapt_weight_norm_state(state, self))
