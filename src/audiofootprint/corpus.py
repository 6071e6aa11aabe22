"""A speech corpus built from a folder of recordings into a cache directory.

Default source: the Debian/Ubuntu package ``asterisk-core-sounds-en-g722`` (the Asterisk
English prompts read by Allison Smith: one female speaker, G.722 at 16 kHz, 568 files,
about 25 minutes, CC-BY-SA-3.0), installed in ``/usr/share/asterisk/sounds/en_US_f_Allison``.
Files are decoded with PyAV (``av.open(path, format="g722")``). Tones, music and silences
(:data:`NON_SPEECH`) are left out, and so is anything shorter than ``min_seconds`` or silent
(listed with the reason in ``excluded.csv``). A file that does not decode, or whose samples are
NaN or infinite, is damaged: the build stops naming it (:func:`decode_audio`).
Any other folder of ``.wav`` / ``.flac`` recordings (LJSpeech at 22.05 kHz, LibriTTS at
24 kHz, VCTK at 48 kHz, ...) is read with soundfile; set ``corpus.source_dir`` to it
(:data:`SOURCE_KEY`) and, for VCTK, ``include=["*_mic1.flac"]`` (each utterance is
recorded by two microphones).

:func:`build_corpus` decodes every kept file, downmixes to mono, resamples to the target
rate (:func:`torchaudio.functional.resample`), trims leading and trailing silence lightly,
normalises the loudness (ITU-R BS.1770 integrated loudness, pyloudnorm) to
``loudness_lufs`` without ever clipping (the gain is lowered so that the sample peak stays
at or below ``peak_limit``), assigns each file to train/valid/test by a hash of its path
relative to the source folder (so adding files never moves the others), and writes::

    out_dir/
      wav/<split>/<id>.wav   16-bit PCM, mono, sample_rate
      manifest.csv           id, split, path, seconds, source_path, lufs_before, gain_db
      excluded.csv           source_path, reason (files left out, and why)
      corpus.json            the settings and a fingerprint of the source listing

The corpus is built in a temporary directory beside ``out_dir`` and renamed into place
at the end, so an interrupted run leaves either the previous corpus or nothing. A second
call with the same settings and the same source files reuses the existing corpus.

``path`` in the manifest is relative to ``out_dir`` and ``source_path`` relative to the
source folder (recorded in ``corpus.json``), so the manifest is the same on every machine.
``lufs_before`` is the loudness after resampling and trimming, before the gain;
``gain_db`` is the gain applied (the loudness after is ``lufs_before + gain_db``).

Reading: :func:`load_manifest`, :func:`iter_utterances`, :class:`SegmentDataset` (fixed-length
random crops for training, reproducible per seed, epoch and index), :func:`random_segments`,
and :func:`summary` (utterances and hours per split).
"""
from __future__ import annotations

import functools
import glob
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import soundfile as sf
import torch
import torchaudio
from pandera.typing import Series

from audiofootprint.atomic import atomic_path, write_csv, write_json
from audiofootprint.data import validate_table

__all__ = [
    "ALLISON_DIR",
    "ALLISON_PACKAGE",
    "AUDIO_SUFFIXES",
    "NON_SPEECH",
    "SOURCE_KEY",
    "SPLITS",
    "BuildResult",
    "CorpusError",
    "CorpusSourceError",
    "ManifestSchema",
    "SegmentDataset",
    "assign_split",
    "build_corpus",
    "decode_audio",
    "find_sources",
    "iter_utterances",
    "load_manifest",
    "normalize_loudness",
    "random_segments",
    "summary",
    "trim_silence",
    "utterance_id",
]

#: Where ``apt-get install asterisk-core-sounds-en-g722`` puts the prompts.
ALLISON_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ALLISON_PACKAGE = "asterisk-core-sounds-en-g722"
#: The configuration key that names the source folder.
SOURCE_KEY = "corpus.source_dir"

#: Audio files read: G.722 with PyAV, the others with soundfile.
AUDIO_SUFFIXES = (".g722", ".wav", ".flac")

#: Non-speech prompts of the Asterisk sounds (tones, monkeys, silences). A pattern with a
#: ``/`` is matched against the path relative to the source folder without its suffix,
#: one without against the file name without its suffix (shell wildcards, case-sensitive).
NON_SPEECH: tuple[str, ...] = (
    "beep*",
    "ascending-2tone",
    "descending-2tone",
    "confbridge-join",
    "tt-monkeys*",
    "silence/*",
)

SPLITS = ("train", "valid", "test")

#: pyloudnorm's gating block: shorter signals have no integrated loudness.
LOUDNESS_BLOCK_S = 0.4

#: Bumped when the layout or processing of a built corpus changes (invalidates caches).
CORPUS_FORMAT = 1


class CorpusError(ValueError):
    """A corpus cannot be built or read as asked."""


class CorpusSourceError(FileNotFoundError):
    """The source recordings are missing; the message says how to get them."""


# ---------------------------------------------------------------------------
# Manifest
# ---------------------------------------------------------------------------

class ManifestSchema(pa.DataFrameModel):
    """``manifest.csv``: one written utterance per row."""

    id: Series[str] = pa.Field(unique=True, str_matches=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    split: Series[str] = pa.Field(isin=list(SPLITS))
    path: Series[str] = pa.Field(str_matches=r"^wav/(train|valid|test)/[^/]+\.wav$")
    seconds: Series[float] = pa.Field(gt=0)
    source_path: Series[str] = pa.Field(str_length={"min_value": 1})
    lufs_before: Series[float] = pa.Field(ge=-150, le=30)
    gain_db: Series[float] = pa.Field(ge=-150, le=150)

    @pa.dataframe_check
    def path_is_wav_split_id(cls, df: pd.DataFrame) -> Series[bool]:
        """``path`` must be ``wav/<split>/<id>.wav``."""
        return df["path"] == "wav/" + df["split"].astype(str) + "/" + df["id"].astype(str) + ".wav"

    class Config:
        strict = True
        coerce = True


MANIFEST_COLUMNS = list(ManifestSchema.to_schema().columns)


def load_manifest(out_dir: str | Path, check_files: bool = True) -> pd.DataFrame:
    """The validated manifest of the corpus in ``out_dir`` (a :class:`~audiofootprint.data.TableError`
    names the line and column of a bad row). With ``check_files``, every listed WAV must exist."""
    out_dir = Path(out_dir)
    path = out_dir / "manifest.csv"
    if not path.is_file():
        raise CorpusError(f"{path} not found: build the corpus first (audiofootprint.corpus.build_corpus)")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    manifest = validate_table(frame, ManifestSchema, path, id_column="id")
    if check_files:
        missing = [p for p in manifest["path"] if not (out_dir / p).is_file()]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise CorpusError(f"{path}: {len(missing)} listed file(s) missing under {out_dir}: {shown}; "
                              "rebuild the corpus (build_corpus(..., force=True))")
    return manifest


# ---------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------

def _missing_source_message(source_dir: Path) -> str:
    if source_dir == ALLISON_DIR:
        return (f"{source_dir} not found: the default corpus is the Debian/Ubuntu package "
                f"{ALLISON_PACKAGE} (Asterisk English prompts, speaker Allison, G.722 16 kHz, "
                f"CC-BY-SA-3.0). Install it with: apt-get install {ALLISON_PACKAGE} (as root); "
                f"or set {SOURCE_KEY} to another folder of recordings.")
    return (f"{source_dir} not found: set {SOURCE_KEY} (conf/corpus, or on the command line "
            f"{SOURCE_KEY}=/path/to/wavs) to the folder holding the recordings "
            f"({', '.join(AUDIO_SUFFIXES)} files, searched recursively), e.g. LJSpeech-1.1/wavs, "
            "LibriTTS/train-clean-100 or VCTK-Corpus/wav48_silence_trimmed.")


def _matches(rel: str, patterns: Sequence[str]) -> str | None:
    """The first pattern of ``patterns`` that ``rel`` (relative path with suffix) matches."""
    stem_path = rel.rsplit(".", 1)[0]
    name = stem_path.rsplit("/", 1)[-1]
    for pattern in patterns:
        target = stem_path if "/" in pattern else name
        if fnmatchcase(target, pattern):
            return pattern
    return None


def find_sources(source_dir: str | Path, include: Sequence[str] | None = None,
                 exclude: Sequence[str] = NON_SPEECH,
                 skip: Path | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """Audio files under ``source_dir``: (kept, excluded with reason), relative POSIX paths, sorted.

    ``include`` (shell patterns on the relative path with its suffix, e.g. ``"*_mic1.flac"``)
    keeps only matching files; ``exclude`` is matched as described at :data:`NON_SPEECH`.
    Hidden files and folders, and anything under ``skip``, are ignored.
    """
    root = Path(source_dir)
    if not root.is_dir():
        raise CorpusSourceError(_missing_source_message(root))
    skip_resolved = skip.resolve() if skip is not None else None
    kept: list[str] = []
    excluded: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if skip_resolved is not None:
            dirnames[:] = [d for d in dirnames if (Path(dirpath) / d).resolve() != skip_resolved]
        for name in filenames:
            if name.startswith(".") or not name.lower().endswith(AUDIO_SUFFIXES):
                continue
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if include is not None and not any(fnmatchcase(rel, p) for p in include):
                continue
            pattern = _matches(rel, exclude)
            if pattern is not None:
                excluded.append((rel, f"non-speech (matches {pattern!r})"))
            else:
                kept.append(rel)
    if not kept and not excluded:
        raise CorpusSourceError(
            f"{root} holds no {'/'.join(AUDIO_SUFFIXES)} files"
            + (f" matching {list(include)}" if include is not None else "")
            + f": set {SOURCE_KEY} to a folder of recordings")
    return sorted(kept), sorted(excluded)


def utterance_id(rel: str) -> str:
    """The id of a source file: its relative path without suffix, ``/`` -> ``__``, other
    characters outside ``[A-Za-z0-9._-]`` -> ``_``."""
    stem_path = rel.rsplit(".", 1)[0]
    uid = re.sub(r"[^A-Za-z0-9._-]", "_", stem_path.replace("/", "__"))
    if not uid or not uid[0].isalnum():
        uid = "u" + uid
    return uid


def assign_split(rel: str, fractions: Sequence[float] = (0.9, 0.05, 0.05), seed: int = 0) -> str:
    """Split of the file at relative path ``rel``: a uniform number from the SHA-256 of
    ``seed`` and ``rel``, cut at the cumulative ``fractions`` of (train, valid, test).
    Depends on nothing else, so adding or removing files never moves another file."""
    digest = hashlib.sha256(f"{int(seed)}\0{rel}".encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0 ** 64
    edge = 0.0
    for name, fraction in zip(SPLITS, fractions):
        edge += fraction
        if u < edge:
            return name
    # u at or above a sum that rounding left just below 1: the last split that takes files
    return [name for name, fraction in zip(SPLITS, fractions) if fraction > 0][-1]


def _check_fractions(split: Sequence[float]) -> tuple[float, float, float]:
    fractions = tuple(float(f) for f in split)
    if len(fractions) != 3 or any(f < 0 or not math.isfinite(f) for f in fractions):
        raise CorpusError(f"split must be three non-negative fractions (train, valid, test), got {split!r}")
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise CorpusError(f"split fractions must sum to 1, got {split!r} (sum {sum(fractions):g})")
    return fractions


# ---------------------------------------------------------------------------
# Signal processing
# ---------------------------------------------------------------------------

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
    holds samples that are not numbers (NaN, infinite), raises :class:`CorpusError` naming it:
    it is damaged, and only its owner can mend it."""
    import av

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in AUDIO_SUFFIXES:
        raise CorpusError(f"{path}: cannot decode {suffix!r} files (supported: {', '.join(AUDIO_SUFFIXES)})")
    mend = "re-export it, or remove it from the source folder (or leave it out with corpus.include)"
    try:
        if suffix == ".g722":
            x, rate = _decode_with_av(path, "g722")
        else:
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
            x, rate = data.mean(axis=1).astype(np.float32), int(rate)
    except (sf.SoundFileError, av.FFmpegError) as error:
        raise CorpusError(f"{path} cannot be decoded as {suffix[1:]} audio "
                          f"({getattr(error, 'error_string', None) or error}): {mend}") from None
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise CorpusError(f"{path}: {bad} sample(s) are NaN or infinite, so the file is damaged: {mend}")
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
    Raises :class:`CorpusError` for a silent or too short signal."""
    import pyloudnorm

    if len(x) <= LOUDNESS_BLOCK_S * sample_rate:
        raise CorpusError(f"too short to measure loudness (< {LOUDNESS_BLOCK_S} s)")
    meter = meter or pyloudnorm.Meter(sample_rate)
    lufs = float(meter.integrated_loudness(x.astype(np.float64)))
    if not math.isfinite(lufs):
        raise CorpusError("silent (no loudness)")
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


def _resample(x: np.ndarray, orig: int, new: int) -> np.ndarray:
    """``x`` from ``orig`` Hz to ``new`` Hz (torchaudio's windowed-sinc resampling)."""
    if orig == new:
        return x
    with torch.no_grad():
        return _resampler(int(orig), int(new))(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def _write_wav(path: Path, x: np.ndarray, sample_rate: int) -> None:
    with atomic_path(path) as tmp:
        sf.write(str(tmp), x, sample_rate, subtype="PCM_16", format="WAV")


# ---------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------

@dataclass
class BuildResult:
    """What :func:`build_corpus` did."""

    out_dir: Path
    manifest: pd.DataFrame
    excluded: pd.DataFrame          # source_path, reason
    reused: bool                    # True: an identical corpus was already there
    elapsed_s: float
    settings: dict = field(default_factory=dict)


def _fingerprint(root: Path, files: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for rel in files:
        digest.update(f"{rel}\0{(root / rel).stat().st_size}\n".encode("utf-8"))
    return digest.hexdigest()


def _is_relative_to(path: Path, other: Path) -> bool:
    try:
        path.relative_to(other)
        return True
    except ValueError:
        return False


def build_corpus(
    source_dir: str | Path | None,
    out_dir: str | Path,
    sample_rate: int,
    min_seconds: float = 1.0,
    loudness_lufs: float = -23.0,
    split: Sequence[float] = (0.9, 0.05, 0.05),
    seed: int = 0,
    max_files: int | None = None,
    *,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] = NON_SPEECH,
    trim_top_db: float | None = 40.0,
    trim_margin_s: float = 0.1,
    peak_limit: float = 0.99,
    force: bool = False,
    progress: bool = False,
) -> BuildResult:
    """Build the corpus of ``source_dir`` (``None``: :data:`ALLISON_DIR`) into ``out_dir``.

    ``min_seconds`` applies to the trimmed utterance. ``max_files`` keeps the first files of
    the sorted listing (after the name-based exclusion), for quick runs. ``trim_top_db=None``
    disables trimming. An existing corpus built with the same settings from the same files
    is reused unless ``force``; a different one is replaced (atomically). A folder at
    ``out_dir`` that is not a corpus is never replaced. Where there is no corpus yet, it is built in
    ``out_dir`` itself, marked :data:`BUILDING` until complete: a build killed there (SIGKILL) leaves
    nothing beside it, and the next build discards it (under DVC, which removes the stage's output
    first, it is gone before either run or cache check-out). See the module docstring.
    """
    started = time.perf_counter()
    source = Path(source_dir) if source_dir is not None else ALLISON_DIR
    out_dir = Path(out_dir)
    fractions = _check_fractions(split)
    if int(sample_rate) <= 0:
        raise CorpusError(f"sample_rate must be positive, got {sample_rate!r}")
    if not 0 < peak_limit <= 1:
        raise CorpusError(f"peak_limit must be in (0, 1], got {peak_limit!r}")
    if max_files is not None and max_files < 1:
        raise CorpusError(f"max_files must be at least 1 (or None), got {max_files!r}")
    sample_rate = int(sample_rate)

    skip = out_dir if _is_relative_to(out_dir.resolve(), source.resolve()) else None
    kept, excluded = find_sources(source, include, tuple(exclude), skip=skip)
    if max_files is not None:
        kept = kept[:max_files]
    ids = [utterance_id(rel) for rel in kept]
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    if duplicates:
        raise CorpusError(f"{source}: several files give the same utterance id(s) {duplicates[:5]}; "
                          "rename them or narrow `include`")

    settings = {
        "format": CORPUS_FORMAT,
        "source_dir": str(source.resolve()),
        "sample_rate": sample_rate,
        "min_seconds": float(min_seconds),
        "loudness_lufs": float(loudness_lufs),
        "peak_limit": float(peak_limit),
        "split": dict(zip(SPLITS, fractions)),
        "seed": int(seed),
        "max_files": max_files,
        "include": list(include) if include is not None else None,
        "exclude": list(exclude),
        "trim_top_db": trim_top_db,
        "trim_margin_s": float(trim_margin_s),
        "sources_sha256": _fingerprint(source, [r for r in kept] + [r for r, _ in excluded]),
    }

    _remove_stale_work(out_dir)
    if (out_dir / BUILDING).is_file():  # a build into out_dir that was killed: ours to discard
        shutil.rmtree(out_dir)
    info_path = out_dir / "corpus.json"
    if out_dir.exists():
        if not info_path.is_file() and any(out_dir.iterdir()):
            raise CorpusError(f"{out_dir} exists and is not a corpus built by build_corpus "
                              "(no corpus.json); choose another out_dir or remove it")
        if info_path.is_file() and not force:
            try:
                previous = json.loads(info_path.read_text(encoding="utf-8")).get("settings")
            except (OSError, ValueError):
                previous = None
            if previous == settings:
                return BuildResult(out_dir, load_manifest(out_dir),
                                   _read_excluded(out_dir), True, time.perf_counter() - started, settings)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    in_place = not out_dir.exists()
    if in_place:  # nothing to replace (as under DVC, which removes a stage's outputs before running it)
        out_dir.mkdir()
        (out_dir / BUILDING).touch()
        work = out_dir
    else:
        work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".building", dir=out_dir.parent))
    try:
        rows, dropped = _process(source, work, kept, sample_rate, min_seconds, loudness_lufs,
                                 fractions, seed, trim_top_db, trim_margin_s, peak_limit, progress)
        excluded_all = sorted(excluded + dropped)
        manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS).sort_values("id", kind="stable")
        manifest = manifest.reset_index(drop=True)
        if manifest.empty:
            raise CorpusError(f"{source}: no utterance left after exclusion "
                              f"({len(excluded_all)} excluded; min_seconds={min_seconds})")
        manifest = validate_table(manifest, ManifestSchema, work / "manifest.csv")
        write_csv(work / "manifest.csv", manifest)
        excluded_frame = pd.DataFrame(excluded_all, columns=["source_path", "reason"])
        write_csv(work / "excluded.csv", excluded_frame)
        counts = manifest.groupby("split")["seconds"].agg(["count", "sum"])
        write_json(work / "corpus.json", {
            "settings": settings,
            "utterances": {s: int(counts.loc[s, "count"]) if s in counts.index else 0 for s in SPLITS},
            "seconds": {s: round(float(counts.loc[s, "sum"]), 3) if s in counts.index else 0.0 for s in SPLITS},
            "excluded": len(excluded_all),
        })
        if in_place:
            (out_dir / BUILDING).unlink()
        else:
            _replace_dir(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BuildResult(out_dir, manifest, excluded_frame, False, time.perf_counter() - started, settings)


def _process(source: Path, work: Path, kept: Sequence[str], sample_rate: int, min_seconds: float,
             loudness_lufs: float, fractions: tuple[float, float, float], seed: int,
             trim_top_db: float | None, trim_margin_s: float, peak_limit: float,
             progress: bool) -> tuple[list[dict], list[tuple[str, str]]]:
    import pyloudnorm

    meter = pyloudnorm.Meter(sample_rate)
    rows: list[dict] = []
    dropped: list[tuple[str, str]] = []
    iterator = kept
    if progress:
        from tqdm import tqdm

        iterator = tqdm(kept, desc="corpus", unit="file")
    for rel in iterator:
        x, rate = decode_audio(source / rel)
        x = _resample(x, rate, sample_rate)
        if trim_top_db is not None:
            x = trim_silence(x, sample_rate, top_db=trim_top_db, margin_s=trim_margin_s)
        seconds = len(x) / sample_rate
        if seconds < min_seconds:
            dropped.append((rel, f"shorter than {min_seconds:g} s ({seconds:.2f} s)"))
            continue
        try:
            y, lufs, gain_db = normalize_loudness(x, sample_rate, loudness_lufs, peak_limit, meter)
        except CorpusError as error:
            dropped.append((rel, str(error)))
            continue
        part = assign_split(rel, fractions, seed)
        uid = utterance_id(rel)
        path = f"wav/{part}/{uid}.wav"
        _write_wav(work / path, y, sample_rate)
        rows.append({"id": uid, "split": part, "path": path, "seconds": round(seconds, 6),
                     "source_path": rel, "lufs_before": round(lufs, 4), "gain_db": round(gain_db, 4)})
    return rows, dropped


#: The mark of a corpus being built in its own folder (no previous corpus to replace): a folder that
#: holds it is a build that was killed, discarded by the next build.
BUILDING = ".building"


def _remove_stale_work(out_dir: Path) -> None:
    """Remove the work and old folders (``.NAME.*.building``, ``.NAME.*.old``) that a build killed
    before its clean-up left beside ``out_dir`` (SIGKILL skips ``except``). One build writes a corpus
    at a time (DVC's lock), so any such folder is stale."""
    if not out_dir.parent.is_dir():
        return
    prefix = glob.escape(f".{out_dir.name}.")
    for stale in [*out_dir.parent.glob(f"{prefix}*.building"), *out_dir.parent.glob(f"{prefix}*.old")]:
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)


def _replace_dir(work: Path, out_dir: Path) -> None:
    """Move the finished ``work`` to ``out_dir``, replacing a previous corpus there."""
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
        os.rmdir(old)
        os.rename(out_dir, old)
    try:
        os.rename(work, out_dir)
    except BaseException:
        if old is not None:
            os.rename(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _read_excluded(out_dir: Path) -> pd.DataFrame:
    path = out_dir / "excluded.csv"
    if not path.is_file():
        return pd.DataFrame(columns=["source_path", "reason"])
    return pd.read_csv(path, dtype=str, keep_default_na=False)


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------

def _rows(out_dir: Path, split: str | None) -> pd.DataFrame:
    manifest = load_manifest(out_dir)
    if split is None:
        return manifest
    if split not in SPLITS:
        raise CorpusError(f"unknown split {split!r}; one of {', '.join(SPLITS)} (or None for all)")
    return manifest[manifest["split"] == split]


def iter_utterances(out_dir: str | Path, split: str | None = None) -> Iterator[tuple[str, torch.Tensor, int]]:
    """``(id, waveform [T] float32, sample_rate)`` for each utterance of ``split`` (``None``:
    all), in manifest order (sorted by id)."""
    out_dir = Path(out_dir)
    for row in _rows(out_dir, split).itertuples(index=False):
        data, rate = sf.read(str(out_dir / row.path), dtype="float32")
        yield row.id, torch.from_numpy(data), int(rate)


def seed_for(*values: int) -> int:
    """A non-negative 63-bit seed derived from integers, the same on every run and platform."""
    return int(np.random.SeedSequence([int(v) for v in values]).generate_state(1, dtype=np.uint64)[0] >> 1)


class SegmentDataset(torch.utils.data.Dataset):
    """Fixed-length random crops, one per utterance of ``split`` and epoch.

    Item ``i`` is a crop of ``segment_samples`` samples (float32 ``[segment_samples]``) at an
    offset drawn from a generator seeded by ``(seed, epoch, i)``: the same for a given seed,
    epoch and index whatever the DataLoader order or number of workers; :meth:`set_epoch`
    draws new crops. Utterances shorter than a segment are zero-padded at the end.
    Crops are read from disk on demand (``preload=True`` keeps the split in memory).
    """

    def __init__(self, out_dir: str | Path, split: str = "train", segment_samples: int = 8192,
                 seed: int = 0, preload: bool = False):
        if segment_samples < 1:
            raise CorpusError(f"segment_samples must be positive, got {segment_samples}")
        self.out_dir = Path(out_dir)
        rows = _rows(self.out_dir, split)
        if rows.empty:
            raise CorpusError(f"{self.out_dir}: split {split!r} has no utterances")
        self.split = split
        self.ids = list(rows["id"])
        self.paths = [self.out_dir / p for p in rows["path"]]
        infos = [sf.info(str(p)) for p in self.paths]
        rates = {int(i.samplerate) for i in infos}
        if len(rates) != 1:
            raise CorpusError(f"{self.out_dir}: utterances have several sample rates {sorted(rates)}")
        self.sample_rate = rates.pop()
        self.lengths = [int(i.frames) for i in infos]
        self.segment_samples = int(segment_samples)
        self.seed = int(seed)
        self.epoch = 0
        self._audio = ([sf.read(str(p), dtype="float32")[0] for p in self.paths] if preload else None)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.paths)

    def offset(self, index: int) -> int:
        """Start sample of item ``index`` in the current epoch."""
        room = self.lengths[index] - self.segment_samples
        if room <= 0:
            return 0
        generator = torch.Generator().manual_seed(seed_for(self.seed, self.epoch, index))
        return int(torch.randint(0, room + 1, (1,), generator=generator))

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < len(self):
            raise IndexError(index)
        start = self.offset(index)
        stop = min(start + self.segment_samples, self.lengths[index])
        if self._audio is not None:
            data = self._audio[index][start:stop]
        else:
            data, _ = sf.read(str(self.paths[index]), start=start, stop=stop, dtype="float32")
        out = torch.zeros(self.segment_samples, dtype=torch.float32)
        out[: len(data)] = torch.from_numpy(np.ascontiguousarray(data))
        return out


#: Seeds the choice of utterances in :func:`random_segments` apart from the crop offsets.
_PICK_STREAM = 2 ** 32 - 1


def random_segments(out_dir: str | Path, split: str, segment_samples: int, count: int,
                    seed: int = 0) -> torch.Tensor:
    """``[count, segment_samples]`` crops of utterances of ``split`` drawn with replacement
    (utterance and offset from a generator seeded by ``seed``)."""
    dataset = SegmentDataset(out_dir, split, segment_samples, seed=seed)
    generator = torch.Generator().manual_seed(seed_for(seed, _PICK_STREAM))
    picks = torch.randint(0, len(dataset), (int(count),), generator=generator).tolist()
    out = torch.zeros(int(count), dataset.segment_samples)
    for row, index in enumerate(picks):
        dataset.set_epoch(row)  # a fresh offset for each draw, even of the same utterance
        out[row] = dataset[index]
    return out


def summary(corpus: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Utterances, seconds, minutes and hours per split (train, valid, test, then ``total``)
    of a corpus folder or a manifest."""
    manifest = load_manifest(corpus, check_files=False) if not isinstance(corpus, pd.DataFrame) else corpus
    rows = []
    for name in SPLITS:
        part = manifest[manifest["split"] == name]
        rows.append((name, len(part), float(part["seconds"].sum())))
    rows.append(("total", len(manifest), float(manifest["seconds"].sum())))
    frame = pd.DataFrame(rows, columns=["split", "utterances", "seconds"])
    frame["minutes"] = frame["seconds"] / 60.0
    frame["hours"] = frame["seconds"] / 3600.0
    return frame
