"""The speech corpus: exclusion of non-speech and short files, loudness normalisation without
clipping, resampling to one rate, a split that is stable on rebuild and when files are added,
the manifest schema, the errors for a missing source, atomic (all-or-nothing) builds, the
readers (utterances, random crops) and the summary; one build from the real Allison prompts."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyloudnorm
import pytest
import soundfile as sf
import torch

from audiofootprint import audio, corpus
from audiofootprint.audio import AudioError, decode_audio
from audiofootprint.corpus import (
    ALLISON_DIR,
    CorpusError,
    CorpusSourceError,
    assign_split,
    build_corpus,
    iter_utterances,
    load_manifest,
    summary,
    utterance_id,
)
from audiofootprint.training.batches import SegmentDataset, random_segments
from audiofootprint.data import TableError
from conftest import speechlike

SR = 16000
TARGET = -23.0


def write(path: Path, x: np.ndarray, sr: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, subtype="PCM_16" if path.suffix == ".wav" else "PCM_24")
    return path


@pytest.fixture
def source(tmp_path) -> Path:
    root = tmp_path / "source"
    write(root / "spk1" / "utt_a.wav", speechlike(2.0, 22050, 1), 22050)
    stereo = np.stack([speechlike(1.5, 48000, 2), speechlike(1.5, 48000, 3)], axis=1)
    write(root / "spk1" / "utt_b.flac", stereo, 48000)
    lead = np.concatenate([np.zeros(SR, np.float32), speechlike(2.0, SR, 4)])  # 1 s of silence first
    write(root / "spk2" / "utt_c.wav", lead, SR)
    write(root / "spk2" / "utt_d.wav", speechlike(1.2, 24000, 5, level=0.005), 24000)  # very quiet
    for i in range(6, 12):
        write(root / "spk3" / f"utt_{i}.wav", speechlike(1.1 + 0.1 * i, SR, i), SR)
    # clicks in near silence: reaching -23 LUFS would need a peak far above full scale
    clicks = 1e-3 * np.random.default_rng(0).standard_normal(2 * SR).astype(np.float32)
    clicks[::4000] = 0.5
    write(root / "spk3" / "clicks.wav", clicks, SR)
    # non-speech and short files, and a file that is not audio
    t = np.arange(int(1.5 * SR)) / SR
    write(root / "beep.wav", (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), SR)
    write(root / "silence" / "1.wav", np.zeros(2 * SR, np.float32), SR)
    write(root / "spk2" / "short.wav", speechlike(0.5, SR, 13), SR)
    (root / "spk1" / "utt_a.txt").write_text("transcript")
    return root


def build(source: Path, out: Path, **kw) -> corpus.BuildResult:
    kw.setdefault("sample_rate", SR)
    kw.setdefault("split", (0.6, 0.2, 0.2))
    return build_corpus(source, out, **kw)


def test_excludes_non_speech_short_and_keeps_the_rest(source, tmp_path):
    result = build(source, tmp_path / "c")
    m = result.manifest
    assert set(m["source_path"]) == {"spk1/utt_a.wav", "spk1/utt_b.flac", "spk2/utt_c.wav", "spk2/utt_d.wav",
                                     "spk3/clicks.wav"} | {f"spk3/utt_{i}.wav" for i in range(6, 12)}
    reasons = dict(zip(result.excluded["source_path"], result.excluded["reason"]))
    assert reasons["beep.wav"].startswith("non-speech") and "beep*" in reasons["beep.wav"]
    assert "silence/*" in reasons["silence/1.wav"]
    assert reasons["spk2/short.wav"].startswith("shorter than 1 s")
    assert len(reasons) == 3
    on_disk = pd.read_csv(tmp_path / "c" / "excluded.csv")
    assert sorted(on_disk["source_path"]) == sorted(reasons)
    assert list(m["id"]) == sorted(m["id"])
    assert "spk1__utt_b" in set(m["id"])
    info = json.loads((tmp_path / "c" / "corpus.json").read_text())
    assert info["settings"]["sample_rate"] == SR and info["excluded"] == 3


def test_loudness_is_normalised_without_clipping(source, tmp_path):
    out = tmp_path / "c"
    m = build(source, out).manifest.set_index("source_path")
    meter = pyloudnorm.Meter(SR)
    for rel, row in m.iterrows():
        x, rate = sf.read(str(out / row["path"]), dtype="float64")
        info = sf.info(str(out / row["path"]))
        assert rate == SR and info.channels == 1 and info.subtype == "PCM_16"
        assert row["seconds"] == pytest.approx(len(x) / SR, abs=1e-5)
        assert np.max(np.abs(x)) <= 0.99 + 1 / 32768  # never clipped
        lufs = meter.integrated_loudness(x)
        assert lufs == pytest.approx(row["lufs_before"] + row["gain_db"], abs=0.05)
        if rel == "spk3/clicks.wav":  # peak-limited: quieter than the target, peak at the limit
            assert row["gain_db"] < TARGET - row["lufs_before"] - 6
            assert np.max(np.abs(x)) == pytest.approx(0.99, abs=1e-3)
        else:
            assert abs(lufs - TARGET) < 0.5, rel
    assert m.loc["spk2/utt_d.wav", "gain_db"] > 20  # the quiet file was raised


def test_trimming_and_resampling(source, tmp_path):
    m = build(source, tmp_path / "c").manifest.set_index("source_path")
    assert 2.0 <= m.loc["spk2/utt_c.wav", "seconds"] <= 2.0 + 0.25  # the 1 s lead-in is gone
    assert m.loc["spk1/utt_b.flac", "seconds"] == pytest.approx(1.5, abs=0.05)  # 48 kHz stereo in
    untrimmed = build(source, tmp_path / "u", trim_top_db=None).manifest.set_index("source_path")
    assert untrimmed.loc["spk2/utt_c.wav", "seconds"] == pytest.approx(3.0, abs=1e-3)


def test_split_is_deterministic_and_stable_when_files_are_added(source, tmp_path):
    first = build(source, tmp_path / "one").manifest
    second = build(source, tmp_path / "two").manifest
    pd.testing.assert_frame_equal(first, second)
    for path in first["path"]:  # identical audio bytes too
        assert (tmp_path / "one" / path).read_bytes() == (tmp_path / "two" / path).read_bytes()
    assert set(first["split"]) == {"train", "valid", "test"}

    write(source / "spk4" / "new.wav", speechlike(1.5, SR, 99), SR)
    grown = build(source, tmp_path / "one").manifest  # the source changed: rebuilt in place
    assert len(grown) == len(first) + 1
    before = first.set_index("id")["split"]
    assert (grown.set_index("id")["split"].loc[before.index] == before).all()

    # the split is a pure function of (seed, relative path), close to the fractions asked for
    names = [f"dir/{i}.wav" for i in range(4000)]
    counts = pd.Series([assign_split(n, (0.8, 0.1, 0.1), seed=3) for n in names]).value_counts(normalize=True)
    assert counts["train"] == pytest.approx(0.8, abs=0.03) and counts["test"] == pytest.approx(0.1, abs=0.02)
    assert [assign_split(n, (0.8, 0.1, 0.1), 3) for n in names[:50]] != [assign_split(n, (0.8, 0.1, 0.1), 4) for n in names[:50]]
    assert {assign_split(n, (1.0, 0.0, 0.0)) for n in names} == {"train"}


def test_an_unchanged_build_is_reused_and_a_changed_one_replaced(source, tmp_path):
    out = tmp_path / "c"
    first = build(source, out)
    assert not first.reused
    again = build(source, out)
    assert again.reused
    pd.testing.assert_frame_equal(first.manifest, again.manifest)
    louder = build(source, out, loudness_lufs=-20.0)
    assert not louder.reused
    assert json.loads((out / "corpus.json").read_text())["settings"]["loudness_lufs"] == -20.0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers


def test_manifest_schema_errors(source, tmp_path):
    out = tmp_path / "c"
    build(source, out)
    path = out / "manifest.csv"
    good = path.read_text()
    frame = pd.read_csv(path, dtype=str)
    frame.loc[0, "split"] = "dev"
    frame.loc[1, "seconds"] = "-1"
    frame.to_csv(path, index=False)
    with pytest.raises(TableError) as error:
        load_manifest(out)
    message = str(error.value)
    assert "line 2" in message and "column 'split'" in message and "'dev'" in message
    assert "line 3" in message and "column 'seconds'" in message
    assert "path_is_wav_split_id" in message  # path wav/<old split>/... no longer matches the split

    frame = pd.read_csv(io.StringIO(good), dtype=str).drop(columns=["gain_db"])
    frame.to_csv(path, index=False)
    with pytest.raises(TableError, match="missing column\\(s\\) 'gain_db'"):
        load_manifest(out)

    path.write_text(good)
    (out / load_manifest(out)["path"].iloc[0]).unlink()
    with pytest.raises(CorpusError, match="1 listed file\\(s\\) missing"):
        load_manifest(out)
    with pytest.raises(CorpusError, match="build the corpus first"):
        load_manifest(tmp_path / "nothing")


def test_missing_source_folder_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "ALLISON_DIR", tmp_path / "en_US_f_Allison")
    with pytest.raises(CorpusSourceError) as error:
        build_corpus(None, tmp_path / "c", 16000)
    assert "apt-get install asterisk-core-sounds-en-g722 (as root)" in str(error.value)
    with pytest.raises(CorpusSourceError) as error:
        build_corpus(tmp_path / "LJSpeech-1.1" / "wavs", tmp_path / "c", 22050)
    assert "corpus.source_dir" in str(error.value) and "LJSpeech-1.1" in str(error.value)
    assert "apt-get" not in str(error.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusSourceError, match="holds no .g722/.wav/.flac files"):
        build_corpus(tmp_path / "empty", tmp_path / "c", 22050)
    assert not (tmp_path / "c").exists()


def test_bad_settings_raise(source, tmp_path):
    with pytest.raises(CorpusError, match="sum to 1"):
        build(source, tmp_path / "c", split=(0.5, 0.2, 0.2))
    with pytest.raises(CorpusError, match="three non-negative"):
        build(source, tmp_path / "c", split=(1.2, -0.2, 0.0))
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(CorpusError, match="not a corpus"):
        build(source, foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_an_interrupted_build_leaves_the_previous_corpus_or_nothing(source, tmp_path, monkeypatch):
    real = audio.write_wav
    calls = []

    def failing(path, x, sr):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-build
        real(path, x, sr)

    monkeypatch.setattr(audio, "write_wav", failing)
    out = tmp_path / "c"
    with pytest.raises(KeyboardInterrupt):
        build(source, out)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]

    monkeypatch.setattr(audio, "write_wav", real)
    previous = build(source, out).manifest
    calls.clear()
    monkeypatch.setattr(audio, "write_wav", failing)
    with pytest.raises(KeyboardInterrupt):
        build(source, out, loudness_lufs=-20.0)
    pd.testing.assert_frame_equal(load_manifest(out), previous)  # the old corpus is intact
    assert json.loads((out / "corpus.json").read_text())["settings"]["loudness_lufs"] == TARGET
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_readers_dataset_crops_and_summary(source, tmp_path):
    out = tmp_path / "c"
    manifest = build(source, out, split=(1.0, 0.0, 0.0)).manifest
    utterances = list(iter_utterances(out, "train"))
    assert [u[0] for u in utterances] == list(manifest["id"])
    uid, wave, rate = utterances[0]
    assert wave.dtype == torch.float32 and wave.dim() == 1 and rate == SR
    assert wave.numel() == round(manifest.set_index("id").loc[uid, "seconds"] * SR)
    assert list(iter_utterances(out, "test")) == []
    with pytest.raises(CorpusError, match="unknown split"):
        next(iter_utterances(out, "dev"))

    data = SegmentDataset(out, "train", segment_samples=8000, seed=7)
    assert len(data) == len(manifest)
    crops = torch.stack([data[i] for i in range(len(data))])
    assert crops.shape == (len(manifest), 8000)
    again = SegmentDataset(out, "train", segment_samples=8000, seed=7, preload=True)
    assert torch.equal(crops, torch.stack([again[i] for i in range(len(again))]))  # same seed: same crops
    # a crop is a stretch of its utterance
    full = dict((u[0], u[1]) for u in utterances)
    start = data.offset(0)
    assert torch.equal(crops[0], full[data.ids[0]][start:start + 8000])
    data.set_epoch(1)
    assert not torch.equal(crops, torch.stack([data[i] for i in range(len(data))]))  # new epoch: new crops
    long = SegmentDataset(out, "train", segment_samples=SR * 5)  # longer than any utterance: zero-padded
    assert long[0].shape == (SR * 5,) and (long[0][SR * 4:] == 0).all()
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    assert next(iter(loader)).shape == (4, 8000)
    with pytest.raises(CorpusError, match="no utterances"):
        SegmentDataset(out, "valid", 8000)

    batch = random_segments(out, "train", 4000, count=6, seed=1)
    assert batch.shape == (6, 4000) and torch.equal(batch, random_segments(out, "train", 4000, 6, seed=1))
    assert not torch.equal(batch, random_segments(out, "train", 4000, 6, seed=2))

    table = summary(out).set_index("split")
    assert list(table.index) == ["train", "valid", "test", "total"]
    assert table.loc["train", "utterances"] == table.loc["total", "utterances"] == len(manifest)
    assert table.loc["total", "hours"] == pytest.approx(manifest["seconds"].sum() / 3600)
    assert table.loc["valid", "utterances"] == 0


def test_ids_and_decoding_helpers(tmp_path):
    assert utterance_id("digits/1.g722") == "digits__1"
    assert utterance_id("p225/p225 001 (mic1).flac") == "p225__p225_001__mic1_"
    assert utterance_id("_x.wav") == "u_x"
    x = speechlike(0.5, 24000, 0)
    stereo = write(tmp_path / "s.flac", np.stack([x, -x], axis=1), 24000)
    mono, rate = decode_audio(stereo)
    assert rate == 24000 and mono.shape == x.shape and np.abs(mono).max() < 1e-4  # averaged channels
    with pytest.raises(AudioError, match="cannot decode"):
        decode_audio(tmp_path / "a.mp3")


@pytest.mark.skipif(not ALLISON_DIR.is_dir(),
                    reason=f"{ALLISON_DIR} absent (apt-get install asterisk-core-sounds-en-g722 as root)")
def test_real_allison_prompts(tmp_path):
    some = sorted(ALLISON_DIR.glob("*.g722"))[0]
    x, rate = decode_audio(some)
    assert rate == 16000 and len(x) > 0 and x.dtype == np.float32 and np.abs(x).max() <= 1.0
    result = build_corpus(None, tmp_path / "allison", 16000, max_files=10, seed=0)
    m = result.manifest
    assert 1 <= len(m) <= 10 and (m["seconds"] >= 1.0).all()
    assert all(p.endswith(".g722") for p in m["source_path"])
    assert len(m) + sum(~result.excluded["reason"].str.startswith("non-speech")) == 10
    for path in m["path"]:
        info = sf.info(str(tmp_path / "allison" / path))
        assert info.samplerate == 16000 and info.frames > 0
    excluded = set(result.excluded["source_path"])
    assert {"beep.g722", "tt-monkeys.g722", "silence/1.g722"} <= excluded
