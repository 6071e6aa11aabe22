"""WaveGrad (Chen, Zhang, Zen, Weiss, Norouzi & Chan, arXiv 2009.00713, ICLR 2021).

A denoising-diffusion vocoder conditioned on a *continuous* noise level. Two convolutional
branches meet in every block:

* the mel-spectrogram goes through a 3x1 convolution, then UBlocks, each upsampling in time by
  its factor (the product of the factors is the hop), then a 3x1 convolution to one channel;
* the noisy waveform goes through a 5x1 convolution, then DBlocks downsampling by the UBlock
  factors in reverse order (the first UBlock's factor has no DBlock: its input is already at
  the mel rate), so that every DBlock output has the length of one UBlock output;
* a FiLM module turns each of these waveform features, plus a sinusoidal encoding of the noise
  level ``sqrt(alpha_bar)`` (scaled by 5000, as the paper does), into a scale and a shift that
  modulate the UBlock of the same length.

A UBlock is two residual blocks: ``x' = conv1x1(up(x)) + conv(lrelu(film(conv(up(lrelu(x))))))``
and ``x' + conv(lrelu(film(conv(lrelu(film(x'))))))``, the four 3x1 convolutions dilated by its
four dilations. A DBlock is ``conv1x1(down(x)) + (lrelu, conv) x 3 (down(x))``. The 1x1
convolution of a residual branch is applied at the lower rate: it commutes with nearest or
linear interpolation (whose weights sum to one), so the function is that of the reference
code, which applies it at the higher rate.

Configurations
    The constructor's defaults are WaveGrad Base as lmnt-com/wavegrad ``model.py`` and
    ivanvovk/WaveGrad ``configs/default.json`` build it (upsampling factors 5, 5, 3, 2, 2;
    768 mel-branch channels, UBlocks of 512, 512, 256, 128, 128 channels with dilations
    (1, 2, 1, 2) in the first two and (1, 2, 4, 8) in the last three; 32 waveform channels,
    DBlocks of 128, 128, 256, 512 with dilations (1, 2, 4); FiLM hidden features as wide as
    the DBlock output; leaky ReLU 0.2). With 80 mel bands it has 15,810,401 parameters, the
    15.81M of the paper (ivanvovk's README gives the same count). The zoo entries are
    ``conf/vocoder/wavegrad_6.yaml`` and ``wavegrad_50.yaml``.

    The thesis grid (ConstanceDws/neural-audio-energy ``src/models/wavegrad``, whose ``up_dims``,
    ``down_dims``, ``up_ratio``, ``up_cycle_size``, ``down_cycle_size`` map to the constructor's
    lists, see ``conf/vocoder/thesis_wavegrad_*.yaml``) differs in three ways the
    constructor takes: ``film_width="output"`` (its FiLM's first convolution maps to the
    UBlock's width, and the positional encoding is added there), ``interpolation="linear"``
    and ``leaky_slope=0.01`` (``nn.LeakyReLU``'s default). Its positional encoding spaces the
    frequencies with ``linspace(0, 1, C/2)`` where ours (lmnt's, ivanvovk's) uses
    ``arange(C/2) / (C/2)``: no parameter depends on it.

Noise schedules (``beta``; the noise level of step n is ``sqrt(prod_{m<=n} (1 - beta_m))``)
    ``noise_schedule`` is the training schedule: the training draws a level uniformly between
    two consecutive levels of it (:class:`audiofootprint.training.density_objectives.WaveGradObjective`).
    Default: the paper's ``Linear(1e-6, 0.01, 1000)`` (lmnt ``params.py``, ivanvovk
    ``training_noise_schedule``). ``forward`` runs the reverse process over the
    ``inference_noise_schedule``; when it is not given, ``inference_steps`` chooses: the
    training schedule itself when ``inference_steps`` is its length, else the schedule of
    :data:`WAVEGRAD_INFERENCE_SCHEDULES` with that many steps (6: the paper's 6-iteration
    schedule; 50: ``Linear(1e-4, 0.05, 50)``, see that table for the sources). A schedule
    is a list of betas or a mapping ``{start, end, steps}`` (``numpy.linspace``).

Sampling (``clip``)
    ``"sample"`` (lmnt ``inference.py``, as :class:`~.diffwave.DiffWave` does): ``y <- (y -
    beta_n / sqrt(1 - alpha_bar_n) eps) / sqrt(alpha_n)``, plus ``sigma_n z`` for n > 0, then
    clamped to [-1, 1]. ``"prediction"`` (the thesis' ``DiffusionModel.p_mean_variance`` and
    ivanvovk's): the clean signal predicted from ``eps`` is clamped to [-1, 1] and the step
    takes the mean of the Gaussian posterior ``q(y_{n-1} | y_n, y_0)``, plus ``sigma_n z``.
    The thesis code's second posterior coefficient multiplies by ``sqrt(alpha_bar_n)`` where
    DDPM (and ivanvovk) have ``sqrt(alpha_n)``; we use DDPM's. Gaussian draws come from torch's
    global generator (seeded by the stage running the model), as DiffWave's do.

Input convention: ``"diffwave"`` (lmnt-com/wavegrad ``preprocess.py`` is lmnt-com/diffwave's:
torchaudio ``MelSpectrogram`` with power 1, ``normalized=True``, 20 Hz to sr/2, then
``clamp((20 log10(clamp(mel, 1e-5)) - 20 + 100) / 100, 0, 1)``).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import MelSettings, Vocoder, resolve_mel

__all__ = [
    "WAVEGRAD_INFERENCE_SCHEDULES",
    "WAVEGRAD_MEL",
    "WAVEGRAD_NOISE_SCHEDULE",
    "WaveGrad",
    "linear_schedule",
]

#: The paper's analysis (24 kHz, 50 ms Hann window, 12.5 ms hop, 2048-point FFT, 20 Hz to 12 kHz,
#: as lmnt-com/wavegrad ``preprocess.py`` derives it from hop 300) with 80 bands: the count that
#: gives the paper's 15.81M parameters (see the zoo entry ``wavegrad_6.yaml``).
WAVEGRAD_MEL = MelSettings(sample_rate=24000, n_fft=2048, win_length=1200, hop_length=300,
                           n_mels=80, f_min=20.0, f_max=12000.0)


def linear_schedule(start: float, end: float, steps: int) -> tuple[float, ...]:
    """``steps`` betas linearly spaced from ``start`` to ``end`` (``numpy.linspace``)."""
    return tuple(np.linspace(float(start), float(end), int(steps)).tolist())


#: The training schedule of the paper: Linear(1e-6, 0.01, 1000) (lmnt ``params.py``).
WAVEGRAD_NOISE_SCHEDULE: tuple[float, ...] = linear_schedule(1e-6, 0.01, 1000)

#: Inference schedules by number of iterations.
#: 6: the WaveGrad paper's 6-iteration schedule, as microsoft/NeuralSpeech PriorGrad-vocoder
#: ``params.py`` (adapted from lmnt-com/wavegrad) gives it under the label "WG-6".
#: 50: Linear(1e-4, 0.05, 50), labelled "WG-50" in the same file (the schedule lmnt-com/diffwave
#: also trains with).
WAVEGRAD_INFERENCE_SCHEDULES: dict[int, tuple[float, ...]] = {
    6: (7e-6, 1.4e-4, 2.1e-3, 2.8e-2, 3.5e-1, 7e-1),
    50: linear_schedule(1e-4, 0.05, 50),
}


def _schedule(value, name: str) -> list[float] | None:
    """A beta schedule from a list of betas or ``{start, end, steps}``; ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        keys = {str(k) for k in value}
        if keys != {"start", "end", "steps"}:
            raise ValueError(f"{name} as a mapping takes start, end and steps (numpy.linspace), not {sorted(keys)}")
        betas = list(linear_schedule(value["start"], value["end"], value["steps"]))
    elif isinstance(value, Sequence) and not isinstance(value, str):
        betas = [float(b) for b in value]
    else:
        raise TypeError(f"{name} must be a list of betas or {{start, end, steps}}, not {type(value).__name__}")
    if not betas or not all(0.0 < b < 1.0 for b in betas):
        raise ValueError(f"{name} must be a non-empty list of betas in (0, 1)")
    return betas


def _conv(in_ch: int, out_ch: int, kernel_size: int, dilation: int = 1) -> nn.Conv1d:
    """'Same'-padded ``Conv1d`` with orthogonal weights and zero bias (the reference codes' init)."""
    conv = nn.Conv1d(in_ch, out_ch, kernel_size, padding=dilation * (kernel_size - 1) // 2, dilation=dilation)
    nn.init.orthogonal_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def _resample(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest")
    return F.interpolate(x, size=size, mode="linear", align_corners=False)


class _NoiseLevelEncoding(nn.Module):
    """Sinusoidal encoding of the noise level: ``[sin(C l f_i), cos(C l f_i)]``, ``f_i = 1e-4^(i/(d/2))``,
    C = 5000 (the paper's scale), as a ``[B, dim, 1]`` tensor to add to features."""

    SCALE = 5000.0

    def __init__(self, dim: int):
        super().__init__()
        if dim % 2:
            raise ValueError(f"the noise-level encoding needs an even width, not {dim}")
        half = dim // 2
        freqs = 1e-4 ** (torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, level: torch.Tensor) -> torch.Tensor:
        angles = self.SCALE * level.reshape(-1, 1).to(self.freqs.dtype) * self.freqs.unsqueeze(0)
        return torch.cat([angles.sin(), angles.cos()], dim=1).unsqueeze(-1)


class _FiLM(nn.Module):
    """Scale and shift for a UBlock from a DBlock output and the noise level."""

    def __init__(self, in_ch: int, out_ch: int, hidden: int, slope: float):
        super().__init__()
        self.slope = slope
        self.input_conv = _conv(in_ch, hidden, 3)
        self.encoding = _NoiseLevelEncoding(hidden)
        self.scale_conv = _conv(hidden, out_ch, 3)
        self.shift_conv = _conv(hidden, out_ch, 3)

    def forward(self, x: torch.Tensor, level: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.leaky_relu(self.input_conv(x), self.slope) + self.encoding(level).to(x.dtype)
        return self.scale_conv(h), self.shift_conv(h)


class _UBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, factor: int, dilations: Sequence[int], slope: float, mode: str):
        super().__init__()
        if len(dilations) != 4:
            raise ValueError(f"a UBlock takes 4 dilations, not {list(dilations)}")
        self.factor, self.slope, self.mode = int(factor), slope, mode
        self.residual = _conv(in_ch, out_ch, 1)
        self.convs = nn.ModuleList([_conv(in_ch if i == 0 else out_ch, out_ch, 3, int(d))
                                    for i, d in enumerate(dilations)])

    def forward(self, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        size = x.shape[-1] * self.factor
        c = self.convs
        residual = _resample(self.residual(x), size, self.mode)
        h = c[0](_resample(F.leaky_relu(x, self.slope), size, self.mode))
        h = c[1](F.leaky_relu(scale * h + shift, self.slope))
        x = residual + h
        h = c[2](F.leaky_relu(scale * x + shift, self.slope))
        h = c[3](F.leaky_relu(scale * h + shift, self.slope))
        return x + h


class _DBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, factor: int, dilations: Sequence[int], slope: float, mode: str):
        super().__init__()
        if len(dilations) != 3:
            raise ValueError(f"a DBlock takes 3 dilations, not {list(dilations)}")
        self.factor, self.slope, self.mode = int(factor), slope, mode
        self.residual = _conv(in_ch, out_ch, 1)
        self.convs = nn.ModuleList([_conv(in_ch if i == 0 else out_ch, out_ch, 3, int(d))
                                    for i, d in enumerate(dilations)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _resample(x, x.shape[-1] // self.factor, self.mode)
        residual = self.residual(x)
        for conv in self.convs:
            x = conv(F.leaky_relu(x, self.slope))
        return x + residual


class WaveGrad(Vocoder):
    """WaveGrad; :meth:`forward` runs the reverse process over the sampling schedule (under
    ``torch.no_grad``: it is a sampler; :meth:`denoise` is the differentiable network)."""

    feature_convention = "diffwave"  # lmnt-com/wavegrad preprocess.py (= lmnt-com/diffwave's)

    def __init__(
        self,
        upsample_factors: Sequence[int] = (5, 5, 3, 2, 2),
        upsample_preconv_channels: int = 768,
        upsample_channels: Sequence[int] = (512, 512, 256, 128, 128),
        upsample_dilations: Sequence[Sequence[int]] = ((1, 2, 1, 2), (1, 2, 1, 2), (1, 2, 4, 8),
                                                       (1, 2, 4, 8), (1, 2, 4, 8)),
        downsample_preconv_channels: int = 32,
        downsample_channels: Sequence[int] = (128, 128, 256, 512),
        downsample_dilations: Sequence[Sequence[int]] = ((1, 2, 4),) * 4,
        film_width: str = "input",
        interpolation: str = "nearest",
        leaky_slope: float = 0.2,
        noise_schedule: Sequence[float] | Mapping | None = None,
        inference_noise_schedule: Sequence[float] | Mapping | None = None,
        inference_steps: int = 6,
        clip: str = "sample",
        mel: MelSettings | Mapping | None = None,
    ):
        super().__init__(resolve_mel(mel, WAVEGRAD_MEL))
        factors = [int(f) for f in upsample_factors]
        ups = [int(c) for c in upsample_channels]
        downs = [int(c) for c in downsample_channels]
        n = len(factors)
        if n < 1 or any(f < 1 for f in factors):
            raise ValueError(f"upsample_factors must be positive whole numbers, not {factors}")
        if math.prod(factors) != self.hop_length:
            raise ValueError(f"the product of upsample_factors {factors} ({math.prod(factors)}) must equal "
                             f"mel.hop_length ({self.hop_length})")
        if len(ups) != n or len(upsample_dilations) != n:
            raise ValueError(f"upsample_channels and upsample_dilations need one entry per upsampling factor ({n})")
        if len(downs) != n - 1 or len(downsample_dilations) != n - 1:
            raise ValueError(f"downsample_channels and downsample_dilations need {n - 1} entries: one DBlock per "
                             "upsampling factor but the first")
        if film_width not in ("input", "output"):
            raise ValueError(f"film_width must be 'input' or 'output', not {film_width!r}")
        if interpolation not in ("nearest", "linear"):
            raise ValueError(f"interpolation must be 'nearest' or 'linear', not {interpolation!r}")
        if clip not in ("sample", "prediction"):
            raise ValueError(f"clip must be 'sample' or 'prediction', not {clip!r}")
        slope = float(leaky_slope)
        self.upsample_factors = factors
        self.clip = clip

        # The zoo's paper configurations omit the schedules: the defaults are the paper's.
        self.noise_schedule = _schedule(noise_schedule, "noise_schedule") or list(WAVEGRAD_NOISE_SCHEDULE)
        chosen = _schedule(inference_noise_schedule, "inference_noise_schedule")
        if chosen is None:
            if inference_steps == len(self.noise_schedule):
                chosen = list(self.noise_schedule)
            elif inference_steps in WAVEGRAD_INFERENCE_SCHEDULES:
                chosen = list(WAVEGRAD_INFERENCE_SCHEDULES[inference_steps])
            else:
                raise ValueError(
                    f"inference_steps {inference_steps}: give an inference_noise_schedule of that many steps, or "
                    f"use {len(self.noise_schedule)} (the training schedule) or one of "
                    f"{sorted(WAVEGRAD_INFERENCE_SCHEDULES)} (the paper's schedules)")
        if len(chosen) != inference_steps:
            raise ValueError(f"inference_noise_schedule has {len(chosen)} steps, inference_steps is {inference_steps}")
        self.inference_steps = int(inference_steps)
        self.sampling_schedule = chosen
        self.inference_noise_schedule = chosen

        # waveform branch (full rate first), FiLMs, mel branch
        down_factors = factors[1:][::-1]
        down_in = [int(downsample_preconv_channels)] + downs
        self.downsample_preconv = _conv(1, int(downsample_preconv_channels), 5)
        self.downsample = nn.ModuleList(
            _DBlock(down_in[i], downs[i], down_factors[i], downsample_dilations[i], slope, interpolation)
            for i in range(n - 1))
        film_out = ups[::-1]
        self.films = nn.ModuleList(
            _FiLM(down_in[i], film_out[i], down_in[i] if film_width == "input" else film_out[i], slope)
            for i in range(n))
        up_in = [int(upsample_preconv_channels)] + ups[:-1]
        self.upsample_preconv = _conv(self.mel.n_mels, int(upsample_preconv_channels), 3)
        self.upsample = nn.ModuleList(
            _UBlock(up_in[i], ups[i], factors[i], upsample_dilations[i], slope, interpolation) for i in range(n))
        self.upsample_postconv = _conv(ups[-1], 1, 3)
        self._coefficients = self._sampling_coefficients()

    # -- network ------------------------------------------------------------------
    def denoise(self, audio: torch.Tensor, mel: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """Noise prediction eps(audio | mel, noise level): audio [B, frames * hop], mel [B, n_mels,
        frames], level [B] (``sqrt(alpha_bar)``) -> [B, frames * hop]."""
        x = self.downsample_preconv(audio.unsqueeze(1))
        films = [self.films[0](x, level)]
        for block, film in zip(self.downsample, self.films[1:]):
            x = block(x)
            films.append(film(x, level))
        h = self.upsample_preconv(mel)
        for block, (scale, shift) in zip(self.upsample, reversed(films)):
            h = block(h, scale, shift)
        return self.upsample_postconv(h).squeeze(1)

    # -- sampling -------------------------------------------------------------------
    def _sampling_coefficients(self) -> list[tuple[float, ...]]:
        """Per reverse step n: (level sqrt(alpha_bar_n), 1/sqrt(alpha_n), beta_n/sqrt(1 - alpha_bar_n),
        sigma_n, sqrt(alpha_bar_n), sqrt(1 - alpha_bar_n), posterior coefficients of y_0 and y_n)."""
        beta = np.asarray(self.sampling_schedule, dtype=np.float64)
        alpha = 1.0 - beta
        alpha_bar = np.cumprod(alpha)
        prev = np.concatenate([[1.0], alpha_bar[:-1]])
        coeffs = []
        for n in range(len(beta)):
            sigma = math.sqrt((1.0 - prev[n]) / (1.0 - alpha_bar[n]) * beta[n]) if n > 0 else 0.0
            coeffs.append((
                math.sqrt(alpha_bar[n]),
                1.0 / math.sqrt(alpha[n]),
                beta[n] / math.sqrt(1.0 - alpha_bar[n]),
                sigma,
                math.sqrt(1.0 - alpha_bar[n]),
                math.sqrt(prev[n]) * beta[n] / (1.0 - alpha_bar[n]),
                math.sqrt(alpha[n]) * (1.0 - prev[n]) / (1.0 - alpha_bar[n]),
            ))
        return coeffs

    @torch.no_grad()
    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        batch = mel.shape[0]
        audio = torch.randn(batch, mel.shape[-1] * self.hop_length, device=mel.device, dtype=mel.dtype)
        for n in reversed(range(len(self._coefficients))):
            level, c1, c2, sigma, sqrt_one_minus, post0, post_n = self._coefficients[n]
            eps = self.denoise(audio, mel, torch.full((batch,), level, device=mel.device, dtype=mel.dtype))
            if self.clip == "sample":
                audio = c1 * (audio - c2 * eps)
            else:
                clean = ((audio - sqrt_one_minus * eps) / level).clamp(-1.0, 1.0)
                audio = post0 * clean + post_n * audio
            if n > 0:
                audio = audio + sigma * torch.randn_like(audio)
            if self.clip == "sample":
                audio = audio.clamp(-1.0, 1.0)
        return audio
