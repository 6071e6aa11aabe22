"""Official checkpoints of DiffWave, Vocos, BigVGAN, UnivNet and WaveRNN load into the zoo classes.

Each test writes a state dict in the official key layout, fills it with distinct values, saves
it in the official file layout with ``torch.save`` and loads it with ``model.from_checkpoint``.
It then checks that every official tensor landed in the parameter (or buffer) of the same
module path, and that the model synthesises a finite waveform of ``frames * hop`` samples.

The key names and shapes are written down here from the official code (repository, file and
commit in each ``official_*`` function) for the configuration given; they are never derived
from our models. Where the official class is importable (torchaudio's ``WaveRNN`` and
``MelSpectrogram``), the transcription is also checked against it. Every family has one
full-size key list, checked against the official parameter count.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchaudio
from omegaconf import OmegaConf

from audiofootprint.vocoders import zoo
from audiofootprint.vocoders.base import Vocoder
from audiofootprint.vocoders.bigvgan import BIGVGAN_MEL, BigVGAN, kaiser_sinc_filter1d
from audiofootprint.vocoders.bigvgan import official_config_kwargs as bigvgan_config_kwargs
from audiofootprint.vocoders.vocos import Vocos
from audiofootprint.vocoders.vocos import official_config_kwargs as vocos_config_kwargs
from conftest import ROOT

ENTRIES = zoo.load_zoo(ROOT)


pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------
# Helpers: distinct values, where a key lands, the official file layouts
# ---------------------------------------------------------------------------


def fill(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Distinct values for each official tensor (positive where the official code needs it)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000 + len(state), dtype=torch.long)
        elif key.endswith(("weight_g", "running_var")):
            state[key] = torch.rand(shape, generator=gen) * 0.5 + 0.25
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.1
    return state


def landed(root: torch.nn.Module, key: str) -> torch.Tensor:
    """The tensor of ``root`` an official key names: the same module path and attribute, where
    the legacy ``weight_g``/``weight_v`` of ``torch.nn.utils.weight_norm`` are the
    parametrisation's ``original0``/``original1`` (magnitude / direction)."""
    prefix, _, name = key.rpartition(".")
    module = root.get_submodule(prefix) if prefix else root
    if name in ("weight_g", "weight_v"):
        return getattr(module.parametrizations.weight, "original0" if name == "weight_g" else "original1")
    return getattr(module, name)


def assert_all_landed(root: torch.nn.Module, official: dict[str, torch.Tensor], skip: tuple[str, ...] = ()) -> None:
    ours = dict(root.state_dict(keep_vars=True))
    assert len(ours) == len(official) - len(skip), "our model has tensors the official file does not fill"
    for key, value in official.items():
        if key in skip:
            continue
        torch.testing.assert_close(landed(root, key).detach(), value, rtol=0, atol=0, msg=key)


def total(shapes: dict[str, tuple[int, ...]], buffers: tuple[str, ...] = ()) -> int:
    return sum(math.prod(s) for k, s in shapes.items() if not k.endswith(buffers))


def adam_state(n: int = 3) -> dict:
    """A real optimiser state dict (tensors, ints, floats), as official training files hold one."""
    params = [torch.nn.Parameter(torch.randn(4)) for _ in range(n)]
    optim = torch.optim.Adam(params, lr=2e-4)
    sum(p.sum() for p in params).backward()
    optim.step()
    return optim.state_dict()


def build(name: str, seed: int = 1, **overrides) -> Vocoder:
    torch.manual_seed(seed)
    return zoo.build(ENTRIES[name], **overrides).eval()


def assert_synthesises(model: Vocoder, mel: torch.Tensor, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        wave = model(mel, **kwargs)
    assert wave.shape == (mel.shape[0], mel.shape[-1] * model.hop_length)
    assert torch.isfinite(wave).all()
    return wave


# ---------------------------------------------------------------------------
# DiffWave: lmnt-com/diffwave
# ---------------------------------------------------------------------------

#: lmnt-com/diffwave src/diffwave/params.py @ 0594106093b8d8c444de8bd8cd26482f653c569f (dict(params),
#: as learner.py saves it).
DIFFWAVE_PARAMS = dict(
    batch_size=16, learning_rate=2e-4, max_grad_norm=None, sample_rate=22050, n_mels=80, n_fft=1024,
    hop_samples=256, crop_mel_frames=62, residual_layers=30, residual_channels=64, dilation_cycle_length=10,
    unconditional=False, noise_schedule=np.linspace(1e-4, 0.05, 50).tolist(),
    inference_noise_schedule=[0.0001, 0.001, 0.01, 0.05, 0.2, 0.5], audio_len=22050 * 5,
)


def official_diffwave(residual_layers=30, residual_channels=64, n_mels=80) -> dict[str, tuple[int, ...]]:
    """lmnt-com/diffwave src/diffwave/model.py @ 0594106093b8d8c444de8bd8cd26482f653c569f:
    ``DiffWave(params).state_dict()`` (DiffusionEmbedding's ``embedding`` is registered with
    ``persistent=False``, so it is not in the file)."""
    c = residual_channels
    shapes = {
        "input_projection.weight": (c, 1, 1), "input_projection.bias": (c,),
        "diffusion_embedding.projection1.weight": (512, 128), "diffusion_embedding.projection1.bias": (512,),
        "diffusion_embedding.projection2.weight": (512, 512), "diffusion_embedding.projection2.bias": (512,),
        # ConvTranspose2d(1, 1, [3, 32], stride=[1, 16], padding=[1, 8]): weight [in, out, 3, 32]
        "spectrogram_upsampler.conv1.weight": (1, 1, 3, 32), "spectrogram_upsampler.conv1.bias": (1,),
        "spectrogram_upsampler.conv2.weight": (1, 1, 3, 32), "spectrogram_upsampler.conv2.bias": (1,),
    }
    for i in range(residual_layers):
        p = f"residual_layers.{i}."
        shapes |= {
            p + "dilated_conv.weight": (2 * c, c, 3), p + "dilated_conv.bias": (2 * c,),
            p + "diffusion_projection.weight": (c, 512), p + "diffusion_projection.bias": (c,),
            p + "conditioner_projection.weight": (2 * c, n_mels, 1), p + "conditioner_projection.bias": (2 * c,),
            p + "output_projection.weight": (2 * c, c, 1), p + "output_projection.bias": (2 * c,),
        }
    shapes |= {"skip_projection.weight": (c, c, 1), "skip_projection.bias": (c,),
               "output_projection.weight": (1, c, 1), "output_projection.bias": (1,)}
    return shapes


def official_diffwave_embedding(max_steps: int) -> torch.Tensor:
    """DiffusionEmbedding._build_embedding, as lmnt-com/diffwave writes it."""
    steps = torch.arange(max_steps).unsqueeze(1)
    dims = torch.arange(64).unsqueeze(0)
    table = steps * 10.0 ** (dims * 4.0 / 63.0)
    return torch.cat([torch.sin(table), torch.cos(table)], dim=1)


def diffwave_file(state: dict, params: dict = DIFFWAVE_PARAMS) -> dict:
    """learner.py DiffWaveLearner.state_dict()."""
    return {"step": 1000578, "model": state, "optimizer": adam_state(), "params": dict(params),
            "scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
                       "_growth_tracker": 0}}


def test_diffwave_official_checkpoint(tmp_path):
    shapes = official_diffwave()
    assert total(shapes) == 2_619_971  # lmnt-com DiffWave(params), conf/vocoder/diffwave_6.yaml
    official = fill(shapes)
    path = tmp_path / "diffwave-ljspeech-22kHz-1000578.pt"
    torch.save(diffwave_file(official), path)

    model = build("diffwave_6")
    assert model.from_checkpoint(path) is model
    assert_all_landed(model, official)
    # The table lmnt rebuilds at load time is ours.
    torch.testing.assert_close(model.diffusion_embedding.embedding, official_diffwave_embedding(50))
    torch.manual_seed(0)
    wave = assert_synthesises(model, torch.rand(1, 80, 2))
    assert wave.abs().max() <= 1.0

    # A file that does carry the (non-persistent) table, saved from DataParallel, loads too.
    wrapped = {"module." + k: v for k, v in official.items()}
    wrapped["module.diffusion_embedding.embedding"] = official_diffwave_embedding(50)
    torch.save(diffwave_file(wrapped), path)
    build("diffwave_50").from_checkpoint(path)


def test_diffwave_refuses_other_training_settings(tmp_path):
    official = fill(official_diffwave())
    path = tmp_path / "weights.pt"
    model = build("diffwave_6")
    for change, message in (({"noise_schedule": np.linspace(1e-4, 0.05, 20).tolist()}, "noise_schedule"),
                            ({"dilation_cycle_length": 5}, "dilation_cycle_length"),
                            ({"residual_channels": 128}, "residual_channels"),
                            ({"unconditional": True}, "unconditional")):
        torch.save(diffwave_file(official, DIFFWAVE_PARAMS | change), path)
        with pytest.raises(ValueError, match=message):
            model.from_checkpoint(path)
    # An embedding table of another length (training steps) is refused.
    torch.save({"model": official | {"diffusion_embedding.embedding": official_diffwave_embedding(20)}}, path)
    with pytest.raises(ValueError, match="noise_schedule"):
        model.from_checkpoint(path)


# ---------------------------------------------------------------------------
# Vocos: gemelo-ai/vocos (charactr/vocos-mel-24khz)
# ---------------------------------------------------------------------------

#: The Hugging Face charactr/vocos-mel-24khz config.yaml, as vocos/pretrained.py from_hparams reads it
#: (top-level feature_extractor / backbone / head); the values are gemelo-ai/vocos configs/vocos.yaml's
#: @ c859e3b7b534f3776a357983029d34170ddd6fc3.
VOCOS_CONFIG = """
feature_extractor:
  class_path: vocos.feature_extractors.MelSpectrogramFeatures
  init_args:
    sample_rate: 24000
    n_fft: 1024
    hop_length: 256
    n_mels: 100
    padding: center

backbone:
  class_path: vocos.models.VocosBackbone
  init_args:
    input_channels: 100
    dim: 512
    intermediate_dim: 1536
    num_layers: 8

head:
  class_path: vocos.heads.ISTFTHead
  init_args:
    dim: 512
    n_fft: 1024
    hop_length: 256
    padding: center
"""


def official_vocos(n_mels=100, dim=512, intermediate_dim=1536, num_layers=8, n_fft=1024, sample_rate=24000,
                   hop_length=256) -> dict[str, torch.Tensor]:
    """gemelo-ai/vocos @ c859e3b7b534f3776a357983029d34170ddd6fc3, ``Vocos(feature_extractor, backbone,
    head).state_dict()`` (vocos/pretrained.py), i.e. ``pytorch_model.bin``: VocosBackbone
    (models.py) with ConvNeXtBlock (modules.py), ISTFTHead (heads.py) whose ISTFT registers its
    Hann window (spectral_ops.py), and MelSpectrogramFeatures (feature_extractors.py) holding a
    torchaudio MelSpectrogram as ``mel_spec``. Parameters get distinct values; buffers are the
    official ones."""
    shapes = {"backbone.embed.weight": (dim, n_mels, 7), "backbone.embed.bias": (dim,),
              "backbone.norm.weight": (dim,), "backbone.norm.bias": (dim,)}
    for i in range(num_layers):
        p = f"backbone.convnext.{i}."
        shapes |= {p + "gamma": (dim,), p + "dwconv.weight": (dim, 1, 7), p + "dwconv.bias": (dim,),
                   p + "norm.weight": (dim,), p + "norm.bias": (dim,),
                   p + "pwconv1.weight": (intermediate_dim, dim), p + "pwconv1.bias": (intermediate_dim,),
                   p + "pwconv2.weight": (dim, intermediate_dim), p + "pwconv2.bias": (dim,)}
    shapes |= {"backbone.final_layer_norm.weight": (dim,), "backbone.final_layer_norm.bias": (dim,),
               "head.out.weight": (n_fft + 2, dim), "head.out.bias": (n_fft + 2,)}
    features = torchaudio.transforms.MelSpectrogram(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length,
                                                    n_mels=n_mels, center=True, power=1)
    state = {f"feature_extractor.mel_spec.{k}": v for k, v in features.state_dict().items()}
    return state | fill(shapes, seed=2) | {"head.istft.window": torch.hann_window(n_fft)}


VOCOS_BUFFERS = ("feature_extractor.mel_spec.spectrogram.window", "feature_extractor.mel_spec.mel_scale.fb",
                 "head.istft.window")


def test_vocos_official_checkpoint(tmp_path):
    official = official_vocos()
    assert set(official) >= set(VOCOS_BUFFERS)  # torchaudio's MelSpectrogram buffers, as written above
    assert official["feature_extractor.mel_spec.mel_scale.fb"].shape == (513, 100)
    params = {k: tuple(v.shape) for k, v in official.items() if k not in VOCOS_BUFFERS}
    assert total(params) == 13_531_650  # official VocosBackbone + ISTFTHead, conf/vocoder/vocos.yaml
    path = tmp_path / "pytorch_model.bin"
    torch.save(official, path)

    # config.yaml gives the zoo's own Vocos configuration.
    (tmp_path / "config.yaml").write_text(VOCOS_CONFIG)
    kwargs = vocos_config_kwargs(tmp_path / "config.yaml")
    expected = {k: v for k, v in OmegaConf.to_container(ENTRIES["vocos"].model).items() if k != "_target_"}
    assert kwargs == expected
    model = Vocos(**kwargs).eval()
    assert model.from_checkpoint(path) is model
    assert_all_landed(model, official, skip=VOCOS_BUFFERS)
    torch.testing.assert_close(model.head.window, official["head.istft.window"])
    assert_synthesises(model, torch.randn(2, 100, 4) - 4.0)


def test_vocos_training_checkpoint_and_mismatches(tmp_path):
    slim = {"dim": 32, "intermediate_dim": 64, "num_layers": 2}
    official = official_vocos(**slim)
    path = tmp_path / "last.ckpt"
    # vocos.experiment.VocosExp (Lightning): the generator beside discriminators and losses.
    lightning = official | {"multiperioddisc.discriminators.0.convs.0.weight": torch.randn(4, 1, 5, 1),
                            "melspec_loss.mel_spec.mel_scale.fb": torch.rand(513, 100)}
    torch.save({"epoch": 3, "global_step": 10, "state_dict": lightning}, path)
    model = Vocos(**slim).eval()
    model.from_checkpoint(path)
    assert_all_landed(model, official, skip=VOCOS_BUFFERS)

    torch.save(official, path)
    with pytest.raises(ValueError, match="filterbank"):  # 100 bands, but of another sample rate
        Vocos(**slim, mel={"sample_rate": 22050}).from_checkpoint(path)
    with pytest.raises(ValueError, match="n_mels"):
        Vocos(**slim, mel={"n_mels": 80}).from_checkpoint(path)
    encodec = official | {"backbone.norm.scale.weight": torch.ones(4, 32)}
    torch.save(encodec, path)
    with pytest.raises(ValueError, match="EnCodec"):
        Vocos(**slim).from_checkpoint(path)


# ---------------------------------------------------------------------------
# BigVGAN: NVIDIA/BigVGAN
# ---------------------------------------------------------------------------

#: NVIDIA/BigVGAN configs/bigvgan_base_22khz_80band.json @ 7d2b454564a6c7d014227f635b7423881f14bdac
#: (the model and audio keys).
BIGVGAN_BASE_CONFIG = {
    "resblock": "1", "upsample_rates": [8, 8, 2, 2], "upsample_kernel_sizes": [16, 16, 4, 4],
    "upsample_initial_channel": 512, "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "activation": "snakebeta", "snake_logscale": True,
    "num_mels": 80, "num_freq": 1025, "n_fft": 1024, "hop_size": 256, "win_size": 1024, "sampling_rate": 22050,
    "fmin": 0, "fmax": 8000, "fmax_for_loss": None,
}
#: configs/bigvgan_v2_24khz_100band_256x.json, same commit.
BIGVGAN_V2_24K_CONFIG = {
    "resblock": "1", "upsample_rates": [4, 4, 2, 2, 2, 2], "upsample_kernel_sizes": [8, 8, 4, 4, 4, 4],
    "upsample_initial_channel": 1536, "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "use_tanh_at_final": False,
    "use_bias_at_final": False, "activation": "snakebeta", "snake_logscale": True, "num_mels": 100,
    "num_freq": 1025, "n_fft": 1024, "hop_size": 256, "win_size": 1024, "sampling_rate": 24000, "fmin": 0,
    "fmax": None, "fmax_for_loss": None,
}


def official_kaiser_sinc_filter1d(cutoff, half_width, kernel_size):
    """alias_free_activation/torch/filter.py kaiser_sinc_filter1d, as NVIDIA writes it."""
    even = kernel_size % 2 == 0
    half_size = kernel_size // 2
    delta_f = 4 * half_width
    A = 2.285 * (half_size - 1) * math.pi * delta_f + 7.95
    if A > 50.0:
        beta = 0.1102 * (A - 8.7)
    elif A >= 21.0:
        beta = 0.5842 * (A - 21) ** 0.4 + 0.07886 * (A - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, beta=beta, periodic=False)
    time = torch.arange(-half_size, half_size) + 0.5 if even else torch.arange(kernel_size) - half_size
    filter_ = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    filter_ /= filter_.sum()
    return filter_.view(1, 1, kernel_size)


def official_bigvgan(h: dict) -> dict[str, torch.Tensor]:
    """NVIDIA/BigVGAN bigvgan.py @ 7d2b454564a6c7d014227f635b7423881f14bdac, ``BigVGAN(h).state_dict()``
    as ``bigvgan_generator.pt`` holds it: legacy ``torch.nn.utils.weight_norm`` (``weight_g``
    [out, 1, 1] for Conv1d, [in, 1, 1] for ConvTranspose1d, and ``weight_v``), AMP blocks
    whose ``activations`` are ``Activation1d`` (alias_free_activation/torch/act.py: ``act``,
    ``upsample.filter``, ``downsample.lowpass.filter`` persistent buffers, 12 taps at ratio 2),
    Snake/SnakeBeta (activations.py: ``alpha``, ``beta``)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def wn(prefix, out_ch, in_ch, k, bias=True, transpose=False):
        shapes[prefix + ".weight_g"] = (in_ch if transpose else out_ch, 1, 1)
        shapes[prefix + ".weight_v"] = (in_ch, out_ch, k) if transpose else (out_ch, in_ch, k)
        if bias:
            shapes[prefix + ".bias"] = (out_ch,)

    def activation(prefix, ch):
        shapes[prefix + ".act.alpha"] = (ch,)
        if h["activation"] == "snakebeta":
            shapes[prefix + ".act.beta"] = (ch,)
        shapes[prefix + ".upsample.filter"] = (1, 1, 12)
        shapes[prefix + ".downsample.lowpass.filter"] = (1, 1, 12)

    ch0 = h["upsample_initial_channel"]
    wn("conv_pre", ch0, h["num_mels"], 7)
    for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"])):
        wn(f"ups.{i}.0", ch0 // 2 ** (i + 1), ch0 // 2 ** i, k, transpose=True)
    n = 0
    for i in range(len(h["upsample_rates"])):
        ch = ch0 // 2 ** (i + 1)
        for k, d in zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"]):
            names = ("convs1", "convs2") if h["resblock"] == "1" else ("convs",)
            for name in names:
                for m in range(len(d)):
                    wn(f"resblocks.{n}.{name}.{m}", ch, ch, k)
            for a in range(len(names) * len(d)):
                activation(f"resblocks.{n}.activations.{a}", ch)
            n += 1
    activation("activation_post", ch)
    wn("conv_post", 1, ch, 7, bias=h.get("use_bias_at_final", True))

    state = fill({k: v for k, v in shapes.items() if not k.endswith("filter")}, seed=3)
    lowpass = official_kaiser_sinc_filter1d(0.25, 0.3, 12)  # cutoff 0.5 / ratio, half width 0.6 / ratio
    return {k: (lowpass.clone() if k.endswith("filter") else state[k]) for k in shapes}


def test_bigvgan_official_v1_checkpoint(tmp_path):
    official = official_bigvgan(BIGVGAN_BASE_CONFIG)
    assert total({k: v.shape for k, v in official.items()}, buffers=("filter",)) == 13_953_474
    assert {"ups.0.0.weight_g", "resblocks.11.activations.5.act.beta", "activation_post.downsample.lowpass.filter",
            "conv_post.bias"} <= set(official)
    path = tmp_path / "bigvgan_generator.pt"
    torch.save({"generator": official}, path)

    kwargs = bigvgan_config_kwargs(BIGVGAN_BASE_CONFIG)
    expected = {k: v for k, v in OmegaConf.to_container(ENTRIES["bigvgan_base"].model).items() if k != "_target_"}
    assert {k: v for k, v in kwargs.items() if k in expected} == expected
    assert kwargs["mel"] == BIGVGAN_MEL.as_dict() and kwargs["use_bias_at_final"] and kwargs["use_tanh_at_final"]
    model = build("bigvgan_base")
    # Our freshly built anti-aliasing filters are NVIDIA's.
    torch.testing.assert_close(kaiser_sinc_filter1d(0.25, 0.3, 12), official_kaiser_sinc_filter1d(0.25, 0.3, 12))
    torch.testing.assert_close(model.activation_post.upsample.filter, official["activation_post.upsample.filter"])
    assert model.from_checkpoint(path) is model
    assert_all_landed(model, official)
    wave = assert_synthesises(model, torch.randn(1, 80, 2) - 4.0)
    assert wave.abs().max() <= 1.0


def test_bigvgan_v2_checkpoint_without_weight_norm(tmp_path):
    """A v2 config (no final bias, no tanh) in a narrow width, from a file whose weight norm was
    removed (plain ``weight``, which the official ``_from_pretrained`` falls back to)."""
    h = BIGVGAN_V2_24K_CONFIG | {"upsample_initial_channel": 64}
    official = official_bigvgan(h)
    assert "conv_post.bias" not in official
    folded = {}
    for key, value in official.items():
        if key.endswith("weight_g"):
            continue
        if key.endswith("weight_v"):
            g = official[key[:-1] + "g"]
            value = value * (g / value.flatten(1).norm(dim=1).view(-1, 1, 1))
            key = key[: -len("_v")]
        folded[key] = value
    path = tmp_path / "bigvgan_generator.pt"
    torch.save({"generator": folded}, path)

    kwargs = bigvgan_config_kwargs(h)
    assert kwargs["mel"] == {"sample_rate": 24000, "n_fft": 1024, "win_length": 1024, "hop_length": 256,
                             "n_mels": 100, "f_min": 0.0, "f_max": None}
    assert not kwargs["use_bias_at_final"] and not kwargs["use_tanh_at_final"]
    torch.manual_seed(1)
    model = BigVGAN(**kwargs).eval()
    model.from_checkpoint(path)
    for key, value in folded.items():
        prefix, _, name = key.rpartition(".")
        torch.testing.assert_close(getattr(model.get_submodule(prefix), name).detach(), value, msg=key)
    assert_synthesises(model, torch.randn(1, 100, 2) - 4.0)

    with pytest.raises(ValueError, match="use_bias_at_final"):
        BigVGAN(**(kwargs | {"use_bias_at_final": True})).from_checkpoint(path)


# ---------------------------------------------------------------------------
# UnivNet: mindslab-ai/univnet (= maum-ai/univnet)
# ---------------------------------------------------------------------------

#: mindslab-ai/univnet config/default_c32.yaml @ 9bb2b54838bb6d7ce767131cc7b8b61198bc7558 (the audio and
#: gen sections verbatim; trainer.py saves the file's text as hp_str).
UNIVNET_C32_HP = """\
train:
  num_workers: 8
  batch_size: 32
  optimizer: 'adam'
  seed: 1234
  stft_lamb: 2.5
#############################
audio:
  n_mel_channels: 100
  segment_length: 16384 # Should be multiple of 256
  pad_short: 2000
  filter_length: 1024
  hop_length: 256 # WARNING: this can't be changed.
  win_length: 1024
  sampling_rate: 24000
  mel_fmin: 0.0
  mel_fmax: 12000.0
#############################
gen:
  noise_dim: 64
  channel_size: 32
  dilations: [1, 3, 9, 27]
  strides: [8, 8, 4]
  lReLU_slope: 0.2
  kpnet_conv_size: 3
#############################
mrd:
  resolutions: "[(1024, 120, 600), (2048, 240, 1200), (512, 50, 240)]" # (filter_length, hop_length, win_length)
"""
UNIVNET_C16_HP = UNIVNET_C32_HP.replace("channel_size: 32", "channel_size: 16")


def official_univnet(channel_size=32, n_mels=100, noise_dim=64, strides=(8, 8, 4), dilations=(1, 3, 9, 27),
                     kpnet_conv_size=3) -> dict[str, tuple[int, ...]]:
    """mindslab-ai/univnet model/generator.py + model/lvcnet.py @ 9bb2b54838bb6d7ce767131cc7b8b61198bc7558,
    ``Generator(hp).state_dict()`` with ``nn.utils.weight_norm`` everywhere (legacy g/v keys);
    KernelPredictor hidden 64 and LVC kernel 3 are the code's defaults."""
    shapes: dict[str, tuple[int, ...]] = {}

    def wn(prefix, out_ch, in_ch, k, transpose=False):
        shapes[prefix + ".weight_g"] = (out_ch if not transpose else in_ch, 1, 1)
        shapes[prefix + ".weight_v"] = (in_ch, out_ch, k) if transpose else (out_ch, in_ch, k)
        shapes[prefix + ".bias"] = (out_ch,)

    c, layers, hidden = channel_size, len(dilations), 64
    for i, stride in enumerate(strides):
        kp = f"res_stack.{i}.kernel_predictor"
        wn(f"{kp}.input_conv.0", hidden, n_mels, 5)
        for r in range(3):
            wn(f"{kp}.residual_convs.{r}.1", hidden, hidden, kpnet_conv_size)
            wn(f"{kp}.residual_convs.{r}.3", hidden, hidden, kpnet_conv_size)
        wn(f"{kp}.kernel_conv", c * 2 * c * 3 * layers, hidden, kpnet_conv_size)
        wn(f"{kp}.bias_conv", 2 * c * layers, hidden, kpnet_conv_size)
        wn(f"res_stack.{i}.convt_pre.1", c, c, 2 * stride, transpose=True)
        for m in range(layers):
            wn(f"res_stack.{i}.conv_blocks.{m}.1", c, c, 3)
    wn("conv_pre", c, noise_dim, 7)
    wn("conv_post.1", 1, c, 7)
    return shapes


def univnet_file(state: dict, hp: str) -> dict:
    """utils/train.py's checkpoint."""
    return {"model_g": state, "model_d": {"mrd.discriminators.0.convs.0.weight_v": torch.randn(32, 1, 3, 9)},
            "optim_g": adam_state(), "optim_d": adam_state(), "step": 1_000_000, "epoch": 288, "hp_str": hp,
            "githash": "9bb2b54838bb6d7ce767131cc7b8b61198bc7558"}


def test_univnet_official_c32_checkpoint(tmp_path):
    shapes = official_univnet()
    assert abs(total(shapes) / 14.86e6 - 1) < 0.005  # the paper's Table 1 (c32, 100 bands)
    official = fill(shapes, seed=4)
    path = tmp_path / "univnet_c32.pt"
    torch.save(univnet_file(official, UNIVNET_C32_HP), path)
    model = build("univnet_c32")
    assert model.from_checkpoint(path) is model
    assert_all_landed(model, official)
    assert_synthesises(model, torch.randn(1, 100, 4) - 4.0, noise=torch.randn(1, 64, 4))


def test_univnet_data_parallel_c16_and_mismatches(tmp_path):
    official = fill(official_univnet(channel_size=16), seed=5)
    path = tmp_path / "univnet_c16.pt"
    torch.save(univnet_file({"module." + k: v for k, v in official.items()}, UNIVNET_C16_HP), path)
    c16 = build("univnet_c32", channel_size=16)
    c16.from_checkpoint(path)
    assert_all_landed(c16, official)

    with pytest.raises(ValueError, match="channel_size"):  # the c16 file into c32
        build("univnet_c32").from_checkpoint(path)
    # What the weights cannot show: the dilations and slope the file was trained with.
    for change in ("dilations: [1, 2, 4, 8]", "lReLU_slope: 0.1"):
        hp = UNIVNET_C16_HP.replace("dilations: [1, 3, 9, 27]" if "dil" in change else "lReLU_slope: 0.2", change)
        torch.save(univnet_file(official, hp), path)
        with pytest.raises(ValueError, match=change.split(":")[0]):
            c16.from_checkpoint(path)


# ---------------------------------------------------------------------------
# WaveRNN: torchaudio (TACOTRON2_WAVERNN_*_LJSPEECH vocoder)
# ---------------------------------------------------------------------------


def official_wavernn(upsample_scales=(5, 5, 11), n_classes=256, n_res_block=10, n_rnn=512, n_fc=512, kernel_size=5,
                     n_freq=80, n_hidden=128, n_output=128) -> dict[str, tuple[int, ...]]:
    """torchaudio models/wavernn.py (torchaudio 2.11.0), ``WaveRNN(**_get_wrnn_params()).state_dict()``,
    the layout of the bundle's ``wavernn_10k_epochs_8bits_ljspeech.pth``: MelResNet's Sequential
    (conv, batch norm, ReLU, ResBlocks, conv), UpsampleNetwork's Stretch2d/Conv2d pairs, the GRUs
    and the fully connected layers."""
    n_aux = n_output // 4
    m = "upsample.resnet.melresnet_model."

    def bn(prefix, ch):
        return {prefix + "weight": (ch,), prefix + "bias": (ch,), prefix + "running_mean": (ch,),
                prefix + "running_var": (ch,), prefix + "num_batches_tracked": ()}

    shapes = {m + "0.weight": (n_hidden, n_freq, kernel_size)} | bn(m + "1.", n_hidden)
    for r in range(n_res_block):
        p = f"{m}{3 + r}.resblock_model."
        shapes |= {p + "0.weight": (n_hidden, n_hidden, 1)} | bn(p + "1.", n_hidden)
        shapes |= {p + "3.weight": (n_hidden, n_hidden, 1)} | bn(p + "4.", n_hidden)
    shapes |= {f"{m}{3 + n_res_block}.weight": (n_output, n_hidden, 1), f"{m}{3 + n_res_block}.bias": (n_output,)}
    for j, scale in enumerate(upsample_scales):
        shapes[f"upsample.upsample_layers.{2 * j + 1}.weight"] = (1, 1, 1, 2 * scale + 1)

    def gru(prefix, n_in):
        return {prefix + "weight_ih_l0": (3 * n_rnn, n_in), prefix + "weight_hh_l0": (3 * n_rnn, n_rnn),
                prefix + "bias_ih_l0": (3 * n_rnn,), prefix + "bias_hh_l0": (3 * n_rnn,)}

    shapes |= {"fc.weight": (n_rnn, n_freq + n_aux + 1), "fc.bias": (n_rnn,)}
    shapes |= gru("rnn1.", n_rnn) | gru("rnn2.", n_rnn + n_aux)
    shapes |= {"fc1.weight": (n_fc, n_rnn + n_aux), "fc1.bias": (n_fc,), "fc2.weight": (n_fc, n_fc + n_aux),
               "fc2.bias": (n_fc,), "fc3.weight": (n_classes, n_fc), "fc3.bias": (n_classes,)}
    return shapes


def test_wavernn_official_bundle_checkpoint(tmp_path):
    from torchaudio.pipelines._tts.utils import _get_wrnn_params

    shapes = official_wavernn()
    reference = torchaudio.models.WaveRNN(**_get_wrnn_params()).state_dict()
    assert {k: tuple(v.shape) for k, v in reference.items()} == shapes  # the transcription is torchaudio's
    assert total(shapes, buffers=("running_mean", "running_var", "num_batches_tracked")) == 4_349_613
    official = fill(shapes, seed=6)
    path = tmp_path / "wavernn_10k_epochs_8bits_ljspeech.pth"
    torch.save(official, path)
    model = build("wavernn")
    assert model.from_checkpoint(path) is model
    assert_all_landed(model.model, official)
    torch.manual_seed(0)
    wave = assert_synthesises(model, torch.randn(1, 80, 2) - 4.0)
    assert wave.abs().max() <= 1.0

    # torchaudio's examples/pipeline_wavernn checkpoint: DataParallel keys under "state_dict".
    torch.save({"epoch": 10000, "state_dict": {"module." + k: v for k, v in official.items()}, "best_loss": 2.5,
                "optimizer": adam_state()}, path)
    again = build("wavernn", seed=2)
    again.from_checkpoint(path)
    assert_all_landed(again.model, official)
