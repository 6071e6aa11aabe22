"""Family-specific tests of Griffin-Lim, Parallel WaveGAN, WaveGlow, DiffWave, Vocos and
WaveRNN: Hydra instantiation of their YAML configs, official checkpoint layouts, Griffin-Lim's
pseudo-inverse and alignment, DiffWave's 6/50-step schedules, partial mel settings and
batching.

Parameter counts and output shapes of every configuration in conf/vocoder/ are tested in
test_zoo.py; the official hyperparameters used here are read from those YAML files.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from audiofootprint.vocoders import zoo
from audiofootprint.vocoders.base import Vocoder

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = zoo.load_zoo(ROOT)

#: The official layouts with fewer / narrower layers, to keep the tests quick.
SLIM = {
    "griffinlim_32": {},
    "parallel_wavegan": {"layers": 3, "stacks": 3, "residual_channels": 8, "gate_channels": 16, "skip_channels": 8},
    "waveglow": {"n_flows": 5, "wn_layers": 2, "wn_channels": 16},
    "diffwave_6": {"residual_layers": 3, "residual_channels": 8},
    "vocos": {"dim": 32, "intermediate_dim": 64, "num_layers": 2},
    "wavernn": {"n_res_block": 1, "n_rnn": 16, "n_fc": 16, "n_hidden": 8, "n_output": 8},
}


pytestmark = pytest.mark.usefixtures("one_thread")


def build(name: str, seed: int = 0, **overrides) -> Vocoder:
    """The zoo model ``name`` (conf/vocoder/<name>.yaml), ``overrides`` replacing model keys."""
    torch.manual_seed(seed)
    return zoo.build(ENTRIES[name], **overrides).eval()


def _mel_input(vocoder: Vocoder, frames: int, batch: int = 1) -> torch.Tensor:
    n_mels = vocoder.mel.n_mels
    if type(vocoder).__name__ == "DiffWave":  # DiffWave features live in [0, 1]
        return torch.rand(batch, n_mels, frames)
    return torch.randn(batch, n_mels, frames) - 4.0  # natural-log / normalised magnitudes


@pytest.mark.parametrize("name", ["parallel_wavegan", "diffwave_6", "vocos"])
def test_hydra_instantiates_the_yaml_config(name):
    """Hydra builds the YAML's model config as it is (``mel`` arrives as a DictConfig)."""
    hydra_utils = pytest.importorskip("hydra.utils")
    from omegaconf import OmegaConf

    entry = ENTRIES[name]
    vocoder = hydra_utils.instantiate(entry.model)
    assert isinstance(vocoder, Vocoder)
    assert vocoder.num_params() == zoo.build(entry).num_params()
    assert vocoder.mel.as_dict() == OmegaConf.to_container(entry.model.mel)


def test_partial_mel_overrides_the_model_default():
    """Every family resolves a partial ``mel`` against its own default analysis."""
    for name, slim in SLIM.items():
        default = build(name, **slim).mel
        changed = build(name, **slim, mel={"f_min": 55.0})
        assert changed.mel.f_min == 55.0, name
        assert {**changed.mel.as_dict(), "f_min": default.f_min} == default.as_dict(), name


@pytest.mark.parametrize("name", [n for n in SLIM if n != "wavernn"])
def test_batch_of_two(name):
    vocoder = build(name, **SLIM[name])
    with torch.inference_mode():
        wave = vocoder(_mel_input(vocoder, 4, batch=2))
    assert wave.shape == (2, 4 * vocoder.hop_length)
    assert torch.isfinite(wave).all()


def test_wavernn_checkpoint_uses_torchaudio_layout(tmp_path):
    import torchaudio

    vocoder = build("wavernn")
    reference = torchaudio.models.WaveRNN(upsample_scales=[5, 5, 11], n_classes=256, hop_length=275, n_freq=80)
    path = tmp_path / "wavernn.pt"
    torch.save(reference.state_dict(), path)
    vocoder.from_checkpoint(path)
    for key, value in reference.state_dict().items():
        assert torch.equal(vocoder.state_dict_for_checkpoint()[key], value)


def test_wavernn_samples_mu_law_audio():
    vocoder = build("wavernn", **SLIM["wavernn"])
    with torch.inference_mode():
        wave = vocoder(_mel_input(vocoder, 2))
    assert wave.shape == (1, 2 * 275)
    assert wave.abs().max() <= 1.0


def test_weight_norm_checkpoints_are_folded(tmp_path):
    """A training-layout state dict (weight_g / weight_v, ``{"model": {"generator": ...}}``,
    as kan-bayashi/ParallelWaveGAN saves it) loads into the plain inference graph."""
    plain = build("parallel_wavegan")
    g, v = torch.rand(64, 1, 1) + 0.5, torch.randn(64, 64, 1)  # weight = g * v / ||v|| (per output channel)
    state = dict(plain.state_dict())
    del state["post1.weight"]
    state["post1.weight_g"], state["post1.weight_v"] = g, v
    torch.save({"model": {"generator": state}}, tmp_path / "pwg.pt")
    plain.from_checkpoint(tmp_path / "pwg.pt")
    expected = v * g / v.flatten(1).norm(dim=1).view(-1, 1, 1)
    assert torch.allclose(plain.post1.weight, expected, atol=1e-6)


def test_griffinlim_pseudo_inverse_recovers_a_mel_consistent_spectrum():
    vocoder = build("griffinlim_32")
    mel = torch.randn(1, 80, 5) - 3.0
    linear = vocoder.mel_to_linear(mel)
    assert linear.shape == (1, 513, 5) and (linear >= 0).all()


def test_griffinlim_output_is_aligned_with_the_mel_frames():
    """Tone bursts analysed the HiFi-GAN way (reflect padding of (n_fft - hop) / 2, no
    centring) come back at the same sample positions, not half a hop off."""
    import torchaudio

    vocoder = build("griffinlim_32")
    m, hop = vocoder.mel, vocoder.hop_length
    melspec = torchaudio.transforms.MelSpectrogram(
        sample_rate=m.sample_rate, n_fft=m.n_fft, win_length=m.win_length, hop_length=hop, f_min=m.f_min,
        f_max=m.f_max, n_mels=m.n_mels, power=1.0, norm="slaney", mel_scale="slaney", center=False)
    frames = 48
    t = torch.arange(frames * hop) / m.sample_rate
    x = torch.zeros(frames * hop)
    for start in (10, 30):
        burst = slice(start * hop + 37, (start + 6) * hop + 37)
        x[burst] = 0.5 * torch.sin(2 * torch.pi * 440 * t[burst])
    pad = (m.n_fft - hop) // 2
    mel = melspec(F.pad(x[None, None], (pad, pad), mode="reflect")[:, 0]).clamp_min(1e-5).log()
    assert mel.shape == (1, 80, frames)
    with torch.inference_mode():
        y = vocoder(mel)[0]
    assert y.shape == x.shape

    def envelope(s):
        return F.avg_pool1d(s.abs()[None, None], 64, 1, padding=32)[0, 0]

    ex, ey = envelope(x), envelope(y)

    def overlap(lag):
        return float((ex[max(0, lag):len(ex) + min(0, lag)] * ey[max(0, -lag):len(ey) + min(0, -lag)]).sum())

    best = max(range(-hop, hop + 1), key=overlap)
    assert abs(best) <= hop // 8, best


def test_diffwave_step_counts_and_official_schedules():
    six, fifty = build("diffwave_6"), build("diffwave_50")
    assert len(six._coefficients) == 6 and len(fifty._coefficients) == 50
    # The YAML files omit the noise schedules: the defaults are lmnt-com/diffwave's params.py.
    for model in (six, fifty):
        np.testing.assert_allclose(model.noise_schedule, np.linspace(1e-4, 0.05, 50))
        assert model.inference_noise_schedule == [1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5]
    assert fifty.sampling_schedule == fifty.noise_schedule
    assert six.sampling_schedule == six.inference_noise_schedule
    # fast sampling maps each of its 6 noise levels to a fractional training step, descending in noise
    steps = [c[0] for c in six._coefficients]
    assert all(0 <= s <= 49 for s in steps) and steps == sorted(steps)
    with pytest.raises(ValueError):
        build("diffwave_6", inference_steps=10)
