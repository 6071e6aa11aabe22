"""The discriminators of the GAN vocoders' original recipes.

Written after the official code (layer sizes, strides, paddings, activations, normalisation and
which activations count as feature maps are theirs; the code is ours):

* :class:`MultiPeriodDiscriminator` (MPD) - HiFi-GAN, jik876/hifi-gan ``models.py``
  ``DiscriminatorP``; the same network with other widths or slopes in UnivNet
  (mindslab-ai/univnet ``model/mpd.py``: 64-128-256-512-1024 channels, slope 0.2), BigVGAN
  (NVIDIA/BigVGAN ``discriminators.py``) and Vocos (gemelo-ai/vocos ``discriminators.py``, whose
  feature maps leave out the first layer). Presets: :meth:`MultiPeriodDiscriminator.hifigan`,
  ``.univnet``, ``.vocos``.
* :class:`MultiScaleDiscriminator` (MSD) - the same plan in HiFi-GAN (``DiscriminatorS``: grouped
  convolutions of kernel 41, the first scale spectrally normalised, average pooling 4/2 pad 2) and
  MelGAN (descriptinc/melgan-neurips ``mel2wav/modules.py`` ``NLayerDiscriminator``: a reflection-
  padded kernel-15 input layer, grouped strided convolutions of kernel ``10 s + 1``, average
  pooling 4/2 pad 1 without the padding in the mean), and in Multi-band MelGAN
  (kan-bayashi/ParallelWaveGAN ``MelGANMultiScaleDiscriminator`` with ``multi_band_melgan.v2.yaml``:
  three downsamplings, 512 channels at most). One :class:`ScaleDiscriminator` is parametrised by its
  list of :class:`ConvSpec`; presets :meth:`MultiScaleDiscriminator.hifigan`, ``.melgan`` and
  ``.multiband_melgan``.
* :class:`MultiResolutionDiscriminator` (MRD) - two different networks under one name:
  ``kind="univnet"`` (mindslab-ai/univnet ``model/mrd.py``, reused by BigVGAN-v1): 2-D convolutions
  over a linear magnitude spectrogram per resolution (FFT 1024/2048/512, hop 120/240/50, window
  600/1200/240; rectangular window, as ``torch.stft`` without ``window``); ``kind="vocos"``
  (gemelo-ai/vocos after descript-audio-codec): complex spectrogram (real and imaginary parts as 2
  channels) of the DC-removed, peak-normalised input, window lengths 2048/1024/512, hop a quarter,
  split into 5 frequency bands, each with its own convolution stack.
* :class:`ParallelWaveGANDiscriminator` - kan-bayashi/ParallelWaveGAN ``ParallelWaveGANDiscriminator``
  (``parallel_wavegan.v1.yaml``): 10 non-causal dilated 1-D convolutions (dilation 1, 1, 2, ..., 8),
  64 channels, leaky ReLU 0.2, a per-sample score.

Every discriminator takes a waveform ``[B, T]`` (or ``[B, 1, T]``) and returns a list with one
``(score, feature_maps)`` pair per sub-discriminator; ``feature_maps`` are the activations the
recipe's feature-matching loss compares (empty where the recipe has none). All are built with
weight normalisation (:mod:`torch.nn.utils.parametrizations`) unless the recipe uses spectral
normalisation.

The presets take ``channel_mult`` (BigVGAN's ``discriminator_channel_mult``): every width times
that factor, for experiments and fast tests; the recipes use 1.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

__all__ = [
    "ConvSpec",
    "DiscriminatorOutput",
    "MultiPeriodDiscriminator",
    "MultiResolutionDiscriminator",
    "MultiScaleDiscriminator",
    "ParallelWaveGANDiscriminator",
    "PeriodDiscriminator",
    "ScaleDiscriminator",
    "SpectrogramDiscriminator",
    "BandedSpectrogramDiscriminator",
    "hifigan_scale_layers",
    "melgan_scale_layers",
]

#: One sub-discriminator's output: its score map and its feature maps.
DiscriminatorOutput = tuple[torch.Tensor, list[torch.Tensor]]


def _norm(module: nn.Module, kind: str) -> nn.Module:
    if kind == "weight":
        return weight_norm(module)
    if kind == "spectral":
        return spectral_norm(module)
    if kind == "none":
        return module
    raise ValueError(f"norm must be 'weight', 'spectral' or 'none', not {kind!r}")


def _width(channels: int, mult: float) -> int:
    """``channels`` scaled by ``mult`` (BigVGAN's ``discriminator_channel_mult``), at least 1."""
    return max(1, int(round(channels * mult)))


def _as_batch_channel_time(x: torch.Tensor) -> torch.Tensor:
    """[B, T] or [B, 1, T] -> [B, 1, T]."""
    if x.dim() == 2:
        return x.unsqueeze(1)
    if x.dim() == 3 and x.shape[1] == 1:
        return x
    raise ValueError(f"expected a waveform [B, T] or [B, 1, T], got shape {tuple(x.shape)}")


# ---------------------------------------------------------------------------
# Multi-period discriminator
# ---------------------------------------------------------------------------


class PeriodDiscriminator(nn.Module):
    """The waveform folded into ``[T / period, period]`` and seen by 2-D convolutions (k x 1)."""

    def __init__(self, period: int, channels: Sequence[int] = (32, 128, 512, 1024, 1024),
                 kernel_size: int = 5, stride: int = 3, lrelu_slope: float = 0.1,
                 norm: str = "weight", fmap_skip_first: bool = False):
        super().__init__()
        self.period = int(period)
        self.lrelu_slope = float(lrelu_slope)
        self.fmap_skip_first = bool(fmap_skip_first)
        pad = (kernel_size - 1) // 2
        layers, c_in = [], 1
        for i, c_out in enumerate(channels):
            s = stride if i < len(channels) - 1 else 1  # the last conv keeps the length
            layers.append(_norm(nn.Conv2d(c_in, c_out, (kernel_size, 1), (s, 1), padding=(pad, 0)), norm))
            c_in = c_out
        self.convs = nn.ModuleList(layers)
        self.conv_post = _norm(nn.Conv2d(c_in, 1, (3, 1), 1, padding=(1, 0)), norm)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        x = _as_batch_channel_time(x)
        b, c, t = x.shape
        if t % self.period:  # reflect-pad to a whole number of periods
            n_pad = self.period - t % self.period
            x = F.pad(x, (0, n_pad), mode="reflect")
            t += n_pad
        x = x.view(b, c, t // self.period, self.period)
        fmap = []
        for i, conv in enumerate(self.convs):
            x = F.leaky_relu(conv(x), self.lrelu_slope)
            if i > 0 or not self.fmap_skip_first:
                fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        return torch.flatten(x, 1, -1), fmap


class MultiPeriodDiscriminator(nn.Module):
    """One :class:`PeriodDiscriminator` per period (2, 3, 5, 7, 11 in every recipe)."""

    def __init__(self, periods: Sequence[int] = (2, 3, 5, 7, 11), **kwargs):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(int(p), **kwargs) for p in periods)

    def forward(self, x: torch.Tensor) -> list[DiscriminatorOutput]:
        return [d(x) for d in self.discriminators]

    @classmethod
    def hifigan(cls, channel_mult: float = 1.0) -> "MultiPeriodDiscriminator":
        """jik876/hifi-gan (and NVIDIA/BigVGAN-v1): 32-128-512-1024-1024, slope 0.1."""
        return cls(channels=[_width(c, channel_mult) for c in (32, 128, 512, 1024, 1024)])

    @classmethod
    def univnet(cls, channel_mult: float = 1.0) -> "MultiPeriodDiscriminator":
        """mindslab-ai/univnet ``default_c32.yaml``: 64-128-256-512-1024, slope 0.2."""
        return cls(channels=[_width(c, channel_mult) for c in (64, 128, 256, 512, 1024)], lrelu_slope=0.2)

    @classmethod
    def vocos(cls, channel_mult: float = 1.0) -> "MultiPeriodDiscriminator":
        """gemelo-ai/vocos: HiFi-GAN's layers; the first layer's activation is not a feature map."""
        return cls(channels=[_width(c, channel_mult) for c in (32, 128, 512, 1024, 1024)], fmap_skip_first=True)


# ---------------------------------------------------------------------------
# Multi-scale discriminator (HiFi-GAN, MelGAN, Multi-band MelGAN)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvSpec:
    """A 1-D convolution of a scale discriminator."""

    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int = 1
    groups: int = 1
    padding: int | None = None        # None: (kernel_size - 1) // 2
    padding_mode: str = "zeros"       # "reflect": MelGAN's ReflectionPad1d before its first conv

    def scaled(self, mult: float) -> "ConvSpec":
        """Widths times ``mult`` (the waveform input and the score output stay 1 channel); the
        groups are reduced where the new widths are not divisible by them."""
        if mult == 1.0:
            return self
        c_in = self.in_channels if self.in_channels == 1 else _width(self.in_channels, mult)
        c_out = self.out_channels if self.out_channels == 1 else _width(self.out_channels, mult)
        groups = math.gcd(math.gcd(self.groups, c_in), c_out)
        return dataclasses.replace(self, in_channels=c_in, out_channels=c_out, groups=groups)

    def build(self) -> nn.Conv1d:
        pad = (self.kernel_size - 1) // 2 if self.padding is None else self.padding
        return nn.Conv1d(self.in_channels, self.out_channels, self.kernel_size, self.stride,
                         padding=pad, groups=self.groups, padding_mode=self.padding_mode)


def hifigan_scale_layers() -> tuple[list[ConvSpec], ConvSpec]:
    """jik876/hifi-gan ``DiscriminatorS``: the convolutions and the output convolution."""
    layers = [
        ConvSpec(1, 128, 15, 1, 1, 7),
        ConvSpec(128, 128, 41, 2, 4, 20),
        ConvSpec(128, 256, 41, 2, 16, 20),
        ConvSpec(256, 512, 41, 4, 16, 20),
        ConvSpec(512, 1024, 41, 4, 16, 20),
        ConvSpec(1024, 1024, 41, 1, 16, 20),
        ConvSpec(1024, 1024, 5, 1, 1, 2),
    ]
    return layers, ConvSpec(1024, 1, 3, 1, 1, 1)


def melgan_scale_layers(channels: int = 16, max_channels: int = 1024,
                        downsample_scales: Sequence[int] = (4, 4, 4, 4),
                        kernel_sizes: tuple[int, int] = (5, 3)) -> tuple[list[ConvSpec], ConvSpec]:
    """descriptinc/melgan-neurips ``NLayerDiscriminator`` (ndf 16, 4 layers, factor 4) and
    kan-bayashi's ``MelGANDiscriminator`` (the same plan with a channel cap and any scales)."""
    k0 = kernel_sizes[0] * kernel_sizes[1]
    layers = [ConvSpec(1, channels, k0, 1, 1, (k0 - 1) // 2, "reflect")]
    c_in = channels
    for s in downsample_scales:
        c_out = min(c_in * s, max_channels)
        layers.append(ConvSpec(c_in, c_out, s * 10 + 1, s, c_in // 4, s * 5))
        c_in = c_out
    c_out = min(c_in * 2, max_channels)
    layers.append(ConvSpec(c_in, c_out, kernel_sizes[0], 1, 1, (kernel_sizes[0] - 1) // 2))
    return layers, ConvSpec(c_out, 1, kernel_sizes[1], 1, 1, (kernel_sizes[1] - 1) // 2)


class ScaleDiscriminator(nn.Module):
    """A stack of (normalised) 1-D convolutions with leaky ReLU, then an output convolution.

    ``fmap_includes_score``: HiFi-GAN counts the output convolution among the feature maps
    (its feature-matching loss compares it too); MelGAN does not.
    """

    def __init__(self, layers: Sequence[ConvSpec], post: ConvSpec, lrelu_slope: float = 0.1,
                 norm: str = "weight", fmap_includes_score: bool = True, init_std: float | None = None):
        super().__init__()
        self.lrelu_slope = float(lrelu_slope)
        self.fmap_includes_score = bool(fmap_includes_score)
        convs = []
        for spec in list(layers) + [post]:
            conv = spec.build()
            if init_std is not None:  # kan-bayashi's MelGAN discriminator: N(0, 0.02) before normalising
                nn.init.normal_(conv.weight, 0.0, init_std)
            convs.append(_norm(conv, norm))
        self.convs = nn.ModuleList(convs[:-1])
        self.conv_post = convs[-1]

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        x = _as_batch_channel_time(x)
        fmap = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), self.lrelu_slope)
            fmap.append(x)
        x = self.conv_post(x)
        if self.fmap_includes_score:
            fmap.append(x)
        return torch.flatten(x, 1, -1), fmap


class MultiScaleDiscriminator(nn.Module):
    """``scales`` :class:`ScaleDiscriminator` on the waveform average-pooled 0, 1, 2... times."""

    def __init__(self, layers: Sequence[ConvSpec], post: ConvSpec, scales: int = 3,
                 pool: tuple[int, int, int] = (4, 2, 2), pool_count_include_pad: bool = True,
                 lrelu_slope: float = 0.1, norms: Sequence[str] | None = None,
                 fmap_includes_score: bool = True, init_std: float | None = None):
        super().__init__()
        norms = list(norms) if norms is not None else ["weight"] * scales
        if len(norms) != scales:
            raise ValueError(f"{scales} scales but {len(norms)} norms")
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(layers, post, lrelu_slope, norm, fmap_includes_score, init_std) for norm in norms
        )
        k, s, p = pool
        self.pool = nn.AvgPool1d(k, s, padding=p, count_include_pad=pool_count_include_pad)

    def forward(self, x: torch.Tensor) -> list[DiscriminatorOutput]:
        x = _as_batch_channel_time(x)
        out = []
        for i, d in enumerate(self.discriminators):
            if i > 0:
                x = self.pool(x)
            out.append(d(x))
        return out

    @staticmethod
    def _scaled(specs: tuple[list[ConvSpec], ConvSpec], mult: float) -> tuple[list[ConvSpec], ConvSpec]:
        layers, post = specs
        return [spec.scaled(mult) for spec in layers], post.scaled(mult)

    @classmethod
    def hifigan(cls, channel_mult: float = 1.0) -> "MultiScaleDiscriminator":
        """jik876/hifi-gan: 3 scales, the first spectrally normalised, AvgPool1d(4, 2, padding=2)."""
        layers, post = cls._scaled(hifigan_scale_layers(), channel_mult)
        return cls(layers, post, 3, (4, 2, 2), True, 0.1, ["spectral", "weight", "weight"], True)

    @classmethod
    def melgan(cls, channel_mult: float = 1.0) -> "MultiScaleDiscriminator":
        """descriptinc/melgan-neurips ``Discriminator(num_D=3, ndf=16, n_layers=4, downsampling_factor=4)``."""
        layers, post = cls._scaled(melgan_scale_layers(16, 1024, (4, 4, 4, 4)), channel_mult)
        # descript's weights_init draws N(0, 0.02) into ``m.weight.data`` *after* the (legacy)
        # weight norm, which recomputes ``weight`` from (g, v) at every forward: the draw is lost and
        # the effective initialisation is PyTorch's default, kept here.
        return cls(layers, post, 3, (4, 2, 1), False, 0.2, None, False, None)

    @classmethod
    def multiband_melgan(cls, channel_mult: float = 1.0) -> "MultiScaleDiscriminator":
        """kan-bayashi ``MelGANMultiScaleDiscriminator`` of ``multi_band_melgan.v2.yaml``: 3 scales,
        channels 16, at most 512, downsampling 4, 4, 4."""
        layers, post = cls._scaled(melgan_scale_layers(16, 512, (4, 4, 4)), channel_mult)
        # kan-bayashi resets the weights to N(0, 0.02) *before* applying weight norm: effective.
        return cls(layers, post, 3, (4, 2, 1), False, 0.2, None, False, 0.02)


# ---------------------------------------------------------------------------
# Multi-resolution discriminators
# ---------------------------------------------------------------------------


class SpectrogramDiscriminator(nn.Module):
    """UnivNet's ``DiscriminatorR``: 2-D convs over one resolution's linear magnitude spectrogram.

    As in mindslab-ai/univnet (and BigVGAN-v1): the input is reflect-padded by ``(n_fft - hop) / 2``
    on both sides and analysed with ``center=False`` and no window argument (a rectangular window
    of ``win_length`` samples).
    """

    def __init__(self, resolution: Sequence[int], channels: int = 32, lrelu_slope: float = 0.2,
                 norm: str = "weight"):
        super().__init__()
        self.n_fft, self.hop_length, self.win_length = (int(v) for v in resolution)
        self.lrelu_slope = float(lrelu_slope)
        c = int(channels)
        self.convs = nn.ModuleList([
            _norm(nn.Conv2d(1, c, (3, 9), padding=(1, 4)), norm),
            _norm(nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4)), norm),
            _norm(nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4)), norm),
            _norm(nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4)), norm),
            _norm(nn.Conv2d(c, c, (3, 3), padding=(1, 1)), norm),
        ])
        self.conv_post = _norm(nn.Conv2d(c, 1, (3, 3), padding=(1, 1)), norm)
        self.register_buffer("window", torch.ones(self.win_length), persistent=False)

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        pad = (self.n_fft - self.hop_length) // 2
        x = F.pad(_as_batch_channel_time(x), (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(x, self.n_fft, self.hop_length, self.win_length, self.window.to(x.dtype),
                          center=False, return_complex=True)
        return spec.abs()  # [B, F, frames]

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        x = self.spectrogram(x).unsqueeze(1)
        fmap = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), self.lrelu_slope)
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        return torch.flatten(x, 1, -1), fmap


#: The 5 frequency bands (fractions of the spectrum) of Vocos' / DAC's resolution discriminator.
VOCOS_BANDS: tuple[tuple[float, float], ...] = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))


class BandedSpectrogramDiscriminator(nn.Module):
    """Vocos' ``DiscriminatorR`` (after descript-audio-codec): complex spectrogram, per-band convs.

    The input has its DC removed and is peak-normalised to 0.8; the spectrogram is torchaudio's
    (Hann window of ``window_length``, hop ``window_length * hop_factor``, centred), real and
    imaginary parts as 2 channels over (time, frequency); every band has its own stack, the
    stacks' outputs are concatenated along frequency and go through one output convolution.
    The first layer's activation is not a feature map (as in the official code).
    """

    def __init__(self, window_length: int, channels: int = 32, hop_factor: float = 0.25,
                 bands: Sequence[tuple[float, float]] = VOCOS_BANDS, lrelu_slope: float = 0.1):
        super().__init__()
        self.window_length = int(window_length)
        self.hop_length = int(window_length * hop_factor)
        self.lrelu_slope = float(lrelu_slope)
        n_bins = self.window_length // 2 + 1
        self.bands = [(int(lo * n_bins), int(hi * n_bins)) for lo, hi in bands]
        c = int(channels)

        def stack() -> nn.ModuleList:
            return nn.ModuleList([
                weight_norm(nn.Conv2d(2, c, (3, 9), (1, 1), padding=(1, 4))),
                weight_norm(nn.Conv2d(c, c, (3, 9), (1, 2), padding=(1, 4))),
                weight_norm(nn.Conv2d(c, c, (3, 9), (1, 2), padding=(1, 4))),
                weight_norm(nn.Conv2d(c, c, (3, 9), (1, 2), padding=(1, 4))),
                weight_norm(nn.Conv2d(c, c, (3, 3), (1, 1), padding=(1, 1))),
            ])

        self.band_convs = nn.ModuleList(stack() for _ in self.bands)
        self.conv_post = weight_norm(nn.Conv2d(c, 1, (3, 3), (1, 1), padding=(1, 1)))
        self.register_buffer("window", torch.hann_window(self.window_length), persistent=False)

    def spectrogram(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = _as_batch_channel_time(x).squeeze(1)
        x = x - x.mean(dim=-1, keepdim=True)
        x = 0.8 * x / (x.abs().max(dim=-1, keepdim=True)[0] + 1e-9)
        spec = torch.stft(x, self.window_length, self.hop_length, self.window_length,
                          self.window.to(x.dtype), center=True, pad_mode="reflect", return_complex=True)
        spec = torch.view_as_real(spec).permute(0, 3, 2, 1)  # [B, F, T, 2] -> [B, 2, T, F]
        return [spec[..., lo:hi] for lo, hi in self.bands]

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        fmap, outs = [], []
        for band, stack in zip(self.spectrogram(x), self.band_convs):
            for i, layer in enumerate(stack):
                band = F.leaky_relu(layer(band), self.lrelu_slope)
                if i > 0:
                    fmap.append(band)
            outs.append(band)
        x = self.conv_post(torch.cat(outs, dim=-1))
        fmap.append(x)
        return torch.flatten(x, 1, -1), fmap


#: (FFT size, hop, window) of Parallel WaveGAN's multi-resolution STFT loss, which Multi-band MelGAN
#: and UnivNet keep, and of UnivNet's MRD (``default_c32.yaml``) and BigVGAN-v1's.
STFT_RESOLUTIONS: tuple[tuple[int, int, int], ...] = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))


class MultiResolutionDiscriminator(nn.Module):
    """Spectrogram discriminators at several resolutions.

    ``kind="univnet"``: :class:`SpectrogramDiscriminator` per ``(n_fft, hop, win)`` of ``resolutions``
    (UnivNet, BigVGAN-v1); ``kind="vocos"``: :class:`BandedSpectrogramDiscriminator` per window length
    of ``resolutions`` (Vocos: 2048, 1024, 512).
    """

    def __init__(self, kind: str = "univnet", resolutions: Sequence | None = None, channels: int = 32,
                 lrelu_slope: float | None = None):
        super().__init__()
        self.kind = kind
        if kind == "univnet":
            resolutions = STFT_RESOLUTIONS if resolutions is None else resolutions
            slope = 0.2 if lrelu_slope is None else lrelu_slope
            self.discriminators = nn.ModuleList(
                SpectrogramDiscriminator(r, channels, slope) for r in resolutions)
        elif kind == "vocos":
            resolutions = (2048, 1024, 512) if resolutions is None else resolutions
            slope = 0.1 if lrelu_slope is None else lrelu_slope
            self.discriminators = nn.ModuleList(
                BandedSpectrogramDiscriminator(int(w), channels, lrelu_slope=slope) for w in resolutions)
        else:
            raise ValueError(f"kind must be 'univnet' or 'vocos', not {kind!r}")

    def forward(self, x: torch.Tensor) -> list[DiscriminatorOutput]:
        return [d(x) for d in self.discriminators]

    @classmethod
    def univnet(cls, channel_mult: float = 1.0) -> "MultiResolutionDiscriminator":
        """mindslab-ai/univnet: slope 0.2."""
        return cls("univnet", STFT_RESOLUTIONS, _width(32, channel_mult), 0.2)

    @classmethod
    def bigvgan(cls, channel_mult: float = 1.0) -> "MultiResolutionDiscriminator":
        """NVIDIA/BigVGAN-v1 (``bigvgan_base_22khz_80band.json``): UnivNet's MRD with slope 0.1."""
        return cls("univnet", STFT_RESOLUTIONS, _width(32, channel_mult), 0.1)

    @classmethod
    def vocos(cls, channel_mult: float = 1.0) -> "MultiResolutionDiscriminator":
        """gemelo-ai/vocos: banded complex-spectrogram discriminators, windows 2048, 1024, 512."""
        return cls("vocos", (2048, 1024, 512), _width(32, channel_mult), 0.1)


# ---------------------------------------------------------------------------
# Parallel WaveGAN
# ---------------------------------------------------------------------------


class ParallelWaveGANDiscriminator(nn.Module):
    """kan-bayashi ``ParallelWaveGANDiscriminator``: ``layers`` dilated 1-D convs, a score per sample.

    Dilation 1 for the first layer and ``i`` for layer ``i >= 1`` (``dilation_factor`` 1), leaky
    ReLU 0.2 after all but the last layer, weight normalisation, Kaiming-normal initialisation
    (the repository's ``Conv1d``), zero biases.
    """

    def __init__(self, layers: int = 10, conv_channels: int = 64, kernel_size: int = 3,
                 lrelu_slope: float = 0.2):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd")
        convs, c_in = [], 1
        for i in range(layers - 1):
            dilation = 1 if i == 0 else i
            convs.append(self._conv(c_in, conv_channels, kernel_size, dilation))
            c_in = conv_channels
        self.convs = nn.ModuleList(convs)
        self.last_conv = self._conv(c_in, 1, kernel_size, 1)
        self.lrelu_slope = float(lrelu_slope)

    @staticmethod
    def _conv(c_in: int, c_out: int, kernel_size: int, dilation: int) -> nn.Module:
        conv = nn.Conv1d(c_in, c_out, kernel_size, padding=(kernel_size - 1) // 2 * dilation, dilation=dilation)
        nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        nn.init.zeros_(conv.bias)
        return weight_norm(conv)

    def forward(self, x: torch.Tensor) -> list[DiscriminatorOutput]:
        x = _as_batch_channel_time(x)
        for conv in self.convs:
            x = F.leaky_relu(conv(x), self.lrelu_slope)
        return [(self.last_conv(x), [])]
