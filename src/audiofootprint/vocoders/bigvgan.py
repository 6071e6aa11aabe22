"""BigVGAN generator (Lee et al. 2022, arXiv:2206.04658).

HiFi-GAN's upsampling backbone with anti-aliased multi-periodicity (AMP)
residual blocks: every nonlinearity is a Snake / SnakeBeta periodic
activation applied at twice the sample rate (Kaiser-windowed sinc low-pass
up- and down-sampling, as in alias-free StyleGAN3). Configuration and module
names follow the official NVIDIA/BigVGAN (``bigvgan.py``, ``activations.py``,
``alias_free_activation/torch``; config ``configs/bigvgan_base_22khz_80band.json``:
upsampling 8, 8, 2, 2, initial channels 512, SnakeBeta with log-scale
parameters), so its ``{"generator": state_dict}`` checkpoints load unchanged.
The constructor's defaults are that config; see ``conf/vocoder/bigvgan_base.yaml``
for it, the official parameter count and its source.

Official checkpoints (NVIDIA/BigVGAN ``bigvgan.py``, ``activations.py``,
``alias_free_activation/torch/{act,resample,filter}.py``, ``train.py``; read at commit
7d2b454564a6c7d014227f635b7423881f14bdac, and the v1 ``models.py`` of e595e4d, which has the
same module names): ``bigvgan_generator.pt`` (Hugging Face ``nvidia/bigvgan_*``) and the v1
``g_05000000`` are ``{"generator": state_dict}``. Every published model, v1 and v2 (the v2
configs: upsampling 4, 4, 2, 2, 2, 2 or 8, 4, 2, 2, 2, 2, 1536 initial channels,
``use_bias_at_final``/``use_tanh_at_final`` false), is a configuration of this class:
:func:`official_config_kwargs` turns the model's ``config.json`` into our ``model``
arguments, and the zoo config for it is those arguments plus::

    weights:
      path: /path/to/bigvgan_generator.pt
      sha256: ...                       # sha256sum bigvgan_generator.pt
      format: nvidia-bigvgan
      mel: {...}                        # the "mel" of official_config_kwargs(config.json)
      # dataset, license, provenance, published_training: see audiofootprint.vocoders.weights
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

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
    "BIGVGAN_MEL",
    "Activation1d",
    "AMPBlock1",
    "AMPBlock2",
    "BigVGAN",
    "Snake",
    "SnakeBeta",
    "kaiser_sinc_filter1d",
    "official_config_kwargs",
]

#: bigvgan_base_22khz_80band.json feature settings.
BIGVGAN_MEL = MelSettings(22050, 1024, 1024, 256, 80, 0.0, 8000.0)


# ---------------------------------------------------------------------------
# Periodic activations
# ---------------------------------------------------------------------------


class Snake(nn.Module):
    """``x + sin^2(a x) / a`` with a learned per-channel frequency ``a``."""

    def __init__(self, channels: int, alpha: float = 1.0, alpha_logscale: bool = False):
        super().__init__()
        self.alpha_logscale = alpha_logscale
        init = torch.zeros(channels) if alpha_logscale else torch.full((channels,), float(alpha))
        self.alpha = nn.Parameter(init)
        self.eps = 1e-9

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.alpha[None, :, None]
        if self.alpha_logscale:
            a = a.exp()
        return x + torch.sin(x * a).pow(2) / (a + self.eps)


class SnakeBeta(nn.Module):
    """``x + sin^2(a x) / b``: separate learned frequency ``a`` and magnitude ``b``."""

    def __init__(self, channels: int, alpha: float = 1.0, alpha_logscale: bool = False):
        super().__init__()
        self.alpha_logscale = alpha_logscale
        init = torch.zeros(channels) if alpha_logscale else torch.full((channels,), float(alpha))
        self.alpha = nn.Parameter(init.clone())
        self.beta = nn.Parameter(init.clone())
        self.eps = 1e-9

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.alpha[None, :, None]
        b = self.beta[None, :, None]
        if self.alpha_logscale:
            a, b = a.exp(), b.exp()
        return x + torch.sin(x * a).pow(2) / (b + self.eps)


# ---------------------------------------------------------------------------
# Anti-aliased resampling (Kaiser-windowed sinc filters)
# ---------------------------------------------------------------------------


def kaiser_sinc_filter1d(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """Low-pass FIR ``[1, 1, kernel_size]`` with unit DC gain.

    ``cutoff`` and ``half_width`` are in cycles per sample (Nyquist = 0.5). The
    Kaiser beta follows Kaiser's empirical rule for the attenuation implied by
    the transition band ``2 * half_width``.
    """
    half = kernel_size // 2
    even = kernel_size % 2 == 0
    attenuation = 2.285 * (half - 1) * math.pi * (4 * half_width) + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, periodic=False, beta=beta)
    t = torch.arange(-half, half) + 0.5 if even else torch.arange(kernel_size) - half
    if cutoff == 0:
        taps = torch.zeros(kernel_size)
    else:
        taps = 2 * cutoff * window * torch.sinc(2 * cutoff * t)
        taps = taps / taps.sum()
    return taps.view(1, 1, kernel_size)


class LowPassFilter1d(nn.Module):
    """Depthwise FIR low-pass with replicate padding and optional decimation."""

    def __init__(self, cutoff: float = 0.5, half_width: float = 0.6, stride: int = 1, kernel_size: int = 12):
        super().__init__()
        if not 0.0 <= cutoff <= 0.5:
            raise ValueError("cutoff must lie in [0, 0.5]")
        even = kernel_size % 2 == 0
        self.pad_left = kernel_size // 2 - int(even)
        self.pad_right = kernel_size // 2
        self.stride = stride
        self.register_buffer("filter", kaiser_sinc_filter1d(cutoff, half_width, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.expand(channels, -1, -1), stride=self.stride, groups=channels)


class UpSample1d(nn.Module):
    """Zero-stuffing upsampler followed by the Kaiser-sinc interpolation filter."""

    def __init__(self, ratio: int = 2, kernel_size: int | None = None):
        super().__init__()
        self.ratio = ratio
        self.kernel_size = int(6 * ratio // 2) * 2 if kernel_size is None else kernel_size
        self.pad = self.kernel_size // ratio - 1
        self.crop_left = self.pad * ratio + (self.kernel_size - ratio) // 2
        self.crop_right = self.pad * ratio + (self.kernel_size - ratio + 1) // 2
        self.register_buffer(
            "filter", kaiser_sinc_filter1d(0.5 / ratio, 0.6 / ratio, self.kernel_size)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        x = self.ratio * F.conv_transpose1d(
            x, self.filter.expand(channels, -1, -1), stride=self.ratio, groups=channels
        )
        return x[..., self.crop_left : x.shape[-1] - self.crop_right]


class DownSample1d(nn.Module):
    """Anti-alias low-pass then decimation by ``ratio``."""

    def __init__(self, ratio: int = 2, kernel_size: int | None = None):
        super().__init__()
        kernel_size = int(6 * ratio // 2) * 2 if kernel_size is None else kernel_size
        self.lowpass = LowPassFilter1d(0.5 / ratio, 0.6 / ratio, stride=ratio, kernel_size=kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lowpass(x)


class Activation1d(nn.Module):
    """Apply ``activation`` at ``ratio`` x the sample rate (up, act, down)."""

    def __init__(self, activation: nn.Module, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.act = activation
        self.upsample = UpSample1d(ratio, kernel_size)
        self.downsample = DownSample1d(ratio, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))


def _make_activation(kind: str, channels: int, logscale: bool) -> nn.Module:
    if kind == "snake":
        return Snake(channels, alpha_logscale=logscale)
    if kind == "snakebeta":
        return SnakeBeta(channels, alpha_logscale=logscale)
    raise ValueError(f"activation must be 'snake' or 'snakebeta', got {kind!r}")


class AMPBlock1(nn.Module):
    """AMP block: per dilation, (act, dilated conv, act, plain conv) + residual."""

    def __init__(self, channels: int, kernel_size: int, dilation: Sequence[int], activation: str, logscale: bool):
        super().__init__()
        self.convs1 = nn.ModuleList(wn_conv1d(channels, channels, kernel_size, d) for d in dilation)
        self.convs2 = nn.ModuleList(wn_conv1d(channels, channels, kernel_size, 1) for _ in dilation)
        self.activations = nn.ModuleList(
            Activation1d(_make_activation(activation, channels, logscale)) for _ in range(2 * len(dilation))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (c1, c2) in enumerate(zip(self.convs1, self.convs2)):
            y = c1(self.activations[2 * i](x))
            y = c2(self.activations[2 * i + 1](y))
            x = x + y
        return x


class AMPBlock2(nn.Module):
    """Lighter AMP block: per dilation, (act, dilated conv) + residual."""

    def __init__(self, channels: int, kernel_size: int, dilation: Sequence[int], activation: str, logscale: bool):
        super().__init__()
        self.convs = nn.ModuleList(wn_conv1d(channels, channels, kernel_size, d) for d in dilation)
        self.activations = nn.ModuleList(
            Activation1d(_make_activation(activation, channels, logscale)) for _ in dilation
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, act in zip(self.convs, self.activations):
            x = x + conv(act(x))
        return x


class BigVGAN(Vocoder):
    """BigVGAN generator (v1 architecture, as in the base configs)."""

    feature_convention = "hifigan"  # ln(clamp(mel_magnitude, 1e-5)), Slaney mel (as HiFi-GAN)

    checkpoint_key = "generator"

    def __init__(
        self,
        resblock: str = "1",
        upsample_rates: Sequence[int] = (8, 8, 2, 2),
        upsample_kernel_sizes: Sequence[int] = (16, 16, 4, 4),
        upsample_initial_channel: int = 512,
        resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
        resblock_dilation_sizes: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
        activation: str = "snakebeta",
        snake_logscale: bool = True,
        use_bias_at_final: bool = True,
        use_tanh_at_final: bool = True,
        mel: MelSettings | Mapping | None = None,
    ):
        super().__init__(resolve_mel(mel, BIGVGAN_MEL))
        upsample_rates = [int(u) for u in upsample_rates]
        upsample_kernel_sizes = [int(k) for k in upsample_kernel_sizes]
        resblock_kernel_sizes = [int(k) for k in resblock_kernel_sizes]
        resblock_dilation_sizes = [[int(d) for d in ds] for ds in resblock_dilation_sizes]
        if math.prod(upsample_rates) != self.mel.hop_length:
            raise ValueError(
                f"prod(upsample_rates)={math.prod(upsample_rates)} != hop_length={self.mel.hop_length}"
            )
        block_cls = {"1": AMPBlock1, "2": AMPBlock2}.get(str(resblock))
        if block_cls is None:
            raise ValueError(f"resblock must be '1' or '2', got {resblock!r}")
        logscale = bool(snake_logscale)
        self.num_kernels = len(resblock_kernel_sizes)
        self.use_tanh_at_final = bool(use_tanh_at_final)

        ch = int(upsample_initial_channel)
        self.conv_pre = wn_conv1d(self.mel.n_mels, ch, 7, padding=3, std=None)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for u, k in zip(upsample_rates, upsample_kernel_sizes):
            # Official layout: each stage is a ModuleList holding one transposed conv.
            self.ups.append(nn.ModuleList([wn_conv_transpose1d(ch, ch // 2, k, u, padding=(k - u) // 2)]))
            ch //= 2
            for k_r, d_r in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(block_cls(ch, k_r, d_r, activation, logscale))
        self.activation_post = Activation1d(_make_activation(activation, ch, logscale))
        self.conv_post = wn_conv1d(ch, 1, 7, padding=3, bias=bool(use_bias_at_final))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        for i, stage in enumerate(self.ups):
            for layer in stage:
                x = layer(x)
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            acc = blocks[0](x)
            for block in blocks[1:]:
                acc = acc + block(x)
            x = acc / self.num_kernels
        x = self.conv_post(self.activation_post(x))
        x = torch.tanh(x) if self.use_tanh_at_final else x.clamp(-1.0, 1.0)
        return x.squeeze(1)

    def state_dict_for_checkpoint(self) -> dict:
        """``{"generator": state}`` with legacy ``weight_g``/``weight_v`` keys, as released."""
        return {self.checkpoint_key: to_legacy_weight_norm_keys(self.state_dict())}

    def load_checkpoint_state(self, state: dict) -> None:
        """Load our checkpoint or NVIDIA's ``bigvgan_generator.pt`` / ``g_XXXXXXXX``.

        The official file is ``{"generator": state_dict}`` (``train.py``, ``BigVGAN._save_pretrained``)
        with legacy weight-norm keys (``*.weight_g``/``*.weight_v``); a file whose weight norm
        was removed (plain ``*.weight``, which the official ``_from_pretrained`` also accepts)
        loads too, as does a bare state dict or one saved from ``DataParallel`` (``module.``).
        The anti-aliasing filters (``*.upsample.filter``, ``*.downsample.lowpass.filter``) are
        persistent buffers in both codes and are loaded as saved. ``use_bias_at_final`` must
        match the file (v2 configs set it false: no ``conv_post.bias``); ``use_tanh_at_final``
        and ``snake_logscale`` leave no trace in the weights: take them from the model's
        ``config.json`` (:func:`official_config_kwargs`).
        """
        state = _strip_prefix(dict(unwrap_checkpoint(state, (self.checkpoint_key,))), "module.")
        has_bias = "conv_post.bias" in state
        if any(key.startswith("conv_post.") for key in state) and has_bias != (self.conv_post.bias is not None):
            raise ValueError(
                f"the checkpoint {'has' if has_bias else 'has no'} conv_post.bias, this model "
                f"use_bias_at_final={self.conv_post.bias is not None}: build it with use_bias_at_final: "
                f"{str(has_bias).lower()} (and use_tanh_at_final as in the model's config.json)")
        self.load_state_dict(adapt_weight_norm_state(state, self))


def official_config_kwargs(config: str | Path | Mapping) -> dict:
    """Our constructor's arguments (the ``model`` section of a conf/vocoder YAML, ``mel`` included)
    for an official BigVGAN ``config.json`` (a path or the parsed mapping; NVIDIA/BigVGAN
    ``configs/*.json`` and the Hugging Face repositories' ``config.json`` share the keys).

    ``use_bias_at_final`` and ``use_tanh_at_final`` default to true when absent, as in the
    official ``BigVGAN.__init__`` (v1 configs lack them; v2 configs set both false).
    """
    if not isinstance(config, Mapping):
        config = json.loads(Path(config).read_text())
    f_max = config.get("fmax")
    return {
        "resblock": str(config["resblock"]),
        "upsample_rates": [int(u) for u in config["upsample_rates"]],
        "upsample_kernel_sizes": [int(k) for k in config["upsample_kernel_sizes"]],
        "upsample_initial_channel": int(config["upsample_initial_channel"]),
        "resblock_kernel_sizes": [int(k) for k in config["resblock_kernel_sizes"]],
        "resblock_dilation_sizes": [[int(d) for d in ds] for ds in config["resblock_dilation_sizes"]],
        "activation": str(config["activation"]),
        "snake_logscale": bool(config["snake_logscale"]),
        "use_bias_at_final": bool(config.get("use_bias_at_final", True)),
        "use_tanh_at_final": bool(config.get("use_tanh_at_final", True)),
        "mel": {"sample_rate": int(config["sampling_rate"]), "n_fft": int(config["n_fft"]),
                "win_length": int(config["win_size"]), "hop_length": int(config["hop_size"]),
                "n_mels": int(config["num_mels"]), "f_min": float(config.get("fmin", 0.0) or 0.0),
                "f_max": None if f_max is None else float(f_max)},
    }


def _strip_prefix(state: dict, prefix: str) -> dict:
    """``state`` without ``prefix`` on its keys, if every key has it (a ``DataParallel`` save)."""
    if state and all(key.startswith(prefix) for key in state):
        return {key[len(prefix):]: value for key, value in state.items()}
    return state
