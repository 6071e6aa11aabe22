"""Griffin-Lim baseline vocoder (no learned parameters).

Griffin & Lim, "Signal estimation from modified short-time Fourier transform",
IEEE TASSP 1984; the "fast" momentum variant is Perraudin et al., arXiv 1306.0897
(torchaudio's ``GriffinLim`` default ``momentum=0.99``).

Input convention (same as the HiFi-GAN / Tacotron 2 features): the mel-spectrogram
is the *natural* log of a clamped mel *magnitude* (power 1) spectrogram,
``log(clamp(mel_magnitude, min=1e-5))``, with librosa's Slaney mel scale and Slaney
area normalisation, 22.05 kHz, n_fft 1024, hop 256, 80 bands, 0-8000 Hz.

Mel -> linear magnitude: the mel filterbank ``F`` ([n_freq, n_mels], from
:func:`torchaudio.functional.melscale_fbanks`) is inverted once, at construction,
with a Moore-Penrose pseudo-inverse (SVD based), and every call is a single matmul
followed by a clamp at zero. This gives the same minimum-norm least-squares solution
that :class:`torchaudio.transforms.InverseMelScale` computes per call with
``torch.linalg.lstsq`` (its default ``gels`` driver), but

* it is cheaper: the factorisation is paid once, not per utterance, so the energy
  measured is that of Griffin-Lim itself and not of a repeated solver;
* it is deterministic and needs no full-rank assumption (``gels`` assumes the
  [n_mels, n_freq] system has full rank; a mel band that catches no FFT bin would
  break that, whereas the SVD pseudo-inverse just drops the null direction);
* older torchaudio releases solved the same problem by SGD (slow, random).

Phase is then reconstructed by :class:`torchaudio.transforms.GriffinLim` with a
configurable ``n_iter`` (centred frames: ``(frames - 1) * hop`` samples), then shifted by
half a hop to the HiFi-GAN frame centres and zero-padded to ``frames * hop_length``.

The zoo runs it with 32 and 60 iterations: ``conf/vocoder/griffinlim_32.yaml`` and
``griffinlim_60.yaml``.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
import torchaudio
import torchaudio.functional as AF

from .base import MelSettings, Vocoder, resolve_mel

#: mel analysis of the HiFi-GAN / Tacotron 2 (LJSpeech) features.
HIFIGAN_MEL = MelSettings(sample_rate=22050, n_fft=1024, win_length=1024, hop_length=256,
                          n_mels=80, f_min=0.0, f_max=8000.0)


class GriffinLimVocoder(Vocoder):
    """Log-mel -> pseudo-inverse mel filterbank -> Griffin-Lim phase recovery."""

    feature_convention = "hifigan"  # ln(clamp(mel_magnitude, 1e-5)), Slaney mel scale and norm

    def __init__(
        self,
        n_iter: int = 32,
        momentum: float = 0.99,
        rand_init: bool = True,
        mel_scale: str = "slaney",
        mel_norm: str | None = "slaney",
        mel: MelSettings | Mapping | None = None,
    ):
        super().__init__(resolve_mel(mel, HIFIGAN_MEL))
        m = self.mel
        n_freq = m.n_fft // 2 + 1
        fb = AF.melscale_fbanks(
            n_freqs=n_freq,
            f_min=m.f_min,
            f_max=m.f_max if m.f_max is not None else m.sample_rate / 2,
            n_mels=m.n_mels,
            sample_rate=m.sample_rate,
            norm=mel_norm,
            mel_scale=mel_scale,
        )  # [n_freq, n_mels]; mel = fb^T @ linear
        # linear ~= pinv(fb^T) @ mel, computed once in float64 for accuracy
        inverse = torch.linalg.pinv(fb.T.double()).float()  # [n_freq, n_mels]
        self.register_buffer("inverse_fb", inverse, persistent=False)
        self.griffin_lim = torchaudio.transforms.GriffinLim(
            n_fft=m.n_fft,
            n_iter=n_iter,
            win_length=m.win_length,
            hop_length=m.hop_length,
            power=1.0,
            momentum=momentum,
            rand_init=rand_init,
        )

    @property
    def n_iter(self) -> int:
        return self.griffin_lim.n_iter

    def mel_to_linear(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel [B, n_mels, T] -> linear magnitude [B, n_fft//2+1, T]."""
        magnitude_mel = torch.exp(mel)
        linear = torch.matmul(self.inverse_fb, magnitude_mel)
        return linear.clamp_min(0.0)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        linear = self.mel_to_linear(mel)
        # centred STFT frames: T frames give (T - 1) * hop samples, frame t centred on
        # sample t * hop. The mel frames of the HiFi-GAN analysis (reflect padding of
        # (n_fft - hop) / 2, no centring) are centred on t * hop + hop / 2, so shifting by
        # half a hop and padding the end aligns the two and gives T * hop samples.
        wave = self.griffin_lim(linear)
        hop = self.hop_length
        return F.pad(wave, (hop // 2, hop - hop // 2))

    def load_checkpoint_state(self, state: dict) -> None:
        # nothing learned; accept an empty state or our own (buffers are recomputed)
        self.load_state_dict(state, strict=False)

