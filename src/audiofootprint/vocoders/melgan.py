"""MelGAN and Multi-band MelGAN generators.

* :class:`MelGAN` - Kumar et al. 2019, arXiv:1910.06711. Official code
  descriptinc/melgan-neurips (``mel2wav/modules.py`` ``Generator``; the
  constructor's defaults are those of ``scripts/train.py``, which the released
  models used: ratios 8, 8, 2, 2, ``ngf`` 32, ``n_residual_layers`` 3; see
  ``conf/vocoder/melgan.yaml``). Submodules keep the official names
  (``model.N``, ``block``, ``shortcut``) so the released ``best_netG.pt``-style
  bare state dicts load unchanged.
* :class:`MultiBandMelGAN` - Yang et al. 2020, arXiv:2005.05106. The paper
  released no code; the reference implementation is kan-bayashi/
  ParallelWaveGAN (``MelGANGenerator`` + ``PQMF``) with its LJSpeech config
  ``egs/ljspeech/voc1/conf/multi_band_melgan.v2.yaml`` (4 bands, upsampling
  8, 4, 2, 384 channels, 4 residual stacks; the constructor's defaults, see
  ``conf/vocoder/multiband_melgan.yaml``). Submodules keep that layout
  (``melgan.N``, ``stack``, ``skip_layer``). ``forward`` runs the PQMF
  synthesis bank (:mod:`.pqmf`) and returns the full-band waveform.

Official parameter counts and their sources are in those YAML files.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .base import MelSettings, Vocoder, resolve_mel
from .layers import (
    adapt_weight_norm_state,
    to_legacy_weight_norm_keys,
    unwrap_checkpoint,
    wn_conv1d,
    wn_conv_transpose1d,
)
from .pqmf import PQMF

__all__ = [
    "MELGAN_MEL",
    "MULTIBAND_MELGAN_MEL",
    "MelGAN",
    "MultiBandMelGAN",
]

#: descriptinc/melgan-neurips Audio2Mel defaults (fmax None = Nyquist).
MELGAN_MEL = MelSettings(22050, 1024, 1024, 256, 80, 0.0, None)

#: multi_band_melgan.v2.yaml (LJSpeech) feature settings.
MULTIBAND_MELGAN_MEL = MelSettings(22050, 1024, 1024, 256, 80, 80.0, 7600.0)

LRELU_SLOPE = 0.2

#: The MelGAN initialisation: weights drawn from N(0, 0.02).
INIT_STD = 0.02


def _wn_conv(in_ch: int, out_ch: int, kernel_size: int, dilation: int = 1) -> nn.Module:
    """Unpadded weight-normed conv (padding is a separate ReflectionPad1d layer)."""
    return wn_conv1d(in_ch, out_ch, kernel_size, dilation, padding=0, std=INIT_STD)


def _wn_upsample(in_ch: int, out_ch: int, r: int) -> nn.Module:
    """Transposed conv, kernel 2r / stride r, giving exactly ``r`` x the input length."""
    return wn_conv_transpose1d(
        in_ch, out_ch, 2 * r, r, padding=r // 2 + r % 2, output_padding=r % 2, std=INIT_STD
    )


class ResnetBlock(nn.Module):
    """descript MelGAN residual unit: dilated k3 conv + 1x1 conv, 1x1 shortcut."""

    def __init__(self, dim: int, dilation: int = 1, kernel_size: int = 3):
        super().__init__()
        self.block = nn.Sequential(
            nn.LeakyReLU(LRELU_SLOPE),
            nn.ReflectionPad1d((kernel_size - 1) // 2 * dilation),
            _wn_conv(dim, dim, kernel_size, dilation),
            nn.LeakyReLU(LRELU_SLOPE),
            _wn_conv(dim, dim, 1),
        )
        self.shortcut = _wn_conv(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class ResidualStack(nn.Module):
    """ParallelWaveGAN's name for the same unit (``stack`` + ``skip_layer``)."""

    def __init__(self, dim: int, dilation: int = 1, kernel_size: int = 3):
        super().__init__()
        self.stack = nn.Sequential(
            nn.LeakyReLU(LRELU_SLOPE),
            nn.ReflectionPad1d((kernel_size - 1) // 2 * dilation),
            _wn_conv(dim, dim, kernel_size, dilation),
            nn.LeakyReLU(LRELU_SLOPE),
            _wn_conv(dim, dim, 1),
        )
        self.skip_layer = _wn_conv(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stack(x) + self.skip_layer(x)


def _melgan_layers(
    in_ch: int,
    out_ch: int,
    channels: int,
    scales: Sequence[int],
    n_res: int,
    kernel_size: int,
    stack_kernel_size: int,
    unit: type[nn.Module],
) -> list[nn.Module]:
    """The MelGAN generator as a flat layer list (the official Sequential order)."""
    if kernel_size % 2 == 0:
        raise ValueError("kernel_size must be odd")
    if channels % (2 ** len(scales)):
        raise ValueError("channels must be divisible by 2**len(scales)")
    layers: list[nn.Module] = [
        nn.ReflectionPad1d((kernel_size - 1) // 2),
        _wn_conv(in_ch, channels, kernel_size),
    ]
    ch = channels
    for r in scales:
        layers += [nn.LeakyReLU(LRELU_SLOPE), _wn_upsample(ch, ch // 2, int(r))]
        ch //= 2
        layers += [unit(ch, stack_kernel_size**j, stack_kernel_size) for j in range(n_res)]
    layers += [
        nn.LeakyReLU(LRELU_SLOPE),
        nn.ReflectionPad1d((kernel_size - 1) // 2),
        _wn_conv(ch, out_ch, kernel_size),
        nn.Tanh(),
    ]
    return layers


class _WeightNormCheckpointMixin:
    """Checkpoint loading shared by the MelGAN family."""

    _checkpoint_paths: tuple[tuple[str, ...], ...] = ()

    def load_checkpoint_state(self, state: dict) -> None:
        state = unwrap_checkpoint(state, *self._checkpoint_paths)
        self.load_state_dict(adapt_weight_norm_state(state, self))


class MelGAN(_WeightNormCheckpointMixin, Vocoder):
    """Original MelGAN generator (descript). Output ``[B, frames * prod(ratios)]``."""

    _checkpoint_paths = (("generator",), ("netG",))

    def __init__(
        self,
        ratios: Sequence[int] = (8, 8, 2, 2),
        ngf: int = 32,
        n_residual_layers: int = 3,
        mel: MelSettings | Mapping | None = None,
    ):
        super().__init__(resolve_mel(mel, MELGAN_MEL))
        ratios = [int(r) for r in ratios]
        if math.prod(ratios) != self.mel.hop_length:
            raise ValueError(f"prod(ratios)={math.prod(ratios)} != hop_length={self.mel.hop_length}")
        channels = int(ngf) * 2 ** len(ratios)
        self.model = nn.Sequential(
            *_melgan_layers(self.mel.n_mels, 1, channels, ratios, int(n_residual_layers), 7, 3, ResnetBlock)
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.model(mel).squeeze(1)

    def state_dict_for_checkpoint(self) -> dict:
        """A bare state dict with legacy weight-norm keys, like the released ``.pt`` files."""
        return to_legacy_weight_norm_keys(self.state_dict())


class MultiBandMelGAN(_WeightNormCheckpointMixin, Vocoder):
    """Multi-band MelGAN: a MelGAN predicting ``subbands`` signals + PQMF synthesis."""

    _checkpoint_paths = (("model", "generator"), ("generator",))

    def __init__(
        self,
        subbands: int = 4,
        channels: int = 384,
        upsample_scales: Sequence[int] = (8, 4, 2),
        kernel_size: int = 7,
        stack_kernel_size: int = 3,
        stacks: int = 4,
        pqmf_taps: int = 62,
        pqmf_cutoff_ratio: float = 0.142,
        pqmf_beta: float = 9.0,
        mel: MelSettings | Mapping | None = None,
    ):
        super().__init__(resolve_mel(mel, MULTIBAND_MELGAN_MEL))
        scales = [int(s) for s in upsample_scales]
        self.subbands = int(subbands)
        if math.prod(scales) * self.subbands != self.mel.hop_length:
            raise ValueError(
                f"prod(upsample_scales) * subbands = {math.prod(scales) * self.subbands} "
                f"!= hop_length={self.mel.hop_length}"
            )
        self.melgan = nn.Sequential(
            *_melgan_layers(
                self.mel.n_mels,
                self.subbands,
                int(channels),
                scales,
                int(stacks),
                int(kernel_size),
                int(stack_kernel_size),
                ResidualStack,
            )
        )
        self.pqmf = PQMF(self.subbands, pqmf_taps, pqmf_cutoff_ratio, pqmf_beta)

    def subband_forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Sub-band signals ``[B, subbands, frames * hop / subbands]``."""
        return self.melgan(mel)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.pqmf.synthesis(self.melgan(mel)).squeeze(1)

    def state_dict_for_checkpoint(self) -> dict:
        """``{"model": {"generator": state}}``, the ParallelWaveGAN checkpoint layout."""
        return {"model": {"generator": to_legacy_weight_norm_keys(self.state_dict())}}
