"""WaveGrad: the paper's Base and the thesis grid against their parameter counts, the noise schedules,
the continuous noise level the training draws, output lengths and batching, the 6/50-iteration configs
sharing one network, and a training step that lowers its loss."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audiofootprint.training.config import training_section
from audiofootprint.training.objectives import StepContext, build_objective
from audiofootprint.vocoders import zoo
from audiofootprint.vocoders.wavegrad import WaveGrad
from conftest import ROOT

VOCODERS = ROOT / "conf" / "vocoder"
SIX, FIFTY = (zoo.load_entry(VOCODERS / f"wavegrad_{n}.yaml") for n in (6, 50))
#: Channel widths small enough for fast tests (the factors, dilations and schedules stay the YAML's).
TINY = {"upsample_preconv_channels": 16, "upsample_channels": [8, 8, 8, 8, 8],
        "downsample_preconv_channels": 4, "downsample_channels": [8, 8, 8, 8]}
#: The thesis grid's counts, from its own code: ConstanceDws/neural-audio-energy src/models/wavegrad/
#: {small,medium,large}.yaml passed to its wavegrad.py WaveGrad(**yaml) (default.yaml == large.yaml).
THESIS_COUNTS = {"small": 4_176_513, "medium": 10_616_449, "large": 17_122_625}

pytestmark = pytest.mark.usefixtures("one_thread")


def thesis_config(size: str):
    """conf/vocoder/thesis_wavegrad_SIZE.yaml."""
    return VOCODERS / f"thesis_wavegrad_{size}.yaml"


def tiny(entry: zoo.ZooEntry, seed: int = 0, **overrides) -> WaveGrad:
    torch.manual_seed(seed)
    return zoo.build(entry, **(TINY | overrides))


def test_base_has_the_papers_parameter_count():
    """WaveGrad Base: 15,810,401 parameters (ivanvovk/WaveGrad README; lmnt's network with 80 mel bands),
    the 15.81M the paper (arXiv 2009.00713) quotes."""
    model = zoo.build(SIX)
    assert model.num_params() == 15_810_401
    assert abs(model.num_params() / 15.81e6 - 1) < 0.001
    assert SIX.official_params == FIFTY.official_params == 15_810_401
    assert model.hop_length == math.prod(model.upsample_factors) == 300


def test_thesis_grid_has_the_thesis_code_counts():
    for size, count in THESIS_COUNTS.items():
        entry = zoo.load_entry(thesis_config(size))
        assert entry.official_params == count
        torch.manual_seed(0)
        model = zoo.build(entry)
        assert abs(model.num_params() / count - 1) < 0.01, (size, model.num_params(), count)
        assert model.num_params() == count  # the same layers, so the same count exactly
        assert model.hop_length == 512 and model.mel.sample_rate == 16000
        assert model.inference_steps == 50 and model.sampling_schedule == model.noise_schedule
        np.testing.assert_allclose(model.noise_schedule, np.linspace(1e-6, 1e-2, 50))


def test_schedules_are_the_papers():
    six, fifty = tiny(SIX), tiny(FIFTY)
    # the paper's 6-iteration schedule (its "WG-6") and 50 iterations Linear(1e-4, 0.05, 50)
    assert six.sampling_schedule == [7e-6, 1.4e-4, 2.1e-3, 2.8e-2, 3.5e-1, 7e-1]
    np.testing.assert_allclose(fifty.sampling_schedule, np.linspace(1e-4, 0.05, 50))
    assert six.inference_steps == 6 and fifty.inference_steps == 50
    # both train on Linear(1e-6, 0.01, 1000)
    for model in (six, fifty):
        np.testing.assert_allclose(model.noise_schedule, np.linspace(1e-6, 0.01, 1000))
    # the 6-iteration levels sqrt(alpha_bar), from the least noisy: sqrt(1 - 7e-6) ... 0.43487
    levels = [c[0] for c in six._coefficients]
    assert levels[0] == pytest.approx(math.sqrt(1 - 7e-6)) and levels[-1] == pytest.approx(0.43487, abs=1e-5)
    with pytest.raises(ValueError, match="inference_steps 10"):
        tiny(SIX, inference_steps=10)
    with pytest.raises(ValueError, match="hop_length"):
        tiny(SIX, upsample_factors=[5, 5, 3, 2, 4])


def test_the_training_level_lies_between_consecutive_levels():
    model = tiny(SIX)
    obj = build_objective("wavegrad", model.train(), training_section(SIX))
    levels = obj.levels.double().numpy()
    # by hand: l_1 = sqrt(1 - 1e-6); l_1000 = sqrt(prod(1 - beta)) = exp(-(5.0005 + 0.0167 + ...) / 2)
    # = 0.08138 for Linear(1e-6, 0.01, 1000)
    assert len(levels) == 1001 and levels[0] == 1.0
    assert levels[1] == pytest.approx(math.sqrt(1 - 1e-6), abs=1e-7)
    assert levels[-1] == pytest.approx(0.08138, abs=1e-4)
    s, level = obj.sample_noise_level(5, torch.Generator().manual_seed(0))
    # the same seed, by hand: s ~ U{1..1000}, then u ~ U[0, 1), level = l[s-1] + u (l[s] - l[s-1])
    g = torch.Generator().manual_seed(0)
    s_hand = torch.randint(1, 1001, (5,), generator=g)
    u_hand = torch.rand(5, generator=g).double().numpy()
    assert torch.equal(s, s_hand)
    expected = levels[s_hand - 1] + u_hand * (levels[s_hand] - levels[s_hand - 1])
    np.testing.assert_allclose(level.double().numpy(), expected, rtol=1e-6)
    for si, li in zip(s.tolist(), level.tolist()):
        assert levels[si] - 1e-7 <= li <= levels[si - 1] + 1e-7
    # many draws cover the whole range of levels
    _, many = obj.sample_noise_level(4000, torch.Generator().manual_seed(1))
    assert many.min() < 0.1 and many.max() > 0.99


@pytest.mark.parametrize("frames", [1, 7])
def test_output_is_frames_times_hop_for_a_batch(frames):
    model = tiny(SIX).eval()
    mel = torch.rand(2, model.mel.n_mels, frames)
    torch.manual_seed(0)
    wave = model(mel)
    assert wave.shape == (2, frames * 300)
    assert torch.isfinite(wave).all() and wave.abs().max() <= 1.0
    # each item of the batch is what it gives alone (with the same noise)
    torch.manual_seed(0)
    noise = torch.randn(2, frames * 300)
    alone = model.denoise(noise[1:], mel[1:], torch.full((1,), 0.5))
    both = model.denoise(noise, mel, torch.full((2,), 0.5))
    torch.testing.assert_close(both[1:], alone, rtol=1e-4, atol=1e-5)


def test_thesis_sampler_gives_frames_times_hop():
    """The thesis' layout (hop 512, FiLM at the UBlock width, linear interpolation) and its sampler
    (clamped clean-signal prediction, Gaussian posterior), built from the constructor alone."""
    torch.manual_seed(0)
    model = WaveGrad(upsample_factors=[4, 4, 4, 4, 2], upsample_preconv_channels=16, upsample_channels=[8] * 5,
                     upsample_dilations=[[1, 2, 4, 8]] * 3 + [[1, 2, 1, 2]] * 2, downsample_preconv_channels=4,
                     downsample_channels=[8] * 4, downsample_dilations=[[1, 2, 1]] * 4, film_width="output",
                     interpolation="linear", leaky_slope=0.01,
                     noise_schedule={"start": 1e-6, "end": 0.01, "steps": 50}, inference_steps=50, clip="prediction",
                     mel={"sample_rate": 16000, "hop_length": 512, "win_length": 2048, "f_min": 0.0, "f_max": 8000.0})
    # the thesis code's last level: sqrt(alpha_bar_50) of Linear(1e-6, 0.01, 50) = 0.88211
    assert model._coefficients[-1][0] == pytest.approx(0.88211, abs=1e-5)
    wave = model.eval()(torch.rand(2, 80, 3))
    assert wave.shape == (2, 3 * 512) and torch.isfinite(wave).all()


def test_fifty_and_six_iterations_share_the_network():
    six, fifty = zoo.build(SIX), zoo.build(FIFTY)
    assert {k: v.shape for k, v in six.state_dict().items()} == {k: v.shape for k, v in fifty.state_dict().items()}
    fifty.load_state_dict(six.state_dict())  # a wavegrad_6 training run loads into wavegrad_50
    assert training_section(FIFTY) == {"shares_training_with": "wavegrad_6"}
    assert training_section(SIX)["objective"] == "wavegrad"


def test_a_training_step_lowers_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = tiny(SIX, seed=0).train()
    section = training_section(SIX)
    obj = build_objective("wavegrad", model, section)
    assert obj.crop_samples(section["segment_samples"]) == 7200
    t = torch.arange(2400) / 24000.0
    wave = torch.stack([0.5 * torch.sin(2 * math.pi * 220 * t), 0.3 * torch.sin(2 * math.pi * 330 * t + 1.0)])

    def fixed_loss() -> float:
        """The step's L1 at 16 fixed levels and noises (the step itself draws new ones each time)."""
        batch = wave.repeat(8, 1)
        _, level = obj.sample_noise_level(len(batch), torch.Generator().manual_seed(5))
        noise = torch.randn(batch.shape, generator=torch.Generator().manual_seed(6))
        noisy = level[:, None] * batch + (1 - level[:, None] ** 2).sqrt() * noise
        with torch.no_grad():
            return torch.nn.functional.l1_loss(model.denoise(noisy, obj.features(batch), level), noise).item()

    start = fixed_loss()
    values = [obj.step(wave, StepContext(step, 0, step / 20))["loss"] for step in range(20)]
    assert all(math.isfinite(v) for v in values)
    assert fixed_loss() < 0.9 * start, (start, fixed_loss(), values)
