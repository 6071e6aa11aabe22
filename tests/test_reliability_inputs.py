"""Bad inputs, systematically (issue 16, part 2): every input a user gives, spoiled in the ways a
user spoils it, run through the command or stage that reads it first.

A refusal (:func:`refused`) is a non-zero exit, no traceback, one error line naming the file and
the row, column or key (and, in its words, how to fix it), and nothing under results/ or reports/
written or replaced. Where the project legitimately accepts an input that looks wrong (a stereo
or 44.1 kHz recording is downmixed or resampled, as :mod:`audiofootprint.corpus` documents), the
test asserts that documented handling instead and its docstring says why.

Each case spoils its own copy of a project whose survey, training-carbon, corpus and quantization
summary stages have run once (the module fixture ``base``), so that a refusal that replaced an
output shows in :func:`~reliability_support.fingerprint`.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml

from conftest import ROOT, copy_project, speechlike
from reliability_support import assert_refused, fingerprint, run_cli

pytestmark = pytest.mark.usefixtures("one_thread")

SR = 16000  # the corpus' rate (conf/corpus/allison.yaml)
MARKER = "bad_input"


def kind(name: str):
    """The suite's mark of a case of this part: ``benchmarks/reliability.py`` counts by it."""
    return pytest.mark.reliability(MARKER, name)


def write_wav(path: Path, x: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, subtype=subtype)
    return path


def good_recordings(folder: Path) -> Path:
    """Two short speech-like recordings: a source folder the corpus accepts."""
    for seed in (1, 2):
        write_wav(folder / f"good_{seed}.wav", speechlike(1.5, SR, seed))
    return folder


def cli(root: Path, *argv: str):
    return run_cli(["--root", str(root), *argv])


#: The vocoders of the test project: the floor, a model trained here and the two pretrained ones whose
#: quantization results are committed. Fewer configs to compose keep each command about 3x quicker.
MODELS = ("griffinlim_32", "hifigan_v3", "hifigan_v1_ljspeech", "hifigan_v1_universal")


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A copy of the project (with :data:`MODELS` only) whose cheap stages have made their outputs
    once: survey, training-carbon, a corpus of two recordings and the quantization summary of the
    committed per-variant metrics."""
    project = copy_project(ROOT, tmp_path_factory.mktemp("base"))
    for config in (project / "conf/vocoder").glob("*.yaml"):
        if config.stem not in MODELS:
            config.unlink()
    # the default profile's scope leaves out models this copy no longer has (a name it does not know is refused)
    edit_yaml(project / "conf/profile/default.yaml", set_key("scope.models_left_out", []))
    shutil.copytree(ROOT / "results" / "quantize", project / "results" / "quantize", dirs_exist_ok=True)
    source = good_recordings(tmp_path_factory.mktemp("recordings"))
    for argv in (["params", "--write", f"corpus.source_dir={source}"], ["survey"], ["training-carbon"], ["corpus"],
                 ["quantize", "summary"]):
        result = cli(project, *argv)
        assert result.code == 0 and not result.crashed, result.stderr
    return project


@pytest.fixture
def project(base, tmp_path) -> Path:
    """A fresh copy of ``base`` for one case to spoil (src/ left out: the installed package runs)."""
    dest = tmp_path / "project"
    shutil.copytree(base, dest, ignore=shutil.ignore_patterns("src", "*.egg-info"))
    return dest


def refused(root: Path, argv: list[str], *names: str, also: tuple[str, ...] = ()) -> str:
    """Run ``audiofootprint --root ROOT ARGV``: it must refuse with one error line naming ``names``
    and leave results/, reports/ and the files of ``also`` (relative to ``root``) as they were."""
    watched = [root / name for name in also]
    before = fingerprint(root), [path.read_bytes() if path.exists() else None for path in watched]
    line = assert_refused(cli(root, *argv), *names)
    after = fingerprint(root), [path.read_bytes() if path.exists() else None for path in watched]
    assert after == before, f"a refused input wrote or replaced outputs ({line})"
    return line


# --- curated tables of data/ --------------------------------------------------------------------

def edit_csv(path: Path, change) -> None:
    """Rewrite a curated CSV as ``change(frame)`` leaves or returns it (cells read as text, empty ones kept)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    changed = change(frame)
    (frame if changed is None else changed).to_csv(path, index=False)


def set_cell(column: str, value: str, row: int = 1):
    def change(frame):
        frame.loc[row, column] = value
    return change


def drop_column(column: str):
    def change(frame):
        del frame[column]
    return change


def duplicate_id(column: str):
    def change(frame):
        frame.loc[1, column] = frame.loc[0, column]
    return change


def header_only(frame):
    return frame.iloc[:0]


#: Each curated table and the command that reads it first (data/carbon/reference_calculations.csv is
#: read by tests/test_carbon.py only: no command takes it).
TABLES = {
    "papers": ("data/survey/papers.csv", ["survey"]),
    "hardware": ("data/carbon/hardware.csv", ["training-carbon"]),
    "training_runs": ("data/carbon/training_runs.csv", ["training-carbon"]),
    "pue": ("data/carbon/pue.csv", ["training-carbon"]),
    "equivalents": ("data/carbon/equivalents.csv", ["training-carbon"]),
    "mos": ("data/published/mos_ljspeech.csv", ["training-carbon"]),
    "devices": ("data/quantize/devices.csv", ["notebook", "quantize"]),
}

#: (table, case, change, what the error line names besides the file). Row 1 of the frame is line 3.
TABLE_CASES = [
    ("papers", "missing column", drop_column("venue"), ["missing column(s) 'venue'", "README"]),
    ("papers", "wrong type", set_cell("year", "twenty"), ["line 3", "column 'year'", "'twenty'"]),
    ("papers", "out of range", set_cell("human_rating", "2"), ["line 3", "column 'human_rating'", "isin"]),
    ("papers", "year outside the survey", set_cell("year", "1999"), ["line 3", "year 1999", "first_year"]),
    ("papers", "duplicate id", duplicate_id("id"), ["line 2", "column 'id'", "is repeated"]),
    ("papers", "header only", header_only, ["no rows"]),
    ("hardware", "missing column", drop_column("power_w"), ["missing column(s) 'power_w'"]),
    ("hardware", "wrong type", set_cell("power_w", "lots"), ["line 3", "column 'power_w'", "'lots'"]),
    ("hardware", "out of range", set_cell("power_w", "-5"), ["line 3", "column 'power_w'", "greater_than"]),
    ("hardware", "duplicate id", duplicate_id("accelerator"), ["line 2", "column 'accelerator'", "is repeated"]),
    ("training_runs", "missing column", drop_column("training_hours"), ["missing column(s) 'training_hours'"]),
    ("training_runs", "wrong type", set_cell("training_hours", "a week"),
     ["line 3", "column 'training_hours'", "'a week'"]),
    ("training_runs", "out of range", set_cell("year", "1990"), ["line 3", "column 'year'", "greater_than"]),
    ("training_runs", "duplicate id", duplicate_id("model_id"), ["line 2", "column 'model_id'", "is repeated"]),
    ("training_runs", "unknown accelerator", set_cell("accelerator", "Z80"),
     ["line 3", "column 'accelerator'", "'Z80' is not in hardware.csv"]),
    ("pue", "out of range", set_cell("pue", "0.5"), ["line 3", "column 'pue'", "greater_than_or_equal_to(1)"]),
    ("pue", "duplicate id", duplicate_id("scenario"), ["line 2", "column 'scenario'", "is repeated"]),
    ("equivalents", "wrong type", set_cell("co2e_kg", "heavy"), ["line 3", "column 'co2e_kg'", "'heavy'"]),
    ("mos", "missing column", drop_column("mos"), ["missing column(s) 'mos'"]),
    ("mos", "wrong type", set_cell("mos", "good"), ["line 3", "column 'mos'", "'good'"]),
    ("mos", "out of range", set_cell("mos", "7"), ["line 3", "column 'mos'", "less_than_or_equal_to(5)"]),
    ("mos", "duplicate (test, model)", duplicate_id("model"), ["line 2", "repeats a (test, model) pair"]),
    ("devices", "missing column", drop_column("ram_bytes"), ["missing column(s) 'ram_bytes'"]),
    ("devices", "wrong type", set_cell("ram_bytes", "256 KB"), ["line 3", "column 'ram_bytes'", "'256 KB'"]),
    ("devices", "out of range", set_cell("cores", "0"), ["line 3", "column 'cores'", "greater_than_or_equal_to(1)"]),
    ("devices", "duplicate id", duplicate_id("device"), ["line 2", "column 'device'", "is repeated"]),
]


@kind("data_csv")
@pytest.mark.parametrize("table, change, names", [pytest.param(t, c, n, id=f"{t}: {case}")
                                                   for t, case, c, n in TABLE_CASES])
def test_a_spoiled_row_or_header_is_refused_naming_it(project, table, change, names):
    path, argv = TABLES[table]
    edit_csv(project / path, change)
    refused(project, argv, path, *names)


@kind("data_csv")
@pytest.mark.parametrize("table", ["papers", "hardware", "training_runs", "pue", "equivalents", "mos", "devices"])
def test_an_empty_table_file_is_refused_naming_it(project, table):
    path, argv = TABLES[table]
    (project / path).write_bytes(b"")
    refused(project, argv, path, "is empty")


@kind("data_csv")
def test_a_row_with_an_extra_field_is_refused_naming_its_line(project):
    path = project / TABLES["papers"][0]
    path.write_text(path.read_text() + "extra_paper,Title,Doe,2020,ICASSP,2001.00001,,neural_vocoder,1,1,1,1,1,1,1,1,"
                                       "1,1,Tab. 1,full_text,,arxiv_html,one field too many\n")
    refused(project, ["survey"], "data/survey/papers.csv", "line", "fields")


@kind("data_csv")
def test_a_table_that_is_not_text_is_refused_naming_it(project):
    (project / TABLES["hardware"][0]).write_bytes(bytes(range(128, 256)) * 4)
    refused(project, ["training-carbon"], "data/carbon/hardware.csv", "UTF-8")


@kind("data_csv")
def test_a_bad_last_table_leaves_every_carbon_output_as_it_was(project):
    """training-carbon reads five tables; the published MOS one is read last. A bad row there must
    stop the stage before it writes any of its tables (results/carbon/tables/*.csv)."""
    edit_csv(project / TABLES["mos"][0], set_cell("mos", "7"))
    estimates = project / "results/carbon/tables/estimates.csv"
    estimates.write_text(estimates.read_text() + "\n")  # made different from what the stage would write
    refused(project, ["training-carbon"], "data/published/mos_ljspeech.csv", "line 3")


@kind("study_config")
def test_an_unknown_country_in_the_carbon_config_leaves_every_carbon_output_as_it_was(project):
    """The sensitivity grid's locations are looked up after the tables are read: an unknown one must
    still stop training-carbon before it writes any table, naming the key."""
    edit_yaml(project / "conf/carbon/default.yaml", set_key("sensitivity.locations", ["FRA", "ATLANTIS"]))
    assert cli(project, "params", "--write").code == 0
    estimates = project / "results/carbon/tables/estimates.csv"
    estimates.write_text(estimates.read_text() + "\n")  # made different from what the stage would write
    refused(project, ["training-carbon"], "carbon.sensitivity.locations", "'ATLANTIS'")


# --- vocoder configurations (conf/vocoder/*.yaml) -----------------------------------------------

V3 = "conf/vocoder/hifigan_v3.yaml"
MEASURE_V3 = ["measure", "hifigan_v3", "--profile", "ci"]


def edit_yaml(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def set_key(dotted: str, value):
    def change(data):
        *parents, last = dotted.split(".")
        for key in parents:
            data = data.setdefault(key, {})
        data[last] = value
    return change


def drop_key(dotted: str):
    def change(data):
        *parents, last = dotted.split(".")
        for key in parents:
            data = data[key]
        del data[last]
    return change


#: (case, change, what the error line names besides the file).
VOCODER_CASES = [
    ("unknown model key", set_key("model.upsample_ratez", [8, 8, 4]), ["model.upsample_ratez", "remove it"]),
    ("unknown top-level key", set_key("trainig", {"objective": "hifigan"}), ["trainig", "known"]),
    ("wrong type", set_key("model.upsample_initial_channel", "wide"), ["model.upsample_initial_channel", "'wide'"]),
    ("missing _target_", drop_key("model._target_"), ["model._target_"]),
    ("_target_ not importable", set_key("model._target_", "audiofootprint.vocoders.hifigan.HiFiGun"),
     ["model._target_", "cannot be imported"]),
    ("missing family", drop_key("family"), ["family"]),
    ("official_params not a number", set_key("official_params", "about a million"), ["official_params"]),
    ("f_max above Nyquist", set_key("model.mel", {"f_max": 16000.0}), ["model.mel", "f_max", "Nyquist"]),
    ("hop larger than window", set_key("model.mel", {"hop_length": 2048}), ["model.mel", "hop_length", "win_length"]),
    ("n_mels 0", set_key("model.mel", {"n_mels": 0}), ["model.mel", "n_mels"]),
    ("window larger than FFT", set_key("model.mel", {"win_length": 2048}), ["model.mel", "win_length", "n_fft"]),
    ("f_min above f_max", set_key("model.mel", {"f_min": 9000.0}), ["model.mel", "f_min", "f_max"]),
    ("unknown mel field", set_key("model.mel", {"fmax": 8000.0}), ["model.mel", "fmax"]),
]


@kind("vocoder_config")
@pytest.mark.parametrize("change, names", [pytest.param(c, n, id=case) for case, c, n in VOCODER_CASES])
def test_a_spoiled_vocoder_config_is_refused_naming_the_key(project, change, names):
    edit_yaml(project / V3, change)
    refused(project, MEASURE_V3, V3, *names)


@kind("vocoder_config")
def test_a_vocoder_config_that_is_not_yaml_is_refused_naming_its_line(project):
    path = project / V3
    path.write_text(path.read_text().replace("family: HiFi-GAN", "family: HiFi-GAN: V3"))
    refused(project, MEASURE_V3, V3, "not valid YAML", "line")


PRETRAINED = "conf/vocoder/hifigan_v1_ljspeech.yaml"


@kind("vocoder_config")
@pytest.mark.parametrize("change, names", [
    pytest.param(set_key("weights.mel.f_max", 20000.0), ["weights.mel", "f_max", "Nyquist"],
                 id="native f_max above Nyquist"),
    pytest.param(set_key("weights.format", "jik876"), ["weights.format", "known"], id="unknown format"),
    pytest.param(set_key("weights.sha256", "bb4b0cb7"), ["weights.sha256", "64 hexadecimal"], id="short sha256"),
    pytest.param(drop_key("weights.published_training"), ["published_training"], id="missing published_training"),
])
def test_a_spoiled_weights_section_is_refused_naming_the_key(project, change, names):
    edit_yaml(project / PRETRAINED, change)
    refused(project, ["measure", "hifigan_v1_ljspeech", "--profile", "ci"], PRETRAINED, *names)


# --- profiles (conf/profile/*.yaml) -------------------------------------------------------------

CI = "conf/profile/ci.yaml"

PROFILE_CASES = [
    ("unknown top-level key", set_key("torch_thread", 4), ["torch_thread", "known"]),
    ("unknown measure key", set_key("measure.warmupp", 1), ["measure.warmupp", "known"]),
    ("unknown train key", set_key("train.max_step", 3), ["train.max_step", "known"]),
    ("wrong type", set_key("measure.windows", "three"), ["measure.windows", "'three'"]),
    ("wrong type in a nested section", set_key("benchmark.converged.test_utterances", "all"),
     ["benchmark.converged.test_utterances", "'all'"]),
    ("not a mapping", set_key("measure", 5), ["measure", "mapping"]),
    ("missing key", drop_key("measure.audio_seconds"), ["measure.audio_seconds", "missing"]),
    ("zero windows", set_key("measure.windows", 0), ["measure.windows", "at least 1"]),
    ("negative seconds", set_key("measure.min_window_s", -1.0), ["measure.min_window_s"]),
    ("unknown device", set_key("device", "gpu"), ["device", "'gpu'", "cuda"]),
]


@kind("profile_config")
@pytest.mark.parametrize("change, names", [pytest.param(c, n, id=case) for case, c, n in PROFILE_CASES])
def test_a_spoiled_profile_is_refused_naming_the_key(project, change, names):
    edit_yaml(project / CI, change)
    refused(project, ["params", "--write", "profile=ci"], CI, *names, also=("params.yaml",))


@kind("profile_config")
def test_a_spoiled_default_profile_stops_the_first_stage(project):
    """The default profile is read by every stage's check of params.yaml, survey's included."""
    edit_yaml(project / "conf/profile/default.yaml", set_key("measure.windows", "five"))
    refused(project, ["survey"], "conf/profile/default.yaml", "measure.windows", "'five'")


@kind("profile_config")
def test_a_spoiled_profile_is_refused_by_measure(project):
    edit_yaml(project / CI, set_key("measure.min_repeats", 2.5))
    refused(project, MEASURE_V3, CI, "measure.min_repeats", "2.5")


ENERGY = "conf/energy/default.yaml"

ENERGY_CASES = [
    ("unknown key", set_key("country", "FRA"), ["country", "known"]),
    ("missing key", drop_key("pue"), ["pue", "missing"]),
    ("wrong type", set_key("pue", "low"), ["pue", "'low'"]),
    ("pue below 1", set_key("pue", 0.5), ["pue", "at least 1"]),
    ("unknown country", set_key("country_iso3", "XYZ"), ["country_iso3", "'XYZ'", "ISO 3166"]),
    ("unknown tracking mode", set_key("tracking_mode", "gpu"), ["tracking_mode", "'gpu'"]),
]


@kind("study_config")
@pytest.mark.parametrize("change, names", [pytest.param(c, n, id=case) for case, c, n in ENERGY_CASES])
def test_a_spoiled_energy_config_is_refused_naming_the_key(project, change, names):
    """conf/energy sets where the machine's power comes from: a wrong value would mislabel every joule."""
    edit_yaml(project / ENERGY, change)
    refused(project, ["params", "--write"], ENERGY, *names, also=("params.yaml",))


# --- checkpoints ----------------------------------------------------------------------------------

def _ran(marker: str) -> None:  # what a code-carrying pickle would run when loaded
    Path(marker).write_text("the pickle ran code")


class _CodeCarrier:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return _ran, (self.marker,)


@pytest.fixture(scope="module")
def v3_state(tmp_path_factory) -> bytes:
    """The bytes of a real checkpoint of the hifigan_v3 configuration (torch.save of its state dict)."""
    from audiofootprint.vocoders import zoo

    model = zoo.build(zoo.load_entry(ROOT / V3))
    path = tmp_path_factory.mktemp("ckpt") / "v3.pt"
    torch.save(model.state_dict_for_checkpoint(), path)
    return path.read_bytes()


def _melgan_state(path: Path) -> None:
    from audiofootprint.vocoders import zoo

    torch.save(zoo.build(zoo.load_entry(ROOT / "conf/vocoder/melgan.yaml")).state_dict_for_checkpoint(), path)


#: case: (how to make the file from (path, the v3 checkpoint's bytes), what the refusal names besides the file)
CHECKPOINTS = {
    "random bytes": (lambda p, v3: p.write_bytes(np.random.default_rng(0).bytes(4096)), ["not a torch checkpoint"]),
    "empty file": (lambda p, v3: p.write_bytes(b""), ["empty", "not a torch checkpoint"]),
    "truncated": (lambda p, v3: p.write_bytes(v3[: len(v3) // 2]), ["truncated"]),
    "code-carrying pickle": (lambda p, v3: torch.save({"generator": _CodeCarrier(p.parent / "ran")}, p),
                             ["weights_only", "state dict"]),
    "not a state dict": (lambda p, v3: torch.save([torch.zeros(3)], p), ["holds a list", "not a state dict"]),
    "another architecture": (lambda p, v3: _melgan_state(p), ["key(s)", "HiFiGAN"]),
    "missing file": (lambda p, v3: None, ["not found"]),
}


@kind("checkpoint")
@pytest.mark.parametrize("case", list(CHECKPOINTS))
def test_a_bad_checkpoint_is_refused_naming_the_file(base, tmp_path, v3_state, case):
    make, names = CHECKPOINTS[case]
    path = tmp_path / f"{case.replace(' ', '_')}.pt"
    make(path, v3_state)
    refused(base, [*MEASURE_V3, "--checkpoint", str(path)], str(path), *names)
    assert not (tmp_path / "ran").exists(), "loading the checkpoint ran the code it carries"


@kind("checkpoint")
def test_a_checkpoint_with_another_digest_than_asked_is_refused(base, tmp_path, v3_state):
    path = tmp_path / "v3.pt"
    path.write_bytes(v3_state)
    refused(base, [*MEASURE_V3, "--checkpoint", str(path), "--sha256", "0" * 64], str(path), "sha256 is",
            "--sha256 expects " + "0" * 64)


@kind("checkpoint")
def test_pretrained_weights_with_another_digest_than_the_config_are_refused(project):
    """The config names a package's file and its sha256: a different digest in the config (or a
    different file) is refused before the weights are loaded."""
    edit_yaml(project / PRETRAINED, set_key("weights.sha256", "ab" * 32))
    refused(project, ["measure", "hifigan_v1_ljspeech", "--profile", "ci"], "generator_LJSpeech.pth.tar",
                   "sha256 is", f"{PRETRAINED} weights.sha256 expects " + "ab" * 32)


@kind("checkpoint")
def test_pretrained_weights_that_are_not_there_are_refused(project, tmp_path):
    def local_file(data):
        weights = data["weights"]
        del weights["package"], weights["resource"]
        weights["path"] = str(tmp_path / "nowhere" / "g_02500000")
    edit_yaml(project / PRETRAINED, local_file)
    refused(project, ["measure", "hifigan_v1_ljspeech", "--profile", "ci"], PRETRAINED, "g_02500000", "not found")


# --- corpus recordings ---------------------------------------------------------------------------

def _corpus_run(project: Path, tmp_path: Path, name: str, write) -> Path:
    """A source folder of good recordings plus ``name`` (made by ``write(path)``), composed into
    params.yaml; returns the corpus folder the stage writes."""
    source = good_recordings(tmp_path / "recordings")
    write(source / name)
    assert cli(project, "params", "--write", f"corpus.source_dir={source}").code == 0
    return project / "results/corpus"


def _bytes(data: bytes):
    return lambda path: path.write_bytes(data)


@kind("corpus_audio")
@pytest.mark.parametrize("name, write, names", [
    pytest.param("empty.wav", _bytes(b""), ["empty.wav", "cannot be decoded"], id="empty file"),
    pytest.param("notes.wav", _bytes(b"transcript: hello world\n" * 40), ["notes.wav", "cannot be decoded"],
                 id="not audio"),
    pytest.param("half.flac", lambda p: (write_wav(p, speechlike(1.5, SR, 3), subtype="PCM_16"),
                                         p.write_bytes(p.read_bytes()[:40])),
                 ["half.flac", "cannot be decoded"], id="truncated"),
    pytest.param("nan.wav", lambda p: write_wav(p, np.where(np.arange(2 * SR) % 100 == 0, np.nan,
                                                            speechlike(2.0, SR, 4)).astype(np.float32),
                                                subtype="FLOAT"),
                 ["nan.wav", "NaN"], id="NaN samples"),
    pytest.param("inf.wav", lambda p: write_wav(p, np.where(np.arange(2 * SR) == 5, np.inf,
                                                            speechlike(2.0, SR, 5)).astype(np.float32),
                                                subtype="FLOAT"),
                 ["inf.wav", "NaN or infinite"], id="infinite sample"),
])
def test_a_recording_that_cannot_give_sound_stops_the_corpus(project, tmp_path, name, write, names):
    """A file with an audio suffix that does not decode, or whose samples are not numbers, is a
    damaged source (a broken download, a wrong export): building a corpus without it would quietly
    make another corpus than the folder says. The stage stops naming the file, and the corpus
    already built stays as it was."""
    _corpus_run(project, tmp_path, name, write)
    line = refused(project, ["corpus"], *names)
    assert "remove" in line or "re-export" in line


def _left_out(project: Path, tmp_path: Path, name: str, write) -> tuple[dict, pd.DataFrame, str]:
    corpus = _corpus_run(project, tmp_path, name, write)
    result = cli(project, "corpus")
    assert result.code == 0 and not result.crashed, result.stderr
    excluded = pd.read_csv(corpus / "excluded.csv")
    manifest = pd.read_csv(corpus / "manifest.csv")
    return dict(zip(excluded["source_path"], excluded["reason"])), manifest, result.stderr


@kind("corpus_audio")
@pytest.mark.parametrize("name, write, reason", [
    pytest.param("silent.wav", lambda p: write_wav(p, np.zeros(2 * SR, np.float32)), "silent", id="silent"),
    pytest.param("no_frames.wav", lambda p: write_wav(p, np.zeros(0, np.float32)), "shorter than",
                 id="header without samples"),
])
def test_a_recording_without_speech_is_left_out_and_said(project, tmp_path, name, write, reason):
    """A decodable recording with nothing to hear (all zeros, or no samples at all) is refused as an
    utterance: it is left out of the corpus with its reason in excluded.csv, as the module documents
    for silent and too short files (corpora hold such files: Asterisk's silence prompts), and the
    stage names it on stderr; the rest of the corpus is built."""
    reasons, manifest, stderr = _left_out(project, tmp_path, name, write)
    assert reasons[name].startswith(reason)
    assert name not in set(manifest["source_path"]) and len(manifest) == 2
    assert name in stderr and "excluded.csv" in stderr


@kind("corpus_audio")
def test_a_clipped_recording_is_kept_and_never_clipped_further(project, tmp_path):
    """Clipping is in the recording itself: the corpus cannot undo it and does not judge it (that is
    curation). What it guarantees is documented: loudness normalisation never clips, the peak stays
    at or below ``peak_limit`` (0.99)."""
    clipped = np.clip(10 * speechlike(2.0, SR, 6), -1.0, 1.0)
    reasons, manifest, _ = _left_out(project, tmp_path, "clipped.wav", lambda p: write_wav(p, clipped))
    row = manifest.set_index("source_path").loc["clipped.wav"]
    x, rate = sf.read(str(project / "results/corpus" / row["path"]))
    assert rate == SR and np.max(np.abs(x)) <= 0.99 + 1 / 32768 and "clipped.wav" not in reasons


@kind("corpus_audio")
def test_a_recording_at_another_rate_is_resampled(project, tmp_path):
    """Recordings at another rate than ``corpus.sample_rate`` are resampled, as documented: every
    written utterance has the corpus' rate and keeps its duration."""
    x = speechlike(2.0, 44100, 7)
    _, manifest, _ = _left_out(project, tmp_path, "cd.wav", lambda p: write_wav(p, x, 44100))
    row = manifest.set_index("source_path").loc["cd.wav"]
    info = sf.info(str(project / "results/corpus" / row["path"]))
    assert info.samplerate == SR and row["seconds"] == pytest.approx(2.0, abs=0.25)


@kind("corpus_audio")
def test_a_stereo_recording_is_downmixed(project, tmp_path):
    """Several channels are averaged into one, as documented: the written utterance is mono."""
    stereo = np.stack([speechlike(2.0, SR, 8), speechlike(2.0, SR, 9)], axis=1)
    _, manifest, _ = _left_out(project, tmp_path, "stereo.wav", lambda p: write_wav(p, stereo))
    row = manifest.set_index("source_path").loc["stereo.wav"]
    assert sf.info(str(project / "results/corpus" / row["path"])).channels == 1


@kind("corpus_audio")
def test_a_source_folder_that_is_not_there_is_refused(project, tmp_path):
    assert cli(project, "params", "--write", f"corpus.source_dir={tmp_path / 'nowhere'}").code == 0
    refused(project, ["corpus"], str(tmp_path / "nowhere"), "not found", "corpus.source_dir")


@kind("corpus_audio")
def test_a_source_folder_without_recordings_is_refused(project, tmp_path):
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("hello")
    assert cli(project, "params", "--write", f"corpus.source_dir={tmp_path / 'texts'}").code == 0
    refused(project, ["corpus"], str(tmp_path / "texts"), "holds no", "corpus.source_dir")


@kind("corpus_audio")
def test_a_source_folder_of_silence_only_is_refused(project, tmp_path):
    source = tmp_path / "quiet"
    for i in range(2):
        write_wav(source / f"quiet_{i}.wav", np.zeros(2 * SR, np.float32))
    assert cli(project, "params", "--write", f"corpus.source_dir={source}").code == 0
    refused(project, ["corpus"], str(source), "no utterance left")


# --- command-line arguments ----------------------------------------------------------------------

CARBON = ["carbon", "--power-w", "300", "--intensity", "400"]

#: (case, argv, what the error line names).
ARGUMENT_CASES = [
    ("unknown vocoder", ["measure", "hifigan_v9", "--profile", "ci"], ["'hifigan_v9'", "configured"]),
    ("unknown profile", ["measure", "hifigan_v3", "--profile", "fast"], ["profile", "fast", "ci, default, full, paper"]),
    ("unknown override key", ["params", "--write", "profil=ci"], ["profil"]),
    ("unknown profile override", ["params", "--write", "profile=fast"], ["profile", "fast", "ci, default, full, paper"]),
    ("malformed override", ["params", "--write", "profile"], ["profile", "KEY=VALUE"]),
    ("unknown model in benchmark.models override", ["params", "--write", "benchmark.models=[hifigan_v9]"],
     ["benchmark.models", "hifigan_v9"]),
    ("unknown quantization scheme", ["quantize", "hifigan_v1_ljspeech", "int3"], ["'int3'", "quantize.schemes"]),
    ("model not in quantize.models", ["quantize", "hifigan_v3", "fp32"], ["'hifigan_v3'", "quantize.models"]),
    ("quantize without a scheme", ["quantize", "hifigan_v1_ljspeech"], ["scheme"]),
    ("model not in benchmark.models", ["benchmark", "hifigan_v9"], ["'hifigan_v9'", "benchmark.models"]),
    ("unknown model to train", ["train", "hifigan_v9"], ["'hifigan_v9'", "conf/vocoder"]),
    ("model report of an unknown model", ["model-report", "hifigan_v9"], ["'hifigan_v9'", "benchmark.models"]),
    ("model report of a model without results", ["model-report", "hifigan_v3"],
     ["results/benchmark/hifigan_v3/metrics.json", "dvc repro benchmark@hifigan_v3"]),
    ("card of an unknown model", ["card", "hifigan_v9"], ["'hifigan_v9'", "benchmark.models"]),
    ("card of a model without results", ["card", "hifigan_v3"], ["hifigan_v3/metrics.json", "dvc repro"]),
    ("unknown study notebook", ["notebook", "energy"], ["'energy'", "choose from"]),
    ("unknown command", ["benchmarks"], ["'benchmarks'", "choose from"]),
    ("negative hours", [*CARBON, "--hours", "-1"], ["hours", "-1"]),
    ("zero hours", [*CARBON, "--hours", "0"], ["hours", "positive"]),
    ("infinite hours", [*CARBON, "--hours", "inf"], ["hours", "inf"]),
    ("hours not a number", [*CARBON, "--hours", "ten"], ["--hours", "'ten'"]),
    ("zero devices", [*CARBON, "--hours", "1", "--count", "0"], ["count", "positive"]),
    ("negative devices", [*CARBON, "--hours", "1", "--count", "-2"], ["count", "-2"]),
    ("zero power", ["carbon", "--power-w", "0", "--intensity", "400", "--hours", "1"], ["power_w", "positive"]),
    ("negative intensity", ["carbon", "--power-w", "300", "--intensity", "-1", "--hours", "1"],
     ["intensity", "-1"]),
    ("utilisation above 1", [*CARBON, "--hours", "1", "--utilization", "1.5"], ["utilization", "1.5"]),
    ("PUE below 1", [*CARBON, "--hours", "1", "--pue", "0.8"], ["pue", "0.8"]),
    ("unknown accelerator", ["carbon", "--accelerator", "Z80", "--intensity", "400", "--hours", "1"],
     ["'Z80'", "hardware.csv", "--power-w"]),
    ("unknown country", ["carbon", "--power-w", "300", "--country", "Atlantis", "--hours", "1"],
     ["'Atlantis'", "ISO 3166"]),
]


@kind("cli_args")
@pytest.mark.parametrize("argv, names", [pytest.param(a, n, id=case) for case, a, n in ARGUMENT_CASES])
def test_a_bad_argument_is_refused_naming_it(base, argv, names):
    refused(base, argv, *names, also=("params.yaml",))


@kind("cli_args")
@pytest.mark.parametrize("other", ["not_a_checkout", "itself"])
def test_merging_a_folder_that_is_not_another_checkout_is_refused(base, tmp_path, other):
    folder = base if other == "itself" else tmp_path / "elsewhere"
    folder.mkdir(exist_ok=True)
    line = refused(base, ["merge", str(folder)], str(folder))
    assert "params.yaml not found" in line or "is this checkout" in line
