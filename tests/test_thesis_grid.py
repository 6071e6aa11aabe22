"""The thesis grid (C. Douwes 2023; Douwes et al., ICASSP 2023; ConstanceDws/neural-audio-energy):
its six families (HiFi-GAN, MelGAN, DiffWave, WaveGlow, WaveFlow, WaveGrad) in three sizes each,
``conf/vocoder/thesis_<family>_<size>.yaml``.
Each loads, sits in the grid at its size, builds, takes the thesis' features and gives ``frames * hop``
samples; the grid is selected by its name and stays out of ``all``; the sizes' order of parameter counts is
the thesis repository's. (``tests/test_zoo.py`` checks every config's count against ``official_params``.)"""
from __future__ import annotations

import pytest
import torch

from audiofootprint.features import convention_of, mel_spectrogram
from audiofootprint.vocoders import zoo
from conftest import ROOT

FAMILIES = ("hifigan", "melgan", "diffwave", "waveglow", "waveflow", "wavegrad")
SIZES = ("small", "medium", "large")
NAMES = [f"thesis_{family}_{size}" for family in FAMILIES for size in SIZES]
#: Forward passes of a few seconds on a CPU (6 network passes of the 128-channel DiffWave; the 256-channel
#: WaveGlow): built only here (tests/test_zoo.py runs them once).
BUILD_ONLY = {"thesis_diffwave_large", "thesis_waveglow_large", "thesis_waveflow_large", "thesis_wavegrad_medium",
              "thesis_wavegrad_large"}
#: The thesis code's WaveGrad upsamples by 4 x 4 x 4 x 4 x 2 = 512 per frame; every other family by 256.
HOP = {"wavegrad": 512}
#: The thesis repository's order of its sizes by generator parameters, smallest first: its HiFi-GAN
#: "medium" (V1's layout at 128 channels) is narrower than its "small" (the official V3).
SIZE_ORDER = {
    "hifigan": ("medium", "small", "large"),
    "melgan": ("small", "medium", "large"),
    "diffwave": ("small", "medium", "large"),
    "waveglow": ("small", "medium", "large"),
    "waveflow": ("small", "medium", "large"),
    "wavegrad": ("small", "medium", "large"),
}
FRAMES = 4


@pytest.fixture(scope="module")
def paths():
    return zoo.config_paths(ROOT)


@pytest.mark.parametrize("name", NAMES)
def test_thesis_config_builds_in_its_place_with_thesis_features(paths, name):
    assert name in paths, f"conf/vocoder/{name}.yaml is missing"
    entry = zoo.load_entry(paths[name])
    family, size = name.split("_")[1:]
    assert entry.grid == zoo.GridPlace("thesis", size)
    assert entry.features == "thesis"
    torch.manual_seed(0)
    model = zoo.build(entry)
    assert convention_of(model) == "thesis"
    mel = model.mel
    assert (mel.sample_rate, mel.n_fft, mel.win_length, mel.n_mels) == (16000, 2048, 2048, 80)
    assert mel.hop_length == HOP.get(family, 256)
    assert (mel.f_min, mel.f_max) == (0.0, 8000.0)
    assert zoo.section(entry, "training")["segment_samples"] == 16384
    if name in BUILD_ONLY:
        return
    wave = 0.5 * torch.sin(torch.arange(FRAMES * mel.hop_length) * 2 * torch.pi * 440 / mel.sample_rate)
    features = mel_spectrogram(wave.unsqueeze(0), mel, "thesis")
    assert features.shape == (1, mel.n_mels, FRAMES)
    with torch.no_grad():
        out = model.for_inference()(features)
    assert out.shape == (1, FRAMES * mel.hop_length)
    assert torch.isfinite(out).all()


def test_the_thesis_grid_is_selected_by_its_name_and_not_by_all(paths):
    thesis = zoo.selection(paths, "thesis")
    assert sorted(thesis) == sorted(NAMES)  # the 18 configurations of the thesis, nothing else
    outside_grids = {name for name, path in paths.items() if zoo.load_entry(path).grid is None}
    assert outside_grids, "the zoo has configs outside any grid"
    assert not outside_grids & set(thesis)
    everything = zoo.selection(paths, "all")
    assert not set(NAMES) & set(everything)
    assert {"hifigan_v3", "melgan", "diffwave_6", "waveglow"} <= set(everything)


@pytest.mark.parametrize("family", FAMILIES)
def test_sizes_are_ordered_as_in_the_thesis_repository(paths, family):
    counts = {size: zoo.load_entry(paths[f"thesis_{family}_{size}"]).official_params for size in SIZES}
    assert tuple(sorted(SIZES, key=counts.__getitem__)) == SIZE_ORDER[family], counts
    assert len(set(counts.values())) == len(SIZES), counts
