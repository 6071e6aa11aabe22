"""Family-specific tests of the GAN vocoders: checkpoint loading in the official layouts
(legacy ``weight_g``/``weight_v`` keys, ``{"generator": ...}`` wrapping), save/load round
trips, UnivNet's 80- vs 100-band sizes, partial mel settings, Hydra instantiation and the
PQMF filter bank.

Parameter counts and output shapes of every configuration in conf/vocoder/ are tested in
test_zoo.py; the official hyperparameters used here are read from those YAML files.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from audiofootprint.vocoders import zoo
from audiofootprint.vocoders.base import MelSettings, resolve_mel
from audiofootprint.vocoders.hifigan import HIFIGAN_MEL, HiFiGAN
from audiofootprint.vocoders.pqmf import PQMF
from audiofootprint.vocoders.univnet import UnivNet

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = zoo.load_zoo(ROOT)
FRAMES = 12
#: The 22.05 kHz / 80-band analysis of the other GAN vocoders, as a partial override.
MEL_80_22K = {"sample_rate": 22050, "n_mels": 80, "f_max": 8000.0}


pytestmark = pytest.mark.usefixtures("one_thread")


def build(name: str, seed: int = 0, **overrides):
    """The zoo model ``name`` (conf/vocoder/<name>.yaml), ``overrides`` replacing model keys."""
    torch.manual_seed(seed)
    return zoo.build(ENTRIES[name], **overrides).eval()


def _official_hifigan_state(model: HiFiGAN) -> dict:
    """The model's weights under the key names of jik876/hifi-gan checkpoints,
    renamed here by hand (independently of the project's own helpers)."""
    state = {}
    for key, value in model.state_dict().items():
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        key = key.replace(".parametrizations.weight.original1", ".weight_v")
        state[key] = value.clone()
    return state


def test_hifigan_loads_official_generator_checkpoint(tmp_path):
    source = build("hifigan_v1")
    with torch.no_grad():  # make the magnitudes matter: g != ||v||
        for key, param in source.named_parameters():
            if key.endswith("original0"):
                param.mul_(torch.rand_like(param) + 0.5)
    state = _official_hifigan_state(source)
    for key in (
        "conv_pre.weight_g",
        "ups.0.weight_v",
        "resblocks.0.convs1.0.weight_g",
        "resblocks.11.convs2.2.weight_v",
        "conv_post.weight_g",
        "conv_post.bias",
    ):
        assert key in state
    assert not any("parametrizations" in key for key in state)
    path = tmp_path / "generator_v1"
    torch.save({"generator": state}, path)

    target = build("hifigan_v1", seed=1)
    mel = torch.randn(1, 80, FRAMES)
    with torch.no_grad():
        expected = source(mel)
        assert not torch.allclose(target(mel), expected)
        assert target.from_checkpoint(path) is target
        torch.testing.assert_close(target(mel), expected)

        # A bare state dict, and a model whose weight norm was folded for inference, load too.
        torch.save(state, path)
        folded = build("hifigan_v1", seed=2).for_inference()
        assert not any("parametrizations" in key for key in folded.state_dict())
        folded.from_checkpoint(path)
        torch.testing.assert_close(folded(mel), expected, rtol=1e-4, atol=1e-6)


# The official configs' layouts with fewer channels, to keep the tests quick.
SLIM = {
    "hifigan_v3": {"upsample_initial_channel": 64},
    "melgan": {"ngf": 8},
    "multiband_melgan": {"channels": 96},
    "univnet_c32": {"channel_size": 8},
    "bigvgan_base": {"upsample_initial_channel": 64},
}


@pytest.mark.parametrize("name", list(SLIM))
def test_checkpoint_round_trip(name, tmp_path):
    source = build(name, **SLIM[name])
    path = tmp_path / "ckpt.pt"
    torch.save(source.state_dict_for_checkpoint(), path)
    target = build(name, seed=1, **SLIM[name])
    target.from_checkpoint(path)
    # (reflection padding of 3 samples needs more than 3 frames)
    mel = torch.randn(1, source.mel.n_mels, 5)
    kwargs = {"noise": torch.randn(1, source.noise_dim, 5)} if name.startswith("univnet") else {}
    with torch.no_grad():
        torch.testing.assert_close(target(mel, **kwargs), source(mel, **kwargs))


def test_official_key_layouts():
    bigvgan = build("bigvgan_base", **SLIM["bigvgan_base"]).state_dict_for_checkpoint()["generator"]
    for key in (
        "ups.0.0.weight_g",
        "resblocks.0.activations.5.act.beta",
        "resblocks.0.activations.0.upsample.filter",
        "resblocks.0.activations.0.downsample.lowpass.filter",
        "activation_post.act.alpha",
    ):
        assert key in bigvgan
    melgan = build("melgan", **SLIM["melgan"]).state_dict_for_checkpoint()
    assert {"model.1.weight_g", "model.3.weight_v", "model.4.block.2.weight_g", "model.4.shortcut.weight_v"} <= set(melgan)
    mb = build("multiband_melgan", **SLIM["multiband_melgan"]).state_dict_for_checkpoint()["model"]["generator"]
    assert {"melgan.1.weight_g", "melgan.4.stack.2.weight_v", "melgan.4.skip_layer.weight_g"} <= set(mb)
    assert not any(key.startswith("pqmf") for key in mb)


def test_univnet_80_vs_100_band_param_counts():
    """The paper's counts are for 100 bands; with 80 the kernel predictors' input convs
    (3 blocks x 20 bands x 64 channels x kernel 5, weight-normed) lose 19,200 weights."""
    entry = ENTRIES["univnet_c32"]
    official = build("univnet_c32")
    assert official.mel.n_mels == 100 and official.mel.sample_rate == 24000
    assert abs(official.num_params() / entry.official_params - 1) < 0.005
    narrow = build("univnet_c32", mel=MEL_80_22K)
    assert narrow.mel.n_mels == 80 and narrow.mel.f_max == 8000.0
    assert official.num_params() - narrow.num_params() == 19_200
    # UnivNet-c16 (mindslab-ai/univnet default_c16.yaml) is c32 with 16 channels: 4.00M in
    # the paper's Table 1.
    c16 = build("univnet_c32", channel_size=16)
    assert abs(c16.num_params() / 4.00e6 - 1) < 0.005


def test_univnet_noise_makes_output_deterministic():
    model = build("univnet_c32", **SLIM["univnet_c32"])
    mel = torch.randn(1, 100, 4)
    noise = torch.randn(1, model.noise_dim, 4)
    with torch.no_grad():
        assert torch.equal(model(mel, noise), model(mel, noise))


def test_mel_settings_accept_mappings():
    # A partial mapping overrides fields of the model's own default analysis.
    model = UnivNet(channel_size=8, mel={"n_mels": 80})
    assert model.mel == MelSettings(24000, 1024, 1024, 256, 80, 0.0, 12000.0)
    assert HiFiGAN(upsample_initial_channel=16).mel == MelSettings() == HIFIGAN_MEL
    with pytest.raises(ValueError):
        HiFiGAN(upsample_initial_channel=16, mel={"hop_length": 300})
    # resolve_mel: None -> the default, MelSettings as given, DictConfig like a dict.
    from omegaconf import OmegaConf

    assert resolve_mel(None, HIFIGAN_MEL) is HIFIGAN_MEL
    assert resolve_mel(MelSettings(sample_rate=16000), HIFIGAN_MEL).sample_rate == 16000
    assert resolve_mel(OmegaConf.create({"n_mels": 100, "f_max": None}), HIFIGAN_MEL) == MelSettings(
        22050, 1024, 1024, 256, 100, 0.0, None
    )
    with pytest.raises(TypeError):
        resolve_mel(80, HIFIGAN_MEL)


def test_hydra_instantiation():
    """A conf/vocoder YAML entry, with overrides, instantiated by Hydra directly (no
    conversion: ``mel`` reaches the model as a DictConfig)."""
    hydra_utils = pytest.importorskip("hydra.utils")
    from omegaconf import OmegaConf

    cfg = OmegaConf.merge(
        ENTRIES["hifigan_v3"].model,
        {"upsample_initial_channel": 32, "mel": {"sample_rate": 22050, "hop_length": 256, "n_mels": 80}},
    )
    model = hydra_utils.instantiate(cfg)
    assert isinstance(model, HiFiGAN) and isinstance(model.mel, MelSettings)
    assert model.mel == HIFIGAN_MEL and len(model.ups) == 3  # V3: three upsampling stages
    with torch.no_grad():
        assert model(torch.randn(1, 80, 2)).shape == (1, 2 * 256)


def test_pqmf_near_perfect_reconstruction():
    pqmf = PQMF()
    torch.manual_seed(0)
    x = torch.randn(1, 1, 4096)
    sub = pqmf.analysis(x)
    assert sub.shape == (1, 4, 1024)
    y = pqmf.synthesis(sub)
    assert y.shape == x.shape
    interior = slice(128, -128)
    err = (y - x)[..., interior].abs().max() / x.abs().max()
    assert err < 5e-3
