"""Mel features: shapes and frame counts (frames == T // hop, so vocoder(mel) has T samples),
known values (a sine's energy in its band, the closed form of a bin-centred sine, torchaudio's
MelSpectrogram), the relation between the log conventions, and each vocoder's convention."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torchaudio
import torch.nn.functional as F
from hydra.utils import get_class

from audiofootprint.features import (
    CONVENTIONS,
    UnknownConventionError,
    convention_of,
    features_for,
    mel_filterbank,
    mel_spectrogram,
    n_frames,
    thesis_scale,
)
from audiofootprint.vocoders import zoo
from audiofootprint.vocoders.base import MelSettings, Vocoder
from audiofootprint.vocoders.griffinlim import GriffinLimVocoder
from audiofootprint.vocoders.hifigan import HiFiGAN
from conftest import ROOT

HIFI = MelSettings(22050, 1024, 1024, 256, 80, 0.0, 8000.0)
DIFFWAVE = MelSettings(22050, 1024, 1024, 256, 80, 20.0, 11025.0)
VOCOS = MelSettings(24000, 1024, 1024, 256, 100, 0.0, None)
WAVERNN = MelSettings(22050, 2048, 1100, 275, 80, 40.0, 11025.0)  # odd total padding
SETTINGS = [HIFI, DIFFWAVE, VOCOS, WAVERNN]
THESIS = MelSettings(16000, 2048, 2048, 256, 80, 0.0, 8000.0)  # librosa's melspectrogram defaults at 16 kHz


def sine(freq: float, sr: int, n: int, amp: float = 0.5) -> torch.Tensor:
    t = torch.arange(n, dtype=torch.float64) / sr
    return (amp * torch.sin(2 * math.pi * freq * t)).float()


def padded(wave: torch.Tensor, mel: MelSettings) -> torch.Tensor:
    pad = mel.n_fft - mel.hop_length
    return F.pad(wave.unsqueeze(1), (pad // 2, pad - pad // 2), mode="reflect").squeeze(1)


# ---------------------------------------------------------------------------
# shapes and frame counts
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
def test_shapes_batched_and_1d(convention):
    x = torch.randn(3, 256 * 20) * 0.1
    y = mel_spectrogram(x, HIFI, convention)
    assert y.shape == (3, 80, 20)
    assert y.dtype == torch.float32 and torch.isfinite(y).all()
    one = mel_spectrogram(x[1], HIFI, convention)
    assert one.shape == (1, 80, 20)
    torch.testing.assert_close(one[0], y[1], rtol=1e-5, atol=1e-5)  # batch items are independent


@pytest.mark.parametrize("mel", SETTINGS, ids=["hifigan", "diffwave", "vocos", "wavernn"])
@pytest.mark.parametrize("extra", [0, 1, -1])
def test_frames_equal_samples_floor_divided_by_hop(mel, extra):
    hop = mel.hop_length
    for frames in (1, 2, 7, 40):
        length = frames * hop + (hop - 1 if extra == -1 else extra)
        x = torch.randn(2, length) * 0.1
        for convention in CONVENTIONS:
            y = mel_spectrogram(x, mel, convention)
            assert y.shape == (2, mel.n_mels, length // hop) == (2, mel.n_mels, n_frames(length, mel))


def test_shorter_than_a_hop_gives_no_frame_and_short_inputs_work():
    assert mel_spectrogram(torch.zeros(2, 255), HIFI, "hifigan").shape == (2, 80, 0)
    # shorter than the reflect padding: zero-padded instead, still T // hop frames
    y = mel_spectrogram(torch.randn(1, 300), HIFI, "hifigan")
    assert y.shape == (1, 80, 1) and torch.isfinite(y).all()


def test_float64_is_kept():
    y = mel_spectrogram(torch.randn(1, 2560, dtype=torch.float64) * 0.1, HIFI, "vocos")
    assert y.dtype == torch.float64


def test_vocoder_output_length_matches_the_input():
    """vocoder(features(x)) has exactly len(x) samples when len(x) is a multiple of the hop."""
    x = sine(440.0, 22050, 256 * 30)
    model = GriffinLimVocoder(n_iter=2, rand_init=False)
    mel = features_for(model, x)
    assert mel.shape == (1, 80, 30)
    with torch.no_grad():
        assert model(mel).shape == (1, x.numel())


def test_bad_inputs_raise():
    with pytest.raises(UnknownConventionError, match="known: hifigan"):
        mel_spectrogram(torch.zeros(1024), HIFI, "librosa")
    with pytest.raises(ValueError, match=r"\[B, T\] or \[T\]"):
        mel_spectrogram(torch.zeros(1, 1, 1024), HIFI, "hifigan")
    with pytest.raises(TypeError, match="floating point"):
        mel_spectrogram(torch.zeros(1024, dtype=torch.int16), HIFI, "hifigan")
    with pytest.raises(ValueError, match="win_length"):
        mel_spectrogram(torch.zeros(4096), dataclasses.replace(HIFI, win_length=2048), "hifigan")


# ---------------------------------------------------------------------------
# known values
# ---------------------------------------------------------------------------

def _centres(fb: torch.Tensor, mel: MelSettings) -> torch.Tensor:
    """Centre frequency (Hz) of each filter: the FFT bin of its peak."""
    return fb.argmax(dim=1).double() * mel.sample_rate / mel.n_fft


@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
@pytest.mark.parametrize("freq", [300.0, 1000.0, 3000.0, 6000.0])
def test_a_sine_lands_in_its_mel_band(convention, freq):
    mel = HIFI
    y = mel_spectrogram(sine(freq, mel.sample_rate, mel.sample_rate), mel, convention)[0]
    middle = y[:, 10:-10].mean(dim=1)
    expected = int((_centres(mel_filterbank(mel, convention), mel) - freq).abs().argmin())
    assert abs(int(middle.argmax()) - expected) <= 1
    # far from the sine (more than 5 bands away) the level is much lower
    far = torch.cat([middle[: max(expected - 5, 0)], middle[expected + 6:]])
    assert (far < middle.max()).all()
    if convention in ("hifigan", "vocos"):  # natural log: 40 dB = ln(100)
        assert float(middle.max() - far.max()) > math.log(100.0)


@pytest.mark.parametrize("convention", ["vocos", "diffwave", "hifigan"])
def test_bin_centred_sine_has_the_closed_form_value(convention):
    """A Hann-windowed sine on FFT bin k0 has |X| = A*N/4 at k0 and A*N/8 at k0 +- 1."""
    mel = VOCOS if convention == "vocos" else (DIFFWAVE if convention == "diffwave" else HIFI)
    n, k0, amp = mel.n_fft, 93, 0.25
    freq = k0 * mel.sample_rate / n
    y = mel_spectrogram(sine(freq, mel.sample_rate, mel.hop_length * 40, amp), mel, convention)[0, :, 20]
    fb = mel_filterbank(mel, convention).double()
    mag = torch.zeros(n // 2 + 1, dtype=torch.float64)
    mag[k0], mag[k0 - 1], mag[k0 + 1] = amp * n / 4, amp * n / 8, amp * n / 8
    if convention == "diffwave":
        mag = mag / math.sqrt(3 * n / 8)  # normalized=True: divided by the window's L2 norm
    expected = fb @ mag
    band = int(expected.argmax())
    if convention == "vocos":
        assert float(y[band]) == pytest.approx(math.log(float(expected[band])), abs=1e-3)
    elif convention == "hifigan":
        assert float(y[band]) == pytest.approx(math.log(float(expected[band])), abs=1e-3)
    else:
        db = 20 * math.log10(float(expected[band])) - 20
        assert float(y[band]) == pytest.approx(min(max((db + 100) / 100, 0.0), 1.0), abs=1e-4)


@pytest.mark.parametrize("convention,mel,log", [
    ("vocos", VOCOS, lambda m: torch.log(m.clamp_min(1e-7))),
    ("diffwave", DIFFWAVE, lambda m: ((20 * torch.log10(m.clamp_min(1e-5)) - 20 + 100) / 100).clamp(0, 1)),
    ("hifigan", HIFI, lambda m: torch.log(m.clamp_min(1e-5))),
    ("log10", dataclasses.replace(HIFI, f_min=80.0, f_max=7600.0), lambda m: torch.log10(m.clamp_min(1e-10))),
])
def test_matches_torchaudio_melspectrogram(convention, mel, log):
    c = CONVENTIONS[convention]
    torch.manual_seed(0)
    x = torch.randn(2, mel.hop_length * 50) * 0.1
    transform = torchaudio.transforms.MelSpectrogram(
        sample_rate=mel.sample_rate, n_fft=mel.n_fft, win_length=mel.win_length,
        hop_length=mel.hop_length, f_min=mel.f_min, f_max=mel.f_max, n_mels=mel.n_mels,
        power=1.0, normalized=c.normalized, center=False, norm=c.mel_norm, mel_scale=c.mel_scale)
    expected = log(transform(padded(x, mel)))
    # hifigan adds 1e-9 under the square root (as HiFi-GAN does): a tiny difference here
    torch.testing.assert_close(mel_spectrogram(x, mel, convention), expected, rtol=1e-4, atol=2e-4)


def test_thesis_bound_is_the_window_sum_squared_times_the_largest_filter():
    """A periodic Hann window of N samples sums to N / 2; the largest Slaney filter's sum by hand."""
    fb = mel_filterbank(THESIS, "thesis").double()
    bound = (THESIS.win_length / 2) ** 2 * float(fb.sum(dim=1).max())
    assert thesis_scale(THESIS) == pytest.approx(math.log(bound + 1.0), rel=1e-6)
    # no waveform in [-1, 1] reaches past 1: the loudest one, a full-scale square wave, and noise
    square = torch.sign(sine(1000.0, 16000, 256 * 40, 1.0))
    noise = torch.rand(1, 256 * 40) * 2 - 1
    for wave in (square, noise):
        y = mel_spectrogram(wave, THESIS, "thesis")
        assert y.min() >= 0 and y.max() <= 1
    assert (mel_spectrogram(torch.zeros(1, 256 * 8), THESIS, "thesis") == 0).all()  # ln(0 + 1) = 0


def test_thesis_convention_by_hand_and_against_torchaudio():
    """ln(mel + 1) / ln(bound + 1) of the power mel: a bin-centred sine (|X|^2 = (A N / 4)^2 at k0,
    (A N / 8)^2 at k0 +- 1), and torchaudio's MelSpectrogram with power 2 and Slaney filters."""
    n, k0, amp = THESIS.n_fft, 200, 0.5
    y = mel_spectrogram(sine(k0 * THESIS.sample_rate / n, THESIS.sample_rate, 256 * 40, amp), THESIS, "thesis")
    power = torch.zeros(n // 2 + 1, dtype=torch.float64)
    power[k0], power[k0 - 1], power[k0 + 1] = (amp * n / 4) ** 2, (amp * n / 8) ** 2, (amp * n / 8) ** 2
    expected = mel_filterbank(THESIS, "thesis").double() @ power
    band = int(expected.argmax())
    assert float(y[0, band, 20]) == pytest.approx(math.log1p(float(expected[band])) / thesis_scale(THESIS), rel=1e-3)
    torch.manual_seed(0)
    x = torch.randn(2, 256 * 30) * 0.1
    transform = torchaudio.transforms.MelSpectrogram(
        sample_rate=16000, n_fft=2048, win_length=2048, hop_length=256, f_min=0.0, f_max=8000.0, n_mels=80,
        power=2.0, center=False, norm="slaney", mel_scale="slaney")
    torch.testing.assert_close(mel_spectrogram(x, THESIS, "thesis"),
                               torch.log1p(transform(padded(x, THESIS))) / thesis_scale(THESIS), rtol=1e-4, atol=1e-5)


def test_natural_log_and_log10_differ_by_ln10():
    torch.manual_seed(1)
    x = torch.randn(1, 256 * 40) * 0.3
    ln = mel_spectrogram(x, HIFI, "hifigan")
    l10 = mel_spectrogram(x, HIFI, "log10")
    loud = l10 > -3  # mel magnitude above 1e-3: the 1e-9 under the root is negligible
    assert loud.float().mean() > 0.5
    torch.testing.assert_close(ln[loud], l10[loud] * math.log(10.0), rtol=1e-4, atol=1e-4)
    # melgan and log10 differ only in the floor
    torch.testing.assert_close(mel_spectrogram(x, HIFI, "melgan"), l10.clamp_min(-5.0))


def test_floors_and_diffwave_range():
    silence = torch.zeros(1, 256 * 8)
    assert torch.allclose(mel_spectrogram(silence, VOCOS, "vocos"), torch.tensor(math.log(1e-7)))
    assert torch.allclose(mel_spectrogram(silence, HIFI, "log10"), torch.tensor(-10.0))
    assert torch.allclose(mel_spectrogram(silence, HIFI, "melgan"), torch.tensor(-5.0))
    # sqrt(1e-9) per bin through the Slaney filters stays below the 1e-5 floor
    assert torch.allclose(mel_spectrogram(silence, HIFI, "hifigan"), torch.tensor(math.log(1e-5)))
    assert (mel_spectrogram(silence, DIFFWAVE, "diffwave") == 0).all()
    loud = mel_spectrogram(torch.randn(1, 256 * 8), DIFFWAVE, "diffwave")
    assert loud.min() >= 0 and loud.max() <= 1 and loud.max() > 0.5


def test_filterbanks_are_the_documented_ones():
    slaney = mel_filterbank(HIFI, "hifigan")
    assert slaney.shape == (80, 513)
    htk = mel_filterbank(VOCOS, "vocos")
    assert htk.shape == (100, 513)
    assert 0.99 < float(htk.max()) <= 1.0  # triangles of height 1 (no norm), sampled on FFT bins
    assert float(slaney.max()) < 0.1  # Slaney area normalisation: 2 / bandwidth in Hz
    assert float(slaney[:, 513 * 8000 // 11025 + 2:].abs().max()) == 0.0  # nothing above f_max


# ---------------------------------------------------------------------------
# conventions of the vocoders
# ---------------------------------------------------------------------------

EXPECTED = {
    "HiFiGAN": "hifigan", "BigVGAN": "hifigan", "UnivNet": "hifigan", "WaveGlow": "hifigan",
    "WaveRNNVocoder": "hifigan", "GriffinLimVocoder": "hifigan", "MelGAN": "melgan",
    "MultiBandMelGAN": "log10", "ParallelWaveGAN": "log10", "DiffWave": "diffwave", "Vocos": "vocos",
    "WaveFlow": "hifigan", "WaveGrad": "diffwave",
}


@pytest.mark.parametrize("name", sorted(zoo.load_zoo(ROOT)))
def test_every_zoo_vocoder_declares_its_convention_by_name(name):
    entry = zoo.load_zoo(ROOT)[name]
    cls = get_class(entry.model._target_)
    assert "feature_convention" in vars(cls)  # declared by the class itself, not inherited by accident
    assert convention_of(cls) == EXPECTED[cls.__name__]
    # a config's `features` key replaces the class' convention on the instance it builds
    assert entry.features in (None, *CONVENTIONS)


def test_convention_of_instances_subclasses_and_attributes():
    assert convention_of(GriffinLimVocoder(n_iter=1)) == "hifigan"

    class MyHiFiGAN(HiFiGAN):
        pass

    assert convention_of(MyHiFiGAN) == "hifigan"

    class Named(Vocoder):
        feature_convention = "vocos"

    assert convention_of(Named()) == "vocos"


def test_unknown_convention_is_a_clear_error():
    class Mystery(Vocoder):
        pass

    with pytest.raises(UnknownConventionError, match="Mystery.*feature_convention to one of 'hifigan'"):
        convention_of(Mystery())

    class Described(Vocoder):  # a description is not a name: say which names there are
        feature_convention = "log10(max(mel, 1e-10)), Slaney"

    with pytest.raises(UnknownConventionError, match=r"'log10\(max\(mel, 1e-10\)\), Slaney'.*one of 'hifigan'"):
        convention_of(Described)
