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

Reading: :func:`load_manifest`, :func:`split_rows`, :func:`iter_utterances` and :func:`summary`
(utterances and hours per split); training crops: :mod:`audiofootprint.training.batches`. The
signal processing is :mod:`audiofootprint.audio`.
"""
from __future__ import annotations

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

import pandas as pd
import pandera.pandas as pa
import soundfile as sf
import torch
from pandera.typing import Series

from audiofootprint import audio
from audiofootprint.atomic import write_csv, write_json
from audiofootprint.audio import AUDIO_SUFFIXES, AudioError, decode_audio, normalize_loudness, resample, trim_silence
from audiofootprint.data import validate_table

__all__ = [
    "ALLISON_DIR",
    "ALLISON_PACKAGE",
    "NON_SPEECH",
    "SOURCE_KEY",
    "SPLITS",
    "BuildResult",
    "CorpusError",
    "CorpusSourceError",
    "ManifestSchema",
    "assign_split",
    "build_corpus",
    "find_sources",
    "iter_utterances",
    "load_manifest",
    "split_rows",
    "summary",
    "utterance_id",
]

#: Where ``apt-get install asterisk-core-sounds-en-g722`` puts the prompts.
ALLISON_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ALLISON_PACKAGE = "asterisk-core-sounds-en-g722"
#: The configuration key that names the source folder.
SOURCE_KEY = "corpus.source_dir"


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

    kept, excluded = _sources(source, out_dir, include, exclude, max_files)

    settings = {
        "format": CORPUS_FORMAT, "source_dir": str(source.resolve()), "sample_rate": sample_rate,
        "min_seconds": float(min_seconds), "loudness_lufs": float(loudness_lufs), "peak_limit": float(peak_limit),
        "split": dict(zip(SPLITS, fractions)), "seed": int(seed), "max_files": max_files,
        "include": list(include) if include is not None else None, "exclude": list(exclude),
        "trim_top_db": trim_top_db, "trim_margin_s": float(trim_margin_s),
        "sources_sha256": _fingerprint(source, [r for r in kept] + [r for r, _ in excluded]),
    }
    if _reusable(out_dir, settings, force):
        return BuildResult(out_dir, load_manifest(out_dir), _read_excluded(out_dir), True,
                           time.perf_counter() - started, settings)

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
        if not rows:
            raise CorpusError(f"{source}: no utterance left after exclusion "
                              f"({len(excluded_all)} excluded; min_seconds={min_seconds})")
        manifest, excluded_frame = _write_tables(work, rows, excluded_all, settings)
        if in_place:
            (out_dir / BUILDING).unlink()
        else:
            _replace_dir(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BuildResult(out_dir, manifest, excluded_frame, False, time.perf_counter() - started, settings)


def _sources(source: Path, out_dir: Path, include: Sequence[str] | None, exclude: Sequence[str],
             max_files: int | None) -> tuple[list[str], list[tuple[str, str]]]:
    """The source files kept (the first ``max_files``) and those excluded by name, with distinct ids."""
    skip = out_dir if _is_relative_to(out_dir.resolve(), source.resolve()) else None
    kept, excluded = find_sources(source, include, tuple(exclude), skip=skip)
    if max_files is not None:
        kept = kept[:max_files]
    duplicates = sorted(i for i, n in Counter(utterance_id(rel) for rel in kept).items() if n > 1)
    if duplicates:
        raise CorpusError(f"{source}: several files give the same utterance id(s) {duplicates[:5]}; "
                          "rename them or narrow `include`")
    return kept, excluded


def _reusable(out_dir: Path, settings: dict, force: bool) -> bool:
    """Whether ``out_dir`` holds a corpus built with ``settings`` (to keep unless ``force``). Clears
    what killed builds left first; refuses a folder that is not a corpus."""
    _remove_stale_work(out_dir)
    if (out_dir / BUILDING).is_file():  # a build into out_dir that was killed: ours to discard
        shutil.rmtree(out_dir)
    info_path = out_dir / "corpus.json"
    if not out_dir.exists():
        return False
    if not info_path.is_file() and any(out_dir.iterdir()):
        raise CorpusError(f"{out_dir} exists and is not a corpus built by build_corpus "
                          "(no corpus.json); choose another out_dir or remove it")
    if not info_path.is_file() or force:
        return False
    try:
        previous = json.loads(info_path.read_text(encoding="utf-8")).get("settings")
    except (OSError, ValueError):
        previous = None
    return previous == settings


def _write_tables(work: Path, rows: list, excluded: list, settings: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write the manifest (validated), the excluded files and corpus.json into ``work``."""
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS).sort_values("id", kind="stable").reset_index(drop=True)
    manifest = validate_table(manifest, ManifestSchema, work / "manifest.csv")
    write_csv(work / "manifest.csv", manifest)
    excluded_frame = pd.DataFrame(excluded, columns=["source_path", "reason"])
    write_csv(work / "excluded.csv", excluded_frame)
    counts = manifest.groupby("split")["seconds"].agg(["count", "sum"])
    write_json(work / "corpus.json", {
        "settings": settings,
        "utterances": {s: int(counts.loc[s, "count"]) if s in counts.index else 0 for s in SPLITS},
        "seconds": {s: round(float(counts.loc[s, "sum"]), 3) if s in counts.index else 0.0 for s in SPLITS},
        "excluded": len(excluded),
    })
    return manifest, excluded_frame


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
        x = resample(x, rate, sample_rate)
        if trim_top_db is not None:
            x = trim_silence(x, sample_rate, top_db=trim_top_db, margin_s=trim_margin_s)
        seconds = len(x) / sample_rate
        if seconds < min_seconds:
            dropped.append((rel, f"shorter than {min_seconds:g} s ({seconds:.2f} s)"))
            continue
        try:
            y, lufs, gain_db = normalize_loudness(x, sample_rate, loudness_lufs, peak_limit, meter)
        except AudioError as error:  # silent or too short: left out, with the reason
            dropped.append((rel, str(error)))
            continue
        part = assign_split(rel, fractions, seed)
        uid = utterance_id(rel)
        path = f"wav/{part}/{uid}.wav"
        audio.write_wav(work / path, y, sample_rate)
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

def split_rows(out_dir: Path, split: str | None) -> pd.DataFrame:
    """The manifest rows of ``split`` (``None``: all), checked."""
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
    for row in split_rows(out_dir, split).itertuples(index=False):
        data, rate = sf.read(str(out_dir / row.path), dtype="float32")
        yield row.id, torch.from_numpy(data), int(rate)


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
