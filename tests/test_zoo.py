"""Every vocoder config composes, builds, has its official parameter count and the right output
length; bad configs name the file and the key; the zoo and measure commands; no network."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from audiofootprint import cli
from audiofootprint.features import convention_of
from audiofootprint.vocoders import zoo
from audiofootprint.vocoders.base import MelSettings, Vocoder
from conftest import ROOT

ENTRIES = zoo.load_zoo(ROOT)
#: Sample-by-sample or many-step samplers get the shortest inputs.
FRAMES = {"wavernn": 2, "diffwave_50": 2, "wavegrad_50": 1}


def test_the_zoo_has_the_required_models():
    families = {entry.family for entry in ENTRIES.values()}
    assert len(ENTRIES) >= 14
    assert {"Griffin-Lim", "HiFi-GAN", "MelGAN", "Multi-band MelGAN", "Parallel WaveGAN", "WaveRNN", "WaveGlow",
            "DiffWave", "UnivNet", "Vocos", "BigVGAN"} <= families
    assert {"hifigan_v1", "hifigan_v2", "hifigan_v3", "diffwave_6", "diffwave_50"} <= set(ENTRIES)


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_config_builds_with_official_params_and_right_length(name):
    entry = ENTRIES[name]
    torch.manual_seed(0)
    model = zoo.build(entry)
    assert isinstance(model, Vocoder)
    count = sum(p.numel() for p in model.parameters())
    if entry.official_params == 0:
        assert count == 0
    else:
        assert abs(count / entry.official_params - 1) < 0.01, (count, entry.official_params)
    assert entry.official_params_source
    frames = FRAMES.get(name, 4)
    mel = torch.rand(1, model.mel.n_mels, frames) * 0.5 - 0.25
    with torch.inference_mode():
        wave = model.for_inference()(mel)
    assert wave.shape == (1, frames * model.hop_length)
    assert torch.isfinite(wave).all()


def _write(tmp_path, text):
    folder = tmp_path / "conf" / "vocoder"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mine.yaml"
    path.write_text(text)
    return path


GOOD = """family: HiFi-GAN
official_params: 928514
official_params_source: test
model:
  _target_: audiofootprint.vocoders.hifigan.HiFiGAN
  upsample_initial_channel: 128
"""


def test_a_new_config_file_is_a_new_model(tmp_path):
    _write(tmp_path, GOOD)
    entries = zoo.load_zoo(tmp_path)
    assert list(entries) == ["mine"]
    assert zoo.build(entries["mine"]).num_params() == pytest.approx(928514, rel=0.01)


@pytest.mark.parametrize("text, fragments", [
    (GOOD.replace("audiofootprint.vocoders.hifigan.HiFiGAN", "audiofootprint.vocoders.nope.Model"),
     ["model._target_", "audiofootprint.vocoders.nope.Model", "cannot be imported"]),
    (GOOD + "  upsample_ratez: [8, 8, 2, 2]\n", ["model.upsample_ratez is not a parameter"]),
    (GOOD.replace("family: HiFi-GAN\n", ""), ["missing key(s) family"]),
    (GOOD.replace("  _target_: audiofootprint.vocoders.hifigan.HiFiGAN\n", ""), ["missing key model._target_"]),
    (GOOD.replace("audiofootprint.vocoders.hifigan.HiFiGAN", "torch.nn.Identity"), ["not an audiofootprint"]),
])
def test_bad_config_names_file_and_key(tmp_path, text, fragments):
    path = _write(tmp_path, text)
    with pytest.raises(zoo.ConfigError) as info:
        zoo.build(zoo.load_entry(path))
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("extra, fragments", [
    ("features: thesys\n", ["features: 'thesys' is not a feature convention", "thesis"]),
    ("grid: thesis\n", ["grid must be {name: GRID, size: SIZE}"]),
    ("grid: {name: thesis}\n", ["grid must be {name: GRID, size: SIZE}"]),
    ("grid: {name: all, size: small}\n", ["grid.name 'all' is reserved"]),
])
def test_bad_features_or_grid_names_file_and_key(tmp_path, extra, fragments):
    path = _write(tmp_path, GOOD + extra)
    with pytest.raises(zoo.ConfigError) as info:
        zoo.load_entry(path)
    assert str(path) in str(info.value)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_a_grid_is_selected_by_name_alone_or_in_a_list(tmp_path):
    """`features` replaces the class' convention on the built model; a grid's configs stay out of `all`
    and come with its name, alone or in a list beside other names; an unknown name is refused."""
    _write(tmp_path, GOOD)
    folder = tmp_path / "conf" / "vocoder"
    (folder / "tiny_small.yaml").write_text(GOOD + "features: thesis\ngrid: {name: tiny, size: small}\n")
    (folder / "tiny_large.yaml").write_text(GOOD + "grid: {name: tiny, size: large}\n")
    paths = zoo.config_paths(tmp_path)
    assert zoo.selection(paths, "all") == ["mine"]
    assert zoo.selection(paths, "tiny") == ["tiny_large", "tiny_small"]
    assert zoo.selection(paths, ["tiny", "all", "tiny_small"]) == ["tiny_large", "tiny_small", "mine"]
    assert list(zoo.plan_models(tmp_path, ["tiny"])) == ["tiny_large", "tiny_small"]
    assert convention_of(zoo.build(zoo.load_entry(paths["tiny_small"]))) == "thesis"
    assert convention_of(zoo.build(zoo.load_entry(paths["tiny_large"]))) == "hifigan"
    with pytest.raises(zoo.ConfigError, match="'nope', not in conf/vocoder/ .* nor 'all', nor a grid \\(grids: tiny\\)"):
        zoo.selection(paths, ["tiny", "nope"])


def test_mel_settings_that_do_not_fit_the_corpus(tmp_path):
    entry = zoo.load_entry(_write(tmp_path, GOOD))
    model = zoo.build(entry)
    zoo.check_mel(entry, model, MelSettings())  # the LJSpeech analysis HiFi-GAN expects
    with pytest.raises(zoo.ConfigError, match=r"mine.yaml: mel settings .* model.mel.sample_rate is 22050, the corpus needs 16000"):
        zoo.check_mel(entry, model, MelSettings(sample_rate=16000))
    overridden = zoo.build(entry, mel={"sample_rate": 16000, "n_fft": 1024, "win_length": 1024, "hop_length": 256,
                                       "n_mels": 80, "f_min": 0.0, "f_max": 8000.0})
    zoo.check_mel(entry, overridden, MelSettings(sample_rate=16000))


def test_zoo_command_json(capsys):
    assert cli.main(["--root", str(ROOT), "zoo", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(ENTRIES) >= 14
    by_name = {row["name"]: row for row in rows}
    assert by_name["hifigan_v1"]["params"] == pytest.approx(13.92e6, rel=0.01)
    assert by_name["hifigan_v1"]["mel"]["hop_length"] == 256 and by_name["vocos"]["mel"]["sample_rate"] == 24000
    assert all(row["size_bytes"] >= 4 * row["params"] for row in rows)




def test_measure_command_prints_a_full_measurement(no_network, capsys, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(ROOT / "conf", project / "conf")
    assert cli.main(["--root", str(project), "measure", "hifigan_v3", "--profile", "ci"]) == 0
    text = capsys.readouterr().out
    for label in ["real-time factor", "energy / audio s", "J net of idle", "method", "CPU:", "hardware",
                  "FLOPs / audio s", "peak memory", "repetitions", "IQR", "CO2e"]:
        assert label in text, label
    assert cli.main(["--root", str(project), "measure", "hifigan_v3", "--profile", "ci", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    summary = result["measurement"]["summary"]
    assert summary["real_time_factor"]["median"] > 0 and summary["per_call"]["energy_j"]["median"] > 0
    assert result["measurement"]["tracker"]["country_iso3"] == "FRA"
    assert result["flops_per_audio_s"] > 1e9  # HiFi-GAN V3 runs GFLOPs per second of audio


def test_measure_unknown_vocoder(capsys):
    assert cli.main(["--root", str(ROOT), "measure", "nope", "--profile", "ci"]) == 2
    assert "unknown vocoder 'nope'; configured: " in capsys.readouterr().err


def test_a_vocoder_file_is_read_once(tmp_path):
    """Every section comes from what load_entry read: a later edit of the file (or its removal) is not
    seen half-way through a stage."""
    path = tmp_path / "wavernn.yaml"
    path.write_text((ROOT / "conf/vocoder/wavernn.yaml").read_text())
    entry = zoo.load_entry(path)
    path.unlink()
    assert zoo.section(entry, "benchmark") == {"max_test_seconds": 2.0, "test_utterances": 1}
    assert zoo.section(entry, "training")["batch_size"] == 256
    section = zoo.section(entry, "training")
    section["batch_size"] = 1  # a copy: the entry keeps its own
    assert zoo.section(entry, "training")["batch_size"] == 256
    with pytest.raises(KeyError, match="not a section"):
        zoo.section(entry, "model")
