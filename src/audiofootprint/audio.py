"""Reading and conditioning speech recordings: decoding (G.722, WAV, FLAC), silence trimming,
loudness normalisation (ITU-R BS.1770), resampling and 16-bit WAV writing. The corpus build
(:mod:`audiofootprint.corpus`) runs them on every source file; the benchmark writes its syntheses
with :func:`write_wav`.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

from audiofootprint.atomic import atomic_path

__all__ = ["AUDIO_SUFFIXES", "AudioError", "decode_audio", "normalize_loudness", "resample", "trim_silence",
           "write_wav"]

#: The recordings a corpus can be built from.
AUDIO_SUFFIXES = (".g722", ".wav", ".flac")
#: The gating block of BS.1770 integrated loudness: a shorter signal has none.
LOUDNESS_BLOCK_S = 0.4


class AudioError(ValueError):
    """A recording that cannot be used (it does not decode, holds samples that are not numbers, is
    silent or too short to measure); the message names it or says why."""


def _to_float(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.int16:
        return array.astype(np.float32) / 32768.0
    if array.dtype == np.int32:
        return (array.astype(np.float64) / 2.0 ** 31).astype(np.float32)
    if array.dtype == np.uint8:
        return (array.astype(np.float32) - 128.0) / 128.0
    return array.astype(np.float32)


def _decode_with_av(path: Path, fmt: str | None) -> tuple[np.ndarray, int]:
    import av

    chunks: list[np.ndarray] = []
    with av.open(str(path), format=fmt) as container:
        stream = container.streams.audio[0]
        rate = int(stream.codec_context.sample_rate or stream.rate)
        for frame in container.decode(stream):
            array = frame.to_ndarray()
            channels = len(frame.layout.channels)
            if not frame.format.is_planar:  # packed: [1, samples * channels]
                array = array.reshape(-1, channels).T
            chunks.append(_to_float(array).mean(axis=0))
    if not chunks:
        return np.zeros(0, dtype=np.float32), rate
    return np.concatenate(chunks).astype(np.float32), rate


def decode_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples in [-1, 1] and the sample rate of ``path`` (.g722 with PyAV,
    .wav/.flac with soundfile; several channels are averaged). A file that does not decode, or
    holds samples that are not numbers (NaN, infinite), raises :class:`AudioError` naming it:
    it is damaged, and only its owner can mend it."""
    import av

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in AUDIO_SUFFIXES:
        raise AudioError(f"{path}: cannot decode {suffix!r} files (supported: {', '.join(AUDIO_SUFFIXES)})")
    mend = "re-export it, or remove it from the source folder (or leave it out with corpus.include)"
    try:
        if suffix == ".g722":
            x, rate = _decode_with_av(path, "g722")
        else:
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
            x, rate = data.mean(axis=1).astype(np.float32), int(rate)
    except (sf.SoundFileError, av.FFmpegError) as error:
        raise AudioError(f"{path} cannot be decoded as {suffix[1:]} audio "
                          f"({getattr(error, 'error_string', None) or error}): {mend}") from None
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise AudioError(f"{path}: {bad} sample(s) are NaN or infinite, so the file is damaged: {mend}")
    return x, rate


def trim_silence(x: np.ndarray, sample_rate: int, top_db: float = 40.0, margin_s: float = 0.1,
                 frame_s: float = 0.02) -> np.ndarray:
    """Drop leading and trailing frames more than ``top_db`` below the loudest frame (RMS over
    ``frame_s``), keeping ``margin_s`` seconds around the rest."""
    frame = max(1, int(round(frame_s * sample_rate)))
    n = math.ceil(len(x) / frame)
    if n == 0:
        return x
    padded = np.zeros(n * frame, dtype=np.float64)
    padded[: len(x)] = x
    rms = np.sqrt(np.mean(padded.reshape(n, frame) ** 2, axis=1))
    level = 20.0 * np.log10(np.maximum(rms, 1e-10))
    loud = np.nonzero(level > level.max() - top_db)[0]
    if rms.max() <= 1e-10 or len(loud) == 0:
        return x
    margin = int(round(margin_s * sample_rate))
    start = max(0, int(loud[0]) * frame - margin)
    end = min(len(x), (int(loud[-1]) + 1) * frame + margin)
    return x[start:end]


def normalize_loudness(x: np.ndarray, sample_rate: int, target_lufs: float = -23.0,
                       peak_limit: float = 0.99, meter=None) -> tuple[np.ndarray, float, float]:
    """``(y, lufs_before, gain_db)``: ``x`` scaled to ``target_lufs`` (ITU-R BS.1770 integrated
    loudness), or less if that would put the sample peak above ``peak_limit``.
    Raises :class:`AudioError` for a silent or too short signal."""
    import pyloudnorm

    if len(x) <= LOUDNESS_BLOCK_S * sample_rate:
        raise AudioError(f"too short to measure loudness (< {LOUDNESS_BLOCK_S} s)")
    meter = meter or pyloudnorm.Meter(sample_rate)
    lufs = float(meter.integrated_loudness(x.astype(np.float64)))
    if not math.isfinite(lufs):
        raise AudioError("silent (no loudness)")
    peak = float(np.max(np.abs(x)))
    gain_db = target_lufs - lufs
    if peak * 10.0 ** (gain_db / 20.0) > peak_limit:
        gain_db = 20.0 * math.log10(peak_limit / peak)
    y = (x.astype(np.float64) * 10.0 ** (gain_db / 20.0)).astype(np.float32)
    return y, lufs, gain_db


@functools.lru_cache(maxsize=8)
def _resampler(orig: int, new: int) -> torchaudio.transforms.Resample:
    # the transform computes the sinc kernel once (in float32); its output is identical to
    # torchaudio.functional.resample(x, orig, new) with the same (default) filter
    return torchaudio.transforms.Resample(orig, new, dtype=torch.float32)


def resample(x: np.ndarray, orig: int, new: int) -> np.ndarray:
    """``x`` from ``orig`` Hz to ``new`` Hz (torchaudio's windowed-sinc resampling)."""
    if orig == new:
        return x
    with torch.no_grad():
        return _resampler(int(orig), int(new))(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def write_wav(path: str | Path, samples, sample_rate: int) -> None:
    """16-bit PCM WAV of ``samples`` (a NumPy array or a tensor, mono), written atomically."""
    if isinstance(samples, torch.Tensor):
        samples = samples.detach().cpu().numpy()
    with atomic_path(path) as tmp:
        sf.write(str(tmp), samples, sample_rate, subtype="PCM_16", format="WAV")
