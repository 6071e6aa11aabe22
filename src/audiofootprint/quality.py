"""Speech quality of a synthesis against its recording, for the vocoder benchmark.

Every function takes mono signals (1-D numpy arrays or torch tensors of float samples, nominally
in [-1, 1]) and their sample rate, and returns plain floats:

* intrusive (synthesis compared with the recording it re-synthesises):
  ``pesq_wb`` (ITU-T P.862.2, 16 kHz), ``stoi`` (Taal et al., 10 kHz inside pystoi),
  ``mcd`` (mel-cepstral distortion, dB) and ``mrstft`` (multi-resolution STFT distance);
* non-intrusive (the synthesis alone): ``dnsmos`` (DNSMOS P.835 and P.808, 16 kHz).

``score`` runs any subset of them on one pair and ``METRICS`` describes each output (name,
unit, direction, range, what it measures) so that tables and plots can label and orient axes.

Conventions shared by the intrusive metrics: the two signals are time-aligned (a vocoder
re-synthesises its recording sample for sample, up to the last incomplete hop), so both are
trimmed to the shorter length; lengths differing by more than 1 % are refused (they mean
the pair is wrong, not slightly misaligned). Inputs that are not 1-D, empty, integer-typed or
not finite are refused with a ``ValueError`` naming the problem. Nothing here touches the
network: the DNSMOS ONNX models ship inside the ``speechmos`` wheel.

The heavy back-ends (pesq, pystoi, mel-cepstral-distance, auraloss, speechmos with librosa and
onnxruntime) are imported on first use, so importing this module stays cheap.
"""
from __future__ import annotations

import functools
import math
import warnings
from typing import Iterable

import numpy as np
import torch

PESQ_RATE = 16_000     # P.862.2 (wide-band PESQ) is defined at 16 kHz only
DNSMOS_RATE = 16_000   # the DNSMOS ONNX models take 16 kHz input
LENGTH_TOLERANCE = 0.01  # relative length difference accepted (then trimmed) between a pair

# Mel-cepstral distortion: the parameters of mel-cepstral-distance (0.0.4)'s own defaults,
# i.e. Kubichek's definition, written out so that a package upgrade cannot change them silently.
MCD_N_FFT_MS = 32.0
MCD_WIN_LEN_MS = 32.0
MCD_HOP_LEN_MS = 8.0
MCD_WINDOW = "hanning"
MCD_MEL_BANDS = 20        # M
# The package numbers its DCT rows from i = 1 (row r holds c_{r+1}; c0, the frame energy, is
# never computed), so its own defaults s=1, D=16 keep c2..c16 and drop c1 (spectral tilt),
# although its documentation says s=1 drops only the energy term. s=0, D=15 keeps c1..c15:
# the common definition (all of the spectral shape, not the energy) that its defaults intend.
MCD_FIRST_COEFF = 0       # s: first row kept, i.e. c1
MCD_END_COEFF = 15        # D: rows s..D-1 kept, i.e. c1..c15
# The package computes log10 mel *power* (bels), an unnormalised DCT-II over the M bands, and
# the plain Euclidean norm (alpha = 1). By Parseval on the DCT, (sqrt(2) / M) * that norm is
# the RMS over the M mel bands of the log-mel-power difference in bels kept to c1..c15; times
# 10 it is in dB. This is the meaning of "MCD in dB" in the usual (10 sqrt(2) / ln 10) formula.
MCD_DB_PER_UNIT = 10.0 * math.sqrt(2.0) / MCD_MEL_BANDS

# Multi-resolution STFT: Parallel WaveGAN's resolutions (Yamamoto et al. 2020), which are also
# auraloss.freq.MultiResolutionSTFTLoss's defaults; spelled out for the same reason.
MRSTFT_FFT_SIZES = (1024, 2048, 512)
MRSTFT_HOP_SIZES = (120, 240, 50)
MRSTFT_WIN_LENGTHS = (600, 1200, 240)

ALL_METRICS = ("pesq", "stoi", "mcd", "mrstft", "dnsmos")
DNSMOS_KEYS = ("ovrl", "sig", "bak", "p808")

METRICS: dict[str, dict] = {
    "pesq": {
        "name": "PESQ (wide-band)",
        "long_name": "Perceptual Evaluation of Speech Quality, wide-band (ITU-T P.862.2)",
        "unit": "MOS-LQO",
        "direction": "max",
        "range": (0.999, 4.644),
        "best": 4.644,
        "intrusive": True,
        "rate": "16 kHz (resampled)",
        "measures": "predicted listening quality (MOS scale) of the synthesis against the "
                    "recording, from a perceptual model of loudness differences in time and "
                    "frequency after level and time alignment; 4.644 means indistinguishable, and "
                    "severe degradation tends to 0.999",
    },
    "stoi": {
        "name": "STOI",
        "long_name": "Short-Time Objective Intelligibility (Taal et al. 2011)",
        "unit": "",
        "direction": "max",
        "range": (-1.0, 1.0),
        "best": 1.0,
        "intrusive": True,
        "rate": "10 kHz (resampled inside pystoi)",
        "measures": "predicted intelligibility: mean correlation of 1/3-octave band temporal "
                    "envelopes (384 ms segments, 150 Hz-4.3 kHz) of synthesis and recording; "
                    "in practice between 0 and 1, 1 for identical envelopes",
    },
    "mcd": {
        "name": "MCD",
        "long_name": "Mel-cepstral distortion (Kubichek 1993), expressed in dB",
        "unit": "dB",
        "direction": "min",
        "range": (0.0, None),
        "best": 0.0,
        "intrusive": True,
        "rate": "native",
        "measures": "spectral-envelope distance: RMS difference in dB of the log mel "
                    "spectra (20 bands to Nyquist) smoothed to cepstral coefficients 1-15, "
                    "frame by frame without time warping, averaged over frames; loudness (c0) "
                    "excluded",
    },
    "mrstft": {
        "name": "MR-STFT distance",
        "long_name": "Multi-resolution STFT distance (Parallel WaveGAN resolutions, auraloss)",
        "unit": "",
        "direction": "min",
        "range": (0.0, None),
        "best": 0.0,
        "intrusive": True,
        "rate": "native",
        "measures": "mean over three STFT resolutions (FFT 512/1024/2048) of spectral "
                    "convergence plus mean absolute log-magnitude difference; phase ignored",
    },
    "dnsmos_ovrl": {
        "name": "DNSMOS OVRL",
        "long_name": "DNSMOS P.835 overall quality (Reddy et al. 2022)",
        "unit": "MOS",
        "direction": "max",
        "range": (1.0, 5.0),
        "best": 5.0,
        "intrusive": False,
        "rate": "16 kHz (resampled)",
        "measures": "non-intrusive predicted overall quality (P.835 OVRL) of the synthesis "
                    "alone, from a neural network trained on crowd-sourced ratings",
    },
    "dnsmos_sig": {
        "name": "DNSMOS SIG",
        "long_name": "DNSMOS P.835 speech signal quality",
        "unit": "MOS",
        "direction": "max",
        "range": (1.0, 5.0),
        "best": 5.0,
        "intrusive": False,
        "rate": "16 kHz (resampled)",
        "measures": "non-intrusive predicted quality of the speech itself (P.835 SIG): "
                    "distortion, colouration of the voice",
    },
    "dnsmos_bak": {
        "name": "DNSMOS BAK",
        "long_name": "DNSMOS P.835 background noise quality",
        "unit": "MOS",
        "direction": "max",
        "range": (1.0, 5.0),
        "best": 5.0,
        "intrusive": False,
        "rate": "16 kHz (resampled)",
        "measures": "non-intrusive predicted intrusiveness of background noise (P.835 BAK); "
                    "5 means no audible noise",
    },
    "dnsmos_p808": {
        "name": "DNSMOS P.808",
        "long_name": "DNSMOS P.808 overall quality",
        "unit": "MOS",
        "direction": "max",
        "range": (1.0, 5.0),
        "best": 5.0,
        "intrusive": False,
        "rate": "16 kHz (resampled)",
        "measures": "non-intrusive predicted overall quality on the ITU-T P.808 (ACR) scale, "
                    "from a separate model on log-mel features",
    },
}


# ----------------------------------------------------------------------------- inputs

def _signal(x, name: str) -> np.ndarray:
    """``x`` as a finite, non-empty, 1-D float64 numpy array, or a ValueError naming the problem."""
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise ValueError(f"{name}: complex samples are not audio (dtype {x.dtype})")
        if not (x.is_floating_point()):
            raise ValueError(f"{name}: expected float samples in [-1, 1], got dtype {x.dtype}"
                             " (scale integer PCM, e.g. int16 / 32768, first)")
        array = x.detach().to("cpu", torch.float64).numpy()
    else:
        array = np.asarray(x)
        if array.dtype == object or array.dtype.kind not in "fiub":
            raise ValueError(f"{name}: expected real float samples, got dtype {array.dtype}")
        if array.dtype.kind in "iub" and isinstance(x, np.ndarray):
            raise ValueError(f"{name}: expected float samples in [-1, 1], got dtype {array.dtype}"
                             " (scale integer PCM, e.g. int16 / 32768, first)")
        array = array.astype(np.float64, copy=False)
    if array.ndim != 1:
        hint = (" (a single channel: squeeze it first)" if array.ndim >= 2 and
                sum(d > 1 for d in array.shape) <= 1 else "")
        kind = "a scalar" if array.ndim == 0 else f"{array.ndim}-D, shape {tuple(array.shape)}"
        raise ValueError(f"{name}: expected a 1-D mono signal, got {kind}{hint}")
    if array.size == 0:
        raise ValueError(f"{name}: signal is empty")
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(np.isnan(array).sum())
        what = f"{bad} NaN" if bad else "infinite values"
        if bad and bad < (~finite).sum():
            what += " and infinite values"
        raise ValueError(f"{name}: signal contains {what} (of {array.size} samples)")
    return array


def _rate(sample_rate) -> int:
    try:
        ok = (not isinstance(sample_rate, bool) and float(sample_rate).is_integer()
              and sample_rate > 0)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"sample_rate must be a positive integer number of Hz, got {sample_rate!r}")
    return int(sample_rate)


def _pair(reference, degraded) -> tuple[np.ndarray, np.ndarray]:
    """Both signals validated and trimmed to the shorter length (at most 1 % apart)."""
    ref = _signal(reference, "reference")
    deg = _signal(degraded, "degraded")
    n_ref, n_deg = ref.size, deg.size
    if n_ref != n_deg:
        if abs(n_ref - n_deg) > LENGTH_TOLERANCE * max(n_ref, n_deg):
            raise ValueError(
                f"reference and degraded lengths differ by more than "
                f"{LENGTH_TOLERANCE:.0%}: {n_ref} vs {n_deg} samples")
        n = min(n_ref, n_deg)
        ref, deg = ref[:n], deg[:n]
    return ref, deg


def _resample(x: np.ndarray, orig: int, new: int) -> np.ndarray:
    """torchaudio's band-limited (windowed sinc) resampler, float64 throughout."""
    if orig == new:
        return x
    import torchaudio.functional as taf

    return taf.resample(torch.from_numpy(np.ascontiguousarray(x)), orig, new).numpy()


# ----------------------------------------------------------------------------- metrics

def pesq_wb(reference, degraded, sample_rate: int) -> float:
    """Wide-band PESQ (ITU-T P.862.2) of ``degraded`` against ``reference``, MOS-LQO 0.999-4.644.

    Uses the ``pesq`` package (the ITU reference C code). P.862.2 is defined at 16 kHz only,
    so signals at any other rate are first resampled to 16 kHz with
    ``torchaudio.functional.resample`` (band-limited sinc interpolation); content above 8 kHz
    is therefore ignored, and 8 kHz input gives a (legal but pessimistic) wide-band score of
    narrow-band speech. The package scales both signals by their common peak, so the absolute
    level does not matter. Identical signals score 4.644 (raw PESQ 4.5 through the P.862.2
    mapping 0.999 + 4 / (1 + exp(-1.3669 x + 3.8224))); heavy degradation tends to 0.999.

    Raises ValueError when PESQ cannot score the pair: no utterance found (silence, or too little
    speech-like energy) or a signal too short for its analysis (about 1/4 s at least).
    """
    from pesq import BufferTooShortError, NoUtterancesError, PesqError, pesq

    ref, deg = _pair(reference, degraded)
    rate = _rate(sample_rate)
    ref, deg = _resample(ref, rate, PESQ_RATE), _resample(deg, rate, PESQ_RATE)
    seconds = ref.size / PESQ_RATE
    if not np.any(ref) or not np.any(deg):
        which = "reference" if not np.any(ref) else "degraded"
        raise ValueError(f"PESQ: the {which} signal is all zeros (silence); nothing to score")
    try:
        return float(pesq(PESQ_RATE, ref, deg, "wb"))
    except NoUtterancesError as error:
        raise ValueError(
            f"PESQ found no utterances in the {seconds:.3f} s signals: too short, silent or "
            f"not speech-like enough for its voice-activity detection ({error})") from error
    except BufferTooShortError as error:
        raise ValueError(
            f"PESQ: signals too short ({ref.size} samples = {seconds:.3f} s at 16 kHz; "
            f"P.862 needs at least about 1/4 s) ({error})") from error
    except PesqError as error:
        raise ValueError(f"PESQ failed on {seconds:.3f} s of audio: {error!r}") from error


def stoi(reference, degraded, sample_rate: int) -> float:
    """STOI (Taal et al. 2011; pystoi, ``extended=False``) of ``degraded`` against ``reference``.

    pystoi works at 10 kHz and resamples internally (an Octave-compatible polyphase resampler)
    from whatever ``sample_rate`` it is given, so the signals are passed at their native rate:
    resampling here first would only add a second, different filter. It then drops frames more
    than 40 dB below the loudest frame of the reference and needs at least 30 frames (~0.4 s of
    non-silent speech) to remain; where pystoi would then return a placeholder 1e-5 with a
    warning, this raises ValueError instead. 1.0 means identical envelopes.
    """
    from pystoi import stoi as _stoi

    ref, deg = _pair(reference, degraded)
    rate = _rate(sample_rate)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = _stoi(ref, deg, rate, extended=False)
    for warning in caught:
        if "Not enough STFT frames" in str(warning.message):
            raise ValueError(
                f"STOI: too little non-silent speech in {ref.size / rate:.3f} s: pystoi needs "
                f"at least 30 frames (~0.4 s) within 40 dB of the loudest frame")
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return float(value)


def mcd(reference, degraded, sample_rate: int) -> float:
    """Mel-cepstral distortion in dB between ``reference`` and ``degraded`` (0 = identical).

    Computed with the ``mel-cepstral-distance`` package (Kubichek 1993) and its default analysis:
    each signal peak-normalised, Hann-windowed 32 ms frames every 8 ms at the native rate,
    20 mel bands from 0 Hz to Nyquist, log10 mel power, DCT, and the frame-wise Euclidean
    distance of cepstral coefficients c1..c15, averaged over frames. c0 (frame energy) is left
    out, so loudness differences do not count. Coefficient choice: the package numbers its DCT
    rows from c1 (c0 is never computed), so its default s=1, D=16 would keep c2..c16 and drop
    c1 (the spectral tilt); s=0, D=15 is passed to keep c1..c15, the common definition that the
    package documents for its defaults.

    Alignment: none (the package's ``aligning="pad"`` on equal-length inputs compares frame t
    with frame t). A vocoder's output is time-aligned with its recording by construction, so
    dynamic time warping (the package's default, meant for TTS output of a different duration)
    would only let it hide timing errors and lower the score artificially. The pair is first
    trimmed to the shorter length, so no frame is compared with padding.

    Units: the package returns the plain Euclidean cepstral distance (its alpha = 1) over log10
    power with an unnormalised DCT, which is not in dB. It is multiplied here by
    ``MCD_DB_PER_UNIT`` = 10 sqrt(2) / 20: by Parseval, the result is exactly the RMS over the
    20 mel bands of the difference of the two cepstrally smoothed (c1..c15) log mel spectra, in
    dB, averaged over frames; that is what the dB formula (10 / ln 10) sqrt(2 sum dc^2) of the
    literature means. Values follow the analysis choices, so compare them only within one setup
    (same sample rate): they are not interchangeable with SPTK-based MCD figures in papers.
    """
    from mel_cepstral_distance import compare_amplitude_spectrograms
    from mel_cepstral_distance.computation import get_X_km
    from mel_cepstral_distance.helper import ms_to_samples

    ref, deg = _pair(reference, degraded)
    rate = _rate(sample_rate)
    n_fft = ms_to_samples(MCD_N_FFT_MS, rate)
    win_len = ms_to_samples(MCD_WIN_LEN_MS, rate)
    hop_len = ms_to_samples(MCD_HOP_LEN_MS, rate)
    if ref.size <= win_len:
        raise ValueError(f"MCD: signals too short ({ref.size} samples); a {MCD_WIN_LEN_MS:g} ms "
                         f"frame is {win_len} samples at {rate} Hz")
    spectra = []
    for name, x in (("reference", ref), ("degraded", deg)):
        peak = np.max(np.abs(x))
        if peak == 0:
            raise ValueError(f"MCD: the {name} signal is all zeros (silence); its cepstrum is undefined")
        # what compare_audio_files does to a signal read from a file (norm_audio=True), in memory
        spectra.append(get_X_km(x / peak, n_fft, win_len, hop_len, MCD_WINDOW))
    value, _penalty = compare_amplitude_spectrograms(
        spectra[0], spectra[1], rate, MCD_N_FFT_MS,
        M=MCD_MEL_BANDS, s=MCD_FIRST_COEFF, D=MCD_END_COEFF,
        aligning="pad", align_target="mfcc", remove_silence="no",
    )
    return float(value) * MCD_DB_PER_UNIT


@functools.lru_cache(maxsize=1)
def _mrstft_loss():
    from auraloss.freq import MultiResolutionSTFTLoss

    return MultiResolutionSTFTLoss(
        fft_sizes=list(MRSTFT_FFT_SIZES), hop_sizes=list(MRSTFT_HOP_SIZES),
        win_lengths=list(MRSTFT_WIN_LENGTHS),
    ).eval()


def mrstft(reference, degraded, sample_rate: int) -> float:
    """Multi-resolution STFT distance of ``degraded`` from ``reference`` (0 = identical).

    ``auraloss.freq.MultiResolutionSTFTLoss`` with the resolutions of Parallel WaveGAN
    (Yamamoto et al. 2020), which are also auraloss's defaults: FFT sizes (1024, 2048, 512),
    hops (120, 240, 50), Hann windows of (600, 1200, 240) samples. For each resolution it adds
    the spectral convergence ||S_ref - S_deg||_F / ||S_ref||_F and the mean absolute difference
    of natural-log magnitudes, then averages over the three. Resolutions are in samples and the
    signals are used at their native rate, so compare values only at one sample rate.
    ``sample_rate`` is validated but otherwise unused. Not symmetric: the reference is the
    target that normalises the spectral convergence term.
    """
    ref, deg = _pair(reference, degraded)
    _rate(sample_rate)
    shortest = max(MRSTFT_FFT_SIZES) // 2 + 1
    if ref.size < shortest:
        raise ValueError(f"MR-STFT: signals too short ({ref.size} samples); the 2048-point "
                         f"resolution needs at least {shortest}")
    as_tensor = lambda x: torch.from_numpy(x.astype(np.float32)).view(1, 1, -1)  # noqa: E731
    with torch.no_grad():
        value = _mrstft_loss()(as_tensor(deg), as_tensor(ref))
    return float(value)


def dnsmos(degraded, sample_rate: int) -> dict[str, float]:
    """Non-intrusive DNSMOS of ``degraded`` alone: {"ovrl", "sig", "bak", "p808"}, each 1-5.

    ``speechmos.dnsmos`` (Microsoft's DNSMOS P.835 model giving SIG/BAK/OVRL, and the P.808
    model) on 16 kHz audio: other rates are resampled with ``torchaudio.functional.resample``.
    Clips shorter than the models' 9.01 s window are repeated to fill it (speechmos's behaviour,
    as in Microsoft's script); longer ones are scored on 1 s hops and averaged. Samples outside
    [-1, 1], which the models refuse, are clipped with a warning (as writing a PCM file would).

    Cost: the first call in a process takes about 20 s (loading the models and creating the two
    ONNX Runtime sessions, which speechmos then keeps; measured 4 s here with the files in the
    page cache), later calls about 1-2 s for a few seconds of audio (at least 9 s are scored).
    """
    from speechmos import dnsmos as _dnsmos

    x = _signal(degraded, "degraded")
    rate = _rate(sample_rate)
    x = _resample(x, rate, DNSMOS_RATE)
    peak = float(np.max(np.abs(x)))
    if peak > 1.0:
        warnings.warn(f"DNSMOS: samples outside [-1, 1] (peak {peak:.3f}) clipped", RuntimeWarning,
                      stacklevel=2)
        x = np.clip(x, -1.0, 1.0)
    result = _dnsmos.run(x.astype(np.float32), DNSMOS_RATE)
    return {key: float(result[f"{key}_mos"]) for key in DNSMOS_KEYS}


# ----------------------------------------------------------------------------- all at once

_INTRUSIVE = {"pesq": pesq_wb, "stoi": stoi, "mcd": mcd, "mrstft": mrstft}


def score(reference, degraded, sample_rate: int,
          metrics: Iterable[str] = ALL_METRICS) -> dict[str, float]:
    """The requested ``metrics`` of ``degraded`` against ``reference``, as {column: float}.

    ``metrics`` is any of "pesq", "stoi", "mcd", "mrstft", "dnsmos"; the keys returned are the
    same, except that "dnsmos" expands to dnsmos_ovrl, dnsmos_sig, dnsmos_bak and dnsmos_p808
    (all keys of ``METRICS``). Both signals are trimmed to the shorter length first; a
    ValueError names both lengths when they differ by more than 1 %. DNSMOS scores the trimmed
    ``degraded`` signal.
    """
    requested = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in requested if m not in ALL_METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {list(ALL_METRICS)}")
    if not requested:
        raise ValueError(f"no metric requested; choose from {list(ALL_METRICS)}")
    ref, deg = _pair(reference, degraded)
    rate = _rate(sample_rate)
    result: dict[str, float] = {}
    for metric in dict.fromkeys(requested):  # in order, without repeats
        if metric == "dnsmos":
            result.update({f"dnsmos_{key}": value for key, value in dnsmos(deg, rate).items()})
        else:
            result[metric] = _INTRUSIVE[metric](ref, deg, rate)
    return result
