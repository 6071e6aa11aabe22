"""Speech quality metrics on real behaviour: best values on identical signals, monotonic
degradation with noise, DNSMOS telling clean from noisy speech, resampling, and bad input.

Real speech comes from Asterisk's G.722 prompts (Allison, 16 kHz mono) when installed; every
test that only needs speech-like audio falls back to a synthetic voiced signal otherwise.
DNSMOS is run twice in all (its first call builds the ONNX sessions), in one module fixture.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio.functional as taf

from audiofootprint import quality
from audiofootprint.quality import METRICS, dnsmos, mcd, mrstft, pesq_wb, score, stoi

RATE = 16_000
SECONDS = 3.0
ALLISON = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
PROMPT = "auth-incorrect.g722"  # 4.6 s of speech; the first 3 s are used
INTRUSIVE = ("pesq", "stoi", "mcd", "mrstft")
SNRS = (40, 20, 10, 0)

# --------------------------------------------------------------------------- signals

VOWELS = {"a": (730, 1090, 2440), "i": (270, 2290, 3010), "u": (300, 870, 2240),
          "e": (530, 1840, 2480), "o": (570, 840, 2410)}


def synthetic_speech(rate: int = RATE, seconds: float = SECONDS, seed: int = 0) -> np.ndarray:
    """Speech-like test signal: voiced syllables (gliding f0 near 120-160 Hz, harmonics to
    0.45 rate shaped by three vowel formants and a 1/h glottal tilt, sin^2 envelope) separated
    by short pauses, over a -74 dB noise floor; peak 0.5."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    out = np.zeros(n)
    syllable, gap, start, k = 0.32, 0.13, 0.1, 0
    while start + syllable < seconds - 0.05:
        m = int(syllable * rate)
        t = np.arange(m) / rate
        f0 = (120 + 40 * np.sin(2 * np.pi * 0.7 * (start + t))) * (1 + 0.1 * t / syllable)
        phase = 2 * np.pi * np.cumsum(f0) / rate
        formants = VOWELS["aiueo"[k % 5]]
        voiced = np.zeros(m)
        for h in range(1, int(0.45 * rate / f0.min())):
            fh = h * f0.mean()
            amplitude = sum(1.0 / (1 + ((fh - f) / (60 + 0.05 * f)) ** 2) for f in formants) / h
            voiced += amplitude * np.sin(h * phase + rng.uniform(0, 2 * np.pi))
        i0 = int(start * rate)
        out[i0:i0 + m] += np.sin(np.pi * t / syllable) ** 2 * voiced
        start += syllable + gap * (1 + 0.5 * rng.random())
        k += 1
    out += 1e-4 * rng.standard_normal(n)
    return 0.5 * out / np.abs(out).max()


def real_speech() -> np.ndarray | None:
    """The first 3 s of an Allison prompt (G.722, 16 kHz mono) at peak 0.5, or None if absent."""
    path = ALLISON / PROMPT
    if not path.is_file():
        return None
    import av

    with av.open(str(path), format="g722") as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.sample_rate == RATE
        frames = [frame.to_ndarray() for frame in container.decode(audio=0)]
    pcm = np.concatenate(frames, axis=-1)
    assert pcm.shape[0] == 1, f"expected mono, got {pcm.shape[0]} channels"
    x = pcm[0].astype(np.float64)[: int(SECONDS * RATE)]
    if pcm.dtype.kind == "i":
        x /= 32768.0
    return 0.5 * x / np.abs(x).max()


SKIP_REAL = f"real speech needs the Asterisk G.722 prompts ({ALLISON}/{PROMPT}); not installed"


def with_noise(x: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """``x`` plus white Gaussian noise at ``snr_db`` (whole-signal power ratio)."""
    noise = np.random.default_rng(seed).standard_normal(x.size)
    noise *= math.sqrt(np.mean(x ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    return x + noise


@pytest.fixture(scope="module")
def signals() -> dict[str, np.ndarray]:
    found = real_speech()
    result = {"synthetic": synthetic_speech()}
    if found is not None:
        result["real"] = found
    return result


@pytest.fixture(scope="module")
def speech(signals) -> np.ndarray:
    """Real speech if installed, else the synthetic signal."""
    return signals.get("real", signals["synthetic"])


@pytest.fixture(scope="module")
def noisy_scores(signals) -> dict[str, dict[float, dict[str, float]]]:
    """Intrusive scores of each available signal against itself plus noise, per SNR."""
    return {name: {snr: score(x, with_noise(x, snr), RATE, metrics=INTRUSIVE) for snr in SNRS}
            for name, x in signals.items()}


@pytest.fixture(scope="module")
def dnsmos_clean_and_noisy(speech) -> tuple[dict, dict]:
    """The only two DNSMOS calls of the module: clean speech, and with white noise at 0 dB."""
    return dnsmos(speech, RATE), dnsmos(with_noise(speech, 0), RATE)


def need(signals, source):
    if source not in signals:
        pytest.skip(SKIP_REAL)
    return signals[source]


# --------------------------------------------------------------------------- best values

@pytest.mark.parametrize("source", ["real", "synthetic"])
def test_identical_signals_score_best(signals, source):
    x = need(signals, source)
    result = score(x, x.copy(), RATE, metrics=INTRUSIVE)
    assert result["pesq"] == pytest.approx(4.644, abs=1e-3)  # P.862.2 ceiling
    assert result["stoi"] == pytest.approx(1.0, abs=1e-6)
    assert result["mcd"] == pytest.approx(0.0, abs=1e-9)
    assert result["mrstft"] == pytest.approx(0.0, abs=1e-6)
    for metric, value in result.items():
        assert value == pytest.approx(METRICS[metric]["best"], abs=1e-3)


# --------------------------------------------------------------------------- degradation

@pytest.mark.parametrize("source", ["real", "synthetic"])
@pytest.mark.parametrize("metric", INTRUSIVE)
def test_more_noise_is_monotonically_worse(noisy_scores, signals, source, metric):
    need(signals, source)
    values = [noisy_scores[source][snr][metric] for snr in SNRS]  # from 40 dB down to 0 dB
    steps = np.diff(values)
    if METRICS[metric]["direction"] == "max":
        assert (steps < 0).all(), f"{metric} should fall as SNR falls: {dict(zip(SNRS, values))}"
    else:
        assert (steps > 0).all(), f"{metric} should rise as SNR falls: {dict(zip(SNRS, values))}"


def test_noisy_real_speech_values_are_plausible(signals, noisy_scores):
    need(signals, "real")
    at = noisy_scores["real"]
    assert 3.0 < at[40]["pesq"] < 4.2 and at[0]["pesq"] < 1.2
    assert at[40]["stoi"] > 0.99 and 0.6 < at[0]["stoi"] < 0.85
    assert 0.5 < at[40]["mcd"] < 5 and at[0]["mcd"] > 8
    for snr, values in at.items():
        for metric, value in values.items():
            low, high = METRICS[metric]["range"]
            assert low <= value and (high is None or value <= high), (snr, metric, value)


def test_dnsmos_prefers_clean_speech(dnsmos_clean_and_noisy):
    clean, noisy = dnsmos_clean_and_noisy
    assert set(clean) == set(noisy) == {"ovrl", "sig", "bak", "p808"}
    for key in clean:
        assert 1.0 <= clean[key] <= 5.0 and 1.0 <= noisy[key] <= 5.0
        assert clean[key] > noisy[key], f"DNSMOS {key}: clean {clean[key]:.2f} <= 0 dB {noisy[key]:.2f}"
    assert clean["ovrl"] - noisy["ovrl"] > 0.5
    assert clean["bak"] - noisy["bak"] > 1.0


def test_dnsmos_rejects_bad_input_before_loading_models():
    with pytest.raises(ValueError, match="NaN"):
        dnsmos(np.array([0.0, np.nan, 0.1] * 100), RATE)
    with pytest.raises(ValueError, match="1-D"):
        dnsmos(np.zeros((2, 1000)), RATE)


# --------------------------------------------------------------------------- resampling

def test_pesq_at_22050_hz_matches_16_khz(speech):
    degraded = with_noise(speech, 30)
    up = lambda x: taf.resample(torch.from_numpy(x), RATE, 22_050).numpy()  # noqa: E731
    at_16k = pesq_wb(speech, degraded, RATE)
    at_22k = pesq_wb(up(speech), up(degraded), 22_050)
    assert 1.5 < at_16k < 4.0
    assert at_22k == pytest.approx(at_16k, abs=0.15)
    assert pesq_wb(up(speech), up(speech), 22_050) == pytest.approx(4.644, abs=1e-3)


def test_stoi_resamples_inside_pystoi(speech):
    degraded = with_noise(speech, 10)
    up = lambda x: taf.resample(torch.from_numpy(x), RATE, 22_050).numpy()  # noqa: E731
    assert stoi(up(speech), up(degraded), 22_050) == pytest.approx(stoi(speech, degraded, RATE), abs=0.01)


# --------------------------------------------------------------------------- MCD definition

def test_mcd_is_rms_log_mel_difference_in_db(speech):
    """The documented meaning: per frame, the RMS over the 20 mel bands of the difference of the
    two log mel spectra (dB) kept to cepstral coefficients c1..c15, averaged over frames."""
    from mel_cepstral_distance.computation import get_w_n_m, get_X_km, get_X_kn

    degraded = with_noise(speech, 20)
    bands = quality.MCD_MEL_BANDS

    def log_mel_db(x):
        spectrum = get_X_km(x / np.abs(x).max(), 512, 512, 128, "hanning")  # 32/32/8 ms at 16 kHz
        return 10 * get_X_kn(spectrum, get_w_n_m(RATE, 512, bands, 0, RATE // 2))

    n = np.arange(bands)
    dct = np.cos(np.outer(np.arange(bands), n + 0.5) * np.pi / bands)  # row i: c_i, i = 0..19
    keep = np.zeros(bands)
    keep[1:16] = 1.0  # c1..c15

    def smoothed(log_mel):
        return (2 / bands) * ((log_mel @ dct.T) * keep) @ dct

    difference = smoothed(log_mel_db(speech)) - smoothed(log_mel_db(degraded))
    expected = np.mean(np.sqrt(np.mean(difference ** 2, axis=1)))
    assert mcd(speech, degraded, RATE) == pytest.approx(expected, rel=1e-9)


def test_mcd_equals_the_package_file_api(speech, tmp_path):
    import soundfile as sf
    from mel_cepstral_distance import compare_audio_files

    reference = speech.astype(np.float32)
    degraded = with_noise(speech, 15).astype(np.float32)
    sf.write(tmp_path / "ref.wav", reference, RATE, subtype="FLOAT")
    sf.write(tmp_path / "deg.wav", degraded, RATE, subtype="FLOAT")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy does not know soundfile's 'fact' chunk
        raw, penalty = compare_audio_files(tmp_path / "ref.wav", tmp_path / "deg.wav",
                                           s=0, D=15, aligning="pad", align_target="mfcc")
    assert penalty == 0.0
    assert mcd(reference, degraded, RATE) == pytest.approx(raw * quality.MCD_DB_PER_UNIT, rel=1e-9)


def test_mcd_ignores_loudness_but_not_spectral_tilt(speech):
    assert mcd(speech, 0.3 * speech, RATE) == pytest.approx(0.0, abs=1e-9)
    tilted = np.append(speech[0], speech[1:] - 0.9 * speech[:-1])  # pre-emphasis: tilt only
    assert mcd(speech, tilted, RATE) > 3.0


# --------------------------------------------------------------------------- score and METRICS

def test_score_keys_types_and_metrics_table(speech):
    degraded = with_noise(speech, 20)
    result = score(speech, degraded, RATE, metrics=("mcd", "stoi"))
    assert list(result) == ["mcd", "stoi"]
    assert all(type(v) is float for v in result.values())
    expected = ["pesq", "stoi", "mcd", "mrstft",
                "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"]
    assert list(METRICS) == expected
    for key, meta in METRICS.items():
        assert {"name", "unit", "direction", "range", "best", "measures"} <= set(meta), key
        assert meta["direction"] in ("max", "min")
        low, high = meta["range"]
        assert low <= meta["best"] and (high is None or meta["best"] <= high)
        assert meta["best"] == (high if meta["direction"] == "max" else low)


def test_score_trims_within_one_percent(speech):
    degraded = with_noise(speech, 20)
    longer = np.concatenate([degraded, np.zeros(int(0.009 * speech.size))])
    assert score(speech, longer, RATE, metrics=("mcd", "mrstft")) == \
        score(speech, degraded, RATE, metrics=("mcd", "mrstft"))
    # and the other way round: the reference is the longer one
    assert mrstft(np.append(speech, np.zeros(100)), degraded, RATE) == mrstft(speech, degraded, RATE)


def test_torch_and_numpy_inputs_agree(speech):
    degraded = with_noise(speech, 20)
    as_numpy = score(speech, degraded, RATE, metrics=INTRUSIVE)
    as_torch = score(torch.from_numpy(speech).float(), torch.from_numpy(degraded).float(), RATE,
                     metrics=INTRUSIVE)
    for key in INTRUSIVE:
        assert as_torch[key] == pytest.approx(as_numpy[key], rel=1e-3, abs=1e-3), key


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("function", [pesq_wb, stoi, mcd, mrstft, score])
def test_bad_input_is_rejected_with_a_reason(function, speech):
    x = speech
    with pytest.raises(ValueError, match="1-D mono.*2-D, shape \\(2, "):
        function(np.stack([x, x]), x, RATE)
    with pytest.raises(ValueError, match="1-D mono.*squeeze"):
        function(x, torch.from_numpy(x)[None, :], RATE)
    with_nan = x.copy()
    with_nan[100] = np.nan
    with pytest.raises(ValueError, match="degraded: signal contains 1 NaN"):
        function(x, with_nan, RATE)
    with pytest.raises(ValueError, match="reference: signal is empty"):
        function(np.array([]), x, RATE)
    with pytest.raises(ValueError, match=f"{x.size} vs {x.size // 2} samples"):
        function(x, x[: x.size // 2], RATE)
    with pytest.raises(ValueError, match="int16"):
        function((x * 32767).astype(np.int16), x, RATE)
    with pytest.raises(ValueError, match="sample_rate"):
        function(x, x, 0)


def test_score_rejects_unknown_metrics(speech):
    with pytest.raises(ValueError, match="unknown metric.*'visqol'"):
        score(speech, speech, RATE, metrics=("pesq", "visqol"))


def test_too_short_or_silent_input_names_the_problem(speech):
    short = speech[8000:10000]  # 0.125 s
    with pytest.raises(ValueError, match="PESQ: signals too short"):
        pesq_wb(short, short, RATE)
    with pytest.raises(ValueError, match="STOI: too little non-silent speech"):
        stoi(speech[8000:12000], speech[8000:12000], RATE)
    with pytest.raises(ValueError, match="MR-STFT: signals too short"):
        mrstft(speech[:1000], speech[:1000], RATE)
    with pytest.raises(ValueError, match="MCD: signals too short"):
        mcd(speech[:300], speech[:300], RATE)
    silence = np.zeros_like(speech)
    with pytest.raises(ValueError, match="all zeros"):
        pesq_wb(silence, speech, RATE)
    with pytest.raises(ValueError, match="all zeros"):
        mcd(speech, silence, RATE)


def test_pesq_no_utterances_becomes_a_clear_value_error(speech, monkeypatch):
    # The ITU code's voice-activity detection finds an utterance in almost anything once the
    # package has peak-normalised it, so its NoUtterancesError is simulated here.
    import pesq

    def no_utterances(*args, **kwargs):
        raise pesq.NoUtterancesError(b"No utterances detected")

    monkeypatch.setattr(pesq, "pesq", no_utterances)
    with pytest.raises(ValueError, match="PESQ found no utterances in the 3.000 s signals"):
        pesq_wb(speech, speech, RATE)
