"""Mel-spectrogram features in the input convention of each vocoder of the zoo.

:func:`mel_spectrogram` turns a waveform ``[B, T]`` (or ``[T]``) into the features a vocoder
takes, ``[B, n_mels, T // hop_length]``, for a :class:`~audiofootprint.vocoders.base.MelSettings`
(sample rate, FFT, window, hop, bands, band limits) and a named *convention* (filterbank
and compression). :func:`convention_of` gives the convention of a vocoder instance.

Framing (all conventions)
    The waveform is reflect-padded by ``(n_fft - hop) // 2`` samples on the left and
    ``n_fft - hop - (n_fft - hop) // 2`` on the right, then analysed without centring
    (``center=False``), as HiFi-GAN and MelGAN do. Frame ``t`` is centred on sample
    ``t * hop + hop / 2`` and a waveform of ``frames * hop`` samples gives exactly
    ``frames`` frames, so ``vocoder(mel_spectrogram(x))`` has as many samples as ``x``
    (``T // hop * hop``; a tail shorter than a hop gives no frame). The official DiffWave,
    Vocos and Parallel WaveGAN recipes centre their STFT instead (``T // hop + 1`` frames,
    the same frame centres shifted by half a hop); every model here is trained and run on
    this one framing, so the difference does not matter within the project. The window is a
    periodic Hann window of ``win_length`` samples, centred in the ``n_fft`` frame.

Conventions (``CONVENTIONS``)
    ``"hifigan"``
        HiFi-GAN, BigVGAN, UnivNet, WaveGlow (Tacotron 2 features), WaveRNN, Griffin-Lim:
        magnitude ``sqrt(re^2 + im^2 + 1e-9)`` (as jik876/hifi-gan ``meldataset.py``),
        librosa's Slaney mel scale with Slaney area normalisation, ``ln(clamp(mel, 1e-5))``.
    ``"melgan"``
        MelGAN (descriptinc/melgan-neurips ``Audio2Mel``): magnitude, Slaney mel scale and
        norm, ``log10(clamp(mel, 1e-5))``.
    ``"log10"``
        Parallel WaveGAN and Multi-band MelGAN (kan-bayashi/ParallelWaveGAN
        ``logmelfilterbank``): magnitude, Slaney mel scale and norm, ``log10(max(mel, 1e-10))``.
        The official recipe then z-normalises every band with mean and standard deviation
        of the training set (``compute_statistics.py``). We do not: the un-normalised log10
        mel is used consistently for training and for inference, which needs no dataset
        statistics file and gives the network the same information (an affine change of
        its input per band). An official toolkit checkpoint loaded with its ``stats.h5``
        applies that normalisation inside the model
        (:mod:`audiofootprint.vocoders.parallel_wavegan`), so it takes these features too.
    ``"diffwave"``
        DiffWave (lmnt-com/diffwave ``preprocess.py``): torchaudio ``MelSpectrogram`` with
        power 1, ``normalized=True`` (spectrum divided by the window's L2 norm), HTK mel
        scale without filter normalisation, then
        ``clamp((20 * log10(clamp(mel, 1e-5)) - 20 + 100) / 100, 0, 1)``.
    ``"vocos"``
        Vocos (gemelo-ai/vocos ``MelSpectrogramFeatures``): torchaudio ``MelSpectrogram``
        with power 1, HTK mel scale, no filter normalisation, ``ln(clamp(mel, 1e-7))``.
    ``"thesis"``
        The thesis' benchmark grid (ConstanceDws/neural-audio-energy ``src/preprocess.py`` and
        ``src/datasets.py``): librosa's ``melspectrogram`` defaults (power 2, Slaney mel scale
        and norm), ``ln(mel + 1)``, min-max normalised. The thesis code takes the minimum as 0
        (``ln(mel + 1) >= 0``) and the maximum over its dataset; we divide by the largest value
        the analysis can give a waveform in [-1, 1] instead (:func:`thesis_scale`: every
        bin's magnitude is at most the window's sum), so the features lie in [0, 1] without a
        dataset statistics file. The two differ by a constant factor, which gives the network
        the same information (as for ``"log10"`` above).

The band limits come from the :class:`MelSettings` (``f_max=None`` means ``sample_rate / 2``);
each vocoder's default settings are its official ones (e.g. DiffWave 20 Hz to 11.025 kHz).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchaudio.functional as AF

from audiofootprint.vocoders.base import MelSettings

__all__ = [
    "CONVENTIONS",
    "Convention",
    "UnknownConventionError",
    "convention_of",
    "features_for",
    "mel_filterbank",
    "mel_spectrogram",
    "n_frames",
    "thesis_scale",
]


@dataclass(frozen=True)
class Convention:
    """How a vocoder's features are computed from the STFT (everything but the MelSettings)."""

    name: str
    mel_scale: str           # "slaney" (librosa default) or "htk" (torchaudio default)
    mel_norm: str | None     # "slaney" area normalisation or None
    normalized: bool         # divide the STFT by the window's L2 norm (torchaudio ``normalized=True``)
    magnitude_eps: float     # added to re^2 + im^2 under the square root
    compression: str         # "ln", "log10", "diffwave" or "thesis"
    floor: float             # mel magnitudes are clamped to at least this before the log
    description: str
    power: int = 1           # 1: magnitude spectrum; 2: power spectrum (librosa's melspectrogram default)


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention("hifigan", "slaney", "slaney", False, 1e-9, "ln", 1e-5,
                   "ln(clamp(mel, 1e-5)), magnitude sqrt(|X|^2 + 1e-9), Slaney mel scale and norm"),
        Convention("melgan", "slaney", "slaney", False, 0.0, "log10", 1e-5,
                   "log10(clamp(mel, 1e-5)), magnitude, Slaney mel scale and norm"),
        Convention("log10", "slaney", "slaney", False, 0.0, "log10", 1e-10,
                   "log10(max(mel, 1e-10)), magnitude, Slaney mel scale and norm, no dataset "
                   "z-normalisation"),
        Convention("diffwave", "htk", None, True, 0.0, "diffwave", 1e-5,
                   "clamp((20*log10(clamp(mel, 1e-5)) - 20 + 100)/100, 0, 1), magnitude of the "
                   "window-normalised STFT, HTK mel, no norm"),
        Convention("vocos", "htk", None, False, 0.0, "ln", 1e-7,
                   "ln(clamp(mel, 1e-7)), magnitude, HTK mel, no norm"),
        Convention("thesis", "slaney", "slaney", False, 0.0, "thesis", 0.0,
                   "ln(mel + 1) / ln(bound + 1), power spectrum, Slaney mel scale and norm; bound: the "
                   "largest mel value a waveform in [-1, 1] can give", power=2),
    )
}


class UnknownConventionError(ValueError):
    """A convention name, or a vocoder, whose feature convention is not known."""


def _convention(name: str) -> Convention:
    try:
        return CONVENTIONS[name]
    except (KeyError, TypeError):
        raise UnknownConventionError(
            f"unknown feature convention {name!r}; known: {', '.join(CONVENTIONS)}"
        ) from None


def n_frames(num_samples: int, mel: MelSettings) -> int:
    """Frames :func:`mel_spectrogram` gives for ``num_samples`` samples: ``num_samples // hop``."""
    return int(num_samples) // mel.hop_length


@functools.lru_cache(maxsize=64)
def _filterbank(mel: MelSettings, mel_scale: str, mel_norm: str | None) -> torch.Tensor:
    f_max = float(mel.f_max) if mel.f_max is not None else mel.sample_rate / 2.0
    fb = AF.melscale_fbanks(
        n_freqs=mel.n_fft // 2 + 1,
        f_min=float(mel.f_min),
        f_max=f_max,
        n_mels=mel.n_mels,
        sample_rate=mel.sample_rate,
        norm=mel_norm,
        mel_scale=mel_scale,
    )  # [n_freqs, n_mels]
    return fb.T.contiguous()  # [n_mels, n_freqs]


@functools.lru_cache(maxsize=16)
def thesis_scale(mel: MelSettings) -> float:
    """``ln(bound + 1)``, the divisor of the ``"thesis"`` convention: ``bound`` is the largest power-mel
    value a waveform in [-1, 1] can reach, ``(sum of the window)^2`` times the largest filter's sum
    (no STFT bin's magnitude exceeds the window's sum)."""
    window_sum = float(_window(mel.win_length).sum())
    filters = _filterbank(mel, CONVENTIONS["thesis"].mel_scale, CONVENTIONS["thesis"].mel_norm)
    return float(torch.log1p(torch.tensor(window_sum ** 2 * float(filters.sum(dim=1).max()), dtype=torch.float64)))


def mel_filterbank(mel: MelSettings, convention: str) -> torch.Tensor:
    """The ``[n_mels, n_fft // 2 + 1]`` filterbank of ``convention`` (a copy)."""
    c = _convention(convention)
    return _filterbank(mel, c.mel_scale, c.mel_norm).clone()


@functools.lru_cache(maxsize=16)
def _window(win_length: int) -> torch.Tensor:
    return torch.hann_window(win_length)


def _validate(mel: MelSettings) -> None:
    """A MelSettings checks its own values when made (:class:`~audiofootprint.vocoders.base.MelSettingsError`)."""
    if not isinstance(mel, MelSettings):
        raise TypeError(f"mel must be a MelSettings, not {type(mel).__name__}")


def mel_spectrogram(wave: torch.Tensor, mel: MelSettings, convention: str) -> torch.Tensor:
    """Features of ``wave`` in ``convention`` (see the module docstring).

    ``wave`` is ``[B, T]`` or ``[T]`` (floating point, nominally in [-1, 1]); the result is
    ``[B, n_mels, T // hop_length]`` (``[1, n_mels, frames]`` for a 1-D input), on the
    device and in the floating dtype of ``wave``.
    """
    c = _convention(convention)
    _validate(mel)
    if not isinstance(wave, torch.Tensor):
        wave = torch.as_tensor(wave)
    if wave.dim() == 1:
        wave = wave.unsqueeze(0)
    if wave.dim() != 2:
        raise ValueError(f"wave must be [B, T] or [T], got shape {tuple(wave.shape)}")
    if not wave.is_floating_point():
        raise TypeError(f"wave must be floating point, got {wave.dtype}")
    batch, length = wave.shape
    frames = n_frames(length, mel)
    dtype, device = wave.dtype, wave.device
    if frames == 0:
        return wave.new_zeros(batch, mel.n_mels, 0)

    pad = mel.n_fft - mel.hop_length
    left, right = pad // 2, pad - pad // 2
    # Reflect padding needs more samples than the pad; very short inputs are zero-padded.
    mode = "reflect" if length > max(left, right) else "constant"
    padded = F.pad(wave.unsqueeze(1), (left, right), mode=mode).squeeze(1)
    window = _window(mel.win_length).to(device=device, dtype=dtype)
    spec = AF.spectrogram(
        padded, pad=0, window=window, n_fft=mel.n_fft, hop_length=mel.hop_length,
        win_length=mel.win_length, power=None, normalized=c.normalized, center=False,
        onesided=True,
    )  # complex [B, n_freqs, frames]
    spec = spec[..., :frames]
    if c.power == 2:
        magnitude = spec.real.pow(2) + spec.imag.pow(2)
    elif c.magnitude_eps:
        magnitude = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + c.magnitude_eps)
    else:
        magnitude = spec.abs()
    fb = _filterbank(mel, c.mel_scale, c.mel_norm).to(device=device, dtype=dtype)
    mel_mag = torch.matmul(fb, magnitude)  # [B, n_mels, frames]
    clamped = mel_mag.clamp_min(c.floor)
    if c.compression == "ln":
        return torch.log(clamped)
    if c.compression == "log10":
        return torch.log10(clamped)
    if c.compression == "diffwave":
        db = 20.0 * torch.log10(clamped) - 20.0
        return ((db + 100.0) / 100.0).clamp(0.0, 1.0)
    if c.compression == "thesis":
        return torch.log1p(clamped) / thesis_scale(mel)
    raise AssertionError(f"unhandled compression {c.compression!r}")  # pragma: no cover


# ---------------------------------------------------------------------------
# Which convention a vocoder takes
# ---------------------------------------------------------------------------


def convention_of(model) -> str:
    """The feature convention (a key of :data:`CONVENTIONS`) a vocoder instance or class declares
    with its ``feature_convention`` attribute; anything else raises :class:`UnknownConventionError`."""
    cls = model if isinstance(model, type) else type(model)
    declared = getattr(model, "feature_convention", None)
    if isinstance(declared, str) and declared in CONVENTIONS:
        return declared
    described = f" (feature_convention={declared!r})" if declared is not None else ""
    raise UnknownConventionError(
        f"no feature convention known for {cls.__module__}.{cls.__qualname__}{described}; set its "
        f"class attribute feature_convention to one of {', '.join(repr(n) for n in CONVENTIONS)}"
    )


def features_for(model, wave: torch.Tensor) -> torch.Tensor:
    """The features ``model`` takes for ``wave``: its own mel settings and convention."""
    return mel_spectrogram(wave, model.mel, convention_of(model))
