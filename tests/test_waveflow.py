"""WaveFlow: the paper's and the thesis grid's parameter counts, an invertible flow whose
log-determinant is the Jacobian's, sampling to exactly frames x hop samples, weight norm folded
or not, and a training objective that lowers the likelihood loss."""
from __future__ import annotations

import math

import pytest
import torch

from audiofootprint.training.config import ObjectiveError
from audiofootprint.training.objectives import build_objective
from audiofootprint.training.optimisation import StepContext
from audiofootprint.vocoders import zoo
from audiofootprint.vocoders.waveflow import WaveFlow
from conftest import ROOT

pytestmark = pytest.mark.usefixtures("one_thread")

PAPER = ROOT / "conf" / "vocoder" / "waveflow.yaml"
#: a hop of 16 folded into 4 rows, upsampled 4 x 4
TINY_MEL = {"sample_rate": 8000, "n_fft": 64, "win_length": 64, "hop_length": 16, "n_mels": 8, "f_max": 4000.0}
TINY = {"n_flows": 2, "n_height": 4, "n_layers": 2, "res_channels": 8, "upsample_factors": (4, 4), "mel": TINY_MEL}


def tiny(seed: int = 0, **overrides) -> WaveFlow:
    """A tiny WaveFlow whose flows are not the identity (the output convolutions start at zero)."""
    torch.manual_seed(seed)
    model = WaveFlow(**(TINY | overrides))
    with torch.no_grad():
        for net in model.flows:
            net.end.weight.normal_(0.0, 0.3)
            net.end.bias.normal_(0.0, 0.1)
    return model


def test_the_paper_configuration_has_the_papers_parameter_count():
    entry = zoo.load_entry(PAPER)
    model = zoo.build(entry)
    # the official layout (Parakeet v0.1.0, weight norm as trained): 8 * (159 r^2 + 1379 r + 2) + 2 * 98
    assert model.num_params() == 8 * (159 * 64**2 + 1379 * 64 + 2) + 196 == 5_916_372
    assert abs(model.num_params() / 5.91e6 - 1) < 0.01  # arXiv:1912.01219: 5.91M
    assert entry.official_params == 5.91e6
    # 128 residual channels: the paper's 22.25M
    assert abs(WaveFlow(res_channels=128).num_params() / 22.25e6 - 1) < 0.001
    assert model.for_inference().num_params() == 5_891_794  # weight norm folded


@pytest.mark.parametrize("size, channels", [("small", 64), ("medium", 96), ("large", 128)])
def test_the_thesis_grid_counts_are_the_thesis_codes(size, channels):
    entry = zoo.load_entry(ROOT / f"conf/vocoder/thesis_waveflow_{size}.yaml")
    assert entry.features == "thesis" and entry.family == "WaveFlow"
    count = zoo.build(entry).num_params()
    # the thesis' flow.py (L0SG/WaveFlow) with weight norm: every layer outputs residual + skip
    assert count == 8 * (160 * channels**2 + 1381 * channels + 2) + 196 == entry.official_params
    assert entry.model.mel.sample_rate == 16000 and entry.model.mel.n_fft == 2048


@pytest.mark.parametrize("overrides", [{}, {"bipartize": False, "last_layer_residual": True}])
def test_the_inverse_recovers_the_audio(overrides):
    model = tiny(**overrides).eval()
    torch.manual_seed(1)
    audio = 0.3 * torch.randn(2, 12 * 16)
    mel = torch.randn(2, 8, 12)
    with torch.no_grad():
        z, log_s_list = model.flow_forward(audio, mel)
        back = model.flow_inverse(z, mel)
    assert z.shape == audio.shape and len(log_s_list) == 2
    assert (z - audio).abs().max() > 0.1  # the flows do something
    assert (back - audio).abs().max() < 1e-4


@pytest.mark.parametrize("overrides", [{}, {"bipartize": False, "last_layer_residual": True}])
def test_the_log_determinant_is_the_jacobians(overrides):
    model = tiny(**overrides).double().eval()
    torch.manual_seed(2)
    audio = 0.3 * torch.randn(16, dtype=torch.float64)  # one frame: 4 rows x 4 columns
    mel = torch.randn(1, 8, 1, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(lambda a: model.flow_forward(a[None], mel)[0][0], audio)
    _, log_s_list = model.flow_forward(audio[None], mel)
    sign, log_abs_det = torch.linalg.slogdet(jacobian)
    assert sign != 0
    assert abs(sum(s.sum() for s in log_s_list).item() - log_abs_det.item()) < 1e-3


@pytest.mark.parametrize("frames", [1, 3])
def test_sampling_gives_frames_times_hop_samples(frames):
    model = tiny().for_inference()
    with torch.inference_mode():
        wave = model(torch.randn(2, 8, frames))
    assert wave.shape == (2, frames * 16) and torch.isfinite(wave).all()


def test_the_paper_model_samples_frames_times_hop():
    torch.manual_seed(0)
    model = zoo.build(zoo.load_entry(PAPER)).for_inference()
    with torch.inference_mode():
        wave = model(torch.randn(2, 80, 2) - 5.0)
    assert wave.shape == (2, 2 * 256) and torch.isfinite(wave).all()


def test_sampling_is_the_inverse_of_seeded_noise_and_survives_folding():
    model = tiny().eval()
    mel = torch.randn(1, 8, 3)
    torch.manual_seed(3)
    z = 0.5 * torch.randn(1, 3 * 16)
    with torch.no_grad():
        expected = model.flow_inverse(z, mel)
        torch.manual_seed(3)
        sampled = model(mel, sigma=0.5)
        state = model.state_dict()  # weight norm as trained
        folded = model.for_inference()
        after_folding = folded.flow_inverse(z, mel)
        reloaded = tiny(seed=9)
        reloaded.load_checkpoint_state(folded.state_dict())  # folded weights into a weight-normed model
        from_folded = reloaded.flow_inverse(z, mel)
    assert torch.allclose(sampled, expected)
    assert torch.allclose(after_folding, expected, atol=1e-5)
    assert torch.allclose(from_folded, expected, atol=1e-5)
    assert any(".parametrizations." in key for key in state)


@pytest.mark.parametrize("overrides, message", [
    ({"n_height": 3}, "divide hop_length"),
    ({"upsample_factors": (2, 4)}, "multiply to 8"),
    ({"upsample_factors": (16, 1)}, "must be even"),
    ({"n_flows": 1}, "bipartize"),
    ({"height_dilations": (1,)}, "1 values for 2 layers"),
])
def test_shapes_that_cannot_fold_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        WaveFlow(**(TINY | overrides))


def test_the_objective_lowers_the_negative_log_likelihood():
    section = zoo.section(zoo.load_entry(PAPER), "training")
    assert section["objective"] == "waveflow" and section["sigma"] == 1.0
    assert section["generator"] == {"optimizer": "adam", "lr": 2.0e-4}
    model = tiny(seed=4).train()
    objective = build_objective("waveflow", model, section)
    t = torch.arange(256) / 8000
    torch.manual_seed(5)
    wave = torch.stack([0.4 * torch.sin(2 * math.pi * 440 * t), 0.3 * torch.sin(2 * math.pi * 660 * t)])
    wave = wave + 0.01 * torch.randn_like(wave)
    losses = [objective.step(wave, StepContext(step, 0, step / 8))["loss"] for step in range(8)]
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-3:]) / 3 < losses[0] - 0.03, losses
    assert objective.describe()["objective"] == "waveflow"


def test_the_objective_needs_sigma_in_the_section():
    section = zoo.section(zoo.load_entry(PAPER), "training")
    del section["sigma"]
    with pytest.raises(ObjectiveError, match="waveflow: training.sigma is missing"):
        build_objective("waveflow", tiny(), section)
